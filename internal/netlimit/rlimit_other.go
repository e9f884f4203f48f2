//go:build !unix

package netlimit

// RaiseFileLimit reports no limit where the system has no RLIMIT_NOFILE
// (the descriptor reserve then bounds nothing).
func RaiseFileLimit() (soft, hard uint64, err error) { return 0, 0, nil }
