package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store/sqlite"
)

// TestConfigChangeAudited: the first start records the configuration; a
// start with the same one writes nothing; a changed camera URL and
// password, an added camera and a removed key are named in the next
// config_change entry, and no value (the password above all) is kept in
// the state file or the entry.
func TestConfigChangeAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	idx, err := sqlite.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	log, err := audit.Open(ctx, idx, filepath.Join(dir, "audit.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	load := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte("data_dir: "+dir+"\n"+yaml), "test.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	entries := func() []audit.Entry {
		es, err := log.Query(ctx, audit.Filter{Action: audit.ConfigChange, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	v1 := "retention: {max_age: 7d}\ncameras:\n  - {name: door, url: 'rtsp://cam1/s', password: hunter2-secret}\n"
	for i := 0; i < 2; i++ {
		if err := auditConfigChange(ctx, log, load(v1)); err != nil {
			t.Fatal(err)
		}
	}
	es := entries()
	if len(es) != 1 || es[0].Detail["previous"] != "none" || es[0].Detail["hash"] == "" {
		t.Fatalf("after two starts with one configuration: %+v", es)
	}
	v2 := "cameras:\n  - {name: gate, url: 'rtsp://cam2/s'}\n  - {name: door, url: 'rtsp://cam9/s', password: other-secret}\n"
	if err := auditConfigChange(ctx, log, load(v2)); err != nil {
		t.Fatal(err)
	}
	es = entries()
	if len(es) != 2 {
		t.Fatalf("after a change: %d entries", len(es))
	}
	d := es[0].Detail
	if es[0].Seq < es[1].Seq {
		d = es[1].Detail
	}
	if d["changed"] != "cameras[door].password,cameras[door].retention.max_age,cameras[door].url,retention.max_age" {
		t.Errorf("changed = %q", d["changed"])
	}
	if !strings.Contains(d["added"], "cameras[gate].url") || d["previous"] == "none" {
		t.Errorf("entry %+v", d)
	}
	t.Logf("config_change %v", d)
	state, _ := os.ReadFile(filepath.Join(dir, configStateFile))
	fi, _ := os.Stat(filepath.Join(dir, configStateFile))
	for _, secret := range []string{"hunter2", "other-secret", "cam9"} {
		if strings.Contains(string(state), secret) || strings.Contains(strings.Join(mapValues(d), " "), secret) {
			t.Errorf("%q kept in the state file or the entry", secret)
		}
	}
	if fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
