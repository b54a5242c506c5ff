// Package sourcetest is the conformance suite every lakelink.Source passes:
// Tables and Track on a table without a key, a snapshot then a stream with no
// gap and no duplicate, every operation in order, resuming after the last
// Ack, a schema change while streaming, values of the portable kinds, and a
// table tracked while the link's stream runs (copied while it streams).
//
// The suite's SQL is portable between SQLite and PostgreSQL. Every subtest
// uses its own database from the harness, and its own random table and link
// names. Stream.Next runs in a goroutine of its own while the test calls Ack
// and the application writes, as the export engine does.
package sourcetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
)

// Harness gives the suite a source to test.
type Harness interface {
	// Open returns a fresh empty source database and a function that runs
	// SQL on it as the application would (a separate connection). Both
	// cleaned up with t.Cleanup.
	Open(t testing.TB) (src lakelink.Source, exec func(t testing.TB, sql string))
}

// wait bounds how long the suite waits for a change to arrive.
const wait = 10 * time.Second

// Run runs the suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("TablesKeyless", func(t *testing.T) { t.Parallel(); testTablesKeyless(t, h) })
	t.Run("TrackRefuses", func(t *testing.T) { t.Parallel(); testTrackRefuses(t, h) })
	t.Run("SnapshotThenStream", func(t *testing.T) { t.Parallel(); testSnapshotThenStream(t, h) })
	t.Run("EveryOp", func(t *testing.T) { t.Parallel(); testEveryOp(t, h) })
	t.Run("ResumeAfterAck", func(t *testing.T) { t.Parallel(); testResumeAfterAck(t, h) })
	t.Run("SchemaChange", func(t *testing.T) { t.Parallel(); testSchemaChange(t, h) })
	t.Run("Values", func(t *testing.T) { t.Parallel(); testValues(t, h) })
	t.Run("TrackWhileStreaming", func(t *testing.T) { t.Parallel(); testTrackWhileStreaming(t, h) })
}

// Name returns a random lower-case identifier with the prefix, for tables
// and links.
func Name(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func testTablesKeyless(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	keyless, keyed := Name("nokey"), Name("keyed")
	exec(t, "CREATE TABLE "+keyless+" (a INTEGER, b TEXT)")
	exec(t, "CREATE TABLE "+keyed+" (id INTEGER PRIMARY KEY, b TEXT)")
	infos, err := src.Tables(context.Background())
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	found := 0
	for _, ti := range infos {
		switch ti.Name {
		case keyless:
			found++
			if ti.Linkable || !strings.Contains(strings.ToLower(ti.Reason), "primary key") {
				t.Errorf("Tables: %s: Linkable %v, Reason %q; want not linkable, a reason that names the missing primary key", keyless, ti.Linkable, ti.Reason)
			}
		case keyed:
			found++
			if !ti.Linkable || ti.Reason != "" {
				t.Errorf("Tables: %s: Linkable %v, Reason %q; want linkable", keyed, ti.Linkable, ti.Reason)
			}
			if len(ti.Columns) != 2 || ti.Columns[0].Name != "id" || ti.Columns[0].Kind != lakelink.KindInt64 || !cmp.Equal(ti.Key, []int{0}) {
				t.Errorf("Tables: %s: columns %+v key %v; want id int64 as the key, then b", keyed, ti.Columns, ti.Key)
			}
		}
	}
	if found != 2 {
		t.Errorf("Tables listed %d of the tables %s and %s: %+v", found, keyless, keyed, infos)
	}
}

func testTrackRefuses(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	ctx := context.Background()
	keyless, missing := Name("nokey"), Name("missing")
	exec(t, "CREATE TABLE "+keyless+" (a INTEGER, b TEXT)")
	for _, table := range []string{keyless, missing} {
		err := src.Track(ctx, Name("link"), []string{table})
		var nl *lakelink.NotLinkableError
		if !errors.As(err, &nl) || nl.Table != table || nl.Reason == "" {
			t.Errorf("Track(%s) = %v; want a *lakelink.NotLinkableError naming the table, with a reason", table, err)
		}
	}
}

// rowsTable is the table most subtests use.
const rowsTable = " (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)"

// setup creates a table, tracks it, and returns the position of a snapshot
// of it taken after the statements in before ran.
func setup(t *testing.T, src lakelink.Source, exec func(testing.TB, string), table, link string, before ...string) lakelink.Position {
	t.Helper()
	exec(t, "CREATE TABLE "+table+rowsTable)
	if err := src.Track(context.Background(), link, []string{table}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	for _, s := range before {
		exec(t, s)
	}
	sn, err := src.Snapshot(context.Background(), link, table)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer sn.Close()
	return sn.Position()
}

// stream starts the link's stream, closed at the end of the test.
func stream(t *testing.T, src lakelink.Source, link string, from lakelink.Position) lakelink.Stream {
	t.Helper()
	st, err := src.Stream(context.Background(), link, from)
	if err != nil {
		t.Fatalf("Stream(%d): %v", from, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Stream.Close: %v", err)
		}
	})
	return st
}

func testSnapshotThenStream(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	ctx := context.Background()
	table, link := Name("t"), Name("link")
	exec(t, "CREATE TABLE "+table+rowsTable)
	exec(t, "INSERT INTO "+table+" VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30), (4, 'd', 40), (5, 'e', 50)")
	if err := src.Track(ctx, link, []string{table}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	// Changed after Track, before the snapshot: in the copy.
	exec(t, "UPDATE "+table+" SET n = 11 WHERE id = 1")
	exec(t, "DELETE FROM "+table+" WHERE id = 2")
	exec(t, "INSERT INTO "+table+" VALUES (6, 'f', 60)")

	sn, err := src.Snapshot(ctx, link, table)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	tab := sn.Table()
	if names := columnNames(&tab); !cmp.Equal(names, []string{"id", "name", "n"}) || !cmp.Equal(tab.Key, []int{0}) {
		t.Fatalf("Snapshot.Table() columns %v key %v; want [id name n] key [0]", names, tab.Key)
	}
	state := readRows(t, sn, func(i int) {
		if i == 0 {
			// Changed while the copy is read: on the stream, not in it.
			exec(t, "UPDATE "+table+" SET n = 31 WHERE id = 3")
			exec(t, "INSERT INTO "+table+" VALUES (7, 'g', 70)")
			exec(t, "DELETE FROM "+table+" WHERE id = 4")
		}
	})
	pos := sn.Position()
	if err := sn.Close(); err != nil {
		t.Fatalf("Snapshot.Close: %v", err)
	}
	wantCopy := map[int64]map[string]lakelink.Value{
		1: row3(1, "a", 11), 3: row3(3, "c", 30), 4: row3(4, "d", 40), 5: row3(5, "e", 50), 6: row3(6, "f", 60),
	}
	if diff := cmp.Diff(wantCopy, state); diff != "" {
		t.Fatalf("snapshot rows (-want +got):\n%s", diff)
	}

	exec(t, "UPDATE "+table+" SET name = 'E' WHERE id = 5") // after the copy
	st := stream(t, src, link, pos)
	p := startPump(t, st)
	got := p.rows(t, 4)
	checkRows(t, got, []want{
		{lakelink.OpUpdate, row3(3, "c", 31)},
		{lakelink.OpInsert, row3(7, "g", 70)},
		{lakelink.OpDelete, row3(4, "d", 40)},
		{lakelink.OpUpdate, row3(5, "E", 50)},
	})
	for _, c := range got {
		if c.Pos <= pos {
			t.Errorf("change %v at %d is not after the snapshot's position %d", c.Op, c.Pos, pos)
		}
	}
	p.quiet(t, 300*time.Millisecond)

	// Copy plus stream is the table.
	for _, c := range got {
		if c.Op == lakelink.OpDelete {
			delete(state, c.Vals["id"].(int64))
		} else {
			state[c.Vals["id"].(int64)] = c.Vals
		}
	}
	final := map[int64]map[string]lakelink.Value{
		1: row3(1, "a", 11), 3: row3(3, "c", 31), 5: row3(5, "E", 50), 6: row3(6, "f", 60), 7: row3(7, "g", 70),
	}
	if diff := cmp.Diff(final, state); diff != "" {
		t.Errorf("snapshot + stream (-want +got):\n%s", diff)
	}
}

func testEveryOp(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	table, link := Name("t"), Name("link")
	pos := setup(t, src, exec, table, link)
	st := stream(t, src, link, pos)
	p := startPump(t, st)
	exec(t, "INSERT INTO "+table+" VALUES (1, 'a', 1)")
	exec(t, "UPDATE "+table+" SET name = 'b' WHERE id = 1")
	exec(t, "INSERT INTO "+table+" VALUES (2, 'x', 2)")
	exec(t, "DELETE FROM "+table+" WHERE id = 2")
	exec(t, "UPDATE "+table+" SET id = 10 WHERE id = 1")
	exec(t, "UPDATE "+table+" SET name = NULL, n = NULL WHERE id = 10")
	checkRows(t, p.rows(t, 7), []want{
		{lakelink.OpInsert, row3(1, "a", 1)},
		{lakelink.OpUpdate, row3(1, "b", 1)},
		{lakelink.OpInsert, row3(2, "x", 2)},
		{lakelink.OpDelete, row3(2, "x", 2)},
		{lakelink.OpDelete, row3(1, "b", 1)},
		{opUpsert, row3(10, "b", 1)},
		{lakelink.OpUpdate, map[string]lakelink.Value{"id": int64(10), "name": nil, "n": nil}},
	})
	p.quiet(t, 200*time.Millisecond)
}

func testResumeAfterAck(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	ctx := context.Background()
	table, link := Name("t"), Name("link")
	pos := setup(t, src, exec, table, link)
	st, err := src.Stream(ctx, link, pos)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	p := startPump(t, st)
	exec(t, "INSERT INTO "+table+" VALUES (1, 'a', 1)")
	exec(t, "INSERT INTO "+table+" VALUES (2, 'b', 2)")
	exec(t, "INSERT INTO "+table+" VALUES (3, 'c', 3)")
	p.rows(t, 3)
	acked := p.untilCommit(t)
	if err := st.Ack(ctx, acked); err != nil {
		t.Fatalf("Ack(%d): %v", acked, err)
	}
	exec(t, "INSERT INTO "+table+" VALUES (4, 'd', 4)")
	exec(t, "UPDATE "+table+" SET n = 100 WHERE id = 1")
	p.rows(t, 2) // delivered, never acknowledged
	p.stop()
	if err := st.Close(); err != nil {
		t.Fatalf("Stream.Close: %v", err)
	}

	st = stream(t, src, link, acked)
	p = startPump(t, st)
	checkRows(t, p.rows(t, 2), []want{
		{lakelink.OpInsert, row3(4, "d", 4)},
		{lakelink.OpUpdate, row3(1, "a", 100)},
	})
	p.quiet(t, 200*time.Millisecond)
}

func testSchemaChange(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	table, link := Name("t"), Name("link")
	pos := setup(t, src, exec, table, link)
	st := stream(t, src, link, pos)
	p := startPump(t, st)
	exec(t, "INSERT INTO "+table+" VALUES (1, 'a', 1)")
	checkRows(t, p.rows(t, 1), []want{{lakelink.OpInsert, row3(1, "a", 1)}})

	// A source may refuse the application's writes for a moment after
	// ALTER TABLE while it adapts its change tracking (SQLite does), so
	// the writes are retried.
	exec(t, "ALTER TABLE "+table+" ADD COLUMN extra TEXT")
	retryWrite(t, exec, table, "INSERT INTO "+table+" (id, name, n, extra) VALUES (2, 'b', 2, 'x')")
	retryWrite(t, exec, table, "UPDATE "+table+" SET extra = 'y' WHERE id = 1")
	got := p.rows(t, 2)
	checkRows(t, got, []want{
		{lakelink.OpInsert, map[string]lakelink.Value{"id": int64(2), "name": "b", "n": int64(2), "extra": "x"}},
		{lakelink.OpUpdate, map[string]lakelink.Value{"id": int64(1), "name": "a", "n": int64(1), "extra": "y"}},
	})
	if cols := columnNames(got[0].Schema); !cmp.Equal(cols, []string{"id", "name", "n", "extra"}) {
		t.Errorf("schema after ADD COLUMN: %v; want [id name n extra]", cols)
	}

	exec(t, "ALTER TABLE "+table+" DROP COLUMN n")
	retryWrite(t, exec, table, "INSERT INTO "+table+" (id, name, extra) VALUES (3, 'c', 'z')")
	retryWrite(t, exec, table, "DELETE FROM "+table+" WHERE id = 2")
	got = p.rows(t, 2)
	checkRows(t, got, []want{
		{lakelink.OpInsert, map[string]lakelink.Value{"id": int64(3), "name": "c", "extra": "z"}},
		{lakelink.OpDelete, map[string]lakelink.Value{"id": int64(2), "name": "b", "extra": "x"}},
	})
	if cols := columnNames(got[0].Schema); !cmp.Equal(cols, []string{"id", "name", "extra"}) {
		t.Errorf("schema after DROP COLUMN: %v; want [id name extra]", cols)
	}
	p.quiet(t, 200*time.Millisecond)
}

func testValues(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	ctx := context.Background()
	table, link := Name("v"), Name("link")
	exec(t, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, i BIGINT, f DOUBLE PRECISION, s TEXT, vc VARCHAR(10), d DECIMAL(10,2), b BOOLEAN, dt DATE, ts TIMESTAMP)")
	rows := []string{
		"1, 9223372036854775807, 1.5, 'héllo ''q'' \"dq\" ✓', 'short', 12.34, TRUE, '2021-06-25', '2021-06-25 16:21:12'",
		"2, -9223372036854775807, -0.25, '', 'x', -1.25, FALSE, '1970-01-01', '1999-12-31 23:59:59.5'",
		"3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
	}
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	want := [][]lakelink.Value{
		{int64(1), int64(9223372036854775807), 1.5, "héllo 'q' \"dq\" ✓", "short", "12.34", true, date(2021, 6, 25), time.Date(2021, 6, 25, 16, 21, 12, 0, time.UTC)},
		{int64(2), int64(-9223372036854775807), -0.25, "", "x", "-1.25", false, date(1970, 1, 1), time.Date(1999, 12, 31, 23, 59, 59, 5e8, time.UTC)},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil},
	}
	for _, r := range rows {
		exec(t, "INSERT INTO "+table+" VALUES ("+r+")")
	}
	if err := src.Track(ctx, link, []string{table}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	sn, err := src.Snapshot(ctx, link, table)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	tab := sn.Table()
	checkKinds(t, "snapshot", &tab)
	var got [][]lakelink.Value
	for {
		row, err := sn.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Snapshot.Next: %v", err)
		}
		got = append(got, append([]lakelink.Value(nil), row...))
	}
	pos := sn.Position()
	sn.Close()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshot values (-want +got):\n%s", diff)
	}

	st := stream(t, src, link, pos)
	p := startPump(t, st)
	for _, r := range rows {
		exec(t, "INSERT INTO "+table+" VALUES (1"+r+")") // ids 11, 12, 13
	}
	changes := p.rows(t, 3)
	checkKinds(t, "stream", changes[0].Schema)
	got = got[:0]
	for i, c := range changes {
		if c.Op != lakelink.OpInsert {
			t.Errorf("change %d: %v, want insert", i, c.Op)
		}
		row := append([]lakelink.Value(nil), c.Row...)
		row[0] = row[0].(int64) - 10
		got = append(got, row)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream values (-want +got):\n%s", diff)
	}
}

func checkKinds(t *testing.T, what string, tab *lakelink.Table) {
	t.Helper()
	type col struct {
		Name                        string
		Kind                        lakelink.Kind
		MaxLength, Precision, Scale int
	}
	want := []col{
		{"id", lakelink.KindInt64, -1, -1, -1},
		{"i", lakelink.KindInt64, -1, -1, -1},
		{"f", lakelink.KindFloat64, -1, -1, -1},
		{"s", lakelink.KindString, -1, -1, -1},
		{"vc", lakelink.KindString, 10, -1, -1},
		{"d", lakelink.KindDecimal, -1, 10, 2},
		{"b", lakelink.KindBool, -1, -1, -1},
		{"dt", lakelink.KindDate, -1, -1, -1},
		{"ts", lakelink.KindDateTime, -1, -1, -1},
	}
	var got []col
	for _, c := range tab.Columns {
		got = append(got, col{c.Name, c.Kind, c.MaxLength, c.Precision, c.Scale})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s columns (-want +got):\n%s", what, diff)
	}
	if !cmp.Equal(tab.Key, []int{0}) {
		t.Errorf("%s key %v, want [0]", what, tab.Key)
	}
}

// rowChange is a row change as the suite checks it: its values by column
// name, under the schema last announced for its table.
type rowChange struct {
	lakelink.Change
	Vals   map[string]lakelink.Value
	Schema *lakelink.Table
}

// opUpsert in a want matches an insert or an update.
const opUpsert lakelink.Op = 0

type want struct {
	Op   lakelink.Op
	Vals map[string]lakelink.Value
}

// testTrackWhileStreaming: a table tracked while the link's stream runs,
// then copied, has every change after its copy's position on that same
// stream, after a schema, exactly once and in order, while the other
// tables' changes go on.
func testTrackWhileStreaming(t *testing.T, h Harness) {
	src, exec := h.Open(t)
	ctx := context.Background()
	first, added, link := Name("a"), Name("b"), Name("link")
	pos := setup(t, src, exec, first, link)
	p := startPump(t, stream(t, src, link, pos))
	exec(t, "INSERT INTO "+first+" VALUES (1, 'x', 1)")
	checkRows(t, p.rows(t, 1), []want{{lakelink.OpInsert, row3(1, "x", 1)}})

	exec(t, "CREATE TABLE "+added+rowsTable)
	exec(t, "INSERT INTO "+added+" VALUES (1, 'a', 10), (2, 'b', 20)")
	if err := src.Track(ctx, link, []string{added}); err != nil {
		t.Fatalf("Track while streaming: %v", err)
	}
	exec(t, "UPDATE "+added+" SET n = 11 WHERE id = 1") // tracked, before the copy
	sn, err := src.Snapshot(ctx, link, added)
	if err != nil {
		t.Fatalf("Snapshot while streaming: %v", err)
	}
	state := readRows(t, sn, nil)
	copyPos := sn.Position()
	sn.Close()
	if diff := cmp.Diff(map[int64]map[string]lakelink.Value{1: row3(1, "a", 11), 2: row3(2, "b", 20)}, state); diff != "" {
		t.Fatalf("copy of the table tracked while streaming (-want +got):\n%s", diff)
	}
	exec(t, "INSERT INTO "+added+" VALUES (3, 'c', 30)")
	exec(t, "UPDATE "+added+" SET n = 21 WHERE id = 2")
	exec(t, "DELETE FROM "+added+" WHERE id = 1")
	exec(t, "INSERT INTO "+first+" VALUES (2, 'y', 2)")

	// The stream may carry changes of the added table at or before the
	// copy's position (the engine skips them); those after it are the rest.
	var after, others []rowChange
	deadline := time.Now().Add(wait)
	for len(after) < 3 || len(others) < 1 {
		c, ok := p.next(t, time.Until(deadline))
		if !ok {
			t.Fatalf("within %v: %d changes of %s after its copy, %d of %s; want 3 and 1:\n%s", wait, len(after), added, len(others), first, describe(append(after, others...)))
		}
		if c.Op == lakelink.OpSchema || c.Op == lakelink.OpCommit {
			continue
		}
		rc := rowChange{Change: c, Vals: named(p.schemas[c.Table], c.Row), Schema: p.schemas[c.Table]}
		switch {
		case c.Table == first:
			others = append(others, rc)
		case c.Table == added && c.Pos > copyPos:
			after = append(after, rc)
		case c.Table != added:
			t.Fatalf("change of an unknown table %q", c.Table)
		}
	}
	checkRows(t, after, []want{
		{lakelink.OpInsert, row3(3, "c", 30)},
		{lakelink.OpUpdate, row3(2, "b", 21)},
		{lakelink.OpDelete, row3(1, "a", 11)},
	})
	checkRows(t, others, []want{{lakelink.OpInsert, row3(2, "y", 2)}})
	p.quiet(t, 300*time.Millisecond)
}

// readRows reads a snapshot of a table of rowsTable's shape to its end, by
// id, calling during (when not nil) after each row.
func readRows(t *testing.T, sn lakelink.Snapshot, during func(i int)) map[int64]map[string]lakelink.Value {
	t.Helper()
	tab := sn.Table()
	state := map[int64]map[string]lakelink.Value{}
	for i := 0; ; i++ {
		row, err := sn.Next()
		if err == io.EOF {
			return state
		}
		if err != nil {
			t.Fatalf("Snapshot.Next: %v", err)
		}
		vals := named(&tab, row)
		state[vals["id"].(int64)] = vals
		if during != nil {
			during(i)
		}
	}
}

func row3(id int64, name string, n int64) map[string]lakelink.Value {
	return map[string]lakelink.Value{"id": id, "name": name, "n": n}
}

// checkRows compares row changes with what is wanted, in order. A delete
// whose old row the source does not know is compared on its key only.
func checkRows(t *testing.T, got []rowChange, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d row changes, want %d:\n%s", len(got), len(wants), describe(got))
	}
	for i, w := range wants {
		g := got[i]
		opOK := g.Op == w.Op || w.Op == opUpsert && (g.Op == lakelink.OpInsert || g.Op == lakelink.OpUpdate)
		vals := w.Vals
		if g.Op == lakelink.OpDelete && !g.OldKnown {
			vals = map[string]lakelink.Value{}
			for _, k := range g.Schema.Key {
				name := g.Schema.Columns[k].Name
				vals[name] = w.Vals[name]
			}
			for name, v := range g.Vals {
				if v != nil && vals[name] == nil {
					t.Errorf("change %d: delete with OldKnown false has a non-key value %s=%v", i, name, v)
				}
			}
			gv := map[string]lakelink.Value{}
			for k := range vals {
				gv[k] = g.Vals[k]
			}
			g.Vals = gv
		}
		if !opOK || !cmp.Equal(vals, g.Vals) {
			t.Errorf("change %d: %v %v; want %v %v\nall changes:\n%s", i, g.Op, g.Vals, w.Op, w.Vals, describe(got))
		}
	}
}

func describe(cs []rowChange) string {
	var b strings.Builder
	for _, c := range cs {
		keys := make([]string, 0, len(c.Vals))
		for k := range c.Vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "  %d %s %s", c.Pos, c.Op, c.Table)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%#v", k, c.Vals[k])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func columnNames(t *lakelink.Table) []string {
	if t == nil {
		return nil
	}
	var names []string
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	return names
}

func named(t *lakelink.Table, row []lakelink.Value) map[string]lakelink.Value {
	m := map[string]lakelink.Value{}
	for i, c := range t.Columns {
		m[c.Name] = row[i]
	}
	return m
}

// pump runs Stream.Next in a goroutine, as the engine does, and checks the
// stream's invariants as changes pass: a table's schema comes before its
// rows, rows fit the schema, commit positions grow.
type pump struct {
	ch      chan lakelink.Change
	errc    chan error
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	schemas map[string]*lakelink.Table
	commit  lakelink.Position // the last commit seen
}

func startPump(t *testing.T, st lakelink.Stream) *pump {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pump{ch: make(chan lakelink.Change, 64), errc: make(chan error, 1), cancel: cancel, done: make(chan struct{}), schemas: map[string]*lakelink.Table{}}
	go func() {
		defer close(p.done)
		for {
			c, err := st.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.errc <- err
				} else if !errors.Is(err, context.Canceled) {
					p.errc <- fmt.Errorf("after cancel, Next returned %w; want the context's error", err)
				}
				return
			}
			select {
			case p.ch <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pump) stop() {
	p.once.Do(func() { p.cancel(); <-p.done })
}

// next returns the next change, or false after d.
func (p *pump) next(t *testing.T, d time.Duration) (lakelink.Change, bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case c := <-p.ch:
		switch c.Op {
		case lakelink.OpSchema:
			if c.Schema == nil || c.Table == "" {
				t.Fatalf("schema change without a table: %+v", c)
			}
			p.schemas[c.Table] = c.Schema
		case lakelink.OpCommit:
			if p.commit != 0 && c.Pos <= p.commit {
				t.Errorf("commit at %d after a commit at %d", c.Pos, p.commit)
			}
			p.commit = c.Pos
		case lakelink.OpInsert, lakelink.OpUpdate, lakelink.OpDelete:
			s := p.schemas[c.Table]
			if s == nil {
				t.Fatalf("%v of table %q before its schema", c.Op, c.Table)
			}
			if len(c.Row) != len(s.Columns) {
				t.Fatalf("%v of table %q has %d values, its schema %d columns", c.Op, c.Table, len(c.Row), len(s.Columns))
			}
		default:
			t.Fatalf("change with unknown op: %+v", c)
		}
		return c, true
	case err := <-p.errc:
		t.Fatalf("Stream.Next: %v", err)
	case <-timer.C:
	}
	return lakelink.Change{}, false
}

// rows returns the next n row changes, skipping schema changes and commits.
func (p *pump) rows(t *testing.T, n int) []rowChange {
	t.Helper()
	var got []rowChange
	deadline := time.Now().Add(wait)
	for len(got) < n {
		c, ok := p.next(t, time.Until(deadline))
		if !ok {
			t.Fatalf("got %d of %d row changes within %v:\n%s", len(got), n, wait, describe(got))
		}
		if c.Op == lakelink.OpSchema || c.Op == lakelink.OpCommit {
			continue
		}
		s := p.schemas[c.Table]
		got = append(got, rowChange{Change: c, Vals: named(s, c.Row), Schema: s})
	}
	return got
}

// untilCommit reads up to the next commit and returns its position.
func (p *pump) untilCommit(t *testing.T) lakelink.Position {
	t.Helper()
	for {
		c, ok := p.next(t, wait)
		if !ok {
			t.Fatalf("no commit within %v", wait)
		}
		switch c.Op {
		case lakelink.OpCommit:
			return c.Pos
		case lakelink.OpInsert, lakelink.OpUpdate, lakelink.OpDelete:
			t.Fatalf("unexpected %v at %d before the commit", c.Op, c.Pos)
		}
	}
}

// quiet checks that no row change arrives within d.
func (p *pump) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, ok := p.next(t, time.Until(deadline))
		if !ok {
			return
		}
		if c.Op != lakelink.OpSchema && c.Op != lakelink.OpCommit {
			t.Errorf("unexpected change: %v %q at %d: %v", c.Op, c.Table, c.Pos, c.Row)
		}
	}
}

// softT is a testing.TB whose failures are recorded instead of failing the
// test, so that a harness's exec can be retried.
type softT struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (s *softT) record(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msg == "" {
		s.msg = msg
	}
}
func (s *softT) Helper()                         {}
func (s *softT) Error(args ...any)               { s.record(fmt.Sprint(args...)) }
func (s *softT) Errorf(format string, a ...any)  { s.record(fmt.Sprintf(format, a...)) }
func (s *softT) Fail()                           { s.record("failed") }
func (s *softT) FailNow()                        { s.Fail(); runtime.Goexit() }
func (s *softT) Fatal(args ...any)               { s.Error(args...); runtime.Goexit() }
func (s *softT) Fatalf(format string, a ...any)  { s.Errorf(format, a...); runtime.Goexit() }
func (s *softT) Failed() bool                    { s.mu.Lock(); defer s.mu.Unlock(); return s.msg != "" }
func (s *softT) Log(args ...any)                 {}
func (s *softT) Logf(format string, args ...any) {}

// tryExec runs exec and returns its failure as an error.
func tryExec(t testing.TB, exec func(testing.TB, string), sql string) error {
	s := &softT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		exec(s, sql)
	}()
	<-done
	if s.msg != "" {
		return errors.New(s.msg)
	}
	return nil
}

// retryWrite runs sql, a write to table, retrying for a few seconds while
// it fails. Between attempts it reads the table, as an application that
// retries would: a SQLite connection only notices that another connection
// changed the schema (here, re-installed change tracking) when it reads.
func retryWrite(t testing.TB, exec func(testing.TB, string), table, sql string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := tryExec(t, exec, sql)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5 s: %v", sql, err)
		}
		time.Sleep(20 * time.Millisecond)
		tryExec(t, exec, "SELECT count(*) FROM "+table)
	}
}
