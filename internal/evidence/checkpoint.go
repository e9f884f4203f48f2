package evidence

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// CheckpointEvery is how often a running server signs a checkpoint.
const CheckpointEvery = time.Minute

// HeadStore is what a Checkpointer reads from the index (sqlite.Store).
type HeadStore interface {
	Streams(ctx context.Context) ([]store.Stream, error)
	LastChainEntry(ctx context.Context, streamID int64) (integrity.Entry, bool, error)
}

// Checkpointer signs the heads of every stream chain and of the audit log
// together (integrity.Checkpoint) and replaces the checkpoint file with
// them. Methods do I/O and block; Sign must not run concurrently with
// itself (the server calls it from one goroutine, then once at stop).
type Checkpointer struct {
	Store HeadStore
	// AuditHead returns the audit log's last seq and hash (0, nil: empty).
	AuditHead func(ctx context.Context) (int64, []byte, error)
	Key       ed25519.PrivateKey
	Path      string
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: discard
}

// Sign builds, signs and writes a new checkpoint whose counter follows
// the one in the file (1 when there is none or it cannot be read).
func (c *Checkpointer) Sign(ctx context.Context) (*integrity.Checkpoint, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := &integrity.Checkpoint{Counter: 1}
	if old, err := integrity.ReadCheckpoint(c.Path); err == nil {
		cp.Counter = old.Counter + 1
	} else if !errors.Is(err, os.ErrNotExist) {
		// Replaced by a good one below; say so, as it may be tampering.
		if c.Logger != nil {
			c.Logger.Warn("checkpoint: the previous file cannot be read; starting its counter again", "path", c.Path, "err", err)
		}
	}
	streams, err := c.Store.Streams(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	for _, st := range streams {
		e, ok, err := c.Store.LastChainEntry(ctx, st.ID)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s/%s: %w", st.Camera, st.Name, err)
		}
		if ok {
			cp.Streams = append(cp.Streams, integrity.StreamHead{Camera: st.Camera, Stream: st.Name, Seq: e.Seq, Hash: e.Hash})
		}
	}
	if c.AuditHead != nil {
		seq, h, err := c.AuditHead(ctx)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: audit head: %w", err)
		}
		cp.AuditSeq = seq
		copy(cp.AuditHash[:], h)
	}
	cp.SignedAt = time.Unix(0, now().UnixNano()).UTC()
	integrity.SignCheckpoint(c.Key, cp)
	if err := integrity.WriteCheckpoint(c.Path, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// Run signs a checkpoint at once and then every period until ctx ends.
// A failure is logged at error and retried at the next tick: it leaves
// the newest entries unprotected, but must not stop recording.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.Sign(ctx); err != nil && ctx.Err() == nil {
			log.Error("checkpoint: signing the chains' heads failed; the newest entries are not covered", "path", c.Path, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
