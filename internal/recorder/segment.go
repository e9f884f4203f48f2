package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/mp4"
	"github.com/custos-nvr/custos/internal/store"
)

// segmentFile is one segment being written: a fragmented MP4 that starts
// with its init segment and grows by whole fragments. It follows the write
// order of docs/storage.md: fragment bytes to the file, fsync when the
// policy says so, and only then the index row that vouches for them.
// Not safe for concurrent use.
type segmentFile struct {
	w   blob.Writer
	idx store.Store
	seg store.Segment
	// seg.Bytes/Frames/KeyFrames are what the row vouches for, as of the
	// last fsync; the unsynced counters are what was written since.
	unsyncedBytes  int64
	unsyncedFrames int64
	unsyncedKeys   int64
	lastSync       time.Time
	dirty          bool
	fragSeq        uint32
	buf            []byte
	iov            [][]byte // header and parts of the fragment being written
	// durSinceStart90k is the media time written so far (sum of sample
	// durations); the next fragment's base decode time (tfdt) is
	// runOffset90k plus it, so decode times run on across the segments
	// of a run and their fragments can be concatenated unchanged (an
	// evidence export).
	durSinceStart90k int64
	runOffset90k     int64
	// index collects the sample tables appended when the file closes.
	index mp4.SampleIndexWriter
	// initHash is SHA-256 of the init segment (ftyp + moov, without the
	// metadata box); fragHashes the SHA-256 of each fragment written
	// (moof + mdat), for the stream's hash chain (docs/evidence.md).
	initHash   [32]byte
	fragHashes [][32]byte
	hasher     hash.Hash // reused for every fragment
}

// SegmentMeta is the JSON a segment file carries in its metadata box (see
// mp4.AppendMetadata): enough to rebuild its index row.
type SegmentMeta struct {
	Version     int    `json:"v"`
	Camera      string `json:"camera"`
	Stream      string `json:"stream"`
	Run         int64  `json:"run"`
	RunStartNs  int64  `json:"run_start_ns"`
	StartNs     int64  `json:"start_ns"`
	StartPTS90k int64  `json:"start_pts90k"`
}

// createSegment creates the file, writes the init segment and inserts the
// row (state writing). The row is inserted after the init bytes are
// written and synced, so it never names a file that does not exist.
func createSegment(ctx context.Context, disk blob.Store, idx store.Store, seg store.Segment, track mp4.Track,
	camera, stream string, runStart time.Time, runOffset90k int64, now time.Time) (*segmentFile, error) {
	init, err := mp4.Init(track)
	if err != nil {
		return nil, fmt.Errorf("segment %s: init: %w", seg.Key, err)
	}
	// The file describes itself, so custos check --repair can rebuild the
	// index from the files alone.
	meta, err := json.Marshal(SegmentMeta{Version: 1, Camera: camera, Stream: stream, Run: seg.RunID,
		RunStartNs: runStart.UnixNano(), StartNs: seg.Start.UnixNano(), StartPTS90k: seg.StartPTS90k})
	if err != nil {
		return nil, fmt.Errorf("segment %s: metadata: %w", seg.Key, err)
	}
	initHash := sha256.Sum256(init)
	init = mp4.AppendMetadata(init, meta)
	w, err := disk.Create(ctx, seg.Key)
	if err != nil {
		return nil, fmt.Errorf("create segment %s on %s: %w", seg.Key, disk.Name(), err)
	}
	fail := func(err error) (*segmentFile, error) {
		// No row names the file yet: remove it rather than leave an
		// orphan (a full disk fails here).
		w.Close()
		disk.Delete(context.WithoutCancel(ctx), seg.Key)
		return nil, err
	}
	if _, err := w.Write(init); err != nil {
		return fail(fmt.Errorf("write init of segment %s: %w", seg.Key, err))
	}
	if err := w.Sync(); err != nil {
		return fail(fmt.Errorf("sync segment %s: %w", seg.Key, err))
	}
	seg.Bytes = w.Size()
	seg.State = store.SegmentWriting
	seg.Codec = mp4.CodecString(track)
	seg.Width, seg.Height = track.Width, track.Height
	if err := idx.AddSegment(ctx, &seg); err != nil {
		return fail(fmt.Errorf("index segment %s: %w", seg.Key, err))
	}
	return &segmentFile{w: w, idx: idx, seg: seg, lastSync: now, initHash: initHash, runOffset90k: runOffset90k}, nil
}

// appendFragment writes one fragment of samples whose data is parts in
// order (dataLen bytes in all), then syncs and updates the row if
// fsyncEvery has passed.
func (s *segmentFile) appendFragment(ctx context.Context, samples []mp4.Sample, parts [][]byte, dataLen int, keys int, now time.Time, fsyncEvery time.Duration) error {
	if len(samples) == 0 {
		return nil
	}
	s.fragSeq++
	offset := s.seg.Bytes + s.unsyncedBytes
	// Header and samples in one writev: the sample data is never copied.
	s.buf = mp4.AppendFragmentHeader(s.buf[:0], s.fragSeq, uint64(s.runOffset90k+s.durSinceStart90k), samples, dataLen)
	s.iov = append(append(s.iov[:0], s.buf), parts...)
	_, err := blob.WriteBuffers(s.w, s.iov)
	clear(s.iov)
	if err != nil {
		// Cut what may have been half-written so the file stays a clean
		// sequence of fragments; the caller decides whether to go on.
		s.w.Truncate(s.seg.Bytes + s.unsyncedBytes)
		return fmt.Errorf("write fragment %d of segment %s: %w", s.fragSeq, s.seg.Key, err)
	}
	for _, sm := range samples {
		s.durSinceStart90k += int64(sm.Dur90k)
	}
	// One hash per fragment (about a second of video), not per packet.
	if s.hasher == nil {
		s.hasher = sha256.New()
	}
	s.hasher.Reset()
	s.hasher.Write(s.buf)
	for _, p := range parts {
		s.hasher.Write(p)
	}
	var sum [32]byte
	s.fragHashes = append(s.fragHashes, [32]byte(s.hasher.Sum(sum[:0])))
	s.index.AddFragment(offset, len(s.buf), samples)
	s.unsyncedBytes += int64(len(s.buf) + dataLen)
	s.unsyncedFrames += int64(len(samples))
	s.unsyncedKeys += int64(keys)
	s.dirty = true
	if now.Sub(s.lastSync) >= fsyncEvery {
		return s.sync(ctx, now)
	}
	return nil
}

// sync makes the written fragments durable and then lets the row vouch for
// them.
func (s *segmentFile) sync(ctx context.Context, now time.Time) error {
	if !s.dirty {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", s.seg.Key, err)
	}
	s.lastSync = now
	s.seg.Bytes += s.unsyncedBytes
	s.seg.Frames += s.unsyncedFrames
	s.seg.KeyFrames += s.unsyncedKeys
	s.seg.Dur90k = s.durSinceStart90k
	s.unsyncedBytes, s.unsyncedFrames, s.unsyncedKeys = 0, 0, 0
	s.dirty = false
	if err := s.idx.UpdateSegment(ctx, &s.seg); err != nil {
		return fmt.Errorf("index segment %s: %w", s.seg.Key, err)
	}
	return nil
}

// close appends the sample index, syncs, marks the row closed with its
// final wall duration, and releases the file. The index only speeds up
// playback: when it cannot be written (a full disk) the file closes
// without it.
func (s *segmentFile) close(ctx context.Context, wallDur time.Duration, now time.Time) error {
	s.dirty = true
	if s.index.Fragments() > 0 {
		end := s.seg.Bytes + s.unsyncedBytes
		s.buf = s.index.AppendBox(s.buf[:0])
		if _, err := s.w.Write(s.buf); err != nil {
			if terr := s.w.Truncate(end); terr != nil {
				s.w.Close()
				return fmt.Errorf("close segment %s: cut a partly written sample index: %w", s.seg.Key, terr)
			}
		} else {
			s.unsyncedBytes += int64(len(s.buf))
		}
	}
	if err := s.w.Sync(); err != nil {
		s.w.Close()
		return fmt.Errorf("sync segment %s: %w", s.seg.Key, err)
	}
	s.seg.Bytes += s.unsyncedBytes
	s.seg.Frames += s.unsyncedFrames
	s.seg.KeyFrames += s.unsyncedKeys
	s.seg.Dur90k = s.durSinceStart90k
	s.seg.WallDur = wallDur
	s.seg.State = store.SegmentClosed
	s.unsyncedBytes, s.unsyncedFrames, s.unsyncedKeys = 0, 0, 0
	err := s.idx.UpdateSegment(ctx, &s.seg)
	if cerr := s.w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment %s: %w", s.seg.Key, cerr)
	}
	if err != nil {
		return fmt.Errorf("close segment %s: %w", s.seg.Key, err)
	}
	return nil
}
