package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/source/sourcetest"
)

// harness gives each test a database of its own on the server at
// PG_TEST_DSN, dropped with its slots at the end of the test.
type harness struct{}

func (harness) Open(t testing.TB) (lakelink.Source, func(testing.TB, string)) {
	src, exec, _ := newDB(t)
	return src, exec
}

// newDB creates a database and returns a source on it, a function that runs
// SQL on it as the application would, and its URL.
func newDB(t testing.TB) (*Source, func(testing.TB, string), string) {
	t.Helper()
	dsn := testenv.Need(t, "PG_TEST_DSN")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	db := strings.ToLower(sourcetest.Name("lakelink_test"))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		admin.Close(ctx)
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close(ctx)
		// Slots keep a database from being dropped; a closed stream's
		// server process may still hold its slot for a moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := admin.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", db)
			var n int
			if err == nil {
				err = admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db).Scan(&n)
			}
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("drop the slots of %s: %v (%d left)", db, err, n)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", db, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PG_TEST_DSN: %v", err)
	}
	u.Path = "/" + db
	src, err := Open(ctx, u.String(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	app, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect %s: %v", db, err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	exec := func(t testing.TB, sql string) {
		t.Helper()
		if _, err := app.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return src, exec, u.String()
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, harness{})
}

// read returns every row of a snapshot and its position.
func read(t *testing.T, src *Source, link, table string) (lakelink.Table, [][]lakelink.Value, lakelink.Position) {
	t.Helper()
	sn, err := src.Snapshot(context.Background(), link, table)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", table, err)
	}
	defer sn.Close()
	var rows [][]lakelink.Value
	for {
		row, err := sn.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Snapshot.Next: %v", err)
		}
		rows = append(rows, append([]lakelink.Value(nil), row...))
	}
	return sn.Table(), rows, sn.Position()
}

// changes reads n row changes from st, skipping schema changes and
// commits, and returns them with the last schema delivered.
func changes(t *testing.T, st lakelink.Stream, n int) ([]lakelink.Change, *lakelink.Table) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []lakelink.Change
	var schema *lakelink.Table
	for len(got) < n {
		c, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Stream.Next after %d of %d row changes: %v", len(got), n, err)
		}
		switch c.Op {
		case lakelink.OpSchema:
			schema = c.Schema
		case lakelink.OpCommit:
		default:
			got = append(got, c)
		}
	}
	return got, schema
}

func startStream(t *testing.T, src *Source, link string, from lakelink.Position) lakelink.Stream {
	t.Helper()
	st, err := src.Stream(context.Background(), link, from)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestValues checks every type's Kind and value, read the same by the copy
// and by the stream.
func TestValues(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
	exec(t, "CREATE TYPE addr AS (street text, no int, tags text[])")
	exec(t, `CREATE TABLE v (id int4 PRIMARY KEY, i2 int2, i8 int8, f4 float4, f8 float8, n numeric, n2 numeric(5,2),
		s text, vc varchar(5), ch char(3), b bool, by bytea, u uuid, tz timestamptz, ts timestamp, d date, tm time,
		j json, jb jsonb, iv interval, m mood, ia int[], ta text[], mo money, na numeric[], ad addr, ads addr[])`)
	cols := "(id, i2, i8, f4, f8, n, n2, s, vc, ch, b, by, u, tz, ts, d, tm, j, jb, iv, m, ia, ta, mo, na, ad, ads)"
	rows := []string{
		`1, -32768, 9223372036854775807, 1.1, 0.1, 123456789012345678901234567890.123456789, -1.5, 'a''b\c', 'abcde', 'ab', true, '\x00ff10',
		 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '2021-06-25 16:21:12.123456+02', '2021-06-25 16:21:12.5', '2021-06-25', '23:59:59.999999',
		 '{"b": 1, "a": [1,2]}', '{"b": 1, "a": [1,2]}', '1 day 02:03:04', 'happy',
		 '{1,NULL,3}', '{"a b","c\"d",NULL,"NULL"}', 1234.56, '{{1.5,2},{3,4}}',
		 ROW('Main "St", 1\', 5, '{a,b}'), ARRAY[ROW('x', 1, NULL)::addr]`,
		`2, 0, -1, 'NaN', '-Infinity', 'NaN', 0, '', '', '', false, '', NULL, '0001-01-01 00:00:00+00', 'infinity', '9999-12-31', '00:00:00',
		 '[]', 'null', '-1 mons', 'sad', '{}', '{}', -0.01, '[0:1]={1,2}', ROW(NULL, NULL, NULL), '{}'`,
		`3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
	}
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	clock := func(h, mi, s, ns int) time.Time { return time.Date(0, 1, 1, h, mi, s, ns, time.UTC) }
	nan := lakelink.BadValue{Raw: "NaN", Reason: "numeric NaN is not a finite decimal"}
	inf := lakelink.BadValue{Raw: "infinity", Reason: "timestamp outside years 1 to 9999"}
	want := [][]lakelink.Value{
		{int64(1), int64(-32768), int64(9223372036854775807), 1.1, 0.1, "123456789012345678901234567890.123456789", "-1.50", `a'b\c`, "abcde", "ab ", true, []byte{0, 0xff, 0x10},
			"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", utc(2021, 6, 25, 14, 21, 12, 123456000), utc(2021, 6, 25, 16, 21, 12, 5e8), utc(2021, 6, 25, 0, 0, 0, 0), clock(23, 59, 59, 999999000),
			`{"b": 1, "a": [1,2]}`, `{"a": [1, 2], "b": 1}`, "1 day 02:03:04", "happy",
			"[1,null,3]", `["a b","c\"d",null,"NULL"]`, "1234.56", "[[1.5,2],[3,4]]",
			`{"street":"Main \"St\", 1\\","no":5,"tags":["a","b"]}`, `[{"street":"x","no":1,"tags":null}]`},
		{int64(2), int64(0), int64(-1), math.NaN(), math.Inf(-1), nan, "0.00", "", "", "   ", false, []byte{}, nil, utc(1, 1, 1, 0, 0, 0, 0), inf, utc(9999, 12, 31, 0, 0, 0, 0), clock(0, 0, 0, 0),
			"[]", "null", "-1 mons", "sad", "[]", "[]", "-0.01", "[1,2]", `{"street":null,"no":null,"tags":null}`, "[]"},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	wantCols := []lakelink.Column{
		{Name: "id", Kind: lakelink.KindInt64, Type: "integer"},
		{Name: "i2", Kind: lakelink.KindInt64, Type: "smallint"},
		{Name: "i8", Kind: lakelink.KindInt64, Type: "bigint"},
		{Name: "f4", Kind: lakelink.KindFloat64, Type: "real"},
		{Name: "f8", Kind: lakelink.KindFloat64, Type: "double precision"},
		{Name: "n", Kind: lakelink.KindDecimal, Type: "numeric"},
		{Name: "n2", Kind: lakelink.KindDecimal, Type: "numeric(5,2)", Precision: 5, Scale: 2},
		{Name: "s", Kind: lakelink.KindString, Type: "text"},
		{Name: "vc", Kind: lakelink.KindString, Type: "character varying(5)", MaxLength: 5},
		{Name: "ch", Kind: lakelink.KindString, Type: "character(3)", MaxLength: 3},
		{Name: "b", Kind: lakelink.KindBool, Type: "boolean"},
		{Name: "by", Kind: lakelink.KindBytes, Type: "bytea"},
		{Name: "u", Kind: lakelink.KindGUID, Type: "uuid"},
		{Name: "tz", Kind: lakelink.KindDateTimeOffset, Type: "timestamp with time zone"},
		{Name: "ts", Kind: lakelink.KindDateTime, Type: "timestamp without time zone"},
		{Name: "d", Kind: lakelink.KindDate, Type: "date"},
		{Name: "tm", Kind: lakelink.KindTime, Type: "time without time zone"},
		{Name: "j", Kind: lakelink.KindJSON, Type: "json"},
		{Name: "jb", Kind: lakelink.KindJSON, Type: "jsonb"},
		{Name: "iv", Kind: lakelink.KindString, Type: "interval"},
		{Name: "m", Kind: lakelink.KindString, Type: "mood", Options: []string{"sad", "ok", "happy"}},
		{Name: "ia", Kind: lakelink.KindJSON, Type: "integer[]"},
		{Name: "ta", Kind: lakelink.KindJSON, Type: "text[]"},
		{Name: "mo", Kind: lakelink.KindDecimal, Type: "money", Precision: -1, Scale: 2},
		{Name: "na", Kind: lakelink.KindJSON, Type: "numeric[]"},
		{Name: "ad", Kind: lakelink.KindJSON, Type: "addr"},
		{Name: "ads", Kind: lakelink.KindJSON, Type: "addr[]"},
	}
	for i := range wantCols {
		c := &wantCols[i]
		if c.MaxLength == 0 {
			c.MaxLength = -1
		}
		if c.Precision == 0 {
			c.Precision, c.Scale = -1, -1
		}
	}
	for _, r := range rows {
		exec(t, "INSERT INTO v "+cols+" VALUES ("+r+")")
	}
	if err := src.Track(ctx, "vals", []string{"v"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	tab, got, pos := read(t, src, "vals", "v")
	opts := cmp.Options{cmpopts.EquateNaNs(), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(wantCols, tab.Columns, opts); diff != "" {
		t.Errorf("snapshot columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("snapshot values (-want +got):\n%s", diff)
	}

	st := startStream(t, src, "vals", pos)
	for _, r := range rows {
		exec(t, "INSERT INTO v "+cols+" VALUES (1"+r+")") // ids 11, 12, 13
	}
	cs, schema := changes(t, st, 3)
	if diff := cmp.Diff(wantCols, schema.Columns, opts); diff != "" {
		t.Errorf("stream columns (-want +got):\n%s", diff)
	}
	got = got[:0]
	for _, c := range cs {
		row := append([]lakelink.Value(nil), c.Row...)
		row[0] = row[0].(int64) - 10
		got = append(got, row)
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("stream values (-want +got):\n%s", diff)
	}
}

// TestKeyUpdate checks that an UPDATE of the key comes as a delete of the
// old key and an insert of the new, under both replica identities.
func TestKeyUpdate(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE k (a int, b int, name text, PRIMARY KEY (a, b))")
	exec(t, "CREATE TABLE kf (id int PRIMARY KEY, name text)")
	exec(t, "ALTER TABLE kf REPLICA IDENTITY FULL")
	if err := src.Track(ctx, "keys", []string{"k", "kf"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, "keys", "k")
	st := startStream(t, src, "keys", pos)
	exec(t, "INSERT INTO k VALUES (1, 2, 'x')")
	exec(t, "UPDATE k SET b = 3 WHERE a = 1")
	exec(t, "UPDATE k SET name = 'y' WHERE a = 1")
	exec(t, "INSERT INTO kf VALUES (1, 'x')")
	exec(t, "UPDATE kf SET id = 2")
	exec(t, "UPDATE kf SET name = 'y'")
	cs, _ := changes(t, st, 8)
	type ch struct {
		Op       lakelink.Op
		Table    string
		Row      []lakelink.Value
		OldKnown bool
	}
	var got []ch
	for _, c := range cs {
		got = append(got, ch{c.Op, c.Table, c.Row, c.OldKnown})
	}
	wantCh := []ch{
		{lakelink.OpInsert, "k", []lakelink.Value{int64(1), int64(2), "x"}, false},
		{lakelink.OpDelete, "k", []lakelink.Value{int64(1), int64(2), nil}, false},
		{lakelink.OpInsert, "k", []lakelink.Value{int64(1), int64(3), "x"}, false},
		{lakelink.OpUpdate, "k", []lakelink.Value{int64(1), int64(3), "y"}, false},
		{lakelink.OpInsert, "kf", []lakelink.Value{int64(1), "x"}, false},
		{lakelink.OpDelete, "kf", []lakelink.Value{int64(1), "x"}, true},
		{lakelink.OpInsert, "kf", []lakelink.Value{int64(2), "x"}, false},
		{lakelink.OpUpdate, "kf", []lakelink.Value{int64(2), "y"}, false},
	}
	if diff := cmp.Diff(wantCh, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if cs[1].Pos != cs[2].Pos {
		t.Errorf("delete at %d and insert at %d of one key update; want one position", cs[1].Pos, cs[2].Pos)
	}
}

// TestToast checks that a large value an UPDATE leaves unchanged is never
// delivered as NULL: under REPLICA IDENTITY FULL it comes from the old row;
// under the default identity it is marked unchanged (Change.Unchanged),
// or, in the insert of an UPDATE that changed the key, comes as a BadValue
// that names the fix.
func TestToast(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE tf (id int PRIMARY KEY, big text, n int)")
	exec(t, "ALTER TABLE tf REPLICA IDENTITY FULL")
	exec(t, "CREATE TABLE td (id int PRIMARY KEY, big text, n int)")
	// 100 KB that does not compress below the TOAST threshold.
	const big = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 3200) i)"
	exec(t, "INSERT INTO tf VALUES (1, "+big+", 1)")
	exec(t, "INSERT INTO td VALUES (1, "+big+", 1)")
	if err := src.Track(ctx, "toast", []string{"tf", "td"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, rows, pos := read(t, src, "toast", "tf")
	if len(rows) != 1 || len(rows[0][1].(string)) != 3200*32 {
		t.Fatalf("snapshot: %d rows; want one with a 100 KB value", len(rows))
	}
	value := rows[0][1].(string)
	st := startStream(t, src, "toast", pos)
	exec(t, "UPDATE tf SET n = 2")
	exec(t, "UPDATE td SET n = 2")
	exec(t, "UPDATE td SET id = 3")
	cs, _ := changes(t, st, 4)
	if v, _ := cs[0].Row[1].(string); cs[0].Table != "tf" || v != value || cs[0].Row[2] != int64(2) || cs[0].Unchanged != nil {
		t.Errorf("update of tf (REPLICA IDENTITY FULL): %s %v unchanged %v; want the unchanged 100 KB value and n=2, nothing marked", cs[0].Table, short(cs[0].Row), cs[0].Unchanged)
	}
	if c := cs[1]; c.Table != "td" || c.Op != lakelink.OpUpdate || c.Row[1] != nil || !cmp.Equal(c.Unchanged, []bool{false, true, false}) || c.Row[2] != int64(2) {
		t.Errorf("update of td (default identity): %s %s %v unchanged %v; want big nil and marked unchanged, n=2", c.Table, c.Op, short(c.Row), c.Unchanged)
	}
	if c := cs[2]; c.Table != "td" || c.Op != lakelink.OpDelete || c.Row[0] != int64(1) {
		t.Errorf("key update of td: %s %s %v; want the delete of id 1 first", c.Table, c.Op, short(c.Row))
	}
	bad, ok := cs[3].Row[1].(lakelink.BadValue)
	if c := cs[3]; c.Table != "td" || c.Op != lakelink.OpInsert || !ok || !strings.Contains(bad.Reason, "REPLICA IDENTITY FULL") || c.Row[0] != int64(3) || c.Unchanged != nil {
		t.Errorf("key update of td (default identity): %s %s %v; want the insert of id 3 with a BadValue naming REPLICA IDENTITY FULL", c.Table, c.Op, short(c.Row))
	}
}

// TestToastExport runs the engine over tables with the default replica
// identity whose 100 KB values an UPDATE of another column leaves
// unchanged: in place, the lake keeps each value exactly, also for a row
// that moves partition; append only, the table stops with an error that
// names the table, column, key and the fix, and no NULL is written.
func TestToastExport(t *testing.T) {
	t.Parallel()
	_, exec, dsn := newDB(t)
	// Quick standby status updates: RunOnce waits for a progress commit
	// past the WAL's end.
	src := openWith(t, dsn, fastStatus)
	ctx := context.Background()
	exec(t, "CREATE TABLE doc (id int PRIMARY KEY, big text, n int, createdon timestamptz)")
	exec(t, "CREATE TABLE log (id int PRIMARY KEY, big text, n int)")
	// About 100 KB that does not compress below the TOAST threshold, with
	// quotes, commas and newlines for the CSV dialect.
	const big = `(SELECT string_agg(md5(i::text) || E'",\n', '') FROM generate_series(1, 2900) i)`
	exec(t, "INSERT INTO doc VALUES (1, "+big+", 1, '2020-05-01Z'), (2, 'two ' || "+big+", 1, '2020-06-01Z'), (3, 'small', 1, '2021-01-01Z')")
	exec(t, "INSERT INTO log VALUES (1, "+big+", 1)")
	lake, err := file.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := export.Config{Link: "toastx", Logger: slog.New(slog.DiscardHandler), CommitInterval: 50 * time.Millisecond, IdleExit: 300 * time.Millisecond,
		Tables: []lakelink.TableSettings{{Name: "doc", Mode: lakelink.ModeInPlace}, {Name: "log", Mode: lakelink.ModeAppendOnly}}}
	run := func() *export.State {
		t.Helper()
		e, err := export.New(src, lake, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := e.RunOnce(rctx); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		st, err := export.ReadState(rctx, lake)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	run()
	exec(t, "UPDATE doc SET n = 2 WHERE id = 1")
	exec(t, "UPDATE doc SET n = 3, createdon = '2023-01-02Z' WHERE id = 2")
	exec(t, "UPDATE log SET n = 2")
	st := run()
	if msg := st.Tables["doc"].Error; msg != "" {
		t.Fatalf("doc (in place) stopped: %s", msg)
	}
	// doc holds exactly the source's rows, each in its createdon's year.
	want := map[string]string{}
	srows, err := src.pool.Query(ctx, "SELECT id::text, big, n::text, extract(year FROM createdon)::text FROM doc")
	if err != nil {
		t.Fatal(err)
	}
	for srows.Next() {
		var id, big, n, year string
		if err := srows.Scan(&id, &big, &n, &year); err != nil {
			t.Fatal(err)
		}
		want[id] = fmt.Sprintf("%s|%d bytes %x|%s", year, len(big), sha256.Sum256([]byte(big)), n)
	}
	if err := srows.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range lakeRecords(t, lake, "doc") {
		if _, dup := got[r.fields[0]]; dup {
			t.Fatalf("doc: row %s is in the lake twice", r.fields[0])
		}
		got[r.fields[0]] = fmt.Sprintf("%s|%d bytes %x|%s", r.part, len(r.fields[4]), sha256.Sum256([]byte(r.fields[4])), r.fields[5])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("doc in the lake (year|big|n; -source +lake):\n%s", diff)
	}
	// log (append only) stopped at the update, and wrote no NULL.
	msg := st.Tables["log"].Error
	for _, w := range []string{`table "log"`, `column "big"`, "key 1", "REPLICA IDENTITY FULL", "lakelink resync"} {
		if !strings.Contains(msg, w) {
			t.Errorf("log's error %q does not say %s", msg, w)
		}
	}
	var logBig string
	if err := src.pool.QueryRow(ctx, "SELECT big FROM log").Scan(&logBig); err != nil {
		t.Fatal(err)
	}
	recs := lakeRecords(t, lake, "log")
	for _, r := range recs {
		if r.null[4] || r.fields[4] != logBig {
			t.Errorf("log: a record whose big is not the value (NULL %v, %d bytes)", r.null[4], len(r.fields[4]))
		}
	}
	if len(recs) != 1 {
		t.Errorf("log has %d records; want only the copy's", len(recs))
	}
}

// lakeRecord is one record of a partition file, its fields decoded.
type lakeRecord struct {
	part   string
	fields []string
	null   []bool
}

// lakeRecords reads every live partition file of a table's folder.
func lakeRecords(t *testing.T, lake lakelink.Lake, folder string) []lakeRecord {
	t.Helper()
	ctx := context.Background()
	objs, err := lake.List(ctx, folder+"/")
	if err != nil {
		t.Fatal(err)
	}
	var out []lakeRecord
	for _, o := range objs {
		name := strings.TrimPrefix(o.Path, folder+"/")
		if strings.Contains(name, "/") || !strings.HasSuffix(name, ".csv") {
			continue
		}
		r, err := lake.Open(ctx, o.Path)
		if err != nil {
			t.Fatal(err)
		}
		rd := cdm.NewReader(r)
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				t.Fatalf("%s: %v", o.Path, err)
			}
			lr := lakeRecord{part: strings.TrimSuffix(name, ".csv")}
			for _, f := range cdm.SplitFields(nil, rec) {
				s, null := cdm.Field(f)
				lr.fields, lr.null = append(lr.fields, s), append(lr.null, null)
			}
			out = append(out, lr)
		}
		r.Close()
	}
	return out
}

func short(row []lakelink.Value) []string {
	var s []string
	for _, v := range row {
		x := fmt.Sprintf("%#v", v)
		if len(x) > 60 {
			x = x[:60] + "..."
		}
		s = append(s, x)
	}
	return s
}

// TestKeyless checks that a table without a primary key is refused with the
// ALTER TABLE that fixes it, and linkable with REPLICA IDENTITY FULL.
func TestKeyless(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE SCHEMA app")
	exec(t, `CREATE TABLE app."Log" (a int, b text)`)
	err := src.Track(ctx, "nokey", []string{"app.Log"})
	var nl *lakelink.NotLinkableError
	if !errors.As(err, &nl) || nl.Table != "app.Log" || !strings.Contains(nl.Reason, `ALTER TABLE app."Log" REPLICA IDENTITY FULL`) || !strings.Contains(nl.Reason, "primary key") {
		t.Fatalf("Track(app.Log) = %v; want a NotLinkableError naming the table and the ALTER TABLE that fixes it", err)
	}
	exec(t, `ALTER TABLE app."Log" REPLICA IDENTITY FULL`)
	infos, err := src.Tables(ctx)
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	if len(infos) != 1 || infos[0].Name != "app.Log" || !infos[0].Linkable || !cmp.Equal(infos[0].Key, []int{0, 1}) {
		t.Fatalf("Tables = %+v; want app.Log linkable, keyed by every column", infos)
	}
	if err := src.Track(ctx, "nokey", []string{"app.Log"}); err != nil {
		t.Fatalf("Track after REPLICA IDENTITY FULL: %v", err)
	}
	exec(t, "CREATE TABLE nothing (id int PRIMARY KEY)")
	exec(t, "ALTER TABLE nothing REPLICA IDENTITY NOTHING")
	if err := src.Track(ctx, "nokey", []string{"nothing"}); !errors.As(err, &nl) || !strings.Contains(nl.Reason, "ALTER TABLE public.nothing REPLICA IDENTITY DEFAULT") {
		t.Errorf("Track(nothing) = %v; want a NotLinkableError with the ALTER TABLE that fixes it", err)
	}
	if err := src.Untrack(ctx, "nokey", nil); err != nil {
		t.Fatalf("Untrack: %v", err)
	}
}

// slotPos returns the confirmed flush position of the link's slot.
func slotPos(t *testing.T, src *Source, link string) lakelink.Position {
	t.Helper()
	var lsn string
	if err := src.pool.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "lakelink_"+link).Scan(&lsn); err != nil {
		t.Fatalf("read slot: %v", err)
	}
	p, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		t.Fatalf("slot position %q: %v", lsn, err)
	}
	return lakelink.Position(p)
}

// untilCommit reads st up to its next commit.
func untilCommit(t *testing.T, st lakelink.Stream) lakelink.Position {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Stream.Next: %v", err)
		}
		if c.Op == lakelink.OpCommit {
			return c.Pos
		}
	}
}

// waitSlot waits until the slot's position satisfies ok.
func waitSlot(t *testing.T, src *Source, link string, what string, ok func(lakelink.Position) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(slotPos(t, src, link)) {
		if time.Now().After(deadline) {
			t.Fatalf("slot position %d: not %s within 10 s", slotPos(t, src, link), what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAck checks that the slot moves only when told: not past an
// unacknowledged transaction, to an acknowledged one and no further, and
// past WAL without anything for the link only through a progress commit
// that was acknowledged.
func TestAck(t *testing.T) {
	t.Parallel()
	src, exec, st, _ := idleLink(t, "ack", "heartbeat=off&"+fastStatus)
	ctx := context.Background()
	exec(t, "INSERT INTO a VALUES (1)")
	commit := rowCommit(t, st)
	exec(t, "INSERT INTO other VALUES (1)") // WAL without anything for the link
	time.Sleep(time.Second)
	if got := slotPos(t, src, "ack"); got >= commit {
		t.Fatalf("slot at %d before Ack; want it before the unacknowledged commit %d", got, commit)
	}
	if err := st.Ack(ctx, commit); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	waitSlot(t, src, "ack", "at the acknowledged commit", func(p lakelink.Position) bool { return p >= commit })
	exec(t, "INSERT INTO other VALUES (2)")
	progress := untilCommit(t, st)
	if progress <= commit {
		t.Fatalf("progress commit at %d; want it after the acknowledged commit %d", progress, commit)
	}
	time.Sleep(time.Second)
	if got := slotPos(t, src, "ack"); got != commit {
		t.Fatalf("slot at %d with a progress commit at %d delivered but not acknowledged; want it at the acknowledged %d", got, progress, commit)
	}
	if err := st.Ack(ctx, progress); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	waitSlot(t, src, "ack", "at the acknowledged progress commit", func(p lakelink.Position) bool { return p == progress })
}

// TestLaterSnapshot checks a snapshot of a table added to a running link:
// exact at its own position, with the stream going on.
func TestLaterSnapshot(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	exec(t, "CREATE TABLE b (id int PRIMARY KEY)")
	if err := src.Track(ctx, "later", []string{"a"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, "later", "a")
	st := startStream(t, src, "later", pos)
	if err := src.Track(ctx, "later", []string{"a", "b"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	exec(t, "INSERT INTO b VALUES (1)")
	_, rows, pos2 := read(t, src, "later", "b")
	if len(rows) != 1 || rows[0][0] != int64(1) || pos2 <= pos {
		t.Fatalf("snapshot of b: %v at %d; want row 1 at a position after %d", rows, pos2, pos)
	}
	exec(t, "INSERT INTO b VALUES (2)")
	cs, _ := changes(t, st, 2)
	if cs[0].Row[0] != int64(1) || cs[0].Pos > pos2 || cs[1].Row[0] != int64(2) || cs[1].Pos <= pos2 {
		t.Errorf("stream: %v at %d, %v at %d; want 1 at or before the snapshot's %d (in the copy), 2 after it", cs[0].Row, cs[0].Pos, cs[1].Row, cs[1].Pos, pos2)
	}
	var n int
	if err := src.pool.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'lakelink_later%'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d slots of the link (%v); want 1: the snapshot's temporary slot dropped", n, err)
	}
}

// TestPartitioned checks that a partitioned table is listed, copied and
// streamed under its root's name.
func TestPartitioned(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE p (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)")
	exec(t, "CREATE TABLE p2020 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')")
	exec(t, "CREATE TABLE p2021 PARTITION OF p FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')")
	exec(t, "INSERT INTO p VALUES (1, '2020-05-01'), (2, '2021-05-01')")
	infos, err := src.Tables(ctx)
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	if len(infos) != 1 || infos[0].Name != "p" || !infos[0].Linkable {
		t.Fatalf("Tables = %+v; want only p, linkable", infos)
	}
	if err := src.Track(ctx, "part", []string{"p"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, rows, pos := read(t, src, "part", "p")
	if len(rows) != 2 {
		t.Fatalf("snapshot: %v; want the rows of both partitions", rows)
	}
	st := startStream(t, src, "part", pos)
	exec(t, "INSERT INTO p VALUES (3, '2021-06-01')")
	cs, schema := changes(t, st, 1)
	if cs[0].Table != "p" || schema == nil || schema.Name != "p" || cs[0].Row[0] != int64(3) {
		t.Errorf("stream: %s %v (schema %v); want an insert of 3 into p", cs[0].Table, cs[0].Row, schema)
	}
}

// TestTypeChangeAndTruncate checks that a column's new type is announced
// before the rows that have it, and that a TRUNCATE, which the stream can't
// express yet, stops the stream with an error naming the table rather than
// being skipped.
func TestTypeChangeAndTruncate(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE c (id int PRIMARY KEY, v int)")
	exec(t, "CREATE TABLE untracked (id int PRIMARY KEY)")
	if err := src.Track(ctx, "ty", []string{"c"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	if _, err := src.Snapshot(ctx, "ty", "untracked"); err == nil || !strings.Contains(err.Error(), "track") {
		t.Errorf("Snapshot of an untracked table = %v; want an error that says to track it", err)
	}
	_, _, pos := read(t, src, "ty", "c")
	st := startStream(t, src, "ty", pos)
	exec(t, "INSERT INTO c VALUES (1, 1)")
	if _, schema := changes(t, st, 1); schema == nil || schema.Columns[1].Kind != lakelink.KindInt64 {
		t.Fatalf("first schema %+v; want v int64", schema)
	}
	exec(t, "ALTER TABLE c ALTER COLUMN v TYPE numeric(6,1)")
	exec(t, "INSERT INTO c VALUES (2, 2.5)")
	cs, schema := changes(t, st, 1)
	if schema == nil || schema.Columns[1].Kind != lakelink.KindDecimal || schema.Columns[1].Type != "numeric(6,1)" || cs[0].Row[1] != "2.5" {
		t.Fatalf("after ALTER COLUMN TYPE: schema %+v, row %v; want v numeric(6,1) announced, then 2.5", schema, cs[0].Row)
	}
	exec(t, "TRUNCATE c")
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		c, err := st.Next(nctx)
		if err != nil {
			if !strings.Contains(err.Error(), "TRUNCATE") || !strings.Contains(err.Error(), "c") {
				t.Errorf("Next after TRUNCATE: %v; want an error naming TRUNCATE and the table", err)
			}
			break
		}
		if c.Op != lakelink.OpCommit && c.Op != lakelink.OpSchema {
			t.Fatalf("Next after TRUNCATE: %v %v; want an error", c.Op, c.Row)
		}
	}
}

// TestSnapshotCloseWhileReading checks that Close may end a copy while
// another goroutine reads it, as the engine's read-ahead does.
func TestSnapshotCloseWhileReading(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE big (id int PRIMARY KEY, s text)")
	exec(t, "INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 100000) i")
	if err := src.Track(ctx, "closing", []string{"big"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	sn, err := src.Snapshot(ctx, "closing", "big")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	started := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			if _, err := sn.Next(); err != nil {
				done <- n
				return
			}
			if n++; n == 1 {
				close(started)
			}
		}
	}()
	<-started
	if err := sn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case n := <-done:
		if n >= 100000 {
			t.Logf("the reader read all %d rows before Close took effect", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next still running 10 s after Close")
	}
	// The source is still usable.
	_, rows, _ := read(t, src, "closing", "big")
	if len(rows) != 100000 {
		t.Errorf("second snapshot: %d rows, want 100000", len(rows))
	}
}

// TestUntrackAll checks that Untrack(nil) drops the slot and the
// publication, and that a stream can't then resume as if nothing was lost.
func TestUntrackAll(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	if err := src.Track(ctx, "gone", []string{"a"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, "gone", "a")
	if err := src.Untrack(ctx, "gone", nil); err != nil {
		t.Fatalf("Untrack: %v", err)
	}
	var n int
	if err := src.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lakelink_gone') + (SELECT count(*) FROM pg_publication WHERE pubname = 'lakelink_gone')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after Untrack: %d of slot and publication left (%v); want none", n, err)
	}
	if err := src.Track(ctx, "gone", []string{"a"}); err != nil {
		t.Fatalf("Track again: %v", err)
	}
	if st, err := src.Stream(ctx, "gone", pos); !errors.Is(err, lakelink.ErrResync) || !strings.Contains(err.Error(), "lakelink resync --lake LAKE --table a,") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("Stream(%d) without its slot = %v; want an ErrResync that says to resync table a", pos, err)
	}
}
