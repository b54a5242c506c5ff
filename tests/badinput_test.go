package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/tests/lakecheck"
)

// TestBadValue checks G6: a value that does not fit its column's declared
// type stops its table with an error naming the table, column, key and
// value, shown by `lakelink status --json`, while the other tables go on;
// in the stream ('abc' and 1.5 in INTEGER columns) and in the initial copy.
func TestBadValue(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary")
	}
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	mustExec(t, db,
		`CREATE TABLE good (k INTEGER PRIMARY KEY, v INTEGER)`,
		`CREATE TABLE bad1 (k INTEGER PRIMARY KEY, n INTEGER)`,
		`CREATE TABLE bad2 (k INTEGER PRIMARY KEY, n INTEGER)`,
		`CREATE TABLE bad3 (k INTEGER PRIMARY KEY, qty INTEGER)`,
		`INSERT INTO good VALUES (1, 1), (2, 2)`,
		`INSERT INTO bad1 VALUES (1, 10)`,
		`INSERT INTO bad2 VALUES (1, 10)`,
		`INSERT INTO bad3 VALUES (1, 10), (41, 'xyz'), (42, 12)`,
	)
	lake := filepath.Join(dir, "lake")
	p := startLakelink(t, dir, "run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--commit-interval", "300ms")
	waitSynced(t, p, lake, time.Minute, "good", "bad1", "bad2")
	mustExec(t, db,
		`INSERT INTO bad1 VALUES (7, 'abc')`,
		`INSERT INTO bad2 VALUES (8, 1.5)`,
		`INSERT INTO good VALUES (3, 3)`,
	)
	want := map[string][]string{ // table → what its error must name
		"bad1": {"bad1", `"n"`, "7", "abc"},
		"bad2": {"bad2", `"n"`, "8", "1.5"},
		"bad3": {"bad3", `"qty"`, "41", "xyz"},
	}
	var doc statusDoc
	ok := waitFor(15*time.Second, func() bool {
		doc = status(t, dir, lake)
		n := 0
		for _, ts := range doc.Tables {
			if want[ts.Name] != nil && ts.Error != "" {
				n++
			}
		}
		return n == len(want)
	})
	if !ok {
		t.Fatalf("status --json after 15 s: %+v; want errors on bad1, bad2, bad3; log tail:\n%s", doc.Tables, p.tail(20))
	}
	for _, ts := range doc.Tables {
		if ts.Name == "good" && ts.Error != "" {
			t.Errorf("table good stopped too: %s", ts.Error)
		}
		for _, s := range want[ts.Name] {
			if !strings.Contains(ts.Error, s) {
				t.Errorf("table %s: status error %q does not name %s", ts.Name, ts.Error, s)
			}
		}
		if want[ts.Name] != nil {
			t.Logf("table %s: %s", ts.Name, ts.Error)
		}
	}
	// The good table goes on.
	for k := 4; k <= 10; k++ {
		mustExecArgs(t, db, `INSERT INTO good VALUES (?, ?)`, k, k)
	}
	mustExec(t, db, `INSERT INTO bad1 VALUES (9, 9)`)
	goodRows := func() map[string]lakecheck.Record {
		out := map[string]lakecheck.Record{}
		data, err := os.ReadFile(filepath.Join(lake, "model.json"))
		if err != nil {
			return out
		}
		m := lakecheck.ParseModel(t, data)
		if e := m.Entity("good"); e != nil {
			recs, _ := lakecheck.ReadLive(lake, e)
			for _, r := range recs {
				out[r.Get("Id").Text] = r
			}
		}
		return out
	}
	if !waitFor(10*time.Second, func() bool { return len(goodRows()) == 10 }) {
		t.Errorf("table good: %d rows in the lake 10 s after the other tables stopped, want 10", len(goodRows()))
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	for k, r := range goodRows() {
		if r.Get("v").Text != k {
			t.Errorf("table good key %s: v %s, want %s", k, r.Get("v"), k)
		}
	}
	// Nothing wrong was written for the stopped tables.
	m, _ := lakecheck.ReadModel(t, lake)
	for table, bad := range map[string]string{"bad1": "7", "bad2": "8", "bad3": "41"} {
		e := m.Entity(table)
		if e == nil {
			continue
		}
		recs, err := lakecheck.ReadLive(lake, e)
		if err != nil {
			t.Errorf("%s: %v", table, err)
		}
		for _, r := range recs {
			if r.Get("Id").Text == bad {
				t.Errorf("table %s: the bad row %s was written to %s: %v", table, bad, r.File, r.Fields)
			}
		}
	}
}

// TestNoPrimaryKey checks that a table without a PRIMARY KEY named with
// --table makes `lakelink run` exit 1 with a message naming it and why.
func TestNoPrimaryKey(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary")
	}
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	mustExec(t, db, `CREATE TABLE nopk (a INTEGER, b TEXT)`, `INSERT INTO nopk VALUES (1, 'x')`,
		`CREATE TABLE fine (k INTEGER PRIMARY KEY)`)
	code, out := runLakelink(t, dir, 30*time.Second, "run", "--source", sourceURL(dbPath), "--lake", lakeURL(filepath.Join(dir, "lake")), "--table", "fine", "--table", "nopk")
	if code != 1 {
		t.Errorf("lakelink run --table nopk: exit %d, want 1; output:\n%s", code, shorten(out, 2000))
	}
	for _, s := range []string{"nopk", "PRIMARY KEY"} {
		if !strings.Contains(out, s) {
			t.Errorf("lakelink run --table nopk: output does not name %q:\n%s", s, shorten(out, 2000))
		}
	}
}

// TestOddTableNames checks that a table whose name has spaces, quotes,
// commas or unicode is exported exactly (entity and folder: its name in
// lower case) or refused with an error that names it, and that no name
// escapes the lake's folder.
func TestOddTableNames(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary")
	}
	lakelinkBin(t)
	names := []string{"Odd Name ünïcødé 😀", "it's", `with "quotes"`, "a,b", "שלום עולם", "../escape", "semi;colon%20"}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	vals := []string{"plain", "a,b \"q\"\nline", ""}
	for _, name := range names {
		mustExec(t, db, `CREATE TABLE `+qi(name)+` (k INTEGER PRIMARY KEY, v TEXT)`)
		for i, v := range vals {
			mustExecArgs(t, db, `INSERT INTO `+qi(name)+` VALUES (?, ?)`, i+1, v)
		}
	}
	for i, name := range names {
		lake := filepath.Join(dir, "lakes", "lake"+strconv.Itoa(i))
		code, out := runLakelink(t, dir, time.Minute, "run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--link", "l"+strconv.Itoa(i), "--table", name, "--once")
		switch code {
		case 0:
			m, _ := lakecheck.ReadModel(t, lake)
			folder := strings.ToLower(name)
			e := m.Entity(folder)
			if e == nil {
				t.Errorf("table %q: exported (exit 0) but model.json has no entity %q", name, folder)
				continue
			}
			recs, err := lakecheck.ReadLive(lake, e)
			if err != nil {
				t.Errorf("table %q: %v", name, err)
				continue
			}
			if len(recs) != len(vals) {
				t.Errorf("table %q: %d records, want %d", name, len(recs), len(vals))
			}
			for _, r := range recs {
				k, _ := strconv.Atoi(r.Get("Id").Text)
				if k < 1 || k > len(vals) {
					t.Errorf("table %q: Id %s", name, r.Get("Id"))
					continue
				}
				if want := (lakecheck.Field{Text: vals[k-1], Quoted: true}); r.Get("v") != want {
					t.Errorf("table %q key %d: v %s, want %s", name, k, r.Get("v"), want)
				}
			}
			// model.json's partition locations must lead to the Snapshot files.
			snap, err := lakecheck.ReadSnapshot(e)
			if err != nil {
				t.Errorf("table %q: a reader following model.json's locations fails: %v", name, err)
			} else if len(snap) != len(vals) {
				t.Errorf("table %q: the Snapshot files model.json names hold %d records, want %d", name, len(snap), len(vals))
			}
			t.Logf("table %q: exported exactly as entity %q", name, e.Name)
		case 1:
			if !strings.Contains(out, name) && !strings.Contains(out, strconv.Quote(name)) {
				t.Errorf("table %q: refused (exit 1) without naming it:\n%s", name, shorten(out, 1500))
				continue
			}
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "lakelink:") {
					line = l
				}
			}
			t.Logf("table %q: refused: %s", name, line)
		default:
			t.Errorf("table %q: exit %d, want 0 (exported) or 1 (refused); output:\n%s", name, code, shorten(out, 1500))
		}
	}
	// No name escaped its lake: the test dir holds only what the test made.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch n := e.Name(); {
		case n == "lakes" || strings.HasPrefix(n, "app.db") || strings.HasPrefix(n, "lakelink-"):
		default:
			t.Errorf("%s appeared beside the lakes: a table name escaped its lake folder", filepath.Join(dir, n))
		}
	}
	lakesEntries, _ := os.ReadDir(filepath.Join(dir, "lakes"))
	for _, e := range lakesEntries {
		if !strings.HasPrefix(e.Name(), "lake") {
			t.Errorf("%s appeared beside the lakes: a table name escaped its lake folder", filepath.Join(dir, "lakes", e.Name()))
		}
	}
}
