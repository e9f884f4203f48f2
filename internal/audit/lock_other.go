//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is missing: one writer per file is
// then the caller's duty.
func lockFile(f *os.File) error { return nil }

func unlockFile(f *os.File) error { return nil }
