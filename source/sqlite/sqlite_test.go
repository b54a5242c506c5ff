package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/source/sourcetest"
	"github.com/lakelink/lakelink/source/sqlite"
)

// newDB creates a WAL-mode database file, opens it as a source, and returns
// the application's own connection to it.
func newDB(t testing.TB) (*sqlite.Source, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	app.SetMaxOpenConns(1) // the application: one connection of its own
	t.Cleanup(func() { app.Close() })
	if err := app.Ping(); err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), path, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src, app
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("exec %q: %v", q, err)
	}
}

type harness struct{}

func (harness) Open(t testing.TB) (lakelink.Source, func(testing.TB, string)) {
	src, app := newDB(t)
	return src, func(t testing.TB, q string) { t.Helper(); mustExec(t, app, q) }
}

func TestConformance(t *testing.T) { sourcetest.Run(t, harness{}) }

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"sqlite:///srv/app.db", "/srv/app.db", false},
		{"SQLITE:///srv/my%20app.db", "/srv/my app.db", false},
		{"/srv/app.db", "/srv/app.db", false},
		{"app.db", "app.db", false},
		{"sqlite://srv/app.db", "", true},
		{"sqlite:app.db", "", true},
		{"sqlite:///srv/app.db?mode=ro", "", true},
		{"postgres://host/db", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := sqlite.ParseURL(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseURL(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.db"), dir, notDB} {
		if src, err := sqlite.Open(context.Background(), path, nil); err == nil {
			src.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the missing file")
	}
}

// next reads changes until n row changes arrived and returns them all.
func next(t testing.TB, st lakelink.Stream, n int) []lakelink.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []lakelink.Change
	for rows := 0; rows < n; {
		c, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d row changes: %v", rows, n, err)
		}
		got = append(got, c)
		if c.Op != lakelink.OpSchema && c.Op != lakelink.OpCommit {
			rows++
		}
	}
	return got
}

// commitAfter reads up to the next commit and returns its position.
func commitAfter(t testing.TB, st lakelink.Stream) lakelink.Position {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if c.Op == lakelink.OpCommit {
			return c.Pos
		}
		if c.Op != lakelink.OpSchema {
			t.Fatalf("unexpected %v before the commit", c.Op)
		}
	}
}

// rowsOf keeps the row changes.
func rowsOf(cs []lakelink.Change) []lakelink.Change {
	var out []lakelink.Change
	for _, c := range cs {
		if c.Op != lakelink.OpSchema && c.Op != lakelink.OpCommit {
			out = append(out, c)
		}
	}
	return out
}

// start tracks the tables and returns a stream from a snapshot of the first.
func start(t testing.TB, src *sqlite.Source, link string, tables ...string) lakelink.Stream {
	t.Helper()
	ctx := context.Background()
	if err := src.Track(ctx, link, tables); err != nil {
		t.Fatalf("Track: %v", err)
	}
	sn, err := src.Snapshot(ctx, link, tables[0])
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	pos := sn.Position()
	sn.Close()
	st, err := src.Stream(ctx, link, pos)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// snapshotRows reads a whole snapshot.
func snapshotRows(t testing.TB, src *sqlite.Source, link, table string) (lakelink.Table, [][]lakelink.Value) {
	t.Helper()
	sn, err := src.Snapshot(context.Background(), link, table)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer sn.Close()
	var rows [][]lakelink.Value
	for {
		r, err := sn.Next()
		if err == io.EOF {
			return sn.Table(), rows
		}
		if err != nil {
			t.Fatalf("Snapshot.Next: %v", err)
		}
		rows = append(rows, append([]lakelink.Value(nil), r...))
	}
}

// bad stands for any BadValue in a want.
type badT struct{}

var bad = badT{}

func sameValue(got, want lakelink.Value) bool {
	if want == bad {
		b, ok := got.(lakelink.BadValue)
		return ok && b.Reason != "" && b.Raw != nil
	}
	if w, ok := want.(float64); ok {
		g, ok := got.(float64)
		return ok && math.Float64bits(g) == math.Float64bits(w)
	}
	return cmp.Equal(got, want)
}

func TestStorageClasses(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, `CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, bl BLOB, b BOOLEAN,
		d DECIMAL(30,10), dt DATE, ts DATETIME, tm TIME, j JSON, u)`)
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	// The literal goes through the column's affinity, as the application's
	// value would.
	tests := []struct {
		col, lit string
		want     lakelink.Value
	}{
		{"i", "42", int64(42)},
		{"i", "'42'", int64(42)}, // INTEGER affinity makes it an integer
		{"i", "2.0", int64(2)},   // and this
		{"i", "9223372036854775807", int64(math.MaxInt64)},
		{"i", "-9223372036854775808", int64(math.MinInt64)},
		{"i", "1.5", bad},
		{"i", "'abc'", bad},
		{"i", "x'01'", bad},
		{"i", "NULL", nil},
		{"f", "1.5", 1.5},
		{"f", "3", 3.0},
		{"f", "1e308", 1e308},
		{"f", "5e-324", 5e-324},
		{"f", "-1e308", -1e308},
		{"f", "'abc'", bad},
		{"f", "x'01'", bad},
		{"s", "'héllo ✓'", "héllo ✓"},
		{"s", "''", ""},
		{"s", "42", "42"}, // TEXT affinity stores the text
		{"s", "CAST(x'ff' AS TEXT)", bad},
		{"s", "x'00'", bad},
		{"bl", "x'0001'", []byte{0, 1}},
		{"bl", "x''", []byte{}},
		{"bl", "'text'", bad},
		{"bl", "5", bad},
		{"b", "TRUE", true},
		{"b", "0", false},
		{"b", "'1'", true}, // NUMERIC affinity
		{"b", "2", bad},
		{"b", "'yes'", bad},
		{"d", "12.5", "12.5"},
		{"d", "42", "42"},
		{"d", "'12345678901234567890.1234567891'", "12345678901234567000"}, // NUMERIC affinity made it a REAL on insert
		{"d", "'12.5abc'", bad},
		{"d", "1e20", "100000000000000000000"},
		{"d", "'abc'", bad},
		{"dt", "'2021-06-25'", utc("2021-06-25T00:00:00Z")},
		{"dt", "'2021-13-01'", bad},
		{"dt", "'2021-06-25 10:00:00'", bad}, // the driver would have parsed this
		{"dt", "20210625", bad},
		{"ts", "'2021-06-25 16:21:12'", utc("2021-06-25T16:21:12Z")},
		{"ts", "'2021-06-25T16:21:12.123456789Z'", utc("2021-06-25T16:21:12.123456789Z")},
		{"ts", "'2021-06-25 18:21:12+02:00'", utc("2021-06-25T16:21:12Z")},
		{"ts", "1624638072", utc("2021-06-25T16:21:12Z")},
		{"ts", "datetime(1624638072, 'unixepoch')", utc("2021-06-25T16:21:12Z")},
		{"ts", "'yesterday'", bad},
		{"ts", "1.5", bad},
		{"tm", "'16:21:12'", time.Date(0, 1, 1, 16, 21, 12, 0, time.UTC)},
		{"j", `'{"a": [1, 2]}'`, `{"a": [1, 2]}`},
		{"j", `'{bad'`, bad},
		{"u", "'x'", "x"},
		{"u", "42", "42"},
		{"u", "-0.5", "-0.5"},
		{"u", "x'01'", bad},
	}
	st := start(t, src, "l", "v")
	for i, tt := range tests {
		mustExec(t, app, fmt.Sprintf("INSERT INTO v(id, %s) VALUES (%d, %s)", tt.col, i+1, tt.lit))
	}
	changes := next(t, st, len(tests))
	table, snap := snapshotRows(t, src, "l", "v")
	if len(snap) != len(tests) {
		t.Fatalf("snapshot has %d rows, want %d", len(snap), len(tests))
	}
	schema := changes[0].Schema
	if schema == nil || !cmp.Equal(schema, &table) {
		t.Fatalf("stream schema %+v\nsnapshot table %+v", schema, table)
	}
	for i, c := range rowsOf(changes) {
		tt := tests[i]
		col := table.ColumnIndex(tt.col)
		for _, got := range []struct {
			where string
			row   []lakelink.Value
		}{{"stream", c.Row}, {"snapshot", snap[i]}} {
			if !sameValue(got.row[col], tt.want) {
				t.Errorf("%s: %s declared %s = %s: got %#v, want %#v", got.where, tt.col, table.Columns[col].Type, tt.lit, got.row[col], tt.want)
			}
			for j, v := range got.row {
				if j != col && j != 0 && v != nil {
					t.Errorf("%s: row %d column %s = %#v, want NULL", got.where, i+1, table.Columns[j].Name, v)
				}
			}
		}
	}

	// -0.0: what SQLite keeps of it is what comes out.
	mustExec(t, app, "INSERT INTO v(id, f, u) VALUES (1000, -0.0, -0.0)")
	var direct float64
	if err := app.QueryRow("SELECT f FROM v WHERE id = 1000").Scan(&direct); err != nil {
		t.Fatal(err)
	}
	c := rowsOf(next(t, st, 1))[0]
	if got := c.Row[2].(float64); math.Float64bits(got) != math.Float64bits(direct) {
		t.Errorf("-0.0 in a REAL column: got %v (sign %v), SQLite holds %v (sign %v)", got, math.Signbit(got), direct, math.Signbit(direct))
	}
}

func TestLargeValues(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, "CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT, b BLOB)")
	st := start(t, src, "l", "big")
	text := strings.Repeat("lakelink ✓ ", 1<<20/len("lakelink ✓ ")+1)[:1<<20]
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	mustExec(t, app, "INSERT INTO big VALUES (1, ?, ?)", text, blob)
	c := rowsOf(next(t, st, 1))[0]
	_, snap := snapshotRows(t, src, "l", "big")
	for _, row := range [][]lakelink.Value{c.Row, snap[0]} {
		if row[1] != text || !cmp.Equal(row[2], blob) {
			t.Errorf("1 MiB values did not round trip: text %d bytes, blob %T", len(fmt.Sprint(row[1])), row[2])
		}
	}
}

func TestOddNames(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	table := `we"ird 'tåble ✓`
	mustExec(t, app, `CREATE TABLE "we""ird 'tåble ✓" ("k ey" INTEGER PRIMARY KEY, "col ""1""" TEXT, "ñ" INTEGER, seq TEXT, "c_seq" TEXT)`)
	st := start(t, src, "odd_1", table)
	mustExec(t, app, `INSERT INTO "we""ird 'tåble ✓" VALUES (1, 'a', 2, 's', 'cs')`)
	mustExec(t, app, `UPDATE "we""ird 'tåble ✓" SET "ñ" = 3 WHERE "k ey" = 1`)
	mustExec(t, app, `ALTER TABLE "we""ird 'tåble ✓" ADD COLUMN "new ""col"" 🙂" TEXT`)
	if err := src.Track(ctx, "odd_1", []string{table}); err != nil { // re-install now
		t.Fatalf("Track after ALTER: %v", err)
	}
	// The connection that ran ALTER TABLE sees the new triggers once it
	// reads (see the package doc).
	mustExec(t, app, `SELECT count(*) FROM "we""ird 'tåble ✓"`)
	mustExec(t, app, `UPDATE "we""ird 'tåble ✓" SET "new ""col"" 🙂" = 'n' WHERE "k ey" = 1`)
	mustExec(t, app, `DELETE FROM "we""ird 'tåble ✓"`)
	got := next(t, st, 4)
	var ops []string
	for _, c := range got {
		if c.Table != table && c.Op != lakelink.OpCommit {
			t.Errorf("change names table %q, want %q", c.Table, table)
		}
		switch c.Op {
		case lakelink.OpSchema:
			var names []string
			for _, col := range c.Schema.Columns {
				names = append(names, col.Name)
			}
			ops = append(ops, "schema "+strings.Join(names, "|"))
		case lakelink.OpCommit:
		default:
			ops = append(ops, fmt.Sprintf("%v %v", c.Op, c.Row))
		}
	}
	want := []string{
		`schema k ey|col "1"|ñ|seq|c_seq`,
		"insert [1 a 2 s cs]",
		"update [1 a 3 s cs]",
		`schema k ey|col "1"|ñ|seq|c_seq|new "col" 🙂`,
		"update [1 a 3 s cs n]",
		"delete [1 a 3 s cs n]",
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestCompositeKeys(t *testing.T) {
	for _, withoutRowid := range []bool{false, true} {
		t.Run(fmt.Sprintf("withoutRowid=%v", withoutRowid), func(t *testing.T) {
			src, app := newDB(t)
			ddl := "CREATE TABLE c (a TEXT NOT NULL, b INTEGER NOT NULL, v TEXT, PRIMARY KEY (b, a))"
			if withoutRowid {
				ddl += " WITHOUT ROWID"
			}
			mustExec(t, app, ddl)
			mustExec(t, app, "INSERT INTO c VALUES ('x', 1, 'before')")
			st := start(t, src, "l", "c")
			mustExec(t, app, "INSERT INTO c VALUES ('y', 2, 'v')")
			mustExec(t, app, "UPDATE c SET v = 'w' WHERE a = 'y'")
			mustExec(t, app, "UPDATE c SET a = 'z' WHERE a = 'y'")
			mustExec(t, app, "DELETE FROM c WHERE a = 'x'")
			got := next(t, st, 5)
			if s := got[0].Schema; s == nil || !cmp.Equal(s.Key, []int{1, 0}) {
				t.Fatalf("first change %+v, want a schema with key [1 0] (b, a)", got[0])
			}
			var ops []string
			for _, c := range rowsOf(got) {
				ops = append(ops, fmt.Sprintf("%v %v", c.Op, c.Row))
			}
			want := []string{"insert [y 2 v]", "update [y 2 w]", "delete [y 2 w]", "update [z 2 w]", "delete [x 1 before]"}
			if diff := cmp.Diff(want, ops); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInsertOrReplace(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, "CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)")
	st := start(t, src, "l", "r")
	mustExec(t, app, "INSERT INTO r VALUES (1, 'a')")
	mustExec(t, app, "INSERT OR REPLACE INTO r VALUES (1, 'b')")
	mustExec(t, app, "REPLACE INTO r VALUES (1, 'c')")
	mustExec(t, app, "INSERT INTO r VALUES (1, 'd') ON CONFLICT (id) DO UPDATE SET v = excluded.v")
	mustExec(t, app, "INSERT OR IGNORE INTO r VALUES (1, 'ignored')")
	mustExec(t, app, "INSERT INTO r VALUES (2, 'e')")
	var ops []string
	for _, c := range rowsOf(next(t, st, 7)) {
		ops = append(ops, fmt.Sprintf("%v %v", c.Op, c.Row))
	}
	// A replace deletes the old row (with its image, so the engine knows its
	// partition); an upsert is an update; an ignored insert is nothing.
	want := []string{"insert [1 a]", "delete [1 a]", "insert [1 b]", "delete [1 b]", "insert [1 c]", "update [1 d]", "insert [2 e]"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func count(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestAckTrims(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	mustExec(t, app, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)")
	st := start(t, src, "l", "a")
	for i := 1; i <= 10; i++ {
		mustExec(t, app, "INSERT INTO a VALUES (?, 'v')", i)
	}
	next(t, st, 10)
	pos := commitAfter(t, st)
	if n := count(t, app, "SELECT count(*) FROM _lakelink_l_log"); n == 0 {
		t.Fatalf("log is empty before Ack")
	}
	if err := st.Ack(ctx, pos); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n := count(t, app, "SELECT count(*) FROM _lakelink_l_log WHERE seq <= ?", int64(pos)); n != 0 {
		t.Errorf("log holds %d entries at or before the acknowledged %d", n, pos)
	}
	if n := count(t, app, "SELECT count(*) FROM _lakelink_l_rows_1 WHERE seq <= ?", int64(pos)); n != 0 {
		t.Errorf("shadow table holds %d rows at or before the acknowledged %d", n, pos)
	}

	// Positions keep growing after the trim.
	mustExec(t, app, "INSERT INTO a VALUES (11, 'v')")
	c := rowsOf(next(t, st, 1))[0]
	if c.Pos <= pos {
		t.Errorf("change after the trim at %d, not after %d", c.Pos, pos)
	}

	// A stream from before the trim, or from beyond the log, is refused
	// (from 0, "nothing exported yet", starts at the log's oldest change).
	for _, from := range []lakelink.Position{pos - 1, c.Pos + 100} {
		if st2, err := src.Stream(ctx, "l", from); err == nil {
			st2.Close()
			t.Errorf("Stream from %d succeeded; the log holds %d..%d", from, pos+1, c.Pos)
		}
	}
	st2, err := src.Stream(ctx, "l", pos)
	if err != nil {
		t.Fatalf("Stream from the acknowledged %d: %v", pos, err)
	}
	defer st2.Close()
	if c2 := rowsOf(next(t, st2, 1))[0]; c2.Pos != c.Pos {
		t.Errorf("resumed stream starts at %d, want %d", c2.Pos, c.Pos)
	}
}

// TestSchemaGuard: after ALTER TABLE the triggers refuse writes until tracking
// is re-installed, so a drop and an add that keep the column count are never
// captured under the old columns.
func TestSchemaGuard(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	mustExec(t, app, "CREATE TABLE g (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
	st := start(t, src, "l", "g")
	mustExec(t, app, "INSERT INTO g VALUES (1, 'a', 'b')")
	mustExec(t, app, "ALTER TABLE g DROP COLUMN b")
	mustExec(t, app, "ALTER TABLE g ADD COLUMN c TEXT")
	_, err := app.Exec("INSERT INTO g VALUES (2, 'a', 'c')")
	if err == nil || !strings.Contains(err.Error(), "lakelink: table") {
		t.Fatalf("write after DROP and ADD COLUMN: %v; want lakelink's refusal", err)
	}
	mustExec(t, app, "ALTER TABLE g RENAME COLUMN a TO aa")
	if err := src.Track(ctx, "l", []string{"g"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	mustExec(t, app, "INSERT INTO g VALUES (2, 'a', 'c')")
	got := next(t, st, 2)
	var ops []string
	for _, c := range got {
		switch c.Op {
		case lakelink.OpSchema:
			var names []string
			for _, col := range c.Schema.Columns {
				names = append(names, col.Name)
			}
			ops = append(ops, "schema "+strings.Join(names, " "))
		case lakelink.OpCommit:
		default:
			ops = append(ops, fmt.Sprintf("%v %v", c.Op, c.Row))
		}
	}
	want := []string{"schema id a b", "insert [1 a b]", "schema id aa c", "insert [2 a c]"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// TestForeignKeyRename: renaming a parent table rewrites the child's CREATE
// statement without changing its columns; the stream re-installs the
// child's tracking and the application's writes go on.
func TestForeignKeyRename(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, "CREATE TABLE parent (id INTEGER PRIMARY KEY)")
	mustExec(t, app, "CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id))")
	st := start(t, src, "l", "child")
	mustExec(t, app, "ALTER TABLE parent RENAME TO parent2")
	done := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := app.Exec("INSERT INTO child VALUES (1, NULL)")
			if err == nil || time.Now().After(deadline) {
				done <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
			app.Exec("SELECT count(*) FROM child")
		}
	}()
	got := rowsOf(next(t, st, 1))
	if err := <-done; err != nil {
		t.Fatalf("write to child after renaming its parent: %v", err)
	}
	if got[0].Op != lakelink.OpInsert || got[0].Table != "child" {
		t.Errorf("got %v of %q", got[0].Op, got[0].Table)
	}
}

func TestRecreatedTable(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	mustExec(t, app, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	st := start(t, src, "l", "t")
	mustExec(t, app, "INSERT INTO t VALUES (1, 'a')")
	next(t, st, 1)
	// The usual way to change a column's type in SQLite.
	for _, q := range []string{"BEGIN", "CREATE TABLE t_new (id INTEGER PRIMARY KEY, v INTEGER)", "INSERT INTO t_new SELECT id, 1 FROM t",
		"DROP TABLE t", "ALTER TABLE t_new RENAME TO t", "COMMIT"} {
		mustExec(t, app, q)
	}
	if err := src.Track(ctx, "l", []string{"t"}); err == nil || !strings.Contains(err.Error(), "tracking was removed") {
		t.Errorf("Track after the table was recreated: %v; want an error saying its tracking was removed", err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		c, err := st.Next(ctx2)
		if err != nil {
			if !strings.Contains(err.Error(), "tracking was removed") {
				t.Errorf("Next after the table was recreated: %v; want an error saying its tracking was removed", err)
			}
			break
		}
		if c.Op != lakelink.OpCommit {
			t.Fatalf("Next after the table was recreated: %+v", c)
		}
	}
}

func TestTables(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	mustExec(t, app, "CREATE TABLE keyed (id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, app, "CREATE TABLE keyless (v TEXT)")
	mustExec(t, app, "CREATE VIEW vw AS SELECT * FROM keyed")
	virtual := true
	if _, err := app.Exec("CREATE VIRTUAL TABLE docs USING fts5(body)"); err != nil {
		t.Logf("no FTS5 (%v): skipping the virtual table", err)
		virtual = false
	}
	if err := src.Track(ctx, "l", []string{"keyed"}); err != nil {
		t.Fatal(err)
	}
	infos, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ti := range infos {
		if strings.HasPrefix(ti.Name, "_lakelink_") || strings.HasPrefix(ti.Name, "sqlite_") || ti.Name == "vw" {
			t.Errorf("Tables lists %q", ti.Name)
		}
		got[ti.Name] = ti.Reason
		if ti.Linkable != (ti.Reason == "") {
			t.Errorf("%s: Linkable %v with reason %q", ti.Name, ti.Linkable, ti.Reason)
		}
	}
	if got["keyed"] != "" || !strings.Contains(got["keyless"], "PRIMARY KEY") {
		t.Errorf("keyed: %q, keyless: %q", got["keyed"], got["keyless"])
	}
	if virtual {
		if !strings.Contains(got["docs"], "virtual table") {
			t.Errorf("docs: %q; want a reason saying it is a virtual table", got["docs"])
		}
		if r, ok := got["docs_data"]; !ok || !strings.Contains(r, "shadow") {
			t.Errorf("docs_data: %q; want a reason saying it is a shadow table", r)
		}
		var nl *lakelink.NotLinkableError
		if err := src.Track(ctx, "l", []string{"docs"}); !errors.As(err, &nl) {
			t.Errorf("Track(docs) = %v, want a NotLinkableError", err)
		}
	}
	if err := src.Track(ctx, "Bad-Link", []string{"keyed"}); err == nil {
		t.Errorf("Track with link name Bad-Link succeeded")
	}
}

func TestUntrack(t *testing.T) {
	src, app := newDB(t)
	ctx := context.Background()
	mustExec(t, app, "CREATE TABLE a (id INTEGER PRIMARY KEY)")
	mustExec(t, app, "CREATE TABLE b (id INTEGER PRIMARY KEY)")
	st := start(t, src, "l", "a", "b")
	mustExec(t, app, "INSERT INTO a VALUES (1)")
	if err := src.Untrack(ctx, "l", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, app, "INSERT INTO a VALUES (2)")
	mustExec(t, app, "INSERT INTO b VALUES (1)")
	// a's change logged before Untrack is skipped; b's comes.
	got := rowsOf(next(t, st, 1))
	if got[0].Table != "b" {
		t.Errorf("after untracking a, got %v of %q", got[0].Op, got[0].Table)
	}
	if err := src.Untrack(ctx, "l", nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, app, `SELECT count(*) FROM sqlite_schema WHERE name LIKE '\_lakelink\_%' ESCAPE '\'`); n != 0 {
		t.Errorf("%d lakelink objects left after Untrack(nil)", n)
	}
	mustExec(t, app, "INSERT INTO b VALUES (2)")
	if err := src.Untrack(ctx, "l", nil); err != nil {
		t.Errorf("second Untrack: %v", err)
	}
}

// TestLatency: a change is seen well within a second.
func TestLatency(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	st := start(t, src, "l", "t")
	go func() {
		time.Sleep(200 * time.Millisecond) // the stream is waiting by now
		app.Exec("INSERT INTO t VALUES (1)")
	}()
	begin := time.Now()
	next(t, st, 1)
	if d := time.Since(begin) - 200*time.Millisecond; d > time.Second {
		t.Errorf("change noticed after %v", d)
	}
}

// series numbers the rows of s from the first argument to the second.
const series = "WITH RECURSIVE s(value) AS (SELECT ? UNION ALL SELECT value + 1 FROM s WHERE value < ?) "

func BenchmarkSnapshot(b *testing.B) {
	const n = 200_000
	src, app := newDB(b)
	mustExec(b, app, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, f REAL, d DATETIME, note TEXT)")
	mustExec(b, app, series+`INSERT INTO t SELECT value, 'name ' || value, value * 7, value / 3.0, datetime(1600000000 + value, 'unixepoch'), 'a note'
		FROM s`, 1, n)
	if err := src.Track(context.Background(), "l", []string{"t"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		_, rows := snapshotRows(b, src, "l", "t")
		if len(rows) != n {
			b.Fatalf("%d rows", len(rows))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkStream(b *testing.B) {
	const n = 50_000
	src, app := newDB(b)
	mustExec(b, app, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, f REAL, d DATETIME, note TEXT)")
	st := start(b, src, "l", "t")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mustExec(b, app, series+`INSERT INTO t SELECT value, 'name ' || value, value * 7, value / 3.0, datetime(1600000000 + value, 'unixepoch'), 'a note'
			FROM s`, i*n+1, (i+1)*n)
		b.StartTimer()
		var last lakelink.Position
		for rows := 0; rows < n; {
			c, err := st.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			switch c.Op {
			case lakelink.OpInsert:
				rows++
			case lakelink.OpCommit:
				last = c.Pos
			}
		}
		if c, err := st.Next(ctx); err != nil || c.Op != lakelink.OpCommit {
			b.Fatalf("%+v %v", c, err)
		} else {
			last = c.Pos
		}
		if err := st.Ack(ctx, last); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkAppInsert measures what tracking costs the application's writes,
// also in a database with 500 other tables (the triggers' guard reads
// sqlite_schema).
func BenchmarkAppInsert(b *testing.B) {
	for _, bb := range []struct {
		tracked bool
		others  int
	}{{false, 0}, {true, 0}, {true, 500}} {
		b.Run(fmt.Sprintf("tracked=%v/others=%d", bb.tracked, bb.others), func(b *testing.B) {
			src, app := newDB(b)
			mustExec(b, app, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
			for i := range bb.others {
				mustExec(b, app, fmt.Sprintf("CREATE TABLE other%d (id INTEGER PRIMARY KEY, v TEXT)", i))
			}
			if bb.tracked {
				if err := src.Track(context.Background(), "l", []string{"t"}); err != nil {
					b.Fatal(err)
				}
			}
			const n = 10_000
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				mustExec(b, app, series+"INSERT INTO t SELECT value, 'name', value FROM s", i*n+1, (i+1)*n)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestShortDeadlines calls Next with deadlines that expire while it reads:
// the stream must stay usable and deliver every change exactly once.
func TestShortDeadlines(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
	st := start(t, src, "dl", "t")
	const n = 3000
	for i := 0; i < n; i += 100 {
		tx, _ := app.Begin()
		for j := i; j < i+100; j++ {
			if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?)`, j, strings.Repeat("x", 200)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+len(seen)%5)*time.Millisecond)
		c, err := st.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatalf("Next after short deadlines: %v", err)
		}
		if c.Op == lakelink.OpInsert {
			id := c.Row[0].(int64)
			if seen[id] {
				t.Fatalf("row %d delivered twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("got %d of %d rows", len(seen), n)
	}
}

// TestParallelSnapshot reads a table wide enough to be read by several
// connections while the application keeps writing, then applies the stream
// from the snapshot's position: the result must be the table's final state.
func TestParallelSnapshot(t *testing.T) {
	src, app := newDB(t)
	mustExec(t, app, `CREATE TABLE w (id INTEGER PRIMARY KEY, v INTEGER)`)
	tx, _ := app.Begin()
	for id := 0; id <= 1_000_000; id += 500 { // a rowid span past the parallel threshold
		if _, err := tx.Exec(`INSERT INTO w VALUES (?, 0)`, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Track(ctx, "p", []string{"w"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the application: updates, inserts and deletes all over the table
		defer close(done)
		for i := 1; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := (i * 7919) % 1_000_000
			app.Exec(`INSERT INTO w VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v`, id, i)
			if i%5 == 0 {
				app.Exec(`DELETE FROM w WHERE id = ?`, (i*104729)%1_000_000)
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	sn, err := src.Snapshot(ctx, "p", "w")
	if err != nil {
		t.Fatal(err)
	}
	if typ := fmt.Sprintf("%T", sn); !strings.Contains(typ, "multi") {
		t.Fatalf("snapshot is a %s, want the parallel one for this table", typ)
	}
	got := map[int64]int64{}
	for {
		row, err := sn.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id := row[0].(int64)
		if _, dup := got[id]; dup {
			t.Fatalf("row %d twice in the snapshot", id)
		}
		got[id] = row[1].(int64)
	}
	pos := sn.Position()
	sn.Close()
	close(stop)
	<-done
	st, err := src.Stream(ctx, "p", pos)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		c, err := st.Next(cctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch c.Op {
		case lakelink.OpInsert, lakelink.OpUpdate:
			got[c.Row[0].(int64)] = c.Row[1].(int64)
		case lakelink.OpDelete:
			delete(got, c.Row[0].(int64))
		}
	}
	want := map[int64]int64{}
	rows, err := app.Query(`SELECT id, v FROM w`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, v int64
		rows.Scan(&id, &v)
		want[id] = v
	}
	rows.Close()
	if len(got) != len(want) {
		t.Fatalf("snapshot + stream give %d rows, the table has %d", len(got), len(want))
	}
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("row %d: snapshot + stream give %d, the table has %d", id, got[id], v)
		}
	}
}
