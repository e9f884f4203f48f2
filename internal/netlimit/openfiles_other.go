//go:build !linux

package netlimit

// OpenFiles reports false: the count of open descriptors is read on
// Linux only.
func OpenFiles() (int, bool) { return 0, false }
