// Package config reads Custos's YAML configuration, applies CUSTOS_*
// environment overrides, fills defaults and validates every key, naming the
// key and the reason when something is wrong. It does file I/O only in
// Load.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Default is the commented default configuration; it is the reference for
// every key (custos.example.yaml at the repository root is a copy).
//
//go:embed default.yaml
var Default []byte

// Config is the whole configuration.
type Config struct {
	Listen        string     `yaml:"listen"`
	DataDir       string     `yaml:"data_dir"`
	FsyncInterval Duration   `yaml:"fsync_interval"`
	Storage       []Storage  `yaml:"storage"`
	Cameras       []Camera   `yaml:"cameras"`
	Retention     Retention  `yaml:"retention"`
	Log           LogSection `yaml:"log"`
	TLS           TLS        `yaml:"tls"`
	Metrics       Metrics    `yaml:"metrics"`
}

// Metrics configures GET /metrics (Prometheus text format).
type Metrics struct {
	// Public opens /metrics to anyone who reaches listen; otherwise it
	// needs an operator's or admin's credentials (e.g. an API token).
	Public bool `yaml:"public"`
}

// TLS configures HTTPS for the UI and API: a certificate and key (PEM
// files), or a self-signed certificate generated in data_dir/tls.
type TLS struct {
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	SelfSigned bool   `yaml:"self_signed"`
}

// Enabled reports whether the server speaks HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" || t.SelfSigned }

// LogSection configures logging.
type LogSection struct {
	Level string `yaml:"level"`
}

// Storage is one storage directory (one disk).
type Storage struct {
	Name    string `yaml:"name"`
	Path    string `yaml:"path"`
	MinFree Bytes  `yaml:"min_free"`
}

// Camera is one camera and its streams.
type Camera struct {
	Name      string    `yaml:"name"`
	URL       string    `yaml:"url"`
	SubURL    string    `yaml:"sub_url"`
	Username  string    `yaml:"username"`
	Password  string    `yaml:"password"`
	Transport string    `yaml:"transport"`
	Storage   string    `yaml:"storage"`
	Retention Retention `yaml:"retention"`
	// AllowBasicAuth lets Custos answer a camera that offers only Basic
	// authentication over plain rtsp:// (the password crosses the network
	// in clear). Off by default: such a camera is then refused with a
	// message naming this key. Digest needs no option.
	AllowBasicAuth bool `yaml:"allow_basic_auth"`
}

// Retention limits how much of a camera is kept; zero means no limit.
type Retention struct {
	MaxAge   Duration `yaml:"max_age"`
	MaxBytes Bytes    `yaml:"max_bytes"`
}

// Error is a configuration problem: the key (as a YAML path) and why.
type Error struct {
	Key    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Reason) }

// Load reads path (the default configuration when path is empty), applies
// environment overrides from env (os.Environ format; nil means none) and
// validates. Errors are *Error or a read/parse error naming the file.
func Load(path string, env []string) (*Config, error) {
	raw := Default
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
		raw = b
	}
	return Parse(raw, path, env)
}

// Parse is Load on bytes; name is used in messages.
func Parse(raw []byte, name string, env []string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return nil, fmt.Errorf("config: %s: %w", nameOr(name), err)
	}
	if err := c.applyEnv(env); err != nil {
		return nil, err
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func nameOr(n string) string {
	if n == "" {
		return "default configuration"
	}
	return n
}

// applyEnv applies the CUSTOS_* overrides for scalar top-level keys.
func (c *Config) applyEnv(env []string) error {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "CUSTOS_") {
			continue
		}
		switch k {
		case "CUSTOS_LISTEN":
			c.Listen = v
		case "CUSTOS_DATA_DIR":
			c.DataDir = v
		case "CUSTOS_FSYNC_INTERVAL":
			d, err := ParseDuration(v)
			if err != nil {
				return &Error{Key: "CUSTOS_FSYNC_INTERVAL", Reason: err.Error()}
			}
			c.FsyncInterval = Duration(d)
		case "CUSTOS_LOG_LEVEL":
			c.Log.Level = v
		}
	}
	return nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "custos-data"
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = Duration(10 * time.Second)
	}
	if len(c.Storage) == 0 {
		c.Storage = []Storage{{Name: "default", Path: filepath.Join(c.DataDir, "recordings")}}
	}
	for i := range c.Storage {
		if c.Storage[i].Path != "" && !filepath.IsAbs(c.Storage[i].Path) && c.Storage[i].Name != "default" {
			c.Storage[i].Path = filepath.Join(c.DataDir, c.Storage[i].Path)
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for i := range c.Cameras {
		c.CameraDefaults(&c.Cameras[i], i)
	}
}

// CameraDefaults fills a camera's unset keys: transport tcp, storage the
// i-th storage directory (round robin), retention limits from the
// configuration's default retention. It does no I/O.
func (c *Config) CameraDefaults(cam *Camera, i int) {
	if cam.Transport == "" {
		cam.Transport = "tcp"
	}
	if cam.Storage == "" && len(c.Storage) > 0 {
		cam.Storage = c.Storage[i%len(c.Storage)].Name
	}
	if cam.Retention.MaxAge == 0 {
		cam.Retention.MaxAge = c.Retention.MaxAge
	}
	if cam.Retention.MaxBytes == 0 {
		cam.Retention.MaxBytes = c.Retention.MaxBytes
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate checks every key; the first problem is returned as *Error.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &Error{Key: "listen", Reason: fmt.Sprintf("%q is not host:port", c.Listen)}
	}
	if time.Duration(c.FsyncInterval) < 100*time.Millisecond || time.Duration(c.FsyncInterval) > 10*time.Minute {
		return &Error{Key: "fsync_interval", Reason: "must be between 100ms and 10m"}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Key: "log.level", Reason: fmt.Sprintf("%q is not debug, info, warn or error", c.Log.Level)}
	}
	switch {
	case (c.TLS.Cert == "") != (c.TLS.Key == ""):
		return &Error{Key: "tls", Reason: "cert and key go together: set both or neither"}
	case c.TLS.Cert != "" && c.TLS.SelfSigned:
		return &Error{Key: "tls.self_signed", Reason: "choose a certificate (cert, key) or self_signed, not both"}
	}
	disks := map[string]bool{}
	for i, s := range c.Storage {
		key := fmt.Sprintf("storage[%d]", i)
		if !nameRE.MatchString(s.Name) {
			return &Error{Key: key + ".name", Reason: fmt.Sprintf("%q must be lower-case letters, digits, - or _", s.Name)}
		}
		if disks[s.Name] {
			return &Error{Key: key + ".name", Reason: fmt.Sprintf("%q is used twice", s.Name)}
		}
		disks[s.Name] = true
		if s.Path == "" {
			return &Error{Key: key + ".path", Reason: "required"}
		}
	}
	names := map[string]bool{}
	for i, cam := range c.Cameras {
		key := fmt.Sprintf("cameras[%d]", i)
		if err := c.ValidateCamera(cam, key); err != nil {
			return err
		}
		if names[cam.Name] {
			return &Error{Key: key + ".name", Reason: fmt.Sprintf("camera %q is defined twice", cam.Name)}
		}
		names[cam.Name] = true
	}
	return nil
}

// ValidateCamera checks one camera (after CameraDefaults) against the
// configuration's storage; key prefixes the *Error's Key ("cameras[2]"
// in a file, "camera" from the API). Messages never echo a password.
func (c *Config) ValidateCamera(cam Camera, key string) error {
	if !nameRE.MatchString(cam.Name) {
		return &Error{Key: key + ".name", Reason: fmt.Sprintf("%q must be 1-63 lower-case letters, digits, - or _", cam.Name)}
	}
	if cam.URL == "" {
		return &Error{Key: key + ".url", Reason: "required"}
	}
	for _, u := range []struct{ k, v string }{{"url", cam.URL}, {"sub_url", cam.SubURL}} {
		if u.v == "" {
			continue
		}
		if err := checkRTSPURL(u.v); err != nil {
			return &Error{Key: key + "." + u.k, Reason: err.Error()}
		}
	}
	if cam.Transport != "tcp" && cam.Transport != "udp" {
		return &Error{Key: key + ".transport", Reason: fmt.Sprintf("%q is not tcp or udp", cam.Transport)}
	}
	found := false
	for _, s := range c.Storage {
		found = found || s.Name == cam.Storage
	}
	if !found {
		return &Error{Key: key + ".storage", Reason: fmt.Sprintf("no storage named %q", cam.Storage)}
	}
	if cam.Retention.MaxAge < 0 || cam.Retention.MaxBytes < 0 {
		return &Error{Key: key + ".retention", Reason: "limits must not be negative"}
	}
	return nil
}

// checkRTSPURL validates a camera URL without echoing its password.
func checkRTSPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "rtsp" {
		return fmt.Errorf("scheme %q is not rtsp", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q out of range", p)
		}
	}
	return nil
}

// Duration is a time.Duration in YAML that also accepts days ("30d").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses Go durations plus a whole-day suffix: "30d", "12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 10s, 12h, 30d)", s)
	}
	return d, nil
}

// Bytes is a byte count in YAML that accepts units: 500GiB, 2TB, 1048576.
type Bytes int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = Bytes(v)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseBytes parses a byte count with an optional unit.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (like 500GiB, 2TB)", s)
	}
	return int64(f * float64(mult)), nil
}
