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
	if c.Storage[0].MinFree != 20<<30 || c.Storage[1].Path != "/tmp/x/b" {
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
