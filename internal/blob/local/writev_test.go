//go:build linux || darwin

package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/custos-nvr/custos/internal/blob"
)

// TestWriteBuffers: more buffers than one writev takes, empty ones among
// them, after an ordinary write: the file is their concatenation and Size
// counts it; the caller's list is not modified.
func TestWriteBuffers(t *testing.T) {
	d := openTemp(t)
	w, err := d.Create(context.Background(), "cam/seg.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	want := []byte("head")
	for i := range 2500 {
		b := bytes.Repeat([]byte{byte(i)}, i%7)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	keep := append([][]byte(nil), bufs...)
	n, err := blob.WriteBuffers(w, bufs)
	if err != nil || n != int64(len(want)-4) {
		t.Fatalf("WriteBuffers = %d, %v; want %d", n, err, len(want)-4)
	}
	if w.Size() != int64(len(want)) {
		t.Errorf("Size %d, want %d", w.Size(), len(want))
	}
	for i := range bufs {
		if !bytes.Equal(bufs[i], keep[i]) {
			t.Fatalf("buffer %d modified", i)
		}
	}
	got, err := os.ReadFile(filepath.Join(d.Path(), "cam", "seg.mp4"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), want %d", len(got), err, len(want))
	}
}
