package reorder

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/pion/rtp"
)

func pk(seq uint16) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}
}

// run pushes seqs and returns the sequence numbers popped after each push
// (flattened) and after a final Flush when flush is set.
func run(b *Buffer, seqs []uint16, flush bool) []uint16 {
	var out []uint16
	pop := func() {
		for {
			p, ok := b.Pop()
			if !ok {
				return
			}
			out = append(out, p.SequenceNumber)
		}
	}
	for _, s := range seqs {
		b.Push(pk(s))
		pop()
	}
	if flush {
		b.Flush()
		pop()
	}
	return out
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name    string
		window  int
		in      []uint16
		flush   bool
		want    []uint16
		dropped uint64
		resets  uint64
	}{
		{"in order", 4, []uint16{1, 2, 3, 4, 5}, false, []uint16{1, 2, 3, 4, 5}, 0, 0},
		{"swap", 4, []uint16{1, 3, 2, 4}, false, []uint16{1, 2, 3, 4}, 0, 0},
		{"duplicates", 4, []uint16{1, 1, 3, 3, 2, 2}, false, []uint16{1, 2, 3}, 3, 0},
		{"late packet dropped", 2, []uint16{1, 3, 4, 2, 5}, false, []uint16{1, 3, 4, 5}, 1, 0},
		{"held until a full window ahead", 3, []uint16{1, 3, 4}, false, []uint16{1}, 0, 0},
		{"window full releases past the gap", 3, []uint16{1, 3, 4, 5}, false, []uint16{1, 3, 4, 5}, 0, 0},
		{"gap larger than window", 4, []uint16{1, 100, 101}, false, []uint16{1}, 0, 0},
		{"gap larger than window waits for the window", 4, []uint16{1, 100, 102, 101}, false, []uint16{1}, 0, 0},
		{"gap larger than window then flush", 4, []uint16{1, 100, 102, 101}, true, []uint16{1, 100, 101, 102}, 0, 0},
		{"flush", 8, []uint16{1, 3, 6}, true, []uint16{1, 3, 6}, 0, 0},
		{"wrap", 4, []uint16{65534, 0, 65535, 1}, false, []uint16{65534, 65535, 0, 1}, 0, 0},
		{"wrap with gap", 2, []uint16{65534, 0, 1}, false, []uint16{65534, 0, 1}, 0, 0},
		{"jump ahead resets", 4, []uint16{10, 12, 5000, 5001}, false, []uint16{10, 12, 5000, 5001}, 0, 1},
		{"jump back resets", 4, []uint16{40000, 40001, 100, 101}, false, []uint16{40000, 40001, 100, 101}, 0, 1},
		{"window 1 is pass-through with late drops", 1, []uint16{1, 3, 2, 4}, false, []uint16{1, 3, 4}, 1, 0},
		{"non power of two window", 5, []uint16{65533, 65535, 0, 1, 2, 3}, false, []uint16{65533, 65535, 0, 1, 2, 3}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.window)
			got := run(b, tc.in, tc.flush)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if b.Dropped() != tc.dropped || b.Resets() != tc.resets {
				t.Errorf("dropped %d resets %d, want %d %d", b.Dropped(), b.Resets(), tc.dropped, tc.resets)
			}
		})
	}
}

// TestShuffled displaces packets by less than the window: all come out,
// in order.
func TestShuffled(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	const n, window = 20000, 16
	seqs := make([]uint16, n)
	for i := range seqs {
		seqs[i] = uint16(60000 + i)
	}
	// Shuffle within blocks, so no packet moves by window/2 or more.
	// The first packet fixes the start, so the first block stays in order.
	for i := window / 2; i+window/2 <= n; i += window / 2 {
		blk := seqs[i : i+window/2]
		r.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
	}
	b := New(window)
	got := run(b, seqs, true)
	if len(got) != n {
		t.Fatalf("got %d packets, want %d", len(got), n)
	}
	for i, s := range got {
		if s != uint16(60000+i) {
			t.Fatalf("packet %d is %d", i, s)
		}
	}
	if b.Len() != 0 {
		t.Errorf("Len %d after drain", b.Len())
	}
}

func FuzzBuffer(f *testing.F) {
	f.Add(uint8(4), []byte{0, 1, 0, 3, 0, 2, 0, 2, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, window uint8, raw []byte) {
		b := New(int(window))
		var last uint16
		have := false
		for i := 0; i+1 < len(raw); i += 2 {
			b.Push(pk(uint16(raw[i])<<8 | uint16(raw[i+1])))
			for {
				p, ok := b.Pop()
				if !ok {
					break
				}
				s := p.SequenceNumber
				// Released packets advance, except across a reset.
				if have && s == last {
					t.Fatalf("duplicate %d released", s)
				}
				last, have = s, true
			}
			if b.held > len(b.slots) || b.held < 0 {
				t.Fatalf("held %d", b.held)
			}
		}
	})
}

func BenchmarkInOrder(b *testing.B) {
	buf := New(64)
	p := pk(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.SequenceNumber = uint16(i)
		buf.Push(p)
		if _, ok := buf.Pop(); !ok {
			b.Fatal("not released")
		}
	}
}
