//go:build !linux && !darwin

package local

import (
	"errors"
	"fmt"
)

// Usage is not implemented on this platform; it always fails.
func (d *Dir) Usage() (total, free uint64, err error) {
	return 0, 0, fmt.Errorf("storage %s: %w", d.dir, errors.ErrUnsupported)
}
