package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/internal/testenv"
)

// TestDemo runs the demo for a few seconds and checks that it made a lake
// with a model.json and that its summary names the tables.
func TestDemo(t *testing.T) {
	testenv.Slow(t)
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "demo", "--dir", dir, "--duration", "3s")
	if code != exitOK {
		t.Fatalf("demo: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	model := filepath.Join(dir, "lake", "model.json")
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatalf("demo made no model.json: %v", err)
	}
	m, err := cdm.ParseModel(data)
	if err != nil {
		t.Fatalf("demo's model.json: %v", err)
	}
	for _, table := range []string{"account", "contact", "accountcontact"} {
		if !strings.Contains(stdout, table) {
			t.Errorf("demo summary does not mention %s:\n%s", table, stdout)
		}
		if e, ok := m.Entity(table); !ok || len(e.Partitions) == 0 {
			t.Errorf("model.json has no partitions of %s", table)
		}
	}
	for _, want := range []string{model, "read_csv(", "header = false", "'revenue': 'DECIMAL(14,2)'", "InPlaceUpdate", "AppendOnly"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo summary does not mention %q:\n%s", want, stdout)
		}
	}

	// A second demo in the same folder is refused without --force.
	code, _, stderr = runCLI(t, "demo", "--dir", dir, "--duration", "1s")
	if code != exitFailure || !strings.Contains(stderr, "--force") {
		t.Errorf("second demo in %s: exit code %d, stderr %q; want 1 suggesting --force", dir, code, stderr)
	}
}

// makeDB creates a small SQLite database in WAL mode with a linkable table
// item (3 rows) and a table without a primary key.
func makeDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC(8,2), createdon DATETIME)`,
		`INSERT INTO item VALUES (1, 'pen', 1.50, '2021-03-04 05:06:07'), (2, '', NULL, '2022-01-01 00:00:00'), (3, NULL, 3, NULL)`,
		`CREATE TABLE nokey (a TEXT, b INTEGER)`,
		`INSERT INTO nokey VALUES ('x', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

// TestRunOnceThenStatus exports a small database with run --once and reads
// the result back with status --json.
func TestRunOnceThenStatus(t *testing.T) {
	dbPath := makeDB(t)
	lakeDir := filepath.Join(t.TempDir(), "lake")

	code, stdout, stderr := runCLI(t, "run", "--source", "sqlite://"+dbPath, "--lake", "file://"+lakeDir, "--once")
	if code != exitOK {
		t.Fatalf("run --once: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// The table without a key is named in a warning, and the run goes on.
	if !strings.Contains(stderr, "nokey") || !strings.Contains(stderr, "WARN") {
		t.Errorf("run --once did not warn about table nokey:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(lakeDir, "model.json")); err != nil {
		t.Errorf("run --once made no model.json: %v", err)
	}

	code, stdout, stderr = runCLI(t, "status", "--lake", lakeDir, "--json")
	if code != exitOK {
		t.Fatalf("status --json: exit code %d\nstderr:\n%s", code, stderr)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	if st.Link != "default" || len(st.Tables) != 1 {
		t.Fatalf("status --json: link %q with %d tables, want link default with 1 table:\n%s", st.Link, len(st.Tables), stdout)
	}
	tb := st.Tables[0]
	if tb.Name != "item" || tb.Rows != 3 || tb.InitialSync != "Completed" || tb.Mode != "in-place" || tb.Partition != "year" || tb.Error != "" {
		t.Errorf("status --json: table %+v, want item, 3 rows, Completed, in-place, year, no error", tb)
	}
	if tb.LastSnapshot == nil || st.LastSnapshot == nil {
		t.Errorf("status --json: no snapshot after run --once:\n%s", stdout)
	}

	// The human form is an aligned table with the same facts.
	code, stdout, _ = runCLI(t, "status", "--lake", "file://"+lakeDir)
	if code != exitOK || !strings.Contains(stdout, "TABLE") || !strings.Contains(stdout, "item") || !strings.Contains(stdout, "Completed") {
		t.Errorf("status: exit code %d, output:\n%s", code, stdout)
	}

	// tables: item can be linked, nokey can't, and says why.
	code, stdout, stderr = runCLI(t, "tables", "--source", dbPath, "--json")
	if code != exitOK {
		t.Fatalf("tables --json: exit code %d\n%s", code, stderr)
	}
	var tl struct {
		Tables []tableJSON `json:"tables"`
	}
	if err := json.Unmarshal([]byte(stdout), &tl); err != nil {
		t.Fatalf("tables --json: %v\n%s", err, stdout)
	}
	got := map[string]tableJSON{}
	for _, x := range tl.Tables {
		got[x.Name] = x
	}
	if !got["item"].Linkable || got["nokey"].Linkable || got["nokey"].Reason == "" {
		t.Errorf("tables --json: %+v; want item linkable and nokey not, with a reason", tl.Tables)
	}
}

// A table named with --table that can't be linked is an error.
func TestRunNamedTableNotLinkable(t *testing.T) {
	dbPath := makeDB(t)
	for _, table := range []string{"nokey", "missing"} {
		lakeDir := filepath.Join(t.TempDir(), "lake")
		code, _, stderr := runCLI(t, "run", "--source", dbPath, "--lake", lakeDir, "--table", table, "--once")
		if code != exitFailure || !strings.Contains(stderr, table) {
			t.Errorf("run --table %s --once: exit code %d, stderr %q; want 1 naming the table", table, code, stderr)
		}
	}
}

// Several links from a config file run at once; one that fails makes the
// exit code 1 and the others still finish.
func TestRunConfigOnce(t *testing.T) {
	dbPath := makeDB(t)
	dir := t.TempDir()
	t.Setenv("LAKELINK_TEST_DB", dbPath)
	cfg := `links:
  - name: good
    source: ${LAKELINK_TEST_DB}
    lake: ` + filepath.Join(dir, "good") + `
    tables:
      - name: item
        mode: append-only
  - name: bad
    source: ${LAKELINK_TEST_DB}
    lake: ` + filepath.Join(dir, "bad") + `
    tables:
      - name: nokey
`
	path := filepath.Join(dir, "lakelink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "run", "--config", path, "--once")
	if code != exitFailure || !strings.Contains(stderr, "bad") {
		t.Errorf("run --config with a bad link: exit code %d, stderr %q; want 1 naming link bad", code, stderr)
	}
	if !strings.Contains(stdout, "link good") {
		t.Errorf("run --config: the good link did not finish:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "status", "--lake", filepath.Join(dir, "good"), "--json")
	var st statusJSON
	if code != exitOK || json.Unmarshal([]byte(stdout), &st) != nil || len(st.Tables) != 1 || st.Tables[0].Mode != "append-only" || st.Tables[0].Rows != 3 {
		t.Errorf("status of the good link: exit code %d:\n%s", code, stdout)
	}
}

// Without --once, run exports changes as they come and exits 0 when its
// context is canceled (SIGINT/SIGTERM in main).
func TestRunUntilCanceled(t *testing.T) {
	dbPath := makeDB(t)
	lakeDir := filepath.Join(t.TempDir(), "lake")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"run", "--source", dbPath, "--lake", lakeDir, "--table", "item", "--commit-interval", "100ms"}, io.Discard, &stderr)
	}()
	// waitRows waits until status shows the table with n rows.
	waitRows := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, stdout, _ := runCLI(t, "status", "--lake", lakeDir, "--json")
			var st statusJSON
			if code == exitOK && json.Unmarshal([]byte(stdout), &st) == nil && len(st.Tables) == 1 && st.Tables[0].Rows == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lake did not reach %d rows in 20 s; status:\n%s\nrun's log:\n%s", n, stdout, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitRows(3) // the initial copy
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO item VALUES (4, 'new', 9.99, '2023-05-06 07:08:09')`); err != nil {
		t.Fatal(err)
	}
	waitRows(4) // a change, through the stream
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("run after cancel: exit code %d, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30 s of cancel")
	}
}
