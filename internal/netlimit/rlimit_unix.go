//go:build unix

package netlimit

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the process's soft limit on open files
// (RLIMIT_NOFILE) to its hard limit and returns the limit now in force.
// Go's runtime does the same at start on most systems; this makes it
// explicit and tells the caller the number the descriptor reserve is
// computed from. It does a system call; not for concurrent use with
// other changes of the limit.
func RaiseFileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(lim.Cur), uint64(lim.Max), fmt.Errorf("setrlimit NOFILE to %d: %w", want.Cur, err)
		}
		lim = want
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
