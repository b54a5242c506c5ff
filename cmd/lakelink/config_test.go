package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lakelink/lakelink"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestParseConfig(t *testing.T) {
	data := `
links:
  - name: crm
    source: sqlite://${DATA}/crm.db
    lake: file://${DATA}/lake/crm
    tables:
      - name: account
        mode: in-place
        partition: month
        createdon: created_at
      - name: note
        mode: append-only
    commit_interval: 2s
    snapshot_interval: 15m
    snapshot_retention: 3
    table_scan_interval: 0s
  - name: shop
    source: /srv/shop.db
    lake: /srv/lake/shop
`
	c, err := parseConfig([]byte(data), env(map[string]string{"DATA": "/srv"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []linkSpec{
		{
			Link: lakelink.Link{Name: "crm", Source: "sqlite:///srv/crm.db", Lake: "file:///srv/lake/crm", Tables: []lakelink.TableSettings{
				{Name: "account", Mode: "in-place", Partition: "month", CreatedOn: "created_at"},
				{Name: "note", Mode: "append-only"},
			}},
			CommitInterval: 2 * time.Second, SnapshotInterval: 15 * time.Minute, SnapshotRetention: 3, TableScanInterval: -1,
		},
		{
			Link:           lakelink.Link{Name: "shop", Source: "/srv/shop.db", Lake: "/srv/lake/shop"},
			CommitInterval: time.Second, SnapshotInterval: time.Hour, SnapshotRetention: 5, TableScanInterval: 10 * time.Second,
		},
	}
	if diff := cmp.Diff(want, c.specs()); diff != "" {
		t.Errorf("parseConfig specs (-want +got):\n%s", diff)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig([]byte("links:\n  - source: a.db\n    lake: ./lake\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := c.specs()[0]
	if got.Name != "default" || got.CommitInterval != time.Second || got.SnapshotInterval != time.Hour || got.SnapshotRetention != 5 {
		t.Errorf("defaults: got %+v", got)
	}
}

// An environment value is data, never YAML: it can't add fields or links.
func TestParseConfigEnvIsNotYAML(t *testing.T) {
	c, err := parseConfig([]byte("links:\n  - name: a\n    source: ${SRC}\n    lake: /l\n"),
		env(map[string]string{"SRC": "x.db\n    tables: [{name: evil}]"}))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Links[0]; len(l.Tables) != 0 || !strings.HasPrefix(l.Source, "x.db\n") {
		t.Errorf("an env value changed the structure: %+v", l)
	}
}

func TestParseConfigErrors(t *testing.T) {
	link := func(extra string) string {
		return "links:\n  - name: a\n    source: a.db\n    lake: /lake/a\n" + extra
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"no links", "links: []\n", "links: no links"},
		{"unknown field", link("    comit_interval: 1s\n"), "comit_interval"},
		{"bad lake scheme", "links:\n  - name: a\n    source: a.db\n    lake: ftp://h/x\n", `links[0].lake: scheme "ftp" not supported`},
		{"bad source scheme", "links:\n  - name: a\n    source: mysql://h/x\n    lake: /l\n", `links[0].source: scheme "mysql" not supported`},
		{"bad postgres url", "links:\n  - name: a\n    source: postgres://u:pw@h/x?sslmode=bogus\n    lake: /l\n", `links[0].source: postgres:`},
		{"missing source", "links:\n  - name: a\n    lake: /l\n", "links[0].source: empty"},
		{"missing lake", "links:\n  - name: a\n    source: a.db\n", "links[0].lake: empty"},
		{"missing name of two", link("  - source: b.db\n    lake: /lake/b\n"), `links[1].name: ""`},
		{"bad name", "links:\n  - name: A-B\n    source: a.db\n    lake: /l\n", `links[0].name: "A-B"`},
		{"duplicate name", link("  - name: a\n    source: b.db\n    lake: /lake/b\n"), "links[1].name: \"a\" is also the name of links[0]"},
		{"same lake", link("  - name: b\n    source: b.db\n    lake: file:///lake/a\n"), "links[1].lake: links[0] exports into the same lake"},
		{"table without name", link("    tables:\n      - mode: in-place\n"), "links[0].tables[0].name: empty"},
		{"duplicate table", link("    tables:\n      - name: t\n      - name: t\n"), "links[0].tables[1].name"},
		{"bad mode", link("    tables:\n      - name: t\n        mode: upsert\n"), `links[0].tables[0].mode: "upsert"`},
		{"bad partition", link("    tables:\n      - name: t\n        partition: day\n"), `links[0].tables[0].partition: "day"`},
		{"bad commit interval", link("    commit_interval: soon\n"), `links[0].commit_interval: "soon"`},
		{"negative snapshot interval", link("    snapshot_interval: -1h\n"), `links[0].snapshot_interval: "-1h"`},
		{"bad retention", link("    snapshot_retention: -2\n"), "links[0].snapshot_retention: -2"},
		{"bad table scan interval", link("    table_scan_interval: -5s\n"), `links[0].table_scan_interval: "-5s"`},
		{"unset variable", "links:\n  - name: a\n    source: ${NOPE}/a.db\n    lake: /l\n", "links[0].source: environment variable NOPE is not set"},
		{"unset variable in a table", link("    tables:\n      - name: ${T}\n"), "links[0].tables[0].name: environment variable T"},
		{"not YAML", "links: [", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseConfig(%q) = %v, want an error with %q", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestRunConfigUsageError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lakelink.yaml")
	if err := os.WriteFile(path, []byte("links:\n  - name: a\n    source: a.db\n    lake: ftp://h/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "run", "--config", path)
	if code != exitUsage || !strings.Contains(stderr, `links[0].lake: scheme "ftp" not supported`) {
		t.Errorf("run --config with a bad lake: exit %d, stderr %q; want exit 2 naming links[0].lake", code, stderr)
	}
}
