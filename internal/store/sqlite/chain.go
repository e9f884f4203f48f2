package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

const chainCols = `seq, kind, camera, stream, at_ns, key, wall_dur_ns, dur90k, frames, bytes,
	segment_hash, init_hash, reason, prev, hash, signed_at_ns, signature`

func scanChain(sc interface{ Scan(...any) error }) (integrity.Entry, *integrity.Head, error) {
	var e integrity.Entry
	var at, signedAt int64
	var sh, ih, prev, hash, sig []byte
	if err := sc.Scan(&e.Seq, &e.Kind, &e.Camera, &e.Stream, &at, &e.Key, &e.WallDurNS, &e.Dur90k, &e.Frames, &e.Bytes,
		&sh, &ih, &e.Reason, &prev, &hash, &signedAt, &sig); err != nil {
		return e, nil, err
	}
	e.At = fromNS(at)
	// A stored hash of the wrong length is copied as far as it goes: it
	// cannot hash right, so verification reports the entry as altered.
	copy(e.SegmentHash[:], sh)
	copy(e.InitHash[:], ih)
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	if sig == nil {
		return e, nil, nil
	}
	return e, &integrity.Head{Camera: e.Camera, Stream: e.Stream, Seq: e.Seq, Hash: e.Hash,
		SignedAt: fromNS(signedAt), Signature: sig}, nil
}

// AppendChain appends an entry to a stream's chain in one write
// transaction: build gets the chain's last entry (nil when empty) and
// returns the complete new entry (Seq = last+1, Prev, Hash) and,
// optionally, a signed head for it. Appends to one stream are serialised,
// so concurrent writers (the recorder, retention) cannot fork the chain.
func (s *Store) AppendChain(ctx context.Context, streamID int64, build func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error)) (integrity.Entry, error) {
	var out integrity.Entry
	err := s.write(ctx, func(tx *sql.Tx) error {
		var last *integrity.Entry
		e, _, err := scanChain(tx.QueryRowContext(ctx, `SELECT `+chainCols+` FROM chain WHERE stream_id = ? ORDER BY seq DESC LIMIT 1`, streamID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read chain head: %w", err)
		default:
			last = &e
		}
		ne, head, err := build(last)
		if err != nil {
			return err
		}
		var signedAt int64
		var sig []byte
		if head != nil {
			signedAt, sig = head.SignedAt.UnixNano(), head.Signature
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO chain (stream_id, `+chainCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			streamID, ne.Seq, ne.Kind, ne.Camera, ne.Stream, ne.At.UnixNano(), ne.Key, ne.WallDurNS, ne.Dur90k, ne.Frames, ne.Bytes,
			ne.SegmentHash[:], ne.InitHash[:], ne.Reason, ne.Prev[:], ne.Hash[:], signedAt, sig)
		if err != nil {
			return fmt.Errorf("append chain entry %d: %w", ne.Seq, err)
		}
		out = ne
		return nil
	})
	return out, err
}

// ChainEntries returns up to limit entries of a stream's chain after seq
// afterSeq, in order, each with its signed head when it has one.
func (s *Store) ChainEntries(ctx context.Context, streamID, afterSeq int64, limit int) ([]integrity.Entry, []*integrity.Head, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+chainCols+` FROM chain WHERE stream_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		streamID, afterSeq, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("read chain: %w", err)
	}
	defer rows.Close()
	var es []integrity.Entry
	var hs []*integrity.Head
	for rows.Next() {
		e, h, err := scanChain(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("read chain: %w", err)
		}
		es, hs = append(es, e), append(hs, h)
	}
	return es, hs, rows.Err()
}

// ChainSegment returns the segment entry of the segment stored under key
// in a stream's chain (store.ErrNotFound when there is none).
func (s *Store) ChainSegment(ctx context.Context, streamID int64, key string) (integrity.Entry, *integrity.Head, error) {
	e, h, err := scanChain(s.db.QueryRowContext(ctx, `SELECT `+chainCols+` FROM chain
		WHERE key = ? AND kind = 'segment' AND stream_id = ? ORDER BY seq DESC LIMIT 1`, key, streamID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, nil, fmt.Errorf("chain entry of segment %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return e, nil, fmt.Errorf("read chain entry of segment %s: %w", key, err)
	}
	return e, h, nil
}

// LastChainEntry returns the last entry of a stream's chain; ok is false
// when the chain is empty.
func (s *Store) LastChainEntry(ctx context.Context, streamID int64) (e integrity.Entry, ok bool, err error) {
	e, _, err = scanChain(s.db.QueryRowContext(ctx, `SELECT `+chainCols+` FROM chain WHERE stream_id = ? ORDER BY seq DESC LIMIT 1`, streamID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read chain head: %w", err)
	}
	return e, true, nil
}
