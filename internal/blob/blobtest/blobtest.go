// Package blobtest is the conformance suite every blob.Store
// implementation must pass.
package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/custos-nvr/custos/internal/blob"
)

// BadKeys are keys every store must refuse with blob.ErrBadKey.
var BadKeys = []string{"", "/abs", "../x", "a/../b", "a//b", "a\\b", "a\x00b", ".", "a/.", "./a", "a/", "..", "a/.."}

// Run runs the suite. open must return a new, empty store for each call
// and arrange its cleanup with t.Cleanup. Subtests run in parallel with
// each other; open must be safe for that.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, blob.Store)
	}{
		{"Name", testName},
		{"CreateExisting", testCreateExisting},
		{"WriteRead", testWriteRead},
		{"Empty", testEmpty},
		{"Growing", testGrowing},
		{"OpenAppend", testOpenAppend},
		{"Truncate", testTruncate},
		{"Delete", testDelete},
		{"List", testList},
		{"BadKeys", testBadKeys},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// pattern returns n deterministic bytes that differ at every offset
// modulo 251, so misplaced reads are caught.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + seed*7) % 251)
	}
	return b
}

// put creates key with data, synced and closed.
func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	w, err := s.Create(t.Context(), key)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if n, err := w.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write(%q): n=%d err=%v", key, n, err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync(%q): %v", key, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%q): %v", key, err)
	}
}

// check verifies key holds exactly want, via Stat and ranged reads.
func check(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	ctx := t.Context()
	size, err := s.Stat(ctx, key)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Stat(%q) = %d, %v; want %d", key, size, err, len(want))
	}
	r, err := s.Open(ctx, key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	if r.Size() != int64(len(want)) {
		t.Fatalf("Open(%q).Size() = %d; want %d", key, r.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := r.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(%q, all) n=%d err=%v", key, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%q: content differs", key)
	}
}

func testName(t *testing.T, s blob.Store) {
	if s.Name() == "" {
		t.Fatal("Name() is empty")
	}
}

func testCreateExisting(t *testing.T, s blob.Store) {
	put(t, s, "cam1/a.mp4", []byte("first"))
	w, err := s.Create(t.Context(), "cam1/a.mp4")
	if err == nil {
		w.Close()
		t.Fatal("Create on an existing key succeeded")
	}
	if !errors.Is(err, blob.ErrExist) {
		t.Errorf("Create on an existing key: %v; want blob.ErrExist", err)
	}
	check(t, s, "cam1/a.mp4", []byte("first"))
}

func testWriteRead(t *testing.T, s blob.Store) {
	ctx := t.Context()
	data := pattern(1, 100_000)
	w, err := s.Create(ctx, "cam1/2024/seg.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("new writer Size() = %d", w.Size())
	}
	for off := 0; off < len(data); {
		end := min(off+7_777, len(data))
		if n, err := w.Write(data[off:end]); err != nil || n != end-off {
			t.Fatalf("Write: n=%d err=%v", n, err)
		}
		off = end
		if w.Size() != int64(off) {
			t.Fatalf("Size() = %d after %d bytes", w.Size(), off)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, s, "cam1/2024/seg.mp4", data)

	r, err := s.Open(ctx, "cam1/2024/seg.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	size := int64(len(data))
	for _, tc := range []struct {
		off  int64
		n    int
		want int // bytes expected
	}{
		{0, 1, 1}, {1, 10, 10}, {12_345, 4096, 4096}, {size - 10, 10, 10},
		{size - 10, 20, 10}, {size - 1, 1, 1}, {size, 1, 0}, {size + 100, 5, 0},
		{0, len(data) + 1, len(data)}, {5, 0, 0},
	} {
		buf := make([]byte, tc.n)
		n, err := r.ReadAt(buf, tc.off)
		if n != tc.want {
			t.Errorf("ReadAt(len %d, off %d) n = %d; want %d", tc.n, tc.off, n, tc.want)
		}
		if n < tc.n && err != io.EOF {
			t.Errorf("ReadAt(len %d, off %d) short read with err %v; want io.EOF", tc.n, tc.off, err)
		}
		if n == tc.n && err != nil && err != io.EOF {
			t.Errorf("ReadAt(len %d, off %d): %v", tc.n, tc.off, err)
		}
		if tc.off < size && !bytes.Equal(buf[:n], data[tc.off:tc.off+int64(n)]) {
			t.Errorf("ReadAt(len %d, off %d): wrong bytes", tc.n, tc.off)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
	// Concurrent ReadAt on one reader.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			buf := make([]byte, 1000)
			off := int64(i * 20_000)
			if n, err := r.ReadAt(buf, off); n != len(buf) || (err != nil && err != io.EOF) {
				t.Errorf("concurrent ReadAt: n=%d err=%v", n, err)
			} else if !bytes.Equal(buf, data[off:off+1000]) {
				t.Error("concurrent ReadAt: wrong bytes")
			}
		})
	}
	wg.Wait()
}

func testEmpty(t *testing.T, s blob.Store) {
	put(t, s, "e/empty", nil)
	check(t, s, "e/empty", nil)
	r, err := s.Open(t.Context(), "e/empty")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := r.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt on empty object: n=%d err=%v; want 0, io.EOF", n, err)
	}
	objs := list(t, s, "e/")
	if len(objs) != 1 || objs["e/empty"] != 0 {
		t.Errorf("List(e/) = %v", objs)
	}
}

// testGrowing opens an object whose writer is still open.
func testGrowing(t *testing.T, s blob.Store) {
	ctx := t.Context()
	data := pattern(2, 5000)
	w, err := s.Create(ctx, "g/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[:3000]); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, "g/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 3000 {
		t.Fatalf("Size() of growing object = %d; want 3000", r.Size())
	}
	buf := make([]byte, 3000)
	if n, err := r.ReadAt(buf, 0); n != 3000 || (err != nil && err != io.EOF) || !bytes.Equal(buf, data[:3000]) {
		t.Fatalf("ReadAt growing object: n=%d err=%v", n, err)
	}
	if _, err := w.Write(data[3000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if size, err := s.Stat(ctx, "g/seg"); err != nil || size != 5000 {
		t.Fatalf("Stat after growth = %d, %v; want 5000", size, err)
	}
}

func testOpenAppend(t *testing.T, s blob.Store) {
	ctx := t.Context()
	data := pattern(3, 20_000)
	put(t, s, "cam2/seg", data[:12_000])
	w, err := s.OpenAppend(ctx, "cam2/seg")
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 12_000 {
		t.Fatalf("OpenAppend Size() = %d; want 12000", w.Size())
	}
	if _, err := w.Write(data[12_000:]); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 20_000 {
		t.Fatalf("Size() = %d; want 20000", w.Size())
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, s, "cam2/seg", data)

	if w, err := s.OpenAppend(ctx, "cam2/missing"); !errors.Is(err, blob.ErrNotExist) {
		if err == nil {
			w.Close()
		}
		t.Errorf("OpenAppend(missing) = %v; want blob.ErrNotExist", err)
	}
}

func testTruncate(t *testing.T, s blob.Store) {
	ctx := t.Context()
	data := pattern(4, 10_000)
	w, err := s.Create(ctx, "t/seg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(int64(len(data) + 1)); err == nil {
		t.Error("Truncate beyond Size() succeeded")
	}
	if err := w.Truncate(-1); err == nil {
		t.Error("Truncate(-1) succeeded")
	}
	if err := w.Truncate(6000); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 6000 {
		t.Fatalf("Size() after Truncate = %d", w.Size())
	}
	tail := pattern(5, 1000)
	if _, err := w.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(data[:6000]), tail...)
	check(t, s, "t/seg", want)

	// Recovery path: reopen, cut a torn tail, continue.
	w, err = s.OpenAppend(ctx, "t/seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(6500); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 6503 {
		t.Fatalf("Size() = %d; want 6503", w.Size())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, s, "t/seg", append(want[:6500:6500], "xyz"...))

	w, err = s.OpenAppend(ctx, "t/seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, s, "t/seg", nil)
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := t.Context()
	put(t, s, "d/x/1", []byte("one"))
	put(t, s, "d/x/2", []byte("two"))
	for range 2 { // idempotent
		if err := s.Delete(ctx, "d/x/1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := s.Delete(ctx, "never/there"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	if _, err := s.Stat(ctx, "d/x/1"); !errors.Is(err, blob.ErrNotExist) {
		t.Errorf("Stat after Delete: %v; want blob.ErrNotExist", err)
	}
	if r, err := s.Open(ctx, "d/x/1"); !errors.Is(err, blob.ErrNotExist) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open after Delete: %v; want blob.ErrNotExist", err)
	}
	check(t, s, "d/x/2", []byte("two"))
	if err := s.Delete(ctx, "d/x/2"); err != nil {
		t.Fatal(err)
	}
	if objs := list(t, s, ""); len(objs) != 0 {
		t.Errorf("List after deleting everything = %v", objs)
	}
	// The key can be created again.
	put(t, s, "d/x/1", []byte("again"))
	check(t, s, "d/x/1", []byte("again"))
	// Missing keys whose "parent" is an object.
	if _, err := s.Stat(ctx, "d/x/1/sub"); !errors.Is(err, blob.ErrNotExist) {
		t.Errorf("Stat(object/sub): %v; want blob.ErrNotExist", err)
	}
	if err := s.Delete(ctx, "d/x/1/sub"); err != nil {
		t.Errorf("Delete(object/sub): %v", err)
	}
}

func list(t *testing.T, s blob.Store, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for o, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if _, dup := got[o.Key]; dup {
			t.Errorf("List(%q) yielded %q twice", prefix, o.Key)
		}
		got[o.Key] = o.Size
	}
	return got
}

func testList(t *testing.T, s blob.Store) {
	all := map[string]int64{
		"cam1/2024/a": 1, "cam1/2024/b": 22, "cam1/2025/c": 333,
		"cam10/x": 4, "cam2/y": 5, "top": 6,
	}
	for k, n := range all {
		put(t, s, k, pattern(int(n), int(n)))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", slices.Collect(maps.Keys(all))},
		{"cam1", []string{"cam1/2024/a", "cam1/2024/b", "cam1/2025/c", "cam10/x"}},
		{"cam1/", []string{"cam1/2024/a", "cam1/2024/b", "cam1/2025/c"}},
		{"cam1/20", []string{"cam1/2024/a", "cam1/2024/b", "cam1/2025/c"}},
		{"cam1/2024/", []string{"cam1/2024/a", "cam1/2024/b"}},
		{"cam1/2024", []string{"cam1/2024/a", "cam1/2024/b"}},
		{"cam1/2024/a", []string{"cam1/2024/a"}},
		{"t", []string{"top"}},
		{"nope/", nil},
		{"cam1/2026/", nil},
	} {
		want := map[string]int64{}
		for _, k := range tc.want {
			want[k] = all[k]
		}
		if got := list(t, s, tc.prefix); !maps.Equal(got, want) {
			t.Errorf("List(%q) = %v; want %v", tc.prefix, got, want)
		}
	}
	// Stopping early is allowed.
	for range s.List(t.Context(), "") {
		break
	}
}

func testBadKeys(t *testing.T, s blob.Store) {
	ctx := t.Context()
	put(t, s, "a/b", []byte("x")) // something for "a/.." etc. to point at
	bad := func(method, key string, err error) {
		t.Helper()
		if !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("%s(%q) = %v; want blob.ErrBadKey", method, key, err)
		}
	}
	for _, key := range BadKeys {
		w, err := s.Create(ctx, key)
		if err == nil {
			w.Close()
		}
		bad("Create", key, err)
		w, err = s.OpenAppend(ctx, key)
		if err == nil {
			w.Close()
		}
		bad("OpenAppend", key, err)
		r, err := s.Open(ctx, key)
		if err == nil {
			r.Close()
		}
		bad("Open", key, err)
		_, err = s.Stat(ctx, key)
		bad("Stat", key, err)
		bad("Delete", key, s.Delete(ctx, key))
		if blob.CheckPrefix(key) == nil {
			continue // "" and "a/" are valid List prefixes
		}
		var lerr error
		for _, err := range s.List(ctx, key) {
			if err != nil {
				lerr = err
			}
		}
		bad("List", key, lerr)
	}
	check(t, s, "a/b", []byte("x"))
}

// testConcurrent runs writers on different keys, readers and deleters in
// the same directories at once; run with -race.
func testConcurrent(t *testing.T, s blob.Store) {
	ctx := t.Context()
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range rounds {
				key := fmt.Sprintf("c/%d/%d", i%2, i*rounds+j)
				data := pattern(i*rounds+j, 3000+j)
				w, err := s.Create(ctx, key)
				if err != nil {
					t.Errorf("Create(%q): %v", key, err)
					return
				}
				for k := 0; k < len(data); k += 1000 {
					if _, err := w.Write(data[k:min(k+1000, len(data))]); err != nil {
						t.Errorf("Write(%q): %v", key, err)
					}
				}
				if err := w.Sync(); err != nil {
					t.Errorf("Sync(%q): %v", key, err)
				}
				if err := w.Close(); err != nil {
					t.Errorf("Close(%q): %v", key, err)
				}
				r, err := s.Open(ctx, key)
				if err != nil {
					t.Errorf("Open(%q): %v", key, err)
					return
				}
				buf := make([]byte, len(data))
				if n, err := r.ReadAt(buf, 0); n != len(buf) || (err != nil && err != io.EOF) || !bytes.Equal(buf, data) {
					t.Errorf("ReadAt(%q): n=%d err=%v", key, n, err)
				}
				r.Close()
				if j%2 == 0 { // delete half, racing the others' creates
					if err := s.Delete(ctx, key); err != nil {
						t.Errorf("Delete(%q): %v", key, err)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			for _, err := range s.List(ctx, "c/") {
				if err != nil {
					t.Errorf("List during writes: %v", err)
				}
			}
		}
	})
	wg.Wait()
	if got := list(t, s, "c/"); len(got) != workers*rounds/2 {
		t.Errorf("List after concurrent run: %d objects; want %d", len(got), workers*rounds/2)
	}
}
