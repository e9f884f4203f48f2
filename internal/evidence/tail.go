package evidence

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// compareTail checks that the stream's chain in the index reaches the
// entry the signed checkpoint names, and every entry the journal holds:
// entries removed from the index's end (with their segments' rows and
// files) leave both pointing past it.
func compareTail(st store.Stream, w *chainWalk, cp *integrity.Checkpoint, jl []JournalEntry, rep *StoredReport) {
	name := st.Camera + "/" + st.Name
	var lastSeq int64
	if w.last != nil {
		lastSeq = w.last.Seq
	}
	if cp != nil {
		if h, ok := cp.Stream(st.Camera, st.Name); ok {
			switch {
			case !w.ok:
				// verifyChain named the break; the end cannot be trusted.
			case lastSeq < h.Seq:
				rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s: the checkpoint signed at %s names entry %d, but the chain ends at entry %d: signed head seq %d is missing: the newest entries were removed%s",
					name, cp.SignedAt.Format(time.RFC3339), h.Seq, lastSeq, h.Seq, describeRemoved(jl, lastSeq, h.Seq)))
			case w.at[h.Seq] != h.Hash:
				rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s: entry %d differs from the one the checkpoint signed at %s names (altered and re-hashed)",
					name, h.Seq, cp.SignedAt.Format(time.RFC3339)))
			}
		}
	}
	if len(jl) == 0 || !w.ok {
		return
	}
	j := jl[len(jl)-1].Entry
	switch {
	case j.Seq > lastSeq:
		rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s: chains.log goes on to entry %d, but the index ends at entry %d: entries removed from the index%s",
			name, j.Seq, lastSeq, describeRemoved(jl, lastSeq, j.Seq)))
	case w.at[j.Seq] != j.Hash:
		rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s: entry %d in the index differs from chains.log line %d (one of them altered)",
			name, j.Seq, jl[len(jl)-1].Line))
	}
}

// describeRemoved says what the journal knows of entries after..upto:
// their time range and the segments they listed.
func describeRemoved(jl []JournalEntry, after, upto int64) string {
	var from, to time.Time
	var keys []string
	n := 0
	for _, je := range jl {
		e := je.Entry
		if e.Seq <= after || e.Seq > upto {
			continue
		}
		n++
		end := e.At.Add(time.Duration(e.WallDurNS))
		if from.IsZero() || e.At.Before(from) {
			from = e.At
		}
		if end.After(to) {
			to = end
		}
		if e.Kind == integrity.KindSegment {
			keys = append(keys, e.Key)
		}
	}
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf(" (chains.log: entries %d to %d, %s to %s", after+1, upto, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	if len(keys) > 0 {
		if len(keys) > 5 {
			keys = append(keys[:5], "…")
		}
		s += ", segments " + strings.Join(keys, ", ")
	}
	return s + ")"
}

// missingRows names the segments the chain lists as recorded and not
// deleted that have no index row: removed without a deletion entry.
func missingRows(st store.Stream, live map[string]integrity.Entry, rows map[string]bool, rep *StoredReport) {
	var gone []integrity.Entry
	for k, e := range live {
		if !rows[k] {
			gone = append(gone, e)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Seq < gone[j].Seq })
	for _, e := range gone {
		rep.Problems = append(rep.Problems, fmt.Sprintf("chain of %s/%s: entry %d records segment %s (%s to %s), but the index has no row for it and the chain no deletion (removed)",
			st.Camera, st.Name, e.Seq, e.Key, e.At.UTC().Format(time.RFC3339), e.At.Add(time.Duration(e.WallDurNS)).UTC().Format(time.RFC3339)))
	}
}
