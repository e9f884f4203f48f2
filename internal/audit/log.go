package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MaxTornTail is how many entries the file may lack behind the store for
// Open to treat the gap as what crashes leave (a writer commits to the
// store, then writes the file; each concurrent writer can leave one). A
// larger gap is still copied, so that the file stays complete, but it is
// logged at error and recorded as not within the bound, and Verify then
// reports those entries as vouched for by the index alone.
const MaxTornTail = 8

// pageSize is how many entries are read from the store at a time when
// the file is caught up or verified.
const pageSize = 1000

// Log appends entries to the store and, after the store commits, as a
// JSON line to a plain file beside it. It is safe for concurrent use;
// appends are serialised.
type Log struct {
	st   Store
	path string
	now  func() time.Time

	mu       sync.Mutex
	f        *os.File // nil after Close
	size     int64    // offset just past the file's last complete line
	fileSeq  int64    // seq of the file's last line (0: empty)
	lastSeq  int64    // seq of the store's last entry
	lastHash []byte   // its hash (zero hash when empty)
	// ownFrom..ownTo are entries this Log stored but could not write
	// to the file (0: none).
	ownFrom, ownTo int64

	log *slog.Logger
}

// Options tunes Open.
type Options struct {
	// Logger receives the repair warnings (nil: discarded).
	Logger *slog.Logger
}

// Open opens (creating, mode 0600) the file at path, checks the tail of
// the file against the store and repairs what a crash can leave: a torn
// last line is cut off; entries present in the store but missing at the
// file's end are re-appended from the store (and fsynced), and the copy is
// recorded as an AuditRepair entry naming the entries, logged at warn
// when at most MaxTornTail entries were missing and at error (with
// within_bound "no", which Verify reports) otherwise. It does not
// silently fix anything else, and then changes nothing: a last line that
// does not parse or differs from the store's entry of the same seq, or a
// file that goes past the store's last entry, is an error naming the seq
// (the operator then runs "custos audit verify"). Only the file's tail is
// read; the rest of the chain is Verify's job.
//
// Several Logs may write the same file and store, in this process or
// others (custos user while custos serve runs): each append holds an
// exclusive lock on the file (flock, where the system has it), rereads
// the store's head and the file's tail, and so keeps one chain in one
// order. now is the clock (nil: time.Now). Open
// does I/O and blocks; the caller keeps ownership of st (Close does not
// close it).
func Open(ctx context.Context, st Store, path string, now func() time.Time) (*Log, error) {
	return OpenWith(ctx, st, path, now, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, st Store, path string, now func() time.Time, opts Options) (*Log, error) {
	if now == nil {
		now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	l := &Log{st: st, path: path, now: now, f: f, log: opts.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	from, to, err := l.open(ctx)
	if uerr := unlockFile(f); err == nil {
		err = uerr
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	if to >= from {
		if err := l.recordRepair(ctx, from, to); err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit log %s: %w", path, err)
		}
	}
	return l, nil
}

// recordRepair logs and records that entries from..to were copied from
// the store into the file.
func (l *Log) recordRepair(ctx context.Context, from, to int64) error {
	n := to - from + 1
	within := n <= MaxTornTail
	args := []any{"path", l.path, "from_seq", from, "to_seq", to, "count", n}
	if within {
		l.log.Warn("audit log: copied entries a crash left in the index only into the file", args...)
	} else {
		l.log.Error("audit log: the file lacked more entries than a crash can leave; copied them from the index, recorded as an audit_repair entry (run custos audit verify)", args...)
	}
	_, err := l.Append(ctx, l.repairEntry(from, to))
	return err
}

// repairEntry is the AuditRepair entry for a copy of entries from..to
// from the store into the file.
func (l *Log) repairEntry(from, to int64) Entry {
	n := to - from + 1
	yn := "yes"
	if n > MaxTornTail {
		yn = "no"
	}
	return Entry{Action: AuditRepair, Addr: "local", Result: ResultOK, Detail: map[string]string{
		"from": strconv.FormatInt(from, 10), "to": strconv.FormatInt(to, 10), "count": strconv.FormatInt(n, 10),
		"within_bound": yn, "copied": "index to audit.log"}}
}

// open checks and repairs the file's tail; from..to are the entries it
// copied from the store (to < from: none).
func (l *Log) open(ctx context.Context) (from, to int64, err error) {
	// The file may just have been created: make its name durable.
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		return 0, -1, err
	}
	last, torn, err := l.readTail()
	if err != nil {
		return 0, -1, err
	}
	if err := l.resync(ctx); err != nil {
		return 0, -1, err
	}
	if last == nil {
		l.fileSeq = 0
	} else {
		l.fileSeq = last.Seq
		if last.Seq > l.lastSeq {
			return 0, -1, fmt.Errorf("the file has entry %d but the store ends at entry %d (entries removed from the store?); run 'custos audit verify'", last.Seq, l.lastSeq)
		}
		es, err := l.st.AuditEntries(ctx, last.Seq-1, 1)
		if err != nil {
			return 0, -1, fmt.Errorf("read entry %d from the store: %w", last.Seq, err)
		}
		if len(es) == 0 || es[0].Seq != last.Seq {
			return 0, -1, fmt.Errorf("the file's last entry %d is missing from the store; run 'custos audit verify'", last.Seq)
		}
		if ok, field := equal(&es[0], last); !ok {
			return 0, -1, fmt.Errorf("the file's last entry %d differs from the store in %s (altered?); run 'custos audit verify'", last.Seq, field)
		}
	}
	if torn > 0 {
		// What a crash in the middle of a write leaves.
		if err := l.f.Truncate(l.size); err != nil {
			return 0, -1, fmt.Errorf("cut a torn last line: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return 0, -1, fmt.Errorf("cut a torn last line: %w", err)
		}
	}
	from, to = l.fileSeq+1, l.lastSeq
	if err := l.catchUp(ctx, l.lastSeq); err != nil {
		return 0, -1, err
	}
	return from, to, nil
}

// readTail finds the file's last complete line: it returns the line
// parsed (nil for a file without one) and the length of the torn line
// after it, and sets l.size to the offset just past the line.
func (l *Log) readTail() (*Entry, int64, error) {
	fi, err := l.f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	n := min(size, 2*maxLine)
	buf := make([]byte, n)
	if _, err := l.f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("read the file's tail: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1 // 0: no complete line in buf
	if end == 0 && n < size {
		return nil, 0, fmt.Errorf("the file's last %d bytes hold no line end (not an audit log?)", n)
	}
	torn := int64(len(buf) - end)
	l.size = size - torn
	if end == 0 {
		return nil, torn, nil
	}
	body := buf[:end-1]
	start := bytes.LastIndexByte(body, '\n') + 1
	if start == 0 && n < size {
		return nil, 0, fmt.Errorf("the file's last line is longer than %d bytes (altered?); run 'custos audit verify'", maxLine)
	}
	e, err := parseLine(body[start:])
	if err != nil {
		return nil, 0, fmt.Errorf("the file's last line: %w (altered?); run 'custos audit verify'", err)
	}
	return &e, torn, nil
}

// syncOthers, under the file lock, takes in what other writers appended
// since this Log's last append: the store's head always (one indexed
// read), the file's tail when its size moved (cutting a torn line a
// crashed writer left).
func (l *Log) syncOthers(ctx context.Context) error {
	if err := l.resync(ctx); err != nil {
		return err
	}
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("stat audit file: %w", err)
	}
	if fi.Size() == l.size {
		return nil
	}
	last, torn, err := l.readTail()
	if err != nil {
		return err
	}
	l.fileSeq = 0
	if last != nil {
		l.fileSeq = last.Seq
	}
	if l.fileSeq > l.lastSeq {
		return fmt.Errorf("the file has entry %d but the store ends at entry %d; run 'custos audit verify'", l.fileSeq, l.lastSeq)
	}
	if torn > 0 {
		if err := l.f.Truncate(l.size); err != nil {
			return fmt.Errorf("cut a torn last line: %w", err)
		}
	}
	return nil
}

// resync reads the store's last entry into lastSeq and lastHash.
func (l *Log) resync(ctx context.Context) error {
	e, ok, err := l.st.LastAudit(ctx)
	if err != nil {
		return fmt.Errorf("read the last entry from the store: %w", err)
	}
	if !ok {
		l.lastSeq, l.lastHash = 0, make([]byte, HashSize)
	} else {
		l.lastSeq, l.lastHash = e.Seq, e.Hash
	}
	return nil
}

// catchUp appends the store's entries after l.fileSeq up to seq to the
// file and fsyncs it.
func (l *Log) catchUp(ctx context.Context, seq int64) error {
	for l.fileSeq < seq {
		es, err := l.st.AuditEntries(ctx, l.fileSeq, min(pageSize, int(seq-l.fileSeq)))
		if err != nil {
			return fmt.Errorf("read entries after %d from the store: %w", l.fileSeq, err)
		}
		if len(es) == 0 {
			return fmt.Errorf("the store lacks entries %d to %d", l.fileSeq+1, seq)
		}
		var buf []byte
		for i := range es {
			if es[i].Seq != l.fileSeq+int64(i)+1 {
				return fmt.Errorf("the store lacks entry %d; run 'custos audit verify'", l.fileSeq+int64(i)+1)
			}
			b, err := encodeLine(&es[i])
			if err != nil {
				return fmt.Errorf("encode entry %d: %w", es[i].Seq, err)
			}
			buf = append(buf, b...)
		}
		if err := l.writeFile(buf); err != nil {
			return err
		}
		l.fileSeq = es[len(es)-1].Seq
	}
	return nil
}

// writeFile appends b at l.size and fsyncs. On failure it cuts the file
// back to l.size (best effort) so that no partial line stays behind.
func (l *Log) writeFile(b []byte) error {
	_, err := l.f.WriteAt(b, l.size)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		l.f.Truncate(l.size)
		return fmt.Errorf("write audit file %s: %w", l.path, err)
	}
	l.size += int64(len(b))
	return nil
}

// Append fills e's Seq, Time (from the clock, truncated to what the
// store keeps), Prev and Hash, writes the entry to the store, then to the
// file (write and fsync), and returns it. It blocks on I/O and is safe for
// concurrent use (appends are serialised, so Seq order is Append order).
// Action and Result must be one of the constants and strings valid UTF-8.
//
// If the store fails, the entry is not written anywhere and the error is
// returned; callers deny the action when Append fails. If the store
// commits but the file write fails, the entry is returned with the error
// (it is on record in the store) and the next Append, or Open, writes it
// to the file. After Close it returns an error.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if err := validate(&e); err != nil {
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	} else {
		e.Detail = maps.Clone(e.Detail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Entry{}, fmt.Errorf("audit %s: log closed", e.Action)
	}
	if err := lockFile(l.f); err != nil {
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	defer unlockFile(l.f)
	if err := l.syncOthers(ctx); err != nil {
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if l.fileSeq < l.lastSeq && !(l.ownFrom == l.fileSeq+1 && l.ownTo == l.lastSeq) {
		// Entries another writer put in the store but not the file: the
		// same copy Open makes, recorded the same way.
		from, to := l.fileSeq+1, l.lastSeq
		if err := l.catchUp(context.WithoutCancel(ctx), to); err != nil {
			return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
		}
		if _, err := l.put(ctx, l.repairEntry(from, to)); err != nil {
			return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
		}
	}
	return l.put(ctx, e)
}

// put appends e (validated) to the store, then the file, with l.mu and
// the file lock held and the store's head read.
func (l *Log) put(ctx context.Context, e Entry) (Entry, error) {
	e.Seq = l.lastSeq + 1
	e.Time = time.Unix(0, l.now().UnixNano()).UTC()
	e.Prev = slices.Clone(l.lastHash)
	e.Hash = e.ComputeHash()
	b, err := encodeLine(&e)
	if err != nil {
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if len(b) > maxLine {
		return Entry{}, fmt.Errorf("audit %s: entry of %d bytes is over the limit of %d", e.Action, len(b), maxLine)
	}
	if err := l.st.AppendAudit(ctx, e); err != nil {
		// The commit may have happened all the same (a context ended
		// during it): the next append rereads the store's head anyway,
		// and writes the entry to the file as this Log's own.
		l.owe(e.Seq)
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	l.lastSeq, l.lastHash = e.Seq, e.Hash
	// The entry is on record: finish the file whatever ctx says.
	fctx := context.WithoutCancel(ctx)
	if l.fileSeq != e.Seq-1 {
		if err := l.catchUp(fctx, e.Seq-1); err != nil {
			l.owe(e.Seq)
			return e, fmt.Errorf("audit %s: entry %d is in the store but not the file: %w", e.Action, e.Seq, err)
		}
	}
	if err := l.writeFile(b); err != nil {
		l.owe(e.Seq)
		return e, fmt.Errorf("audit %s: entry %d is in the store but not the file: %w", e.Action, e.Seq, err)
	}
	l.fileSeq = e.Seq
	l.ownFrom, l.ownTo = 0, 0
	return e, nil
}

// owe notes that this Log stored entry seq but could not write it to
// the file: the next append writes it without an audit_repair entry.
func (l *Log) owe(seq int64) {
	if l.ownFrom == 0 || l.ownFrom <= l.fileSeq {
		l.ownFrom = seq
	}
	l.ownTo = seq
}

// Query returns the entries matching f, newest first, from the store
// (the file is not read). It does not itself record an AuditRead entry;
// the caller does. It blocks on I/O and is safe for concurrent use.
func (l *Log) Query(ctx context.Context, f Filter) ([]Entry, error) {
	es, err := l.st.QueryAudit(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	return es, nil
}

// Close closes the file (every appended line is already fsynced). It does
// not close the store. Appends after Close fail; a second Close is a
// no-op. It is safe for concurrent use.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("close audit log %s: %w", l.path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that entries created in it survive a
// power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
