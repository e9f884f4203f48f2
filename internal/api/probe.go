package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/probe"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// ProbeRequest is the body of POST /api/probe.
type ProbeRequest struct {
	URL      string  `json:"url"`
	Username string  `json:"username,omitempty"`
	Password string  `json:"password,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	// Camera, with no password, probes with that camera's stored
	// credentials: the caller must be allowed to manage it, and URL must
	// name a host:port of the camera's URLs (its password goes nowhere
	// else).
	Camera string `json:"camera,omitempty"`
	// AllowBasic lets the probe answer a camera that offers only Basic
	// authentication over plain RTSP (the password crosses the network
	// in clear; the camera's allow_basic_auth).
	AllowBasic bool `json:"allow_basic_auth,omitempty"`
}

// ProbeCredentials gives a probe a configured camera's stored
// credentials (*cameras.Manager). Errors wrap cameras.ErrNotFound or
// cameras.ErrPasswordNeeded.
type ProbeCredentials interface {
	ProbeCredentials(camera, rawURL string) (probeURL, user, pass string, err error)
}

// storedCredentials fills req's credentials from its camera (see
// ProbeRequest.Camera), or returns the refusal.
func (s *Server) storedCredentials(r *http.Request, req *ProbeRequest) error {
	if req.Camera == "" || req.Password != "" {
		return nil
	}
	if u := &who(r).user; !u.Can(req.Camera, managePerms) {
		return &Error{Status: http.StatusForbidden,
			Message: fmt.Sprintf("user %q may not probe with the stored credentials of camera %q: it needs live, recordings and export on it", u.Name, req.Camera)}
	}
	pc, ok := s.CameraAdmin.(ProbeCredentials)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this server cannot probe with stored credentials"}
	}
	probeURL, user, pass, err := pc.ProbeCredentials(req.Camera, req.URL)
	if err != nil {
		return cameraError(err)
	}
	if req.Username != "" && req.Username != user {
		return &Error{Status: http.StatusUnprocessableEntity, Message: "the user name differs from the stored one: type the password too"}
	}
	req.URL, req.Username, req.Password = probeURL, user, pass
	return nil
}

// maxProbeSeconds bounds how long one probe receives media.
const maxProbeSeconds = 5

// probeCamera serves POST /api/probe: it connects to a camera URL (before
// the camera is configured, or with a configured camera's stored
// credentials: ProbeRequest.Camera) and answers what custos probe prints,
// so the UI can show what a camera sends before it is saved. Failures are 422
// with custos probe's one-line reason; the URL in the answer never carries
// credentials.
func (s *Server) probeCamera(w http.ResponseWriter, r *http.Request) {
	var req ProbeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "the body must be JSON {url, username, password, seconds, camera}: " + err.Error()})
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Scheme != "rtsp" || u.Host == "" {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("url %q is not an rtsp:// URL with a host", rtsp.RedactURL(req.URL))})
		return
	}
	if req.Seconds < 0 || req.Seconds > maxProbeSeconds {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("seconds must be from 0 to %d", maxProbeSeconds)})
		return
	}
	if err := s.storedCredentials(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.audit(r, audit.Probe, req.Camera, map[string]string{"url": rtsp.RedactURL(req.URL)}); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second+time.Duration(req.Seconds*float64(time.Second)))
	defer cancel()
	res, err := probe.Run(ctx, probe.Options{
		Client: rtsp.ClientConfig{URL: req.URL, Username: req.Username, Password: req.Password, Logger: s.logger(),
			AllowBasic: req.AllowBasic},
		Duration: time.Duration(req.Seconds * float64(time.Second)),
	})
	if err != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return
		}
		s.writeError(w, r, &Error{Status: http.StatusUnprocessableEntity, Message: rtsp.RedactURL(probe.Describe(err))})
		return
	}
	res.URL = rtsp.RedactURL(res.URL)
	writeJSON(w, http.StatusOK, res)
}
