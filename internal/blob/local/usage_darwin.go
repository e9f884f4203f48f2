package local

import (
	"fmt"
	"syscall"
)

// Usage returns the size of the filesystem holding the directory and the
// bytes still available to an unprivileged process (what retention's
// free-space floor should use); it fails while the disk is unavailable
// (Dir.Check), rather than report the filesystem under an empty mount
// point. It does I/O and is safe for concurrent use.
func (d *Dir) Usage() (total, free uint64, err error) {
	if err := d.Check(); err != nil {
		return 0, 0, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, 0, fmt.Errorf("storage %s: statfs: %w", d.dir, err)
	}
	bs := uint64(st.Bsize)
	return uint64(st.Blocks) * bs, uint64(st.Bavail) * bs, nil
}
