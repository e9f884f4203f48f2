// Package local stores blobs as files in a directory on one disk, which
// carries an identity file so a swapped or unmounted disk is refused
// instead of being filled or wiped.
package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// IdentityFile is the name of the identity file at the top of a storage
// directory. It is never a valid object key and List never yields it.
const IdentityFile = "custos-disk.json"

// identityTmp is where the identity is written before being renamed into
// place; a leftover one (crash during initialisation) is ignored.
const identityTmp = IdentityFile + ".tmp"

// ErrNoIdentity is returned (wrapped) by Open when the directory is
// missing, or is non-empty but carries no identity file: the disk is
// probably not mounted, or the directory is not a Custos storage
// directory. Initialise it explicitly with Options.Init.
var ErrNoIdentity = errors.New("storage directory has no disk identity (disk unmounted or not initialised?)")

// ErrWrongDisk is returned (wrapped) by Open when the directory's identity
// names another disk: disks were swapped or mounted in the wrong place.
var ErrWrongDisk = errors.New("storage directory belongs to another disk (disks swapped?)")

// Identity is the content of the identity file.
type Identity struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"` // random 128-bit, hex
	Created time.Time `json:"created"`
}

// loadIdentity reads and checks the identity of the directory behind
// root, initialising it when the directory is empty or init is set.
// It reports whether it wrote a new identity.
func loadIdentity(root *os.Root, dir, name string, init, existing bool, now func() time.Time) (Identity, bool, error) {
	var id Identity
	b, err := readFile(root, IdentityFile)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &id); err != nil || id.Name == "" || id.ID == "" {
			if err == nil {
				err = errors.New("missing name or id")
			}
			return id, false, fmt.Errorf("storage %s: identity file %s is corrupt: %v", dir, IdentityFile, err)
		}
		if id.Name != name {
			return id, false, fmt.Errorf("storage %s: identity names disk %q (id %s), want %q: %w", dir, id.Name, id.ID, name, ErrWrongDisk)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return id, false, fmt.Errorf("storage %s: read identity: %w", dir, err)
	}
	if existing {
		return id, false, fmt.Errorf("storage %s: no %s for disk %q (disk not mounted?): %w", dir, IdentityFile, name, ErrNoIdentity)
	}
	if !init {
		empty, err := isEmpty(root)
		if err != nil {
			return id, false, fmt.Errorf("storage %s: %w", dir, err)
		}
		if !empty {
			return id, false, fmt.Errorf("storage %s: non-empty directory without %s: %w", dir, IdentityFile, ErrNoIdentity)
		}
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return id, false, fmt.Errorf("storage %s: generate id: %w", dir, err)
	}
	id = Identity{Name: name, ID: hex.EncodeToString(raw[:]), Created: now().UTC()}
	if err := writeIdentity(root, id); err != nil {
		return id, false, fmt.Errorf("storage %s: write identity: %w", dir, err)
	}
	return id, true, nil
}

// writeIdentity writes id durably: temporary file, fsync, rename, fsync
// of the directory. An existing identity file is never replaced.
func writeIdentity(root *os.Root, id Identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := root.OpenFile(identityTmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Refuse to clobber an identity that appeared meanwhile (another
	// process initialising the same directory).
	if _, err := root.Lstat(IdentityFile); err == nil {
		_ = root.Remove(identityTmp)
		return fmt.Errorf("%s appeared during initialisation", IdentityFile)
	}
	if err := root.Rename(identityTmp, IdentityFile); err != nil {
		return err
	}
	return syncDir(root, ".")
}

func readFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// isEmpty reports whether the directory holds nothing but a leftover
// temporary identity file.
func isEmpty(root *os.Root) (bool, error) {
	f, err := root.Open(".")
	if err != nil {
		return false, err
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(16)
		for _, n := range names {
			if n != identityTmp {
				return false, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// syncDir fsyncs the directory name inside root so that entries created
// or removed in it survive power loss.
func syncDir(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
