package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigLoads(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || time.Duration(c.FsyncInterval) != 10*time.Second || len(c.Storage) != 1 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseAndOverride(t *testing.T) {
	y := `
listen: 127.0.0.1:9000
data_dir: /tmp/x
storage:
  - {name: disk1, path: /mnt/a, min_free: 20GiB}
  - {name: disk2, path: b}
retention: {max_age: 30d}
cameras:
  - name: front
    url: rtsp://u:p@10.0.0.1/main
    sub_url: rtsp://10.0.0.1/sub
  - name: back
    url: rtsp://10.0.0.2:8554/s
    transport: udp
    allow_basic_auth: true
    retention: {max_bytes: 1.5GB, max_age: 12h}
`
	c, err := Parse([]byte(y), "test.yaml", []string{"CUSTOS_LISTEN=0.0.0.0:1234", "PATH=/bin", "CUSTOS_FSYNC_INTERVAL=2s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:1234" || time.Duration(c.FsyncInterval) != 2*time.Second {
		t.Errorf("env overrides not applied: %+v", c)
	}
	if c.HTTP.MaxConns != 1024 || c.HTTP.MaxConnsPerAddr != 128 || time.Duration(c.HTTP.IdleTimeout) != 120*time.Second ||
		time.Duration(c.HTTP.WriteTimeout) != time.Minute || c.Live.MaxViewersPerUser != 64 {
		t.Errorf("http/live defaults: %+v %+v", c.HTTP, c.Live)
	}
	c2, err := Parse([]byte("http: {max_conns: 50}\nlive: {webrtc_allow_networks: [10.0.0.0/8]}"), "t.yaml", []string{"CUSTOS_HTTP_MAX_CONNS_PER_ADDR=7"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.HTTP.MaxConns != 50 || c2.HTTP.MaxConnsPerAddr != 7 || len(c2.Live.WebRTCPrefixes()) != 1 {
		t.Errorf("http/live keys: %+v %+v", c2.HTTP, c2.Live)
	}
	if c.Storage[0].MinFree != (Space{Bytes: 20 << 30}) || c.Storage[1].Path != "/tmp/x/b" {
		t.Errorf("storage = %+v", c.Storage)
	}
	if c.Cameras[0].Storage != "disk1" || c.Cameras[1].Storage != "disk2" {
		t.Errorf("cameras not spread over disks: %+v", c.Cameras)
	}
	if time.Duration(c.Cameras[0].Retention.MaxAge) != 30*24*time.Hour {
		t.Errorf("default retention not inherited: %+v", c.Cameras[0].Retention)
	}
	if c.Cameras[0].AllowBasicAuth || !c.Cameras[1].AllowBasicAuth {
		t.Errorf("allow_basic_auth = %v, %v; want false (default), true", c.Cameras[0].AllowBasicAuth, c.Cameras[1].AllowBasicAuth)
	}
	if c.Cameras[1].Retention.MaxBytes != 1_500_000_000 || time.Duration(c.Cameras[1].Retention.MaxAge) != 12*time.Hour {
		t.Errorf("camera retention = %+v", c.Cameras[1].Retention)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct{ yaml, key string }{
		{"listen: nonsense", "listen"},
		{"fsync_interval: 1ms", "fsync_interval"},
		{"locks: {max_span: 400d}", "locks.max_span"},
		{"locks: {max_active_per_user: -1}", "locks.max_active_per_user"},
		{"log: {level: loud}", "log.level"},
		{"cameras: [{name: Front, url: rtsp://h/}]", "cameras[0].name"},
		{"cameras: [{name: a, url: rtsp://h/}, {name: a, url: rtsp://h/}]", "cameras[1].name"},
		{"cameras: [{name: a}]", "cameras[0].url"},
		{"cameras: [{name: a, url: 'http://h/'}]", "cameras[0].url"},
		{"cameras: [{name: a, url: 'rtsp://h:99999/'}]", "cameras[0].url"},
		{"cameras: [{name: a, url: 'rtsp://h/', sub_url: 'rtsp:///x'}]", "cameras[0].sub_url"},
		{"cameras: [{name: a, url: 'rtsp://h/', transport: sctp}]", "cameras[0].transport"},
		{"cameras: [{name: a, url: 'rtsp://h/', storage: nowhere}]", "cameras[0].storage"},
		{"storage: [{name: d, path: /a}, {name: d, path: /b}]", "storage[1].name"},
		{"storage: [{name: d}]", "storage[0].path"},
		{"http: {idle_timeout: 100ms}", "http.idle_timeout"},
		{"http: {write_timeout: 2h}", "http.write_timeout"},
		{"http: {max_conns: -1}", "http.max_conns"},
		{"http: {max_conns: 10, max_conns_per_addr: 20}", "http.max_conns_per_addr"},
		{"live: {max_viewers_per_user: -3}", "live.max_viewers_per_user"},
		{"live: {webrtc_allow_networks: [192.168.1.0/24, lan]}", "live.webrtc_allow_networks[1]"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), "t.yaml", nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%q: err = %v, want an error for key %s", tc.yaml, err, tc.key)
		}
	}
	for _, bad := range []string{"retention: {max_age: forever}", "retention: {max_bytes: lots}", "unknown_key: 1", "cameras: 5",
		"cameras: [{name: a, url: 'rtsp://h/', allow_basic_auth: maybe}]"} {
		if _, err := Parse([]byte(bad), "t.yaml", nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse(nil, "t.yaml", []string{"CUSTOS_HTTP_MAX_CONNS=many"}); err == nil || !strings.Contains(err.Error(), "CUSTOS_HTTP_MAX_CONNS") {
		t.Errorf("bad CUSTOS_HTTP_MAX_CONNS: err = %v", err)
	}
	if _, err := Parse(nil, "t.yaml", []string{"CUSTOS_FSYNC_INTERVAL=soon"}); err == nil || !strings.Contains(err.Error(), "CUSTOS_FSYNC_INTERVAL") {
		t.Errorf("bad env override: err = %v", err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	_, err := Parse([]byte("cameras: [{name: a, url: 'http://u:hunter2@h/'}]"), "t.yaml", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v", err)
	}
}

// TestExampleMatchesDefault keeps the repository's example file identical to
// the embedded default, so the documentation cannot drift.
func TestExampleMatchesDefault(t *testing.T) {
	b, err := os.ReadFile("../../custos.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(Default) {
		t.Error("custos.example.yaml differs from internal/config/default.yaml: copy one over the other")
	}
}

// TestRetentionDefaults: a configuration that says nothing about
// retention keeps 30 days and a 5 % free-space floor on every disk; an
// explicit 0 turns each off, and percentages are validated.
func TestRetentionDefaults(t *testing.T) {
	c, err := Parse([]byte("cameras:\n  - {name: a, url: rtsp://h/a}\n"), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.MaxAge != DefaultMaxAge || c.Cameras[0].Retention.MaxAge != DefaultMaxAge {
		t.Errorf("max_age = %v / %v, want the default %v", c.Retention.MaxAge, c.Cameras[0].Retention.MaxAge, DefaultMaxAge)
	}
	if len(c.Storage) != 1 || c.Storage[0].MinFree != DefaultMinFree {
		t.Errorf("default storage = %+v, want min_free %v", c.Storage, DefaultMinFree)
	}
	c, err = Parse([]byte(`
retention: {max_bytes: 1GiB}
storage:
  - {name: a, path: /a}
  - {name: b, path: /b, min_free: 0}
  - {name: c, path: /c, min_free: 12.5%}
`), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.MaxAge != DefaultMaxAge {
		t.Errorf("max_age absent beside max_bytes = %v, want the default", c.Retention.MaxAge)
	}
	want := []Space{DefaultMinFree, {}, {Percent: 12.5}}
	for i, w := range want {
		if c.Storage[i].MinFree != w {
			t.Errorf("storage[%d].min_free = %+v, want %+v", i, c.Storage[i].MinFree, w)
		}
	}
	if c.Storage[2].MinFree.Of(1000) != 125 || (Space{Bytes: 7}).Of(1000) != 7 {
		t.Errorf("Of: %d, %d", c.Storage[2].MinFree.Of(1000), (Space{Bytes: 7}).Of(1000))
	}
	c, err = Parse([]byte("retention: {max_age: 0}\n"), "t.yaml", nil)
	if err != nil || c.Retention.MaxAge != 0 {
		t.Errorf("explicit max_age 0 = %v, %v; want no age limit", c.Retention.MaxAge, err)
	}
	for _, bad := range []string{"95%", "-1%", "x%", "lots"} {
		_, err := Parse([]byte("storage:\n  - {name: a, path: /a, min_free: \""+bad+"\"}\n"), "t.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), "min_free") && !strings.Contains(err.Error(), bad) {
			t.Errorf("min_free %q: err = %v, want it refused naming the value", bad, err)
		}
	}
	var ce *Error
	if _, err := Parse([]byte("retention: {max_age: -1h}\n"), "t.yaml", nil); !errors.As(err, &ce) || ce.Key != "retention" {
		t.Errorf("a negative default max_age: %v, want it refused naming retention", err)
	}
	// A lower max_conns alone lowers the per-address default with it.
	if c, err := Parse([]byte("http: {max_conns: 50}\n"), "t.yaml", nil); err != nil {
		t.Errorf("max_conns 50 alone: %v, want it accepted", err)
	} else if c.HTTP.MaxConnsPerAddr != 50 {
		t.Errorf("max_conns 50 alone: per address %d, want 50", c.HTTP.MaxConnsPerAddr)
	}
	if _, err := Parse([]byte("storage:\n  - {name: a, path: /a, min_fre: 1GiB}\n"), "t.yaml", nil); err == nil {
		t.Error("an unknown key inside a storage entry was accepted")
	}
}

// TestTrustedProxies: CIDRs and single addresses are accepted, bad ones
// are refused naming the key, and CUSTOS_TRUSTED_PROXIES replaces the list.
func TestTrustedProxies(t *testing.T) {
	c, err := Parse([]byte("trusted_proxies: [127.0.0.1/32, 10.0.0.0/8, '::1', 192.168.1.7]\n"), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, p := range c.TrustedProxyPrefixes() {
		got += p.String() + " "
	}
	if got != "127.0.0.1/32 10.0.0.0/8 ::1/128 192.168.1.7/32 " {
		t.Errorf("prefixes = %q", got)
	}
	_, err = Parse([]byte("trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n"), "t.yaml", nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "trusted_proxies[1]" || !strings.Contains(ce.Reason, "CIDR") {
		t.Errorf("bad prefix: %v", err)
	}
	c, err = Parse([]byte("trusted_proxies: [10.0.0.0/8]\n"), "t.yaml", []string{"CUSTOS_TRUSTED_PROXIES=172.16.0.0/12, 127.0.0.1"})
	if err != nil || len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != "172.16.0.0/12" {
		t.Errorf("env override: %v %v", c.TrustedProxies, err)
	}
	if _, err := Parse(nil, "", []string{"CUSTOS_TRUSTED_PROXIES=proxy.local"}); !errors.As(err, &ce) || ce.Key != "trusted_proxies[0]" {
		t.Errorf("bad env value: %v", err)
	}
}
