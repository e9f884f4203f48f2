package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
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
)

// TestHashChainsAndCheck records a camera, stops, and checks the stream's
// hash chain: run start and segment entries signed by the node key that
// custos key show prints; custos check re-hashes every segment and
// passes; then one byte changed in a stored segment's video, or in its
// header, makes custos check name that segment.
func TestHashChainsAndCheck(t *testing.T) {
	s, err := sim.New(sim.Options{Cameras: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "custos.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nfsync_interval: 1s\ncameras:\n  - {name: door, url: \"rtsp://%s/cam1\", sub_url: \"rtsp://%s/cam1/sub\"}\n",
		dir, ln.Addr(), ln.Addr())), 0o600)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
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
}
