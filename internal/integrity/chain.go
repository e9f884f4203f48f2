// Package integrity proves that recordings are what the recorder wrote: it
// hashes fragments and segments, chains one entry per recording event
// (run start, segment closed, segment deleted) for each camera stream,
// signs the head of a chain with the recorder's Ed25519 key, and verifies
// an exported clip against all of that offline (docs/evidence.md).
//
// Everything here is pure computation on values in memory, with two
// exceptions that say so: LoadOrCreateKey reads and writes the key file, and
// FindFragmentsReader and HashSpans read through the io.ReaderAt they are
// given. Functions are safe for concurrent use on values that nobody
// modifies meanwhile.
package integrity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// HashSize is the length of every hash here (SHA-256).
const HashSize = sha256.Size

// Domain strings start every hashed or signed message, so that no hash or
// signature can be taken for one of another kind (or of the audit log,
// "custos-audit-v1").
const (
	chainDomain   = "custos-chain-v1"
	segmentDomain = "custos-segment-v1"
	headDomain    = "custos-head-v1"
)

// FragmentHash is SHA-256 of one fragment's bytes exactly as stored: the
// moof box through the end of its mdat.
func FragmentHash(frag []byte) [32]byte { return sha256.Sum256(frag) }

// SegmentHash is SHA-256 over the domain string "custos-segment-v1", the
// number of fragments (uint64 big-endian) and each fragment hash in order.
// A segment with no fragments has a hash too (of the domain and a zero
// count), but the recorder never closes such a segment.
func SegmentHash(frags [][32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(segmentDomain))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(frags))))
	for i := range frags {
		h.Write(frags[i][:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Kinds of chain entries.
const (
	KindRunStart = "run_start" // a connection to the camera began (what precedes it since the last segment is a gap)
	KindSegment  = "segment"   // a segment closed
	KindDeletion = "deletion"  // a segment was deleted (retention or by hand), with its reason
)

// Entry is one link of a stream's chain (one chain per camera stream).
type Entry struct {
	Seq    int64  // 1, 2, 3 … per stream
	Kind   string // one of the Kind constants
	Camera string
	Stream string // "main" or "sub"
	// At is the wall time of the event (segment: its start; run_start: the
	// run's start; deletion: when deleted), hashed as UTC Unix nanoseconds,
	// so it must lie within the years 1678..2262.
	At time.Time
	// Segment and deletion entries (zero in run_start entries):
	Key         string   // the segment's storage key (disk-relative path), e.g. "door/main/2026-11-29/….mp4"
	WallDurNS   int64    // segment's wall duration in ns
	Dur90k      int64    // media duration, 90 kHz ticks
	Frames      int64    // video frames in the segment
	Bytes       int64    // file length the hash covers
	SegmentHash [32]byte // SegmentHash of the segment's fragments
	// InitHash is SHA-256 of the segment's init segment as stored (its
	// ftyp and moov boxes: the track's description, edit list and
	// timescale), so that an export's header is covered too; zero for
	// run_start and for deletion entries of segments recorded before it
	// existed.
	InitHash [32]byte
	Reason   string   // deletion only: why ("retention", "by alice: …")
	Prev     [32]byte // Hash of entry Seq-1 (zero for Seq 1)
	Hash     [32]byte // ComputeHash()
}

// appendUint appends v as 8 bytes big-endian.
func appendUint(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendString appends len(s) as 8 bytes big-endian, then s.
func appendString(b []byte, s string) []byte { return append(appendUint(b, uint64(len(s))), s...) }

// encoding returns the bytes ComputeHash hashes (docs/evidence.md, "Chain
// entries"): "custos-chain-v1", then every field but Hash in declaration
// order, strings length-prefixed (uint64 big-endian), integers and At
// (Unix ns) as 8 bytes big-endian (two's complement), hashes as their 32
// bytes.
func (e *Entry) encoding() []byte {
	b := make([]byte, 0, len(chainDomain)+8*9+2*HashSize+len(e.Kind)+len(e.Camera)+len(e.Stream)+len(e.Key)+len(e.Reason))
	b = append(b, chainDomain...)
	b = appendUint(b, uint64(e.Seq))
	b = appendString(b, e.Kind)
	b = appendString(b, e.Camera)
	b = appendString(b, e.Stream)
	b = appendUint(b, uint64(e.At.UnixNano()))
	b = appendString(b, e.Key)
	b = appendUint(b, uint64(e.WallDurNS))
	b = appendUint(b, uint64(e.Dur90k))
	b = appendUint(b, uint64(e.Frames))
	b = appendUint(b, uint64(e.Bytes))
	b = append(b, e.SegmentHash[:]...)
	b = append(b, e.InitHash[:]...)
	b = appendString(b, e.Reason)
	b = append(b, e.Prev[:]...)
	return b
}

// ComputeHash returns SHA-256 over "custos-chain-v1" and every field but
// Hash, each length-prefixed (uint64 big-endian) or fixed-width big-endian,
// in declaration order; the exact layout is in docs/evidence.md. It does
// not modify e.
func (e *Entry) ComputeHash() [32]byte { return sha256.Sum256(e.encoding()) }

// Problem is a verification failure: what is wrong and where, for people.
type Problem struct {
	Fragment int   // 1-based fragment of the file concerned, or 0
	ChainSeq int64 // chain entry concerned, or 0
	Msg      string
}

// Error returns Msg, which names the place, e.g. "chain entry 1234: prev
// does not match entry 1233 (…)".
func (p *Problem) Error() string { return p.Msg }

func problemAt(seq int64, format string, args ...any) *Problem {
	return &Problem{ChainSeq: seq, Msg: fmt.Sprintf(format, args...)}
}

// validTime reports whether t survives the Unix-nanosecond encoding (years
// 1678..2262).
func validTime(t time.Time) bool {
	return t.Equal(time.Unix(0, t.UnixNano()))
}

// VerifyChain checks entries, a run of one chain in Seq order: each entry's
// Hash equals ComputeHash, Seqs are consecutive, each Prev equals the
// previous entry's Hash (and is zero for Seq 1), all entries share Camera
// and Stream, Kind is known, At is encodable and the counts are not
// negative. It returns nil (also for no entries) or a *Problem naming the
// first bad entry. It does not know where the chain really ends: a run cut
// short verifies; compare its last entry with a signed Head.
func VerifyChain(entries []Entry) error {
	for i := range entries {
		e := &entries[i]
		if e.ComputeHash() != e.Hash {
			return problemAt(e.Seq, "chain entry %d: hash does not match its contents (altered)", e.Seq)
		}
		if e.Seq < 1 {
			return problemAt(e.Seq, "chain entry %d: seq is less than 1", e.Seq)
		}
		if e.Seq == 1 && e.Prev != ([32]byte{}) {
			return problemAt(e.Seq, "chain entry 1: prev is not zero, but entry 1 starts the chain")
		}
		if i > 0 {
			p := &entries[i-1]
			switch {
			case e.Seq-1 == p.Seq: // both are >= 1: no overflow here
			case e.Seq-2 == p.Seq:
				return problemAt(e.Seq, "chain entry %d follows entry %d (entry %d missing)", e.Seq, p.Seq, p.Seq+1)
			case e.Seq-1 > p.Seq:
				return problemAt(e.Seq, "chain entry %d follows entry %d (entries %d to %d missing)", e.Seq, p.Seq, p.Seq+1, e.Seq-1)
			default:
				return problemAt(e.Seq, "chain entry %d follows entry %d (entries out of order or repeated)", e.Seq, p.Seq)
			}
			if e.Prev != p.Hash {
				return problemAt(e.Seq, "chain entry %d: prev does not match entry %d (one of them was altered and re-hashed)", e.Seq, p.Seq)
			}
			if e.Camera != p.Camera || e.Stream != p.Stream {
				return problemAt(e.Seq, "chain entry %d: camera %q stream %q differ from entry %d's camera %q stream %q",
					e.Seq, e.Camera, e.Stream, p.Seq, p.Camera, p.Stream)
			}
		}
		if err := checkFields(e); err != nil {
			return err
		}
	}
	return nil
}

// checkFields checks what the hash alone cannot: a known kind, an
// encodable time, counts that are not negative.
func checkFields(e *Entry) error {
	switch e.Kind {
	case KindRunStart, KindSegment, KindDeletion:
	default:
		return problemAt(e.Seq, "chain entry %d: unknown kind %q", e.Seq, e.Kind)
	}
	if !validTime(e.At) {
		return problemAt(e.Seq, "chain entry %d: time out of range", e.Seq)
	}
	if e.WallDurNS < 0 || e.Dur90k < 0 || e.Frames < 0 || e.Bytes < 0 {
		return problemAt(e.Seq, "chain entry %d: negative duration, frame count or byte count", e.Seq)
	}
	return nil
}
