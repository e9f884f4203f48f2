package evidence

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// Journal is the second copy of every stream's chain: a plain file of
// JSON lines (chains.log beside the index), one per chain entry with the
// head signed with it, appended after the index commits. When the index
// is lost, custos check --repair rebuilds the chains from it; custos
// check compares it with the index so that entries removed from the index
// are named. It is safe for concurrent use; appends are serialised and
// each is fsynced.
type Journal struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// journalLine is one line of chains.log.
type journalLine struct {
	Seq         int64  `json:"seq"`
	Kind        string `json:"kind"`
	Camera      string `json:"camera"`
	Stream      string `json:"stream"`
	At          string `json:"at"`
	Key         string `json:"key,omitempty"`
	WallDurNS   int64  `json:"wall_dur_ns,omitempty"`
	Dur90k      int64  `json:"dur90k,omitempty"`
	Frames      int64  `json:"frames,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	SegmentHash string `json:"segment_hash"`
	InitHash    string `json:"init_hash"`
	Reason      string `json:"reason,omitempty"`
	Prev        string `json:"prev"`
	Hash        string `json:"hash"`
	SignedAt    string `json:"signed_at,omitempty"`
	Signature   string `json:"signature,omitempty"`
}

// JournalEntry is one entry read back from the journal.
type JournalEntry struct {
	Entry integrity.Entry
	Head  *integrity.Head // nil when the entry was not signed
	Line  int             // 1-based line of the file
}

// OpenJournal opens (creating, mode 0600) the journal at path and cuts a
// torn last line (what a crash during a write leaves). It does I/O.
func OpenJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open chain journal: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 {
		// Find the last line end and cut what follows it.
		n := min(fi.Size(), 1<<20)
		buf := make([]byte, n)
		if _, err = f.ReadAt(buf, fi.Size()-n); err == nil || errors.Is(err, io.EOF) {
			err = nil
			end := bytes.LastIndexByte(buf, '\n') + 1
			if keep := fi.Size() - n + int64(end); keep < fi.Size() && (end > 0 || n == fi.Size()) {
				err = f.Truncate(keep)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open chain journal %s: %w", path, err)
	}
	return &Journal{path: path, f: f}, nil
}

// Seed fills an empty journal with every chain entry the index holds:
// what the first start of a version with a journal does, so that chains
// recorded before it can be rebuilt too. The journal must be empty (an
// error otherwise) and nothing may append meanwhile. It writes all lines,
// then fsyncs once, and returns how many it wrote.
func (j *Journal) Seed(ctx context.Context, idx JournalSource) (n int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fi, err := j.f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != 0 {
		return 0, fmt.Errorf("chain journal %s is not empty: not seeding it", j.path)
	}
	// A seed cut short leaves the journal empty, not partial: a later
	// start seeds again (it seeds only an absent journal with no
	// checkpoint, so a partial one would stay partial for good).
	defer func() {
		if err != nil {
			j.f.Truncate(0)
		}
	}()
	streams, err := idx.Streams(ctx)
	if err != nil {
		return 0, fmt.Errorf("seed chain journal: %w", err)
	}
	w := bufio.NewWriterSize(j.f, 1<<20)
	for _, st := range streams {
		for after := int64(0); ; {
			es, hs, err := idx.ChainEntries(ctx, st.ID, after, 1000)
			if err != nil {
				return n, fmt.Errorf("seed chain journal: %w", err)
			}
			if len(es) == 0 {
				break
			}
			for i := range es {
				b, err := journalBytes(es[i], hs[i])
				if err != nil {
					return n, err
				}
				if _, err := w.Write(b); err != nil {
					return n, fmt.Errorf("seed chain journal %s: %w", j.path, err)
				}
				n++
			}
			after = es[len(es)-1].Seq
		}
	}
	err = w.Flush()
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		j.f.Truncate(0)
		return 0, fmt.Errorf("seed chain journal %s: %w", j.path, err)
	}
	return n, nil
}

// journalBytes is e's line, newline included.
func journalBytes(e integrity.Entry, h *integrity.Head) ([]byte, error) {
	l := journalLine{Seq: e.Seq, Kind: e.Kind, Camera: e.Camera, Stream: e.Stream, At: e.At.UTC().Format(time.RFC3339Nano),
		Key: e.Key, WallDurNS: e.WallDurNS, Dur90k: e.Dur90k, Frames: e.Frames, Bytes: e.Bytes,
		SegmentHash: hex.EncodeToString(e.SegmentHash[:]), InitHash: hex.EncodeToString(e.InitHash[:]),
		Reason: e.Reason, Prev: hex.EncodeToString(e.Prev[:]), Hash: hex.EncodeToString(e.Hash[:])}
	if h != nil {
		l.SignedAt, l.Signature = h.SignedAt.UTC().Format(time.RFC3339Nano), hex.EncodeToString(h.Signature)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Append writes e (and the head signed with it, if any) as one line and
// fsyncs. It blocks on I/O.
func (j *Journal) Append(e integrity.Entry, h *integrity.Head) error {
	b, err := journalBytes(e, h)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("chain journal closed")
	}
	fi, err := j.f.Stat()
	if err == nil {
		_, err = j.f.WriteAt(b, fi.Size())
	}
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		if fi != nil {
			j.f.Truncate(fi.Size())
		}
		return fmt.Errorf("chain journal %s: entry %d of %s/%s: %w", j.path, e.Seq, e.Camera, e.Stream, err)
	}
	return nil
}

// Close closes the file; later appends fail.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// ReadJournal reads the journal at path into each stream's entries
// ("camera/stream" → entries in file order). A torn last line is ignored;
// any other line that does not parse is an error naming it. It does not
// verify the chains (integrity.VerifyChain does). A missing file is an
// error wrapping os.ErrNotExist.
func ReadJournal(path string) (map[string][]JournalEntry, error) {
	return ReadJournalAfter(path, nil)
}

// ReadJournalAfter is ReadJournal keeping, of each stream's entries, only
// its last one and those with a seq above after["camera/stream"] (nil:
// all), so that memory follows what is compared, not the file's size. It
// reads the whole file, streaming.
func ReadJournalAfter(path string, after map[string]int64) (map[string][]JournalEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]JournalEntry{}
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, nil // a torn last line, or none
		}
		if err != nil {
			return nil, fmt.Errorf("chain journal %s: %w", path, err)
		}
		je, err := parseJournalLine(b)
		if err != nil {
			return nil, fmt.Errorf("chain journal %s line %d: %w", path, line, err)
		}
		je.Line = line
		k := je.Entry.Camera + "/" + je.Entry.Stream
		jl := out[k]
		if after != nil && len(jl) > 0 && jl[len(jl)-1].Entry.Seq <= after[k] {
			jl = jl[:len(jl)-1] // only kept as the last one so far
		}
		out[k] = append(jl, je)
	}
}

func parseJournalLine(b []byte) (JournalEntry, error) {
	var l journalLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return JournalEntry{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, l.At)
	if err != nil {
		return JournalEntry{}, fmt.Errorf("at: %w", err)
	}
	e := integrity.Entry{Seq: l.Seq, Kind: l.Kind, Camera: l.Camera, Stream: l.Stream, At: at.UTC(), Key: l.Key,
		WallDurNS: l.WallDurNS, Dur90k: l.Dur90k, Frames: l.Frames, Bytes: l.Bytes, Reason: l.Reason}
	for _, h := range []struct {
		name string
		s    string
		out  *[32]byte
	}{{"segment_hash", l.SegmentHash, &e.SegmentHash}, {"init_hash", l.InitHash, &e.InitHash}, {"prev", l.Prev, &e.Prev}, {"hash", l.Hash, &e.Hash}} {
		v, err := hex.DecodeString(h.s)
		if err != nil || len(v) != integrity.HashSize {
			return JournalEntry{}, fmt.Errorf("%s: not 64 hex digits", h.name)
		}
		copy(h.out[:], v)
	}
	je := JournalEntry{Entry: e}
	if l.Signature != "" {
		t, err := time.Parse(time.RFC3339Nano, l.SignedAt)
		if err != nil {
			return JournalEntry{}, fmt.Errorf("signed_at: %w", err)
		}
		sig, err := hex.DecodeString(l.Signature)
		if err != nil {
			return JournalEntry{}, fmt.Errorf("signature: %w", err)
		}
		je.Head = &integrity.Head{Camera: e.Camera, Stream: e.Stream, Seq: e.Seq, Hash: e.Hash, SignedAt: t.UTC(), Signature: sig}
	}
	return je, nil
}

// JournalSource is what CatchUp reads from the index (sqlite.Store).
type JournalSource interface {
	Streams(ctx context.Context) ([]store.Stream, error)
	LastChainEntry(ctx context.Context, streamID int64) (integrity.Entry, bool, error)
	ChainEntries(ctx context.Context, streamID, afterSeq int64, limit int) ([]integrity.Entry, []*integrity.Head, error)
}

// MaxJournalLag is how many entries of one stream a crash can leave in
// the index but not in the journal (one: appends to a stream are
// serialised; one more for safety). CatchUp copies no more than that.
const MaxJournalLag = 2

// journalTail is how much of the journal's end CatchUp reads to find
// each stream's last entry; a stream not seen there was idle and is left
// alone.
const journalTail = 4 << 20

// CatchUp, at start before anything appends, copies to the journal the
// entries that a crash left in the index only: for each stream whose last
// journal line (within the file's last 4 MiB) is at most MaxJournalLag
// entries behind the index and links to it. A larger gap is not copied
// (that would make an index rewrite look like the journal's own record):
// it is logged at error and custos check names it. It returns how many
// entries it copied. It does I/O and blocks.
func (j *Journal) CatchUp(ctx context.Context, idx JournalSource, log *slog.Logger) (int, error) {
	last, err := j.tailSeqs()
	if err != nil {
		return 0, err
	}
	streams, err := idx.Streams(ctx)
	if err != nil {
		return 0, fmt.Errorf("chain journal catch-up: %w", err)
	}
	copied := 0
	for _, st := range streams {
		je, ok := last[st.Camera+"/"+st.Name]
		if !ok {
			continue
		}
		ie, ok, err := idx.LastChainEntry(ctx, st.ID)
		if err != nil {
			return copied, fmt.Errorf("chain journal catch-up: %w", err)
		}
		if !ok || ie.Seq <= je.Seq {
			continue
		}
		if ie.Seq-je.Seq > MaxJournalLag {
			log.Error("chain journal: the index has more entries than a crash can leave unjournaled; not copying them (run custos check)",
				"camera", st.Camera, "stream", st.Name, "journal_seq", je.Seq, "index_seq", ie.Seq)
			continue
		}
		es, hs, err := idx.ChainEntries(ctx, st.ID, je.Seq, MaxJournalLag)
		if err != nil {
			return copied, fmt.Errorf("chain journal catch-up: %w", err)
		}
		if len(es) == 0 || es[0].Prev != je.Hash {
			log.Error("chain journal: the index's next entry does not follow the journal's last; not copying (run custos check)",
				"camera", st.Camera, "stream", st.Name, "journal_seq", je.Seq)
			continue
		}
		for i := range es {
			if err := j.Append(es[i], hs[i]); err != nil {
				return copied, err
			}
			copied++
		}
		log.Warn("chain journal: copied entries a crash left in the index only", "camera", st.Camera, "stream", st.Name,
			"from_seq", es[0].Seq, "to_seq", es[len(es)-1].Seq)
	}
	return copied, nil
}

// tailSeqs returns each stream's last entry among the journal's last
// journalTail bytes.
func (j *Journal) tailSeqs() (map[string]integrity.Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fi, err := j.f.Stat()
	if err != nil {
		return nil, err
	}
	n := min(fi.Size(), journalTail)
	buf := make([]byte, n)
	if _, err := j.f.ReadAt(buf, fi.Size()-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read chain journal %s: %w", j.path, err)
	}
	if n < fi.Size() {
		// Skip the partial first line.
		buf = buf[bytes.IndexByte(buf, '\n')+1:]
	}
	out := map[string]integrity.Entry{}
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if je, err := parseJournalLine(buf[:i+1]); err == nil {
			out[je.Entry.Camera+"/"+je.Entry.Stream] = je.Entry
		}
		buf = buf[i+1:]
	}
	return out, nil
}
