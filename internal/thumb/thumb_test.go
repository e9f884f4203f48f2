package thumb

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/custos-nvr/custos/internal/media"
)

// TestNoDecoder: without ffmpeg, Available says so before any request
// (the server warns at start), and JPEG fails with the same error.
func TestNoDecoder(t *testing.T) {
	m := New(filepath.Join(t.TempDir(), "no-ffmpeg-here"), 1, 1<<20)
	if err := m.Available(); !errors.Is(err, ErrNoDecoder) {
		t.Fatalf("Available() = %v, want ErrNoDecoder", err)
	}
	if _, err := m.JPEG(context.Background(), media.CodecH264, []byte{0, 0, 0, 1, 0x65}, "x", 0); !errors.Is(err, ErrNoDecoder) {
		t.Errorf("JPEG() = %v, want ErrNoDecoder", err)
	}
}
