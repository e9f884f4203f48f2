package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
)

// Restore copies the entries of the file at path into st, whose audit
// log must be empty: what check --repair does when the index was lost and
// rebuilt from the recordings. The file's chain is checked on its own
// first (each line parses, seqs run 1, 2, 3 …, each prev is the hash
// before, each hash matches its contents); a file that fails is not
// copied and the error names the line. A missing file restores nothing.
// It does I/O and blocks; it returns how many entries it copied.
func Restore(ctx context.Context, st Store, path string) (int, error) {
	if _, ok, err := st.LastAudit(ctx); err != nil {
		return 0, fmt.Errorf("restore audit log: %w", err)
	} else if ok {
		return 0, errors.New("restore audit log: the index already has audit entries")
	}
	entries, err := readChain(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("restore audit log from %s: %w", path, err)
	}
	for i := range entries {
		if err := st.AppendAudit(ctx, entries[i]); err != nil {
			return i, fmt.Errorf("restore audit log: entry %d: %w", entries[i].Seq, err)
		}
	}
	return len(entries), nil
}

// readChain reads and checks every complete line of the file (a torn
// last line, which a crash can leave, is ignored), with Verify's reader.
func readChain(path string) ([]Entry, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	fr, err := openFileReader(path)
	if err != nil {
		return nil, err
	}
	defer fr.close()
	var out []Entry
	prev := make([]byte, HashSize)
	for line := 1; ; line++ {
		l, ok, err := fr.next()
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if !ok {
			return out, nil
		}
		if fr.tooLong {
			return nil, fmt.Errorf("line %d is longer than %d bytes", line, maxLine)
		}
		e, err := parseLine(l[:len(l)-1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		switch {
		case e.Seq != int64(line):
			return nil, fmt.Errorf("line %d holds entry %d (removed or reordered)", line, e.Seq)
		case !bytes.Equal(e.Prev, prev):
			return nil, fmt.Errorf("line %d: entry %d does not follow the one before (altered)", line, e.Seq)
		case !bytes.Equal(e.ComputeHash(), e.Hash):
			return nil, fmt.Errorf("line %d: entry %d's hash does not match its contents (altered)", line, e.Seq)
		}
		prev = e.Hash
		out = append(out, e)
	}
}
