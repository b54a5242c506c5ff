package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/file"
)

func TestLiteralSecret(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want string // "" when it holds no secret
	}{
		{"sqlite:///srv/app.db", ""},
		{"/srv/app.db", ""},
		{"/srv/${ENV}/app.db", ""},
		{"postgres://app@db.example.com:5432/crm?sslmode=require", ""},
		{"postgres://app:${PGPASSWORD}@db.example.com/crm", ""},
		{"postgres://app:${A}${B}@db/crm", ""},
		{"postgres://app:@db/crm", ""},
		{"postgres://app:s3cret@db.example.com/crm", "a password"},
		{"postgres://app:pre${PGPASSWORD}@db/crm", "a password"},
		{"postgres://db/crm?password=s3cret", `the query parameter "password"`},
		{"postgres://db/crm?password=${PGPASSWORD}&sslmode=disable", ""},
		{"postgres://db/crm?sslpassword=", ""},
		{"s3://lake/crm?endpoint=http://127.0.0.1:7070&region=us-east-1&path-style=true", ""},
		{"azure://acct/lake/crm?endpoint=http://127.0.0.1:10000/acct", ""},
		{"azure://acct/lake/crm?sig=abc", `the query parameter "sig"`},
		{"host=db password=s3cret dbname=crm", "a password"},
		{"host=db password='${PGPASSWORD}' dbname=crm", ""},
	} {
		if got := literalSecret(tt.url); got != tt.want {
			t.Errorf("literalSecret(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestWithoutRedacted(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"/srv/app.db", "/srv/app.db"},
		{"sqlite:///srv/redacted.db", "sqlite:///srv/redacted.db"},
		{"postgres://db.example.com:5432/crm?sslmode=require", "postgres://db.example.com:5432/crm?sslmode=require"},
		{"postgres://db/crm?password=redacted&sslmode=disable", "postgres://db/crm?sslmode=disable"},
		{"postgres://db/crm?application_name=redacted", "postgres://db/crm?application_name=redacted"},
	} {
		if got := withoutRedacted(tt.url); got != tt.want {
			t.Errorf("withoutRedacted(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for _, tt := range []struct {
		d    string
		want string
	}{{"1s", "1s"}, {"500ms", "500ms"}, {"1h", "1h"}, {"10m", "10m"}, {"1h30m", "1h30m"}, {"90s", "1m30s"}, {"2h0m1s", "2h0m1s"}} {
		d, err := time.ParseDuration(tt.d)
		if err != nil {
			t.Fatal(err)
		}
		if got := shortDuration(d); got != tt.want {
			t.Errorf("shortDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTableProblems(t *testing.T) {
	id := lakelink.Column{Name: "id", Kind: lakelink.KindInt64, Type: "INTEGER"}
	table := func(name string, linkable bool, cols ...lakelink.Column) lakelink.TableInfo {
		ti := lakelink.TableInfo{Table: lakelink.Table{Name: name, Columns: append([]lakelink.Column{id}, cols...), Key: []int{0}}, Linkable: linkable}
		if !linkable {
			ti.Reason = "no primary key: add one"
		}
		return ti
	}
	infos := []lakelink.TableInfo{
		table("item", true, lakelink.Column{Name: "createdon", Kind: lakelink.KindDateTime, Type: "DATETIME"}),
		table("event", true, lakelink.Column{Name: "at", Kind: lakelink.KindInt64, Type: "INTEGER"}),
		table("Note", true),
		table("nokey", false),
		table("bad/name", true),
	}
	for _, tt := range []struct {
		name   string
		tables []lakelink.TableSettings
		want   []tableProblem
	}{
		{"all fine", []lakelink.TableSettings{{Name: "item", CreatedOn: "createdon", Partition: "month"}, {Name: "event", Mode: "append-only"}}, nil},
		{"no tables", nil, nil},
		{"missing", []lakelink.TableSettings{{Name: "gone"}}, []tableProblem{{"gone", "no such table in the source"}}},
		{"other case", []lakelink.TableSettings{{Name: "note"}}, []tableProblem{{"note", `no such table in the source (there is "Note": names are case-sensitive)`}}},
		{"not linkable", []lakelink.TableSettings{{Name: "nokey"}}, []tableProblem{{"nokey", "no primary key: add one"}}},
		{"bad name", []lakelink.TableSettings{{Name: "bad/name"}}, []tableProblem{{"bad/name", export.Unlinkable(infos[4])}}},
		{"createdon missing", []lakelink.TableSettings{{Name: "item", CreatedOn: "created_at"}}, []tableProblem{{"item", `its createdOn column "created_at" does not exist`}}},
		{"createdon not a time", []lakelink.TableSettings{{Name: "event", CreatedOn: "at"}}, []tableProblem{{"event", `its createdOn column "at" is INTEGER (int64), not a date or timestamp`}}},
		{"several, in order", []lakelink.TableSettings{{Name: "nokey"}, {Name: "item"}, {Name: "gone"}}, []tableProblem{{"nokey", "no primary key: add one"}, {"gone", "no such table in the source"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tableProblems(infos, tt.tables)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(tableProblem{})); diff != "" {
				t.Errorf("tableProblems (-want +got):\n%s", diff)
			}
		})
	}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLinkUsage(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "links:\n  - name: crm\n    source: /a.db\n    lake: /lake\n")
	two := writeFile(t, dir, "two.yaml", "links:\n  - {name: a, source: /a.db, lake: /la}\n  - {name: b, source: /b.db, lake: /lb}\n")
	unknown := writeFile(t, dir, "unknown.yaml", "links:\n  - name: crm\n    source: /a.db\n    lake: /lake\n    comit_interval: 1s\n")
	badMode := writeFile(t, dir, "badmode.yaml", "links:\n  - name: crm\n    source: /a.db\n    lake: /lake\n    tables:\n      - {name: item, mode: upsert}\n")
	empty := writeFile(t, dir, "empty.yaml", "")
	db := filepath.Join(dir, "x.db")
	for _, tt := range []struct {
		name string
		args []string
		want string // in stderr
		hint string
	}{
		{"no subcommand", []string{"link"}, "no command given; use export or import", "'lakelink link --help'"},
		{"unknown subcommand", []string{"link", "move"}, `unknown command "move" for "lakelink link"`, "'lakelink link --help'"},
		{"export without lake", []string{"link", "export"}, "--lake is required", "'lakelink link export --help'"},
		{"export bad lake", []string{"link", "export", "--lake", "ftp://x/y"}, `scheme "ftp" not supported`, "'lakelink link export --help'"},
		{"export argument", []string{"link", "export", "--lake", dir, "extra"}, `unexpected argument "extra"`, "'lakelink link export --help'"},
		{"export lake env not set", []string{"link", "export", "--lake", "/srv/${LAKELINK_TEST_UNSET_VAR}/lake"}, "--lake: ${LAKELINK_TEST_UNSET_VAR}: the environment variable is not set", "export --help"},
		{"export source with a password", []string{"link", "export", "--lake", dir, "--source", "postgres://app:s3cret@db/crm"},
			"--source postgres://db/crm holds a password, which would be written into the config file: give it as a ${VAR} placeholder", "export --help"},
		{"export source with a secret parameter", []string{"link", "export", "--lake", dir, "--source", "postgres://db/crm?password=s3cret"},
			`holds the query parameter "password"`, "export --help"},
		{"import without file", []string{"link", "import", "--source", db, "--lake", dir}, "give the config file to import", "'lakelink link import --help'"},
		{"import two files", []string{"link", "import", good, good}, "one config file at a time", "import --help"},
		{"import without source and lake", []string{"link", "import", good}, "--source and --lake are required", "import --help"},
		{"import without lake", []string{"link", "import", good, "--source", db}, "--lake is required", "import --help"},
		{"import without source", []string{"link", "import", good, "--lake", dir}, "--source is required", "import --help"},
		{"import source with a password", []string{"link", "import", good, "--source", "postgres://app:s3cret@db/crm", "--lake", dir}, "--source postgres://db/crm holds a password", "import --help"},
		{"import bad source", []string{"link", "import", good, "--source", "mysql://db/crm", "--lake", dir}, `--source mysql://db/crm: scheme "mysql" not supported`, "import --help"},
		{"import bad name", []string{"link", "import", good, "--source", db, "--lake", dir, "--name", "Prod-CRM"}, `--name "Prod-CRM": use 1 to 40 lower-case letters`, "import --help"},
		{"import missing file", []string{"link", "import", filepath.Join(dir, "nope.yaml"), "--source", db, "--lake", dir}, "nope.yaml: no such file or directory", "import --help"},
		{"import empty file", []string{"link", "import", empty, "--source", db, "--lake", dir}, "empty.yaml: the file is empty", "import --help"},
		{"import two links", []string{"link", "import", two, "--source", db, "--lake", dir}, `two.yaml: links: 2 links ("a", "b"); import takes a file of one link`, "import --help"},
		{"import unknown field", []string{"link", "import", unknown, "--source", db, "--lake", dir}, "field comit_interval not found", "import --help"},
		{"import bad mode", []string{"link", "import", badMode, "--source", db, "--lake", dir}, `badmode.yaml: links[0].tables[0].mode: "upsert"`, "import --help"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Fatalf("lakelink %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(tt.args, " "), code, exitUsage, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, tt.hint) {
				t.Errorf("lakelink %s: stderr does not hold %q and %q:\n%s", strings.Join(tt.args, " "), tt.want, tt.hint, stderr)
			}
			if strings.Contains(stdout+stderr, "s3cret") {
				t.Errorf("lakelink %s shows the password:\n%s\n%s", strings.Join(tt.args, " "), stdout, stderr)
			}
		})
	}
}

// makeShopDB creates a SQLite database with the tables of the round trip:
// item (a createdon column), event (a timestamp "at"), note (no time
// column) and nokey (no primary key), with rows rows in each. changes
// alter the schema for the tests of tables that can't be linked.
func makeShopDB(t *testing.T, rows int, changes ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := map[string]string{
		"item":  `CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, createdon DATETIME)`,
		"event": `CREATE TABLE event (id INTEGER PRIMARY KEY, kind TEXT, at DATETIME)`,
		"note":  `CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)`,
		"nokey": `CREATE TABLE nokey (a TEXT, b INTEGER)`,
	}
	for _, c := range changes { // "table=CREATE ..." replaces, "table=" drops
		name, stmt, _ := strings.Cut(c, "=")
		schema[name] = stmt
	}
	for name, stmt := range schema {
		if stmt == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		for i := range rows {
			if _, err := db.Exec(insertFor(name, i)); err != nil {
				t.Fatalf("insert into %s: %v", name, err)
			}
		}
	}
	return path
}

// insertFor is an INSERT of row i into one of makeShopDB's tables.
func insertFor(table string, i int) string {
	month := 1 + i%12
	switch table {
	case "item":
		return fmt.Sprintf(`INSERT INTO item VALUES (%d, 'item %d', '2021-%02d-04 05:06:07')`, i+1, i, month)
	case "event":
		return fmt.Sprintf(`INSERT INTO event VALUES (%d, 'kind %d', '2022-%02d-01 00:00:00')`, i+1, i, month)
	case "note":
		return fmt.Sprintf(`INSERT INTO note VALUES (%d, 'note %d')`, i+1, i)
	}
	return fmt.Sprintf(`INSERT INTO %s VALUES ('x%d', %d)`, table, i, i)
}

// lakeState reads the export state of the lake in dir.
func lakeState(t *testing.T, dir string) *export.State {
	t.Helper()
	ctx := context.Background()
	lake, err := file.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	st, err := export.ReadState(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// settingsOf returns the table settings a lake's state records, by table.
func settingsOf(st *export.State) map[string]lakelink.TableSettings {
	m := map[string]lakelink.TableSettings{}
	for name, ts := range st.Tables {
		m[name] = lakelink.TableSettings{Name: ts.Source, Mode: ts.Mode, Partition: ts.Partition, CreatedOn: ts.CreatedOn}
	}
	return m
}

// A link carried from one environment to another: run a link with
// per-table settings on one SQLite database, export it from its lake,
// import it for a second database with the same tables, run that, and the
// second lake has the same tables with the same settings.
func TestLinkRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name     string
		tables   string   // the tables: part of the first link's config
		rename   string   // --name for the import, or ""
		wantLink string   // the second lake's link
		want     []string // the exported table settings, as YAML lines
	}{
		{
			name: "named tables with settings",
			tables: `    tables:
      - {name: item, partition: month}
      - {name: event, mode: append-only, partition: month, createdon: at}
      - {name: note}
`,
			wantLink: "shop",
			want: []string{
				"      - name: event\n        mode: append-only\n        partition: month\n        createdon: at\n",
				"      - name: item\n        mode: in-place\n        partition: month\n        createdon: createdon\n",
				"      - name: note\n        mode: append-only\n",
			},
		},
		{
			name:     "every table, renamed",
			rename:   "shop_prod",
			wantLink: "shop_prod",
			want: []string{
				"      - name: event\n        mode: append-only\n",
				"      - name: item\n        mode: in-place\n        partition: year\n        createdon: createdon\n",
				"      - name: note\n        mode: append-only\n",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db1, db2 := makeShopDB(t, 5), makeShopDB(t, 2)
			lake1, lake2 := filepath.Join(dir, "lake1"), filepath.Join(dir, "lake2")
			cfg1 := writeFile(t, dir, "env1.yaml", "links:\n  - name: shop\n    source: sqlite://"+db1+"\n    lake: file://"+lake1+"\n"+tt.tables)
			if code, stdout, stderr := runCLI(t, "run", "--config", cfg1, "--once"); code != exitOK {
				t.Fatalf("run --config %s --once: exit code %d\nstdout:\n%s\nstderr:\n%s", cfg1, code, stdout, stderr)
			}

			// Export: the link as the lake's state records it.
			exported := filepath.Join(dir, "shop-link.yaml")
			code, stdout, stderr := runCLI(t, "link", "export", "--lake", "file://"+lake1, "-o", exported)
			if code != exitOK {
				t.Fatalf("link export: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "wrote "+exported+": link shop with 3 tables") {
				t.Errorf("link export says %q, want what it wrote", stdout)
			}
			data, err := os.ReadFile(exported)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			for _, want := range append([]string{
				"  - name: shop\n    source: sqlite://" + db1 + "\n    lake: file://" + lake1 + "\n    tables:\n",
				"    commit_interval: 1s\n    snapshot_interval: 1h\n    snapshot_retention: 5\n",
				"# does not record the intervals",
			}, tt.want...) {
				if !strings.Contains(text, want) {
					t.Errorf("the exported file does not hold %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "nokey") || strings.Contains(text, "table_scan_interval") {
				t.Errorf("the exported file names a table the link does not have, or a scan interval:\n%s", text)
			}
			// It is a config file lakelink runs as it is.
			if _, err := parseConfig(data, env(nil)); err != nil {
				t.Errorf("the exported file is not a valid config: %v\n%s", err, text)
			}

			// Import into the second environment, and run it.
			args := []string{"link", "import", exported, "--source", db2, "--lake", "file://" + lake2, "-o", filepath.Join(dir, "env2.yaml")}
			if tt.rename != "" {
				args = append(args, "--name", tt.rename)
			}
			code, stdout, stderr = runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("link import: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "link "+tt.wantLink+" with 3 tables that can be linked in "+db2) || !strings.Contains(stdout, "lakelink run --config "+filepath.Join(dir, "env2.yaml")) {
				t.Errorf("link import says %q, want what it wrote and how to run it", stdout)
			}
			if code, stdout, stderr := runCLI(t, "run", "--config", filepath.Join(dir, "env2.yaml"), "--once"); code != exitOK {
				t.Fatalf("run --config env2.yaml --once: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			st1, st2 := lakeState(t, lake1), lakeState(t, lake2)
			if st2.Link != tt.wantLink || st2.Source != db2 {
				t.Errorf("second lake: link %q of source %q, want %q of %q", st2.Link, st2.Source, tt.wantLink, db2)
			}
			if diff := cmp.Diff(settingsOf(st1), settingsOf(st2)); diff != "" {
				t.Errorf("table settings differ between the lakes (-first +second):\n%s", diff)
			}
			for name, ts := range st2.Tables {
				if ts.InitialSync != export.SyncCompleted || ts.Rows != 2 || ts.Error != "" {
					t.Errorf("second lake, table %s: %s, %d rows, error %q; want Completed with the second database's 2 rows", name, ts.InitialSync, ts.Rows, ts.Error)
				}
			}
		})
	}
}

// An export names the source it is given, with its ${VAR}s as they are.
func TestLinkExportSource(t *testing.T) {
	dir := t.TempDir()
	db := makeShopDB(t, 1)
	lake := filepath.Join(dir, "lake")
	if code, _, stderr := runCLI(t, "run", "--source", db, "--lake", lake, "--link", "shop", "--table", "item", "--once"); code != exitOK {
		t.Fatalf("run --once: exit code %d\n%s", code, stderr)
	}
	t.Setenv("LAKELINK_TEST_LAKE", lake)
	for _, tt := range []struct {
		name   string
		source string // --source, or ""
		lake   string
		want   []string
	}{
		{"the state's source", "", lake, []string{"source: " + db + "\n", "lake: " + lake + "\n"}},
		{"a password placeholder", "postgres://app:${PGPASSWORD}@db.example.com:5432/shop?sslmode=require", lake,
			[]string{"source: postgres://app:${PGPASSWORD}@db.example.com:5432/shop?sslmode=require\n"}},
		{"a lake placeholder", "", "${LAKELINK_TEST_LAKE}", []string{"lake: ${LAKELINK_TEST_LAKE}\n", "# ${LAKELINK_TEST_LAKE}.\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"link", "export", "--lake", tt.lake}
			if tt.source != "" {
				args = append(args, "--source", tt.source)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("link export: exit code %d\n%s", code, stderr)
			}
			for _, w := range append(tt.want, "# lakelink link \"shop\"", "    tables:\n      - name: item\n        mode: in-place\n") {
				if !strings.Contains(stdout, w) {
					t.Errorf("link export printed no %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// A lake without an export, or not there, fails (exit 1) and says so.
func TestLinkExportNoLink(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ lake, want string }{
		{dir, "holds no lakelink export"},
		{filepath.Join(dir, "nope"), "no such folder"},
	} {
		code, stdout, stderr := runCLI(t, "link", "export", "--lake", tt.lake)
		if code != exitFailure || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("link export --lake %s: exit code %d, stdout %q, stderr %q; want 1 saying %q", tt.lake, code, stdout, stderr, tt.want)
		}
	}
}

// Import checks the link's tables in the new source: each that can't be
// linked there is named with the reason, and nothing is written.
func TestLinkImportTables(t *testing.T) {
	dir := t.TempDir()
	link := writeFile(t, dir, "shop-link.yaml", `links:
  - name: shop
    source: /elsewhere/shop.db
    lake: /elsewhere/lake
    tables:
      - {name: item, mode: in-place, partition: month, createdon: createdon}
      - {name: event, mode: append-only, partition: month, createdon: at}
      - {name: note, mode: append-only}
    commit_interval: 2s
`)
	for _, tt := range []struct {
		name    string
		changes []string // to makeShopDB's schema
		want    []string // in stderr; none: the import succeeds
	}{
		{"all there", nil, nil},
		{"one missing", []string{"event="}, []string{"1 of 3 tables can't be linked in source ", "\n  event: no such table in the source\n"}},
		{"every kind of problem", []string{
			"event=CREATE TABLE event (id INTEGER PRIMARY KEY, kind TEXT, at INTEGER)",
			"note=CREATE TABLE note (id INTEGER, body TEXT)",
			"item=CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)",
		}, []string{
			"3 of 3 tables can't be linked in source ",
			"\n  item: its createdOn column \"createdon\" does not exist",
			"\n  event: its createdOn column \"at\" is INTEGER (int64), not a date or timestamp",
			"\n  note: ",
			"Fix them in the source, or remove them from the file; nothing was written",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := makeShopDB(t, 0, tt.changes...)
			out := filepath.Join(t.TempDir(), "lakelink.yaml")
			code, stdout, stderr := runCLI(t, "link", "import", link, "--source", "sqlite://"+db, "--lake", "/srv/lake/shop", "-o", out)
			_, statErr := os.Stat(out)
			if len(tt.want) == 0 {
				if code != exitOK || statErr != nil {
					t.Fatalf("link import: exit code %d, output file: %v\nstdout:\n%s\nstderr:\n%s", code, statErr, stdout, stderr)
				}
				data, _ := os.ReadFile(out)
				c, err := parseConfig(data, env(nil))
				if err != nil {
					t.Fatalf("the imported file is not a valid config: %v\n%s", err, data)
				}
				want := LinkConfig{
					Link: lakelink.Link{Name: "shop", Source: "sqlite://" + db, Lake: "/srv/lake/shop", Tables: []lakelink.TableSettings{
						{Name: "item", Mode: "in-place", Partition: "month", CreatedOn: "createdon"},
						{Name: "event", Mode: "append-only", Partition: "month", CreatedOn: "at"},
						{Name: "note", Mode: "append-only"},
					}},
					CommitInterval: "2s", SnapshotInterval: "1h0m0s", SnapshotRetention: 5, TableScanInterval: "10s", // with defaults, as parsed
				}
				if diff := cmp.Diff([]LinkConfig{want}, c.Links); diff != "" {
					t.Errorf("the imported link (-want +got):\n%s", diff)
				}
				return
			}
			if code != exitFailure {
				t.Fatalf("link import: exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("link import: stderr does not hold %q:\n%s", w, stderr)
				}
			}
			if statErr == nil {
				t.Errorf("link import wrote %s although tables can't be linked", out)
			}
		})
	}
}

// Without -o the config goes to stdout, the password placeholder as it is;
// the source is opened with it expanded.
func TestLinkImportStdout(t *testing.T) {
	dir := t.TempDir()
	db := makeShopDB(t, 0)
	link := writeFile(t, dir, "link.yaml", "links:\n  - name: shop\n    source: /x.db\n    lake: /x\n    tables: [{name: note}]\n")
	t.Setenv("LAKELINK_TEST_DB_DIR", filepath.Dir(db))
	code, stdout, stderr := runCLI(t, "link", "import", link, "--source", "sqlite://${LAKELINK_TEST_DB_DIR}/shop.db", "--lake", "/srv/lake")
	if code != exitOK {
		t.Fatalf("link import: exit code %d\n%s", code, stderr)
	}
	for _, w := range []string{"# lakelink link \"shop\", made by \"lakelink link import\" from link.yaml", "source: sqlite://${LAKELINK_TEST_DB_DIR}/shop.db\n", "lake: /srv/lake\n", "  - name: note\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("link import printed no %q:\n%s", w, stdout)
		}
	}
}

// PostgreSQL: import checks the tables in the new source, opened with the
// password from a ${VAR} that the written file keeps as it is.
func TestLinkImportPostgres(t *testing.T) {
	testenv.Slow(t)
	ctx := context.Background()
	src, db := pgDatabase(t)
	for _, q := range []string{
		`CREATE TABLE orders (id bigint PRIMARY KEY, placed_at timestamptz, note text)`,
		`CREATE SCHEMA sales`,
		`CREATE TABLE sales.items (id bigint PRIMARY KEY, sku text)`,
		`CREATE TABLE nokey (a text)`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Setenv("LAKELINK_TEST_PGPASSWORD", pgSecret)
	withRef := strings.Replace(src, ":"+pgSecret+"@", ":${LAKELINK_TEST_PGPASSWORD}@", 1)
	if withRef == src {
		t.Fatalf("no password in %s", src)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		source string
		tables string
		code   int
		want   []string // in stderr (failure) or in the written file (success)
	}{
		{"literal password", src, "[{name: orders}]", exitUsage, []string{"holds a password, which would be written into the config file"}},
		{"tables that can't be linked", withRef, "[{name: orders, createdon: note}, {name: nokey}, {name: items}, {name: sales.items}]", exitFailure, []string{
			"3 of 4 tables can't be linked in source postgres://",
			"\n  orders: its createdOn column \"note\" is text (string), not a date or timestamp",
			"\n  nokey: ",
			"\n  items: no such table in the source",
		}},
		{"all fine", withRef, "[{name: orders, mode: in-place, partition: month, createdon: placed_at}, {name: sales.items, mode: append-only}]", exitOK, []string{
			"source: postgres://", ":${LAKELINK_TEST_PGPASSWORD}@",
			"      - name: orders\n        mode: in-place\n        partition: month\n        createdon: placed_at\n",
			"      - name: sales.items\n        mode: append-only\n",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			link := writeFile(t, dir, "link.yaml", "links:\n  - name: shop\n    source: /x.db\n    lake: /x\n    tables: "+tt.tables+"\n")
			out := filepath.Join(t.TempDir(), "lakelink.yaml")
			code, stdout, stderr := runCLI(t, "link", "import", link, "--source", tt.source, "--lake", filepath.Join(dir, "lake"), "-o", out)
			noSecret(t, "link import", stdout, stderr)
			if code != tt.code {
				t.Fatalf("link import: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			got := stderr
			if code == exitOK {
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				got = string(data)
				noSecret(t, "the imported file", got)
			} else if _, err := os.Stat(out); err == nil {
				t.Errorf("link import wrote %s although it failed", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("link import: no %q in:\n%s", w, got)
				}
			}
		})
	}
}
