package config

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzParse runs Parse on arbitrary YAML (and one environment override):
// it must not panic, and what it accepts must hold what the rest of the
// server relies on: camera names valid and unique, every camera's storage
// configured, storage names unique with a path, an RTSP URL per camera,
// durations and sizes not negative. An error never carries a camera
// password given in the input.
func FuzzParse(f *testing.F) {
	for _, tc := range []string{
		"listen: 127.0.0.1:8080\ndata_dir: /var/lib/custos\ncameras:\n  - {name: door, url: \"rtsp://u:hunter2@cam/1\", sub_url: \"rtsp://cam/2\", transport: udp, storage: usb, retention: {max_age: 30d, max_bytes: 500GB}}\nstorage:\n  - {name: usb, path: /mnt/usb, min_free: 10GiB}\n",
		"fsync_interval: 1s\nlog: {level: debug}\ntls: {self_signed: true}\nmetrics: {public: true}\n",
		"retention: {max_age: 72h, max_bytes: 1TiB}\n",
		"http: {idle_timeout: 90s, max_conns: 100, max_conns_per_addr: 10}\nlive: {max_viewers_per_user: 4, webrtc_allow_networks: [10.0.0.0/8]}\n",
		"cameras: [{name: a, url: 'rtsp://h/'}, {name: a, url: 'rtsp://h/'}]",
		"storage: [{name: d, path: /a}, {name: d, path: /b}]",
		"cameras: 5", "{", "",
	} {
		f.Add(tc, "")
		f.Add(tc, "CUSTOS_FSYNC_INTERVAL=2s")
		f.Add(tc, "CUSTOS_HTTP_MAX_CONNS=0")
	}
	nameRE := regexp.MustCompile(`^[a-z0-9_-]+$`)
	f.Fuzz(func(t *testing.T, yaml, env string) {
		var envs []string
		if env != "" {
			envs = []string{env}
		}
		c, err := Parse([]byte(yaml), "fuzz.yaml", envs)
		if err != nil {
			if strings.Contains(yaml, "hunter2") && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error carries the password: %v", err)
			}
			return
		}
		disks := map[string]bool{}
		for _, s := range c.Storage {
			if s.Name == "" || s.Path == "" || disks[s.Name] {
				t.Fatalf("storage %+v accepted (names so far %v)", s, disks)
			}
			disks[s.Name] = true
		}
		seen := map[string]bool{}
		for _, cam := range c.Cameras {
			if !nameRE.MatchString(cam.Name) || seen[cam.Name] {
				t.Fatalf("camera name %q accepted (seen %v)", cam.Name, seen)
			}
			seen[cam.Name] = true
			if !strings.HasPrefix(strings.ToLower(cam.URL), "rtsp") {
				t.Fatalf("camera %s: URL %q accepted", cam.Name, cam.URL)
			}
			if cam.Storage != "" && !disks[cam.Storage] {
				t.Fatalf("camera %s: storage %q not configured", cam.Name, cam.Storage)
			}
			if cam.Retention.MaxAge < 0 || cam.Retention.MaxBytes < 0 {
				t.Fatalf("camera %s: negative retention %+v", cam.Name, cam.Retention)
			}
		}
		// The listener and timeouts need positive bounds (zero would mean
		// none, or close every connection).
		if c.HTTP.MaxConns < 1 || c.HTTP.MaxConnsPerAddr < 1 || c.HTTP.MaxConnsPerAddr > c.HTTP.MaxConns ||
			c.Live.MaxViewersPerUser < 1 || c.HTTP.IdleTimeout <= 0 || c.HTTP.ReadHeaderTimeout <= 0 ||
			c.HTTP.BodyTimeout <= 0 || c.HTTP.WriteTimeout <= 0 || len(c.Live.WebRTCPrefixes()) != len(c.Live.WebRTCAllowNetworks) {
			t.Fatalf("accepted http %+v live %+v", c.HTTP, c.Live)
		}
		if c.FsyncInterval <= 0 || c.Retention.MaxAge < 0 || c.Retention.MaxBytes < 0 {
			t.Fatalf("accepted fsync %v retention %+v", c.FsyncInterval, c.Retention)
		}
	})
}
