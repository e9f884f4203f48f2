package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
)

// configStateFile keeps the fingerprint of the configuration of the last
// start (config.Fingerprint: keys and salted hashes, never values), in
// data_dir, mode 0600.
const configStateFile = "config-state.json"

type configState struct {
	Salt string            `json:"salt"`
	Hash string            `json:"hash"`
	Keys map[string]string `json:"keys"`
}

// auditConfigChange writes a config_change entry when the effective
// configuration differs from the one of the last start (or there was
// none), naming the keys added, changed and removed, then records the
// new fingerprint. The entry is written before the state: a crash between
// them writes it again at the next start, never loses it. I/O.
func auditConfigChange(ctx context.Context, log *audit.Log, cfg *config.Config) error {
	path := filepath.Join(cfg.DataDir, configStateFile)
	var old configState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("config state %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("config state %s: %w (delete it to start afresh; the next start records every key)", path, err)
		}
	}
	salt, err := hex.DecodeString(old.Salt)
	if err != nil || len(salt) < 16 {
		salt = make([]byte, 32)
		rand.Read(salt)
		old = configState{} // a new salt: every hash differs
	}
	fp, err := config.Fingerprint(cfg, salt)
	if err != nil {
		return err
	}
	cur := configState{Salt: hex.EncodeToString(salt), Hash: config.FingerprintHash(fp), Keys: fp}
	if cur.Hash == old.Hash {
		return nil
	}
	added, changed, removed := config.DiffFingerprints(old.Keys, fp)
	d := map[string]string{"hash": cur.Hash}
	if old.Hash == "" {
		d["previous"] = "none"
		d["keys"] = fmt.Sprint(len(fp))
	} else {
		d["previous"] = old.Hash
		for k, list := range map[string][]string{"added": added, "changed": changed, "removed": removed} {
			if len(list) > 0 {
				d[k] = config.KeyList(list, 40)
			}
		}
	}
	if _, err := log.Append(ctx, audit.Entry{Action: audit.ConfigChange, Result: audit.ResultOK, Detail: d}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	out, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return fmt.Errorf("config state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("config state: %w", err)
	}
	return nil
}
