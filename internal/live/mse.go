package live

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// PlayerJS is the browser side of ServeMSE: a classic script (no build
// step, no modules) that defines window.CustosLive.play(video, wsURL,
// options). Serve it as text/javascript; see player.js for the contract.
//
//go:embed player.js
var PlayerJS []byte

// DefaultWriteTimeout is how long ServeMSE waits for one message to be
// written before it drops the client.
const DefaultWriteTimeout = 10 * time.Second

// MSEOptions configure ServeMSEWith.
type MSEOptions struct {
	// WriteTimeout bounds each message's write (default
	// DefaultWriteTimeout): a client that does not read for that long is
	// dropped.
	WriteTimeout time.Duration
	// Logger receives the connection's end (debug level); nil discards.
	Logger *slog.Logger
}

// initNotice is the text message that precedes each init segment.
type initNotice struct {
	Type   string `json:"type"` // "init"
	Codec  string `json:"codec"`
	MIME   string `json:"mime"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// ServeMSE is ServeMSEWith with the default options and logger.
func ServeMSE(w http.ResponseWriter, r *http.Request, h *Hub, logger *slog.Logger) {
	ServeMSEWith(w, r, h, MSEOptions{Logger: logger})
}

// ServeMSEWith is the WebSocket endpoint of live view for one stream. It
// upgrades r (github.com/coder/websocket, which refuses a cross-origin
// request with 403 unless the Origin's host is the request's Host; any
// further authorisation is the caller's, before the call), subscribes to h,
// and sends, for each init segment, a text message
//
//	{"type":"init","codec":"avc1.640028","mime":"video/mp4; codecs=\"avc1.640028\"","width":1920,"height":1080}
//
// followed by the init segment as a binary message, and each fragment as a
// binary message, in order. The client must not send data messages (the
// connection is then closed with a policy violation); pings and close
// frames are answered. A message not written within the write timeout
// drops the client. It blocks until the client goes, a write fails, r's
// context ends or h is closed; it never blocks h's Publish (a slow client
// only fills its own bounded queue and skips to the next key frame).
func ServeMSEWith(w http.ResponseWriter, r *http.Request, h *Hub, o MSEOptions) {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Debug("live: websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return // Accept has written the response
	}
	defer c.CloseNow()
	// The client sends nothing; reading answers its pings and close frame
	// and ends ctx when it goes.
	ctx := c.CloseRead(r.Context())

	v := h.Subscribe()
	defer v.Close()
	err = sendMSE(ctx, c, v, o.WriteTimeout)
	switch {
	case errors.Is(err, ErrClosed):
		c.Close(websocket.StatusGoingAway, "stream closed")
	case r.Context().Err() != nil:
		c.Close(websocket.StatusGoingAway, "server shutting down")
	}
	log.Debug("live: mse viewer gone", "remote", r.RemoteAddr, "dropped", v.Dropped(), "err", err)
}

// sendMSE writes v's messages to c until an error.
func sendMSE(ctx context.Context, c *websocket.Conn, v *Viewer, timeout time.Duration) error {
	write := func(typ websocket.MessageType, p []byte) error {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return c.Write(wctx, typ, p)
	}
	for {
		m, err := v.Next(ctx)
		if err != nil {
			return err
		}
		if m.IsInit {
			notice, err := json.Marshal(initNotice{Type: "init", Codec: m.Codec, MIME: m.MIME(), Width: m.Width, Height: m.Height})
			if err != nil {
				return err
			}
			if err := write(websocket.MessageText, notice); err != nil {
				return err
			}
		}
		if err := write(websocket.MessageBinary, m.Data); err != nil {
			return err
		}
		if !m.Published.IsZero() {
			v.hub.noteSent(m.Published)
		}
	}
}
