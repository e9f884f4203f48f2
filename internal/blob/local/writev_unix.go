//go:build linux || darwin

package local

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// maxIOV bounds the buffers per writev call (IOV_MAX is 1024 on Linux and
// macOS).
const maxIOV = 1024

// WriteBuffers appends bufs with writev, as one Write of their
// concatenation (blob.BuffersWriter): the recorder hands a fragment's
// header and its samples, straight from the depacketizer's buffers, to
// one system call instead of copying them together first. It fails at
// once while the disk is unavailable (Dir.Check).
func (w *writer) WriteBuffers(bufs [][]byte) (int64, error) {
	if err := w.d.writable(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.key, err)
	}
	rc, err := w.f.SyscallConn()
	if err != nil {
		return 0, w.d.wrap("write", w.key, err)
	}
	var total int64
	var werr error
	for len(bufs) > 0 {
		// Drop empty buffers, and any already written.
		if len(bufs[0]) == 0 {
			bufs = bufs[1:]
			continue
		}
		batch := bufs[:min(len(bufs), maxIOV)]
		var n int
		cerr := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = unix.Writev(int(fd), batch)
				if !errors.Is(werr, unix.EINTR) {
					return true
				}
			}
		})
		if n > 0 {
			total += int64(n)
			w.size += int64(n)
		}
		if cerr != nil {
			return total, w.d.wrap("write", w.key, cerr)
		}
		if werr != nil {
			return total, w.d.wrap("write", w.key, werr)
		}
		if n == 0 {
			return total, w.d.wrap("write", w.key, errors.New("writev wrote nothing"))
		}
		// Advance past what was written (a short write continues).
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			// A copy of the list: the caller's is not modified.
			bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
			n = 0
		}
	}
	return total, nil
}
