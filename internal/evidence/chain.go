// Package evidence keeps each stream's hash chain as the server records
// and deletes: run starts, closed segments (with a head signed by the
// node key) and deletions (internal/integrity defines the entries;
// docs/evidence.md what they prove). It is the only writer of chains and
// of their second copy, the journal (chains.log), and signs the periodic
// checkpoint of every chain's head (checkpoint.json).
package evidence

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// Store is what the chains need from the index (sqlite.Store).
type Store interface {
	AppendChain(ctx context.Context, streamID int64, build func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error)) (integrity.Entry, error)
	ChainSegment(ctx context.Context, streamID int64, key string) (integrity.Entry, *integrity.Head, error)
}

// Chains appends to the streams' chains. Safe for concurrent use (the
// store serialises appends per stream). Methods do I/O and block.
type Chains struct {
	Store Store
	// Key signs the head each time a segment closes.
	Key ed25519.PrivateKey
	// Now is the clock for signatures (nil: time.Now).
	Now func() time.Time
	// Journal, when set, receives a copy of every entry after the index
	// commits it (chains.log); nil keeps the chains in the index only.
	Journal *Journal
}

// appendEntry appends through the store, then to the journal.
func (c *Chains) appendEntry(ctx context.Context, streamID int64, build func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error)) error {
	var head *integrity.Head
	e, err := c.Store.AppendChain(ctx, streamID, func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error) {
		e, h, err := build(last)
		head = h
		return e, h, err
	})
	if err != nil {
		return err
	}
	if c.Journal != nil {
		if err := c.Journal.Append(e, head); err != nil {
			return fmt.Errorf("entry %d is in the index but not the journal: %w", e.Seq, err)
		}
	}
	return nil
}

func (c *Chains) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// link fills e's Seq and Prev from the chain's last entry and its Hash.
func link(e *integrity.Entry, last *integrity.Entry) {
	e.Seq = 1
	if last != nil {
		e.Seq, e.Prev = last.Seq+1, last.Hash
	}
	e.Hash = e.ComputeHash()
}

// RunStarted records that a connection to the camera began at at (what
// lies between the previous segment and at is a gap).
func (c *Chains) RunStarted(ctx context.Context, camera, stream string, streamID int64, at time.Time) error {
	err := c.appendEntry(ctx, streamID, func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error) {
		e := integrity.Entry{Kind: integrity.KindRunStart, Camera: camera, Stream: stream, At: at.UTC()}
		link(&e, last)
		return e, nil, nil
	})
	if err != nil {
		return fmt.Errorf("chain of %s/%s: run start: %w", camera, stream, err)
	}
	return nil
}

// SegmentClosed records a closed segment with its hashes and signs the
// chain's new head.
func (c *Chains) SegmentClosed(ctx context.Context, camera, stream string, seg store.Segment, segHash, initHash [32]byte) error {
	err := c.appendEntry(ctx, seg.StreamID, func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error) {
		e := integrity.Entry{Kind: integrity.KindSegment, Camera: camera, Stream: stream, At: seg.Start.UTC(),
			Key: seg.Key, WallDurNS: int64(seg.WallDur), Dur90k: seg.Dur90k, Frames: seg.Frames, Bytes: seg.Bytes,
			SegmentHash: segHash, InitHash: initHash}
		link(&e, last)
		h := &integrity.Head{Camera: camera, Stream: stream, Seq: e.Seq, Hash: e.Hash, SignedAt: c.now().UTC()}
		integrity.SignHead(c.Key, h)
		return e, h, nil
	})
	if err != nil {
		return fmt.Errorf("chain of %s/%s: segment %s: %w", camera, stream, seg.Key, err)
	}
	return nil
}

// SegmentDeleted records, before the segment is deleted, that it goes
// and why, repeating its hashes so the hole is explained.
func (c *Chains) SegmentDeleted(ctx context.Context, camera, stream string, seg store.Segment, reason string, at time.Time) error {
	var segHash, initHash [32]byte
	if se, _, err := c.Store.ChainSegment(ctx, seg.StreamID, seg.Key); err == nil {
		segHash, initHash = se.SegmentHash, se.InitHash
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("chain of %s/%s: deletion of %s: %w", camera, stream, seg.Key, err)
	}
	err := c.appendEntry(ctx, seg.StreamID, func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error) {
		e := integrity.Entry{Kind: integrity.KindDeletion, Camera: camera, Stream: stream, At: at.UTC(),
			Key: seg.Key, WallDurNS: int64(seg.WallDur), Dur90k: seg.Dur90k, Frames: seg.Frames, Bytes: seg.Bytes,
			SegmentHash: segHash, InitHash: initHash, Reason: reason}
		link(&e, last)
		return e, nil, nil
	})
	if err != nil {
		return fmt.Errorf("chain of %s/%s: deletion of %s: %w", camera, stream, seg.Key, err)
	}
	return nil
}
