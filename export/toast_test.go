package export

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

// Tests of updates that leave values out because they did not change
// (lakelink.Change.Unchanged, PostgreSQL's unchanged TOASTed values under
// the default replica identity).

// keptText needs every kind of quoting the dialect has.
var keptText = "kept \"quoted\", with, commas,\nnewlines\r\n\"\"and ünïcode 🎉 " + strings.Repeat("0123456789", 300)

// keepUpdate is an update of row that leaves the values of the columns
// cols out as unchanged.
func keepUpdate(table string, row []lakelink.Value, cols ...int) lakelink.Change {
	row = append([]lakelink.Value(nil), row...)
	unchanged := make([]bool, len(row))
	for _, i := range cols {
		row[i], unchanged[i] = nil, true
	}
	return lakelink.Change{Op: lakelink.OpUpdate, Table: table, Row: row, Unchanged: unchanged}
}

// applyKeep runs one transaction on the fake source like apply, for changes
// that may leave values out as unchanged: the source's rows keep those
// values, while the stream delivers the changes as they are.
func applyKeep(src *fakeSource, changes ...lakelink.Change) {
	type rowKey struct{ table, key string }
	src.mu.Lock()
	after := map[rowKey][]lakelink.Value{}
	var order []rowKey
	for _, c := range changes {
		t := src.tables[c.Table]
		k := rowKey{c.Table, keyText(t.def, c.Row)}
		prev, ok := after[k]
		if !ok {
			prev = t.rows[k.key]
			order = append(order, k)
		}
		row := append([]lakelink.Value(nil), c.Row...)
		for i, u := range c.Unchanged {
			if u && prev != nil {
				row[i] = prev[i]
			}
		}
		if c.Op == lakelink.OpDelete {
			row = nil
		}
		after[k] = row
	}
	src.mu.Unlock()
	src.apply(changes...)
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, k := range order {
		if row := after[k]; row != nil {
			src.tables[k.table].rows[k.key] = row
		}
	}
}

// markUnchanged rewrites the stream of the account updates in the fake's
// log from entry from on: about half of them keep the row's name and leave
// it out as unchanged, as PostgreSQL does with a TOASTed value. The
// source's rows hold the kept names.
func markUnchanged(src *fakeSource, from int, r *rand.Rand) {
	src.mu.Lock()
	defer src.mu.Unlock()
	name := map[lakelink.Value]lakelink.Value{} // by id: the row's name
	for i := range src.log {
		c := &src.log[i].c
		if c.Table != "account" || c.Row == nil {
			continue
		}
		id := c.Row[0]
		switch c.Op {
		case lakelink.OpInsert:
			name[id] = c.Row[1]
		case lakelink.OpDelete:
			delete(name, id)
		case lakelink.OpUpdate:
			if c.Unchanged != nil {
				continue // marked by an earlier call: the name stays
			}
			if i >= from && r.IntN(2) == 0 {
				// The row's slice is the source's row (and a later
				// delete's old row): it keeps the name. The stream gets a
				// copy without it.
				c.Row[1] = name[id]
				row := append([]lakelink.Value(nil), c.Row...)
				row[1] = nil
				c.Row, c.Unchanged = row, []bool{false, true, false, false}
				continue
			}
			name[id] = c.Row[1]
		}
	}
}

// runWith runs the export once with cfg and returns the lake's state.
func runWith(t testing.TB, src lakelink.Source, lake lakelink.Lake, cfg Config) *State {
	t.Helper()
	e, err := New(src, lake, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	st, err := ReadState(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// lakeAccount returns the decoded name field and partition of an account row
// in the lake; ok is false when the row is not there.
func lakeAccount(t testing.TB, lake lakelink.Lake, id string) (name *string, part string, ok bool) {
	t.Helper()
	for _, r := range readLake(t, lake, "account") {
		if r.id == id {
			if ok {
				t.Fatalf("account %s is in the lake twice", id)
			}
			name, part, ok = r.fields[4], r.part, true
		}
	}
	return name, part, ok
}

func at(year int) time.Time { return time.Date(year, 3, 4, 5, 6, 7, 0, time.UTC) }

// TestKeepUnchanged: in place, a value an update left out as unchanged
// keeps the value the row has: from the lake's file, from an earlier
// change of the row in the same batch, across a partition move, and
// through a transaction flushed part by part.
func TestKeepUnchanged(t *testing.T) {
	acc := func(id int64, name lakelink.Value, year int, amount string) []lakelink.Value {
		return []lakelink.Value{id, name, at(year), amount}
	}
	for _, v := range []struct {
		name     string
		txnPos   bool
		maxBatch int64
		before   [][]lakelink.Value  // rows inserted and exported first
		tx       []lakelink.Change   // then one transaction
		want     map[string]*string  // then the name of each row
		wantPart map[string]string   // and its partition
		extra    [][]lakelink.Change // further transactions before the run
	}{
		{
			name:   "from the file",
			before: [][]lakelink.Value{acc(1, keptText, 2020, "1"), acc(2, "other", 2020, "1")},
			tx:     []lakelink.Change{keepUpdate("account", acc(1, nil, 2020, "2"), 1)},
			want:   map[string]*string{"1": &keptText}, wantPart: map[string]string{"1": "2020"},
		},
		{
			name:   "NULL and empty values kept",
			before: [][]lakelink.Value{acc(1, nil, 2020, "1"), acc(2, "", 2020, "1")},
			tx:     []lakelink.Change{keepUpdate("account", acc(1, nil, 2020, "2"), 1), keepUpdate("account", acc(2, nil, 2020, "2"), 1)},
			want:   map[string]*string{"1": nil, "2": new(string)},
		},
		{
			name:   "coalesced in one batch",
			before: [][]lakelink.Value{acc(9, "x", 2020, "1")},
			tx: []lakelink.Change{
				{Op: lakelink.OpInsert, Table: "account", Row: acc(1, keptText, 2021, "1")},
				keepUpdate("account", acc(1, nil, 2021, "2"), 1),
				keepUpdate("account", acc(1, nil, 2021, "3"), 1),
			},
			want: map[string]*string{"1": &keptText}, wantPart: map[string]string{"1": "2021"},
		},
		{
			name:   "changed earlier in the batch",
			before: [][]lakelink.Value{acc(1, "old", 2020, "1")},
			tx: []lakelink.Change{
				{Op: lakelink.OpUpdate, Table: "account", Row: acc(1, keptText, 2020, "2")},
				keepUpdate("account", acc(1, nil, 2020, "3"), 1),
			},
			want: map[string]*string{"1": &keptText},
		},
		{
			name:   "moves partition",
			before: [][]lakelink.Value{acc(1, keptText, 2020, "1"), acc(2, "stays", 2020, "1")},
			tx:     []lakelink.Change{keepUpdate("account", acc(1, nil, 2023, "2"), 1)},
			want:   map[string]*string{"1": &keptText}, wantPart: map[string]string{"1": "2023", "2": "2020"},
		},
		{
			// Both partitions are targets: the first one rewritten meets a
			// row bound for the second before that is open.
			name:   "rows swap partitions",
			before: [][]lakelink.Value{acc(1, keptText, 2020, "1"), acc(2, "two\n\"2\"", 2023, "1"), acc(3, "three", 2020, "1")},
			tx: []lakelink.Change{
				keepUpdate("account", acc(1, nil, 2023, "2"), 1),
				keepUpdate("account", acc(2, nil, 2020, "2"), 1),
				{Op: lakelink.OpInsert, Table: "account", Row: acc(4, "new", 2023, "1")},
			},
			want:     map[string]*string{"1": &keptText, "2": ptr("two\n\"2\"")},
			wantPart: map[string]string{"1": "2023", "2": "2020", "3": "2020", "4": "2023"},
		},
		{
			// A transaction larger than a batch: each change is written out
			// before the next, so the update finds the row its own
			// transaction inserted in the file.
			name: "flushed part by part", txnPos: true, maxBatch: 1,
			before: [][]lakelink.Value{acc(9, "x", 2020, "1")},
			tx: []lakelink.Change{
				{Op: lakelink.OpInsert, Table: "account", Row: acc(1, keptText, 2021, "1")},
				keepUpdate("account", acc(1, nil, 2022, "2"), 1),
				keepUpdate("account", acc(1, nil, 2022, "3"), 1),
			},
			want: map[string]*string{"1": &keptText}, wantPart: map[string]string{"1": "2022"},
		},
		{
			name:   "over several commits",
			before: [][]lakelink.Value{acc(1, keptText, 2020, "1")},
			tx:     []lakelink.Change{keepUpdate("account", acc(1, nil, 2021, "2"), 1)},
			extra: [][]lakelink.Change{
				{keepUpdate("account", acc(1, nil, 2020, "3"), 1)},
				{keepUpdate("account", acc(1, nil, 2020, "4"), 1)},
			},
			want: map[string]*string{"1": &keptText}, wantPart: map[string]string{"1": "2020"},
		},
	} {
		t.Run(v.name, func(t *testing.T) {
			src := newFakeSource()
			src.txnPos = v.txnPos
			src.createTable(accountDef())
			for _, row := range v.before {
				src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: row})
			}
			lake := newMemLake()
			runOnce(t, src, lake)
			applyKeep(src, v.tx...)
			cfg := testConfig()
			cfg.MaxBatchBytes = v.maxBatch
			st := runWith(t, src, lake, cfg)
			for _, tx := range v.extra {
				applyKeep(src, tx...)
				st = runWith(t, src, lake, cfg)
			}
			if msg := st.Tables["account"].Error; msg != "" {
				t.Fatalf("the table stopped: %s", msg)
			}
			checkInPlace(t, src, lake, "account")
			for id, want := range v.want {
				got, _, ok := lakeAccount(t, lake, id)
				switch {
				case !ok:
					t.Errorf("account %s is not in the lake", id)
				case (got == nil) != (want == nil) || (got != nil && *got != *want):
					t.Errorf("account %s name = %s, want %s", id, show([]*string{got}), show([]*string{want}))
				}
			}
			for id, want := range v.wantPart {
				if _, part, _ := lakeAccount(t, lake, id); part != want {
					t.Errorf("account %s in partition %q, want %q", id, part, want)
				}
			}
			checkSizes(t, lake)
		})
	}
}

func ptr(s string) *string { return &s }

// TestKeepUnchangedStops: where the value an update left out can't be
// kept, the table stops with an error naming table, column and key and
// what to do; nothing is written as NULL, and the other tables go on.
func TestKeepUnchangedStops(t *testing.T) {
	for _, v := range []struct {
		name  string
		table string
		tx    []lakelink.Change
		want  []string // in the table's error
	}{
		{
			// Append only: the last value exported is not at hand.
			name: "append only", table: "event",
			tx:   []lakelink.Change{keepUpdate("event", []lakelink.Value{int64(1), "a", nil}, 2)},
			want: []string{`link "t"`, `table "event"`, `column "note"`, `key "[1,""a""]"`, "REPLICA IDENTITY FULL", "in place", "lakelink resync --lake LAKE --table event", "never writes such a value as NULL"},
		},
		{
			// In place, a row the lake does not hold (it can't happen with
			// a consistent source).
			name: "in place, row nowhere", table: "account",
			tx:   []lakelink.Change{keepUpdate("account", []lakelink.Value{int64(5), nil, at(2020), "2"}, 1)},
			want: []string{`table "account"`, `column "name"`, "key 5", "nowhere in the lake", "lakelink resync --lake LAKE --table account"},
		},
		{
			name: "in place, row deleted earlier in the batch", table: "account",
			tx: []lakelink.Change{
				{Op: lakelink.OpDelete, Table: "account", Row: []lakelink.Value{int64(1), nil, nil, nil}},
				keepUpdate("account", []lakelink.Value{int64(1), nil, at(2020), "2"}, 1),
			},
			want: []string{`table "account"`, `column "name"`, "key 1", "deleted earlier"},
		},
		{
			name: "in place, createdOn left out", table: "account",
			tx:   []lakelink.Change{keepUpdate("account", []lakelink.Value{int64(1), "n", nil, "2"}, 2)},
			want: []string{`table "account"`, `column "createdon"`, "key 1", "partition"},
		},
		{
			name: "a key value left out", table: "account",
			tx:   []lakelink.Change{keepUpdate("account", []lakelink.Value{int64(1), "n", at(2020), "2"}, 0)},
			want: []string{`table "account"`, `column "id"`, "key value"},
		},
		{
			name: "an insert with values left out", table: "account",
			tx: []lakelink.Change{{Op: lakelink.OpInsert, Table: "account", Row: []lakelink.Value{int64(7), nil, at(2020), "1"},
				Unchanged: []bool{false, true, false, false}}},
			want: []string{`table "account"`, "insert", "only an update"},
		},
	} {
		t.Run(v.name, func(t *testing.T) {
			src := newFakeSource()
			src.createTable(accountDef())
			src.createTable(eventDef())
			src.apply(
				lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: []lakelink.Value{int64(1), keptText, at(2020), "1"}},
				lakelink.Change{Op: lakelink.OpInsert, Table: "event", Row: []lakelink.Value{int64(1), "a", keptText}},
			)
			lake := newMemLake()
			runOnce(t, src, lake)
			before := map[string]bool{}
			for _, r := range readLake(t, lake, v.table) {
				before[show(r.fields)] = true
			}
			applyKeep(src, v.tx...)
			// The other table goes on.
			other := "event"
			otherRow := []lakelink.Value{int64(2), "b", "goes on"}
			if v.table == "event" {
				other, otherRow = "account", []lakelink.Value{int64(2), "goes on", at(2021), "1"}
			}
			src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: other, Row: otherRow})
			st := runOnce(t, src, lake)
			msg := st.Tables[v.table].Error
			if msg == "" {
				t.Fatalf("table %s did not stop", v.table)
			}
			for _, want := range v.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %s", msg, want)
				}
			}
			// Nothing of the stopped change reached the lake.
			after := readLake(t, lake, v.table)
			for _, r := range after {
				if !before[show(r.fields)] {
					t.Errorf("%s: the lake has a record the stop should have kept out: %.200s", v.table, show(r.fields))
				}
			}
			if len(after) != len(before) {
				t.Errorf("%s: %d records, want the %d from before the stop", v.table, len(after), len(before))
			}
			if st.Tables[other].Error != "" {
				t.Errorf("%s stopped too: %s", other, st.Tables[other].Error)
			}
			if n := len(readLake(t, lake, other)); n != 2 {
				t.Errorf("%s has %d rows, want 2: it must go on", other, n)
			}
			// The stop is kept: later runs leave the table alone.
			src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: []lakelink.Value{int64(3), "later", at(2021), "1"}})
			if st := runOnce(t, src, lake); st.Tables[v.table].Error != msg {
				t.Errorf("after another run the error is %q, want %q", st.Tables[v.table].Error, msg)
			}
		})
	}
}

// TestKeepUnchangedWorkload runs the random workload with about half of
// the account updates leaving the name out as unchanged; rows move
// between partitions all the time. The lake stays exact.
func TestKeepUnchangedWorkload(t *testing.T) {
	for _, seed := range []uint64{11, 12, 13} {
		src, w, lake := newSetup(seed, 30)
		r := rand.New(rand.NewPCG(seed, 3))
		st := runOnce(t, src, lake)
		eventCopy := st.Tables["event"].CopyPosition
		for round := 0; round < 4; round++ {
			from := len(src.log)
			w.step(60)
			markUnchanged(src, from, r)
			cfg := testConfig()
			if round%2 == 1 {
				cfg.MaxBatchBytes = 2000 // commits and flushes at other places
			}
			st = runWith(t, src, lake, cfg)
			if msg := st.Tables["account"].Error; msg != "" {
				t.Fatalf("seed %d round %d: account stopped: %s", seed, round, msg)
			}
			checkInPlace(t, src, lake, "account")
			checkAppend(t, src, lake, "event", eventCopy)
		}
		if unchangedIn(src) == 0 {
			t.Fatalf("seed %d: no update left a value out", seed)
		}
	}
}

func unchangedIn(src *fakeSource) int {
	src.mu.Lock()
	defer src.mu.Unlock()
	n := 0
	for _, e := range src.log {
		if e.c.Unchanged != nil {
			n++
		}
	}
	return n
}

// TestKeepUnchangedCrash kills the export at each lake write of a round
// whose updates leave values out, restarts it with other batch
// boundaries (replaying in repair mode), and checks the lake is exact.
func TestKeepUnchangedCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("a crash at every write of a round")
	}
	for _, v := range []struct {
		name     string
		txnPos   bool
		maxTx    int
		steps    int
		maxBatch int64
		replay   int64
	}{
		{name: "small transactions", maxTx: 3, steps: 30, replay: 1},
		{name: "large transactions", txnPos: true, maxTx: 60, steps: 4, maxBatch: 3000, replay: 1100},
	} {
		t.Run(v.name, func(t *testing.T) {
			setup := func(seed uint64) (*fakeSource, *crashLake) {
				src := newFakeSource()
				src.txnPos = v.txnPos
				src.createTable(accountDef())
				src.createTable(eventDef())
				w := newWorkload(seed, src)
				w.maxTx = v.maxTx
				w.step(30)
				lake := &crashLake{memLake: newMemLake()}
				runOnce(t, src, lake)
				from := len(src.log)
				w.step(v.steps)
				markUnchanged(src, from, rand.New(rand.NewPCG(seed, 5)))
				return src, lake
			}
			crashConfig := testConfig()
			crashConfig.MaxBatchBytes = v.maxBatch
			src, lake := setup(1)
			before := lake.writes
			runWith(t, src, lake, crashConfig)
			perRound := lake.writes - before
			if perRound < 5 {
				t.Fatalf("only %d writes per round", perRound)
			}
			crashes := 0
			for n := 1; n <= perRound; n++ {
				src, lake := setup(uint64(200 + n))
				lake.n = lake.writes + n
				e, err := New(src, lake, crashConfig)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				lake.onCrash = cancel
				_ = e.RunOnce(ctx)
				cancel()
				lake.onCrash = nil
				if !lake.crashed {
					continue // this seed's round writes less
				}
				crashes++
				lake.crashed, lake.n = false, 0
				cfg := testConfig()
				cfg.MaxBatchBytes = v.replay
				e, err = New(src, lake, cfg)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
				err = e.RunOnce(ctx)
				cancel()
				if err != nil {
					t.Fatalf("write %d: restart: %v", n, err)
				}
				st, err := ReadState(context.Background(), lake)
				if err != nil {
					t.Fatal(err)
				}
				if msg := st.Tables["account"].Error; msg != "" {
					t.Fatalf("write %d: account stopped: %s", n, msg)
				}
				checkInPlace(t, src, lake, "account")
				checkSizes(t, lake)
			}
			if crashes < perRound/2 {
				t.Errorf("only %d of %d runs crashed", crashes, perRound)
			}
		})
	}
}
