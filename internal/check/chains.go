package check

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"

	"github.com/custos-nvr/custos/internal/evidence"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/store"
)

// ChainStore is what RestoreChains writes (sqlite.Store).
type ChainStore interface {
	Stream(ctx context.Context, camera, name string) (store.Stream, error)
	AppendChain(ctx context.Context, streamID int64, build func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error)) (integrity.Entry, error)
	LastChainEntry(ctx context.Context, streamID int64) (integrity.Entry, bool, error)
}

// ChainRestore says what RestoreChains did, stream by stream.
type ChainRestore struct {
	Entries int // entries copied into the index
	Streams int // streams whose chain was restored
	// Problems say exactly why a stream's chain, or its end, was not
	// restored ("door/main: chains.log line 17: …"); its segments after
	// that point have no chain entry and cannot be exported as evidence.
	Problems []string
}

// trustedJournal returns, for each stream, the prefix of its journal
// entries that can be trusted: starting at entry 1, consecutive, each
// hash matching its contents and each prev the hash before, every head
// signature verifying with pub (when pub is set). The reasons for what
// was cut are in problems.
func trustedJournal(journal map[string][]evidence.JournalEntry, pub ed25519.PublicKey) (map[string][]evidence.JournalEntry, []string) {
	out := map[string][]evidence.JournalEntry{}
	var problems []string
	names := make([]string, 0, len(journal))
	for k := range journal {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		jl := journal[name]
		if len(jl) == 0 {
			continue
		}
		if jl[0].Entry.Seq != 1 {
			problems = append(problems, fmt.Sprintf("%s: chains.log starts at entry %d (line %d), not 1: the journal began after the chain did (an older version recorded the first entries), so the chain cannot be rebuilt from it",
				name, jl[0].Entry.Seq, jl[0].Line))
			continue
		}
		es := make([]integrity.Entry, len(jl))
		for i := range jl {
			es[i] = jl[i].Entry
		}
		n := len(jl)
		if err := integrity.VerifyChain(es); err != nil {
			p, _ := err.(*integrity.Problem)
			cut := n
			for i := range es {
				if p != nil && es[i].Seq == p.ChainSeq {
					cut = i
					break
				}
			}
			line := 0
			if cut < n {
				line = jl[cut].Line
			}
			problems = append(problems, fmt.Sprintf("%s: chains.log line %d: %v: entries from there on cannot be trusted and were not restored", name, line, err))
			n = cut
		}
		for i := 0; i < n && pub != nil; i++ {
			if h := jl[i].Head; h != nil {
				if err := integrity.VerifyHead(pub, h); err != nil {
					problems = append(problems, fmt.Sprintf("%s: chains.log line %d: the head signed at entry %d does not verify with the node key (%v): entries from there on were not restored", name, jl[i].Line, h.Seq, err))
					n = i
					break
				}
			}
		}
		// Entries after the last signed head are kept: like the live
		// chain's, they are covered by the checkpoint, not by a head.
		if n > 0 {
			out[name] = jl[:n]
		}
	}
	return out, problems
}

// RestoreChains copies the trusted part of the chain journal into an
// index whose chains were lost with it (check --repair after the index
// was deleted). Streams whose chain the index already has (carried over
// from the old index) are left alone. The files are compared with the
// restored entries afterwards, by evidence.VerifyStored. It does I/O and
// blocks.
func RestoreChains(ctx context.Context, idx ChainStore, journal map[string][]evidence.JournalEntry, pub ed25519.PublicKey) (*ChainRestore, error) {
	rep := &ChainRestore{}
	trusted, problems := trustedJournal(journal, pub)
	rep.Problems = problems
	names := make([]string, 0, len(trusted))
	for k := range trusted {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		jl := trusted[name]
		e0 := jl[0].Entry
		st, err := idx.Stream(ctx, e0.Camera, e0.Stream)
		if err != nil {
			return rep, fmt.Errorf("restore chain of %s: %w", name, err)
		}
		if _, ok, err := idx.LastChainEntry(ctx, st.ID); err != nil {
			return rep, fmt.Errorf("restore chain of %s: %w", name, err)
		} else if ok {
			continue
		}
		for i := range jl {
			je := jl[i]
			_, err := idx.AppendChain(ctx, st.ID, func(last *integrity.Entry) (integrity.Entry, *integrity.Head, error) {
				if (last == nil && je.Entry.Seq != 1) || (last != nil && last.Seq+1 != je.Entry.Seq) {
					return integrity.Entry{}, nil, fmt.Errorf("entry %d does not follow the index's chain", je.Entry.Seq)
				}
				return je.Entry, je.Head, nil
			})
			if err != nil {
				return rep, fmt.Errorf("restore chain of %s: %w", name, err)
			}
			rep.Entries++
		}
		rep.Streams++
	}
	return rep, nil
}

// journalSegments maps each disk-relative key to the newest trusted
// segment entry the journal holds for it.
func journalSegments(trusted map[string][]evidence.JournalEntry) map[string]integrity.Entry {
	out := map[string]integrity.Entry{}
	for _, jl := range trusted {
		for _, je := range jl {
			if je.Entry.Kind == integrity.KindSegment {
				out[je.Entry.Camera+"/"+je.Entry.Stream+"\x00"+je.Entry.Key] = je.Entry
			}
		}
	}
	return out
}
