package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Report is the outcome of Verify.
type Report struct {
	Entries     int    // store entries checked (all of them when OK)
	FileEntries int    // file lines checked
	Head        []byte // hash of the last good entry: the last entry when OK, entry Seq-1 otherwise (nil if none)
	OK          bool
	// Problem is the first problem found, human readable, naming where:
	// "store: entry 17: hash does not match its contents (altered)",
	// "file line 9: seq 10 follows seq 8 (entry 9 removed)",
	// "file: entry 12 differs from the store in actor (altered)",
	// "store ends at entry 40 but the file goes on to entry 41 (entries removed from the store)".
	Problem string
	Seq     int64 // seq of the first problem (0 when OK)
	// Repairs lists, for each audit_repair entry, which entries Open
	// copied from the index into the file. Copies within MaxTornTail are
	// what crashes leave; a larger one also makes the report fail, since
	// only the index vouches for the entries copied.
	Repairs []string
	// SignedSeq is the entry the signed checkpoint names that the chain
	// was found to reach (0: no checkpoint given).
	SignedSeq int64
}

// SignedHead is the audit log's head as a signed checkpoint states it
// (integrity.Checkpoint: its signature already checked by the caller).
type SignedHead struct {
	Seq      int64
	Hash     []byte
	SignedAt time.Time
}

// VerifyOptions adds to what Verify checks.
type VerifyOptions struct {
	// Signed, when set, must be in both copies: the chain must reach
	// entry Signed.Seq and its hash be Signed.Hash, so that cutting the
	// same tail off both copies is detected back to the last checkpoint.
	Signed *SignedHead
}

// defaultSettle is how long Verify waits for the file to catch up with
// the store when the file ends first: a running server writes the file
// just after the store commits.
const defaultSettle = time.Second

// Verify checks the chain in the store and in the file at path
// independently and against each other: seqs 1, 2, 3 … without holes,
// each hash matching its entry's contents and each Prev the hash of the
// entry before, and both copies holding the same entries. It stops at the
// first problem, so Problem names the earliest entry where the copies
// stop being trustworthy. A missing file counts as empty.
//
// It streams both copies (memory does not grow with the log) and may run
// while a server appends: when the file ends before the store, it waits
// up to a second for the file to catch up. It blocks on I/O, does not
// write, and is safe to call concurrently with anything. The error is
// only for I/O failures (unreadable database or file) and the context;
// everything wrong with the log's contents is in the Report.
func Verify(ctx context.Context, st Store, path string) (Report, error) {
	return verify(ctx, st, path, defaultSettle, VerifyOptions{})
}

// VerifyWith is Verify with options.
func VerifyWith(ctx context.Context, st Store, path string, opts VerifyOptions) (Report, error) {
	return verify(ctx, st, path, defaultSettle, opts)
}

func verify(ctx context.Context, st Store, path string, settle time.Duration, opts VerifyOptions) (Report, error) {
	fr, err := openFileReader(path)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	defer fr.close()
	v := &verifier{ctx: ctx, si: &storeIter{st: st}, fr: fr, settle: settle, signed: opts.Signed}
	if err := v.run(); err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	if v.rep.OK {
		v.finish()
	}
	return v.rep, nil
}

// finish applies, to a chain that verified, the checks that do not stop
// the walk: the signed head, and repairs beyond the bound.
func (v *verifier) finish() {
	if s := v.signed; s != nil && s.Seq > 0 {
		switch {
		case v.signedHash == nil:
			v.rep.OK, v.rep.Seq = false, s.Seq
			v.rep.Problem = fmt.Sprintf("the signed checkpoint of %s names entry %d, but both copies end at entry %d: %s removed from both copies",
				s.SignedAt.UTC().Format(time.RFC3339), s.Seq, v.rep.Entries, entries(int64(v.rep.Entries)+1, s.Seq))
			return
		case !bytes.Equal(v.signedHash, s.Hash):
			v.rep.OK, v.rep.Seq = false, s.Seq
			v.rep.Problem = fmt.Sprintf("entry %d differs from the one the signed checkpoint of %s names (altered and re-hashed in both copies)",
				s.Seq, s.SignedAt.UTC().Format(time.RFC3339))
			return
		}
		v.rep.SignedSeq = s.Seq
	}
	if v.badRepair != "" {
		v.rep.OK, v.rep.Problem, v.rep.Seq = false, v.badRepair, v.badRepairSeq
	}
}

// noteRepair records an audit_repair entry.
func (v *verifier) noteRepair(e *Entry) {
	d := e.Detail
	msg := fmt.Sprintf("entry %d (%s): entries %s to %s (%s) were missing from the file and copied from the index",
		e.Seq, e.Time.UTC().Format(time.RFC3339), d["from"], d["to"], d["count"])
	v.rep.Repairs = append(v.rep.Repairs, msg)
	if d["within_bound"] != "yes" && v.badRepair == "" {
		from, _ := strconv.ParseInt(d["from"], 10, 64)
		v.badRepair = fmt.Sprintf("audit_repair %s: more than a crash can leave (%d), so only the index vouches for them (the file cut or the index rewritten?)", msg, MaxTornTail)
		v.badRepairSeq = from
	}
}

type verifier struct {
	ctx    context.Context
	si     *storeIter
	fr     *fileReader
	settle time.Duration
	rep    Report
	n      int64 // the position being checked
	// Hashes of entry n-1 in each copy, and of entry n-2 in the store.
	sPrev, fPrev, sPrev2 []byte

	signed       *SignedHead
	signedHash   []byte // the hash of entry signed.Seq, once reached
	badRepair    string // the first repair beyond the bound
	badRepairSeq int64
}

// fail records the problem, found at position v.n, and sets Report.Head
// to the hash of the entry before seq (seq is v.n or v.n-1).
func (v *verifier) fail(seq int64, format string, args ...any) {
	v.rep.Problem = fmt.Sprintf(format, args...)
	v.rep.Seq = seq
	switch {
	case seq == v.n && seq > 1:
		v.rep.Head = v.sPrev
	case seq == v.n-1 && seq > 1:
		v.rep.Head = v.sPrev2
	}
}

// run checks position n = 1, 2, … of both copies in lockstep, until the
// first problem or the end of both.
func (v *verifier) run() error {
	zero := make([]byte, HashSize)
	v.sPrev, v.fPrev = zero, zero
	for v.n = 1; ; v.n++ {
		n := v.n
		if err := v.ctx.Err(); err != nil {
			return err
		}
		// The file first: a server commits to the store before it writes
		// the file, so a store read after a file read sees at least
		// what the file holds, unless an entry was removed from it.
		fl, fok, err := v.fr.next()
		if err != nil {
			return err
		}
		se, sok, err := v.si.next(v.ctx)
		if ce := (*CorruptError)(nil); errors.As(err, &ce) {
			v.fail(ce.Seq, "store: entry %d: cannot be decoded (altered): %v", ce.Seq, ce.Err)
			return nil
		}
		if err != nil {
			return err
		}
		if sok && !fok && v.fr.f != nil {
			if fok, err = v.waitFile(&fl); err != nil {
				return err
			}
		}
		switch {
		case !fok && len(v.fr.pending) > 0:
			v.fail(n, "file line %d: incomplete last line (torn write; custos serve cuts it at start)", n)
			return nil
		case !sok && !fok:
			v.rep.OK = true
			if n > 1 {
				v.rep.Head = v.sPrev
			}
			return nil
		case !sok:
			last, err := v.fr.lastSeq(n, fl)
			if err != nil {
				return err
			}
			v.fail(n, "store ends at entry %d but the file goes on to entry %d (%s removed from the store)", n-1, last, entries(n, last))
			return nil
		case !fok:
			last, ok, err := v.si.st.LastAudit(v.ctx)
			if err != nil {
				return err
			}
			if !ok || last.Seq < n {
				last.Seq = n
			}
			if v.fr.f == nil {
				v.fail(n, "file: missing, but the store has %s (file removed)", entries(1, last.Seq))
				return nil
			}
			v.fail(n, "file ends at entry %d but the store goes on to entry %d (%s removed from the file)", n-1, last.Seq, entries(n, last.Seq))
			return nil
		}
		v.rep.Entries++
		v.rep.FileEntries++
		if v.checkStore(n, &se) {
			return nil
		}
		fe, bad := v.checkFile(n, fl)
		if bad {
			return nil
		}
		if ok, field := equal(&se, &fe); !ok {
			v.fail(n, "file: entry %d differs from the store in %s (altered)", n, field)
			return nil
		}
		if se.Action == AuditRepair {
			v.noteRepair(&se)
		}
		if v.signed != nil && n == v.signed.Seq {
			v.signedHash = se.Hash
		}
		v.sPrev2, v.sPrev, v.fPrev = v.sPrev, se.Hash, fe.Hash
	}
}

// checkStore checks the store's entry at position n, reporting whether it
// found a problem.
func (v *verifier) checkStore(n int64, e *Entry) bool {
	switch {
	case e.Seq != n:
		v.fail(n, "store: seq %d follows seq %d (%s removed)", e.Seq, n-1, entries(n, e.Seq-1))
	case !bytes.Equal(e.Hash, e.ComputeHash()):
		v.fail(n, "store: entry %d: hash does not match its contents (altered)", n)
	case n == 1 && !bytes.Equal(e.Prev, v.sPrev):
		v.fail(n, "store: entry 1: prev is not zero (altered)")
	case !bytes.Equal(e.Prev, v.sPrev):
		v.fail(n-1, "store: entry %d: prev does not match the hash of entry %d (entry %d altered and re-hashed)", n, n-1, n-1)
	default:
		return false
	}
	return true
}

// checkFile parses and checks the file's line n (newline included),
// reporting whether it found a problem.
func (v *verifier) checkFile(n int64, l []byte) (Entry, bool) {
	e, err := parseLine(l[:len(l)-1])
	switch {
	case v.fr.tooLong:
		v.fail(n, "file line %d: longer than %d bytes (altered)", n, maxLine)
	case err != nil:
		v.fail(n, "file line %d: %v (altered)", n, err)
	case e.Seq > n:
		if v.fr.later(n) {
			v.fail(n, "file line %d: seq %d follows seq %d (entries out of order)", n, e.Seq, n-1)
		} else {
			v.fail(n, "file line %d: seq %d follows seq %d (%s removed)", n, e.Seq, n-1, entries(n, e.Seq-1))
		}
	case e.Seq < n:
		v.fail(n, "file line %d: seq %d follows seq %d (entries out of order, or a line inserted)", n, e.Seq, n-1)
	case !bytes.Equal(e.Hash, e.ComputeHash()):
		v.fail(n, "file line %d: entry %d: hash does not match its contents (altered)", n, n)
	case n == 1 && !bytes.Equal(e.Prev, v.fPrev):
		v.fail(n, "file line 1: prev is not zero (altered)")
	case !bytes.Equal(e.Prev, v.fPrev):
		v.fail(n-1, "file line %d: prev does not match the hash of entry %d (entry %d altered and re-hashed)", n, n-1, n-1)
	default:
		return e, false
	}
	return e, true
}

func entries(from, to int64) string {
	if from == to {
		return fmt.Sprintf("entry %d", from)
	}
	return fmt.Sprintf("entries %d to %d", from, to)
}

// waitFile waits up to v.settle for the file to grow a complete line.
func (v *verifier) waitFile(l *[]byte) (bool, error) {
	deadline := time.Now().Add(v.settle)
	for time.Now().Before(deadline) {
		select {
		case <-v.ctx.Done():
			return false, v.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		fl, ok, err := v.fr.next()
		if err != nil || ok {
			*l = fl
			return ok, err
		}
	}
	return false, nil
}

// storeIter reads the store's entries in pages.
type storeIter struct {
	st    Store
	buf   []Entry
	after int64 // seq of the last entry returned
	// slow is the seq of an undecodable entry: read one entry at a time
	// until it, so the entries before it are still checked.
	slow int64
}

func (it *storeIter) next(ctx context.Context) (Entry, bool, error) {
	if len(it.buf) == 0 {
		limit := pageSize
		if it.slow > it.after {
			limit = 1
		}
		es, err := it.st.AuditEntries(ctx, it.after, limit)
		var ce *CorruptError
		if errors.As(err, &ce) && limit > 1 && ce.Seq > it.after+1 {
			it.slow = ce.Seq
			es, err = it.st.AuditEntries(ctx, it.after, 1)
		}
		if err != nil {
			return Entry{}, false, err
		}
		if len(es) == 0 {
			return Entry{}, false, nil
		}
		it.buf = es
	}
	e := it.buf[0]
	it.buf = it.buf[1:]
	it.after = e.Seq
	return e, true, nil
}

// fileReader reads the file's lines; a line is complete when it ends with
// a newline.
type fileReader struct {
	f       *os.File // nil: the file does not exist
	r       *bufio.Reader
	pending []byte // the start of an incomplete line
	tooLong bool
}

func openFileReader(path string) (*fileReader, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &fileReader{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &fileReader{f: f, r: bufio.NewReaderSize(f, maxLine)}, nil
}

func (fr *fileReader) close() {
	if fr.f != nil {
		fr.f.Close()
	}
}

// next returns the next complete line, newline included; ok is false at
// the end of the file (fr.pending then holds any incomplete line). A line
// longer than maxLine is returned cut at maxLine bytes, which does not
// parse.
func (fr *fileReader) next() ([]byte, bool, error) {
	if fr.f == nil {
		return nil, false, nil
	}
	fr.tooLong = false
	for {
		b, err := fr.r.ReadSlice('\n')
		fr.pending = append(fr.pending, b...)
		switch {
		case err == nil || (errors.Is(err, bufio.ErrBufferFull) && len(fr.pending) >= maxLine):
			l := fr.pending
			fr.pending = nil
			if err != nil {
				l = append(l[:maxLine-1:maxLine-1], '\n')
				fr.tooLong = true
				fr.skipLine()
			}
			return l, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, false, nil
		default:
			return nil, false, err
		}
	}
}

// skipLine discards the rest of an over-long line.
func (fr *fileReader) skipLine() {
	for {
		_, err := fr.r.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// later reports whether a line further on in the file holds seq. It
// consumes the rest of the file.
func (fr *fileReader) later(seq int64) bool {
	for {
		l, ok, err := fr.next()
		if !ok || err != nil {
			return false
		}
		if e, err := parseLine(l[:len(l)-1]); err == nil && e.Seq == seq {
			return true
		}
	}
}

// lastSeq returns the seq of the file's last parsable line, l (line n)
// or a later one. It consumes the rest of the file.
func (fr *fileReader) lastSeq(n int64, l []byte) (int64, error) {
	last := n
	if e, err := parseLine(l[:len(l)-1]); err == nil {
		last = e.Seq
	}
	for {
		l, ok, err := fr.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return last, nil
		}
		if e, err := parseLine(l[:len(l)-1]); err == nil {
			last = e.Seq
		}
	}
}
