package cameras

import (
	"context"
	"fmt"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/secret"
)

// Scrubber is implemented by stores that can purge old page versions
// (sqlite.Store: a WAL checkpoint), so that plaintext replaced by sealed
// values does not linger in the files.
type Scrubber interface {
	Scrub(ctx context.Context) error
}

// sealedFields are the stored fields that may carry credentials: the
// password, and the URLs (user information, query strings).
func sealedFields(c *config.Camera) []struct {
	name string
	v    *string
} {
	return []struct {
		name string
		v    *string
	}{{"url", &c.URL}, {"sub_url", &c.SubURL}, {"password", &c.Password}}
}

// context binds a sealed value to its camera and field.
func sealContext(camera, field string) string { return "camera " + camera + " " + field }

// seal returns c as it is stored: URLs and password sealed. No I/O.
func (m *Manager) seal(c config.Camera) config.Camera {
	for _, f := range sealedFields(&c) {
		*f.v = m.o.Secrets.Seal(*f.v, sealContext(c.Name, f.name))
	}
	return c
}

// unseal opens what seal stored. A value that is not sealed (stored by
// a version before sealing, and not yet sealed by sealPlaintext) is used
// as it is. On error the camera comes back with its sealed fields empty,
// and the error names the camera, the field and the key file.
func (m *Manager) unseal(c config.Camera) (config.Camera, error) {
	out := c
	for _, f := range sealedFields(&out) {
		if !secret.IsSealed(*f.v) {
			continue
		}
		plain, err := m.o.Secrets.Open(*f.v, sealContext(c.Name, f.name))
		if err != nil {
			broken := c
			broken.URL, broken.SubURL, broken.Password = "", "", ""
			return broken, fmt.Errorf("%w: set its URL and password again, or restore the key file it was stored with", err)
		}
		*f.v = plain
	}
	return out, nil
}

// sealPlaintext seals, in the store, the cameras that older versions
// stored in plaintext, then scrubs the store when it can. It does I/O.
func (m *Manager) sealPlaintext(ctx context.Context, stored []config.Camera) error {
	n := 0
	for _, c := range stored {
		plain := false
		for _, f := range sealedFields(&c) {
			plain = plain || *f.v != "" && !secret.IsSealed(*f.v)
		}
		if !plain {
			continue
		}
		if _, err := m.unseal(c); err != nil {
			continue // a half-sealed row that does not open: reported at start
		}
		sealed := c
		for _, f := range sealedFields(&sealed) {
			if !secret.IsSealed(*f.v) {
				*f.v = m.o.Secrets.Seal(*f.v, sealContext(c.Name, f.name))
			}
		}
		if err := m.o.Store.PutCamera(ctx, sealed); err != nil {
			return fmt.Errorf("cameras: seal the stored secrets of camera %s: %w", c.Name, err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	if sc, ok := m.o.Store.(Scrubber); ok {
		if err := sc.Scrub(ctx); err != nil {
			return fmt.Errorf("cameras: after sealing stored secrets: %w", err)
		}
	}
	m.o.Logger.Info("cameras: sealed the plaintext URLs and passwords of stored cameras", "cameras", n, "key", m.o.Secrets.Path())
	return nil
}
