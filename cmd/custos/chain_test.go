package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
	"github.com/custos-nvr/custos/internal/sim"
	"github.com/custos-nvr/custos/internal/store"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"github.com/custos-nvr/custos/internal/testpeer"
)

// TestHashChainsAndCheck records a camera, stops, and checks the stream's
// hash chain: run start and segment entries signed by the node key that
// custos key show prints; custos check re-hashes every segment and
// passes; then one byte changed in a stored segment's video, or in its
// header, makes custos check name that segment.
func TestHashChainsAndCheck(t *testing.T) {
	simAddr := startSimulator(t, sim.Options{Cameras: 1})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\ncameras:\n  - {name: door, url: \"rtsp://%s/cam1\", sub_url: \"rtsp://%s/cam1/sub\"}\n",
		dir, simAddr, simAddr)), 0o600)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: io.Discard, log: slog.New(slog.DiscardHandler),
		env: map[string]string{"CUSTOS_ADMIN_PASSWORD": "admin-password"}}
	// Two short runs: a restart closes the open segment and starts a run.
	for i := 0; i < 2; i++ {
		srv, err := startServer(context.Background(), e, cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		srv.stop()
	}
	if !strings.Contains(out.String(), "created the node signing key") {
		t.Errorf("first start did not announce the key: %q", out.String())
	}
	code, keyOut, errOut := runCLI(t, "key", "show", "--config", cfgPath)
	if code != 0 || !strings.HasPrefix(keyOut, integrity.PublicKeyPrefix) {
		t.Fatalf("key show: %d %q %s", code, keyOut, errOut)
	}
	pub, err := integrity.ParsePublicKey(strings.Fields(keyOut)[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys", "node.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node key file: %v %v", fi.Mode(), err)
	}

	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, _ := idx.Stream(ctx, "door", "main")
	entries, heads, err := idx.ChainEntries(ctx, st.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var head *integrity.Head
	for i, en := range entries {
		kinds = append(kinds, en.Kind)
		if heads[i] != nil {
			head = heads[i]
		}
	}
	if strings.Join(kinds, " ") != "run_start segment run_start segment" {
		t.Errorf("chain of door/main: %v", kinds)
	}
	if err := integrity.VerifyChain(entries); err != nil {
		t.Errorf("chain: %v", err)
	}
	if head == nil || head.Seq != 4 || integrity.VerifyHead(pub, head) != nil {
		t.Errorf("head %+v does not verify with the shown key", head)
	}
	segs, _ := idx.Segments(ctx, st.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	idx.Close()
	if len(segs) != 2 || segs[0].State != store.SegmentClosed {
		t.Fatalf("segments: %+v", segs)
	}

	code, checkOut, errOut := runCLI(t, "check", "--config", cfgPath)
	if code != 0 || !strings.Contains(checkOut, "hash chains: 8 entries; 4 segments checked against them") || !strings.Contains(checkOut, "OK") {
		t.Fatalf("check of an untouched recording: %d\n%s%s", code, checkOut, errOut)
	}
	victim := filepath.Join(dir, "recordings", filepath.FromSlash(segs[1].Key))
	orig, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   int
		want string
	}{
		{"video", len(orig) * 2 / 3, "its video bytes changed since recording"},
		{"header", bytes.Index(orig, []byte("avcC")) + 12, "its header (ftyp/moov) changed since recording"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			b[tc.at] ^= 0x01
			os.WriteFile(victim, b, 0o644)
			defer os.WriteFile(victim, orig, 0o644)
			code, out, _ := runCLI(t, "check", "--config", cfgPath)
			if code == 0 || !strings.Contains(out, segs[1].Key+": "+tc.want) || strings.Contains(out, segs[0].Key+":") {
				t.Errorf("check after changing a byte of the %s: exit %d\n%s", tc.name, code, out)
			}
			// --no-hash skips the files (the chain itself is intact).
			if code, out, _ := runCLI(t, "check", "--config", cfgPath, "--no-hash"); code != 0 {
				t.Errorf("check --no-hash: exit %d\n%s", code, out)
			}
		})
	}

	// An evidence export of the second run verifies offline with the
	// recorder's key; a changed byte, a dropped or swapped fragment, or
	// another key fail and name the place.
	from, to := segs[1].Start.Format(time.RFC3339Nano), segs[1].End().Format(time.RFC3339Nano)
	ev := filepath.Join(dir, "evidence.mp4")
	if code, out, errOut := runCLI(t, "export", "--config", cfgPath, "--camera", "door", "--from", from, "--to", to, "-o", ev, "--evidence"); code != 0 {
		t.Fatalf("export --evidence: %d %s%s", code, out, errOut)
	}
	key := strings.Fields(keyOut)[0]
	code, vout, errOut := runCLI(t, "verify", ev, "--key", key)
	if code != 0 || !strings.Contains(vout, "OK") || !strings.Contains(vout, "door (stream main)") || !strings.Contains(vout, integrity.KeyFingerprint(pub)) {
		t.Fatalf("verify: %d\n%s%s", code, vout, errOut)
	}
	t.Logf("custos verify:\n%s", vout)
	if n, errText := testpeer.Decode(t, ev); errText != "" || int64(n) != segs[1].Frames {
		t.Errorf("ffmpeg decoded %d of %d frames of the evidence export: %s", n, segs[1].Frames, errText)
	}
	good, _ := os.ReadFile(ev)
	spans, _, err := integrity.FindFragments(good)
	if err != nil || len(spans) < 3 {
		t.Fatalf("fragments of the export: %d, %v", len(spans), err)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	cut := func(b []byte, sp [2]int64) []byte { return append(bytes.Clone(b[:sp[0]]), b[sp[1]:]...) }
	swap := func(b []byte, a, c [2]int64) []byte {
		out := bytes.Clone(b[:a[0]])
		out = append(out, b[c[0]:c[1]]...)
		out = append(out, b[a[1]:c[0]]...)
		out = append(out, b[a[0]:a[1]]...)
		return append(out, b[c[1]:]...)
	}
	flip := func(at int64) []byte { b := bytes.Clone(good); b[at] ^= 0x80; return b }
	for _, tc := range []struct {
		name string
		file []byte
		key  string
		want string
	}{
		{"byte in the video", flip(spans[2][1] - 10), key, "fragment 3 of the file"},
		{"byte in a moof", flip(spans[1][0] + 20), key, "fragment 2 of the file"},
		{"byte in the header", flip(int64(bytes.Index(good, []byte("avcC")) + 12)), key, "header (ftyp/moov)"},
		{"fragment dropped", cut(good, spans[1]), key, "fragment"},
		{"fragments swapped", swap(good, spans[1], spans[2]), key, "fragment 2 of the file"},
		{"another key", good, integrity.PublicKeyString(otherKey.Public().(ed25519.PublicKey)), "--key"},
	} {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.mp4")
			os.WriteFile(p, tc.file, 0o644)
			code, out, _ := runCLI(t, "verify", p, "--key", tc.key)
			if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, tc.want) {
				t.Errorf("verify: exit %d, want 1 naming %q:\n%s", code, tc.want, out)
			}
		})
	}

	// The server's evidence export is the same file.
	srv, err := startServer(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	remote := filepath.Join(dir, "remote-evidence.mp4")
	if code, out, errOut := runCLI(t, "export", "--url", srv.baseURL(), "--camera", "door", "--from", from, "--to", to, "-o", remote, "--evidence"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("export --url without credentials: %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "export", "--url", "http://admin:admin-password@"+srv.addr, "--camera", "door", "--from", from, "--to", to, "-o", remote, "--evidence"); code != 0 {
		t.Fatalf("export --url --evidence: %d %s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(remote); !bytes.Equal(b, good) {
		t.Errorf("the server's evidence export (%d bytes) differs from the local one (%d bytes)", len(b), len(good))
	}
}
