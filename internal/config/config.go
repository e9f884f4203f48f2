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
	"net/netip"
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
	HTTP          HTTP       `yaml:"http"`
	Live          Live       `yaml:"live"`
	// TrustedProxies are the addresses (CIDR prefixes, or single
	// addresses) of reverse proxies whose X-Forwarded-For header gives
	// the client's address; empty trusts none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	Locks          Locks    `yaml:"locks"`
}

// TrustedProxyPrefixes returns TrustedProxies parsed (a single address
// as a one-address prefix); call it on a validated Config.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, v := range c.TrustedProxies {
		if p, err := parsePrefix(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix parses a CIDR prefix or a single address.
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix (like 10.0.0.0/8)", v)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (like 10.0.0.0/8)", v)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// HTTP bounds what web clients can hold of the server (connections,
// time), so that no HTTP load can take descriptors or memory the
// recorders need (docs/security.md, "Load").
type HTTP struct {
	// ReadHeaderTimeout bounds a request's headers (and a TLS handshake).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection idle between requests.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// BodyTimeout bounds the upload of a request body.
	BodyTimeout Duration `yaml:"body_timeout"`
	// WriteTimeout cuts a response that makes no progress for this long
	// (a client that stops reading); long exports that keep moving are
	// not cut, and live WebSockets keep their own deadlines.
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxConns bounds the open HTTP connections in total (and the
	// descriptor reserve may bound them lower).
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerAddr bounds the open connections from one IP address.
	MaxConnsPerAddr int `yaml:"max_conns_per_addr"`
}

// Live configures live view.
type Live struct {
	// MaxViewersPerUser bounds one user's simultaneous live views
	// (WebSocket and WebRTC together, every camera).
	MaxViewersPerUser int `yaml:"max_viewers_per_user"`
	// WebRTCAllowNetworks are networks (CIDR) a WebRTC viewer's ICE
	// candidates may be in besides the viewer's own address.
	WebRTCAllowNetworks []string `yaml:"webrtc_allow_networks"`
}

// WebRTCPrefixes returns WebRTCAllowNetworks parsed (Validate checked
// them).
func (l Live) WebRTCPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range l.WebRTCAllowNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Locks limits the evidence locks a user (not an admin) may set.
type Locks struct {
	// MaxSpan is the longest range one lock may cover.
	MaxSpan Duration `yaml:"max_span"`
	// MaxActivePerUser is how many unreleased locks one user may hold.
	MaxActivePerUser int `yaml:"max_active_per_user"`
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
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	// MinFree is the free-space floor retention keeps on the disk;
	// DefaultMinFree when the key is absent, none when it is 0.
	MinFree Space `yaml:"min_free"`
}

// Defaults that keep a fresh installation from filling its disk or
// keeping footage forever (docs/guide.md "Retention"). Each applies only
// when its key is absent; an explicit 0 means "no limit".
var (
	// DefaultMinFree is the free-space floor of a storage directory.
	DefaultMinFree = Space{Percent: 5}
	// DefaultMaxAge is the default retention's age limit.
	DefaultMaxAge = Duration(30 * 24 * time.Hour)
)

// UnmarshalYAML implements yaml's obsolete Unmarshaler, which decodes
// with the same decoder (so unknown keys are still refused), to give an
// absent min_free its default.
func (s *Storage) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Storage
	p := plain{MinFree: DefaultMinFree}
	if err := unmarshal(&p); err != nil {
		return err
	}
	*s = Storage(p)
	return nil
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
	// Pre-filled defaults survive decoding when their key is absent.
	c := Config{Retention: Retention{MaxAge: DefaultMaxAge}}
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
		case "CUSTOS_TRUSTED_PROXIES": // comma-separated; empty trusts none
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
		case "CUSTOS_HTTP_MAX_CONNS", "CUSTOS_HTTP_MAX_CONNS_PER_ADDR":
			n, err := strconv.Atoi(v)
			if err != nil {
				return &Error{Key: k, Reason: fmt.Sprintf("%q is not a whole number", v)}
			}
			if k == "CUSTOS_HTTP_MAX_CONNS" {
				c.HTTP.MaxConns = n
			} else {
				c.HTTP.MaxConnsPerAddr = n
			}
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
		c.Storage = []Storage{{Name: "default", Path: filepath.Join(c.DataDir, "recordings"), MinFree: DefaultMinFree}}
	}
	for i := range c.Storage {
		if c.Storage[i].Path != "" && !filepath.IsAbs(c.Storage[i].Path) && c.Storage[i].Name != "default" {
			c.Storage[i].Path = filepath.Join(c.DataDir, c.Storage[i].Path)
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&c.HTTP.ReadHeaderTimeout, 10 * time.Second}, {&c.HTTP.IdleTimeout, 120 * time.Second},
		{&c.HTTP.BodyTimeout, 30 * time.Second}, {&c.HTTP.WriteTimeout, 60 * time.Second}} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
	}
	if c.HTTP.MaxConns == 0 {
		c.HTTP.MaxConns = 1024
	}
	if c.HTTP.MaxConnsPerAddr == 0 {
		c.HTTP.MaxConnsPerAddr = min(128, max(c.HTTP.MaxConns, 1))
	}
	if c.Live.MaxViewersPerUser == 0 {
		c.Live.MaxViewersPerUser = 64
	}
	if c.Locks.MaxSpan == 0 {
		c.Locks.MaxSpan = Duration(31 * 24 * time.Hour)
	}
	if c.Locks.MaxActivePerUser == 0 {
		c.Locks.MaxActivePerUser = 20
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
	for i, v := range c.TrustedProxies {
		if _, err := parsePrefix(v); err != nil {
			return &Error{Key: fmt.Sprintf("trusted_proxies[%d]", i), Reason: err.Error()}
		}
	}
	if err := c.validateLoad(); err != nil {
		return err
	}
	if d := time.Duration(c.Locks.MaxSpan); d < time.Hour || d > 366*24*time.Hour {
		return &Error{Key: "locks.max_span", Reason: "must be between 1h and 366d"}
	}
	if n := c.Locks.MaxActivePerUser; n < 1 || n > 10000 {
		return &Error{Key: "locks.max_active_per_user", Reason: fmt.Sprintf("%d: must be between 1 and 10000", n)}
	}
	if c.Retention.MaxAge < 0 || c.Retention.MaxBytes < 0 {
		return &Error{Key: "retention", Reason: "limits must not be negative"}
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
		if s.MinFree.Bytes < 0 || s.MinFree.Percent < 0 || s.MinFree.Percent > 90 {
			return &Error{Key: key + ".min_free", Reason: "must be a size (like 20GiB) or a percentage of the disk between 0% and 90%"}
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

// validateLoad checks the http and live sections.
func (c *Config) validateLoad() error {
	for _, d := range []struct {
		key string
		v   Duration
	}{{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.body_timeout", c.HTTP.BodyTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}} {
		if time.Duration(d.v) < time.Second || time.Duration(d.v) > time.Hour {
			return &Error{Key: d.key, Reason: "must be between 1s and 1h"}
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"http.max_conns", c.HTTP.MaxConns}, {"http.max_conns_per_addr", c.HTTP.MaxConnsPerAddr},
		{"live.max_viewers_per_user", c.Live.MaxViewersPerUser}} {
		if n.v < 1 || n.v > 1_000_000 {
			return &Error{Key: n.key, Reason: fmt.Sprintf("%d must be between 1 and 1000000", n.v)}
		}
	}
	if c.HTTP.MaxConnsPerAddr > c.HTTP.MaxConns {
		return &Error{Key: "http.max_conns_per_addr", Reason: fmt.Sprintf("%d is more than http.max_conns (%d)", c.HTTP.MaxConnsPerAddr, c.HTTP.MaxConns)}
	}
	for i, n := range c.Live.WebRTCAllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return &Error{Key: fmt.Sprintf("live.webrtc_allow_networks[%d]", i), Reason: fmt.Sprintf("%q is not a network like 192.168.1.0/24", n)}
		}
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

// Space is a free-space amount in YAML: a size ("20GiB") or a percentage
// of the disk's size ("5%"). The zero value is no space.
type Space struct {
	Bytes   int64
	Percent float64
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (sp *Space) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSpace(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*sp = v
	return nil
}

// ParseSpace parses a size with an optional unit or a percentage.
func ParseSpace(s string) (Space, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil || f < 0 || f > 90 {
			return Space{}, fmt.Errorf("%q is not a percentage between 0%% and 90%%", s)
		}
		return Space{Percent: f}, nil
	}
	b, err := ParseBytes(s)
	if err != nil {
		return Space{}, fmt.Errorf("%q is not a size (like 20GiB) or a percentage of the disk (like 5%%)", s)
	}
	return Space{Bytes: b}, nil
}

// Of returns the amount in bytes on a disk of total bytes.
func (sp Space) Of(total int64) int64 {
	if sp.Percent > 0 {
		return int64(sp.Percent / 100 * float64(total))
	}
	return sp.Bytes
}

// String formats the amount as it would be written in the file.
func (sp Space) String() string {
	if sp.Percent > 0 {
		return strconv.FormatFloat(sp.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(sp.Bytes, 10)
}
