package blob

import (
	"errors"
	"fmt"
	"strings"
)

// ErrExist is returned (wrapped) by Create for a key that already has an
// object.
var ErrExist = errors.New("blob: object already exists")

// CheckKey reports whether key is a valid object key: non-empty,
// slash-separated, relative, with no empty, "." or ".." elements and no
// backslash or NUL bytes. The error wraps ErrBadKey. It does no I/O.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrBadKey)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: %q contains a backslash or NUL", ErrBadKey, key)
	}
	for elem := range strings.SplitSeq(key, "/") {
		switch elem {
		case "":
			return fmt.Errorf("%w: %q is absolute or has an empty element", ErrBadKey, key)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q element", ErrBadKey, key, elem)
		}
	}
	return nil
}

// CheckPrefix reports whether prefix is valid for List: "" (everything),
// a valid key, or a valid key followed by "/". The error wraps ErrBadKey.
// It does no I/O.
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := CheckKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("list prefix: %w", err)
	}
	return nil
}
