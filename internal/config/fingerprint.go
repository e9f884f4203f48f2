package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Fingerprint flattens the effective configuration into keys (YAML paths;
// cameras and storage directories by name, so reordering them changes
// nothing: "cameras[front-door].url") and, for each, the HMAC-SHA256 of
// its value under salt. No value appears in the result, so it may be
// kept and compared without revealing camera passwords; with the salt
// secret, it does not let anyone test guesses of them either. It does no
// I/O.
func Fingerprint(c *Config, salt []byte) (map[string]string, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: fingerprint: %w", err)
	}
	var tree any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("config: fingerprint: %w", err)
	}
	out := map[string]string{}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, sub := range t {
				walk(join(key, k), sub)
			}
			return
		case []any:
			for i, sub := range t {
				id := fmt.Sprint(i)
				if m, ok := sub.(map[string]any); ok && (key == "cameras" || key == "storage") {
					if n, ok := m["name"].(string); ok && n != "" {
						id = n
					}
				}
				walk(fmt.Sprintf("%s[%s]", key, id), sub)
			}
			if len(t) > 0 {
				return
			}
		}
		mac := hmac.New(sha256.New, salt)
		fmt.Fprint(mac, v)
		out[key] = hex.EncodeToString(mac.Sum(nil))
	}
	walk("", tree)
	return out, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// FingerprintHash is one hash of a whole fingerprint.
func FingerprintHash(fp map[string]string) string {
	keys := make([]string, 0, len(fp))
	for k := range fp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, fp[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DiffFingerprints returns the keys added, changed and removed from old
// to cur, each sorted.
func DiffFingerprints(old, cur map[string]string) (added, changed, removed []string) {
	for k, v := range cur {
		switch ov, ok := old[k]; {
		case !ok:
			added = append(added, k)
		case ov != v:
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed
}

// KeyList joins keys with commas, at most max of them, noting how many
// more there were.
func KeyList(keys []string, max int) string {
	if len(keys) <= max {
		return strings.Join(keys, ",")
	}
	return strings.Join(keys[:max], ",") + fmt.Sprintf(",… (%d more)", len(keys)-max)
}
