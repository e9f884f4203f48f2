//go:build unix

package netlimit

import (
	"syscall"
	"testing"
)

// TestRaiseFileLimit: afterwards the soft limit is the hard limit, and
// what it returns is what the system says.
func TestRaiseFileLimit(t *testing.T) {
	soft, hard, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if soft != hard || soft != uint64(lim.Cur) || hard != uint64(lim.Max) {
		t.Errorf("RaiseFileLimit = %d, %d; getrlimit %d, %d", soft, hard, lim.Cur, lim.Max)
	}
}
