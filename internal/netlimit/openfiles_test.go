//go:build linux

package netlimit

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenFiles: opening files raises the count by as many.
func TestOpenFiles(t *testing.T) {
	n0, ok := OpenFiles()
	if !ok || n0 < 3 {
		t.Fatalf("OpenFiles() = %d, %v", n0, ok)
	}
	var fs []*os.File
	for i := range 5 {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fs = append(fs, f)
	}
	if n1, _ := OpenFiles(); n1 != n0+len(fs) {
		t.Errorf("with %d more files open: %d, before %d", len(fs), n1, n0)
	}
}
