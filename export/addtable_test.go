package export

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

// TestSpoolExact: changes come back from the spool exactly as they went in.
func TestSpoolExact(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("", -(9*3600+30*60)))
	in := []lakelink.Change{
		{Op: lakelink.OpSchema, Table: "t", Pos: 1, Schema: &lakelink.Table{Name: "t", Key: []int{0}, Columns: []lakelink.Column{{Name: "id", Kind: lakelink.KindInt64, Options: []string{"a"}}}}},
		{Op: lakelink.OpInsert, Table: "t", Pos: 2, Row: []lakelink.Value{int64(math.MinInt64), "", nil, math.Copysign(0, -1), 5e-324, []byte{0, 1, 255}, ts, true}},
		{Op: lakelink.OpUpdate, Table: "t", Pos: 3, Row: []lakelink.Value{int64(math.MaxInt64), "a\"b,\r\n", lakelink.BadValue{Raw: "abc", Reason: "text in an INTEGER column"}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Op: lakelink.OpDelete, Table: "t", Pos: 4, Row: []lakelink.Value{int64(1), nil}, OldKnown: false},
		{Op: lakelink.OpCommit, Pos: 4},
	}
	for _, c := range in {
		if err := sp.add(c); err != nil {
			t.Fatal(err)
		}
	}
	var out []lakelink.Change
	if err := sp.replay(func(c lakelink.Change) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("replayed %d changes, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := fmt.Sprintf("%#v", in[i].Row), fmt.Sprintf("%#v", out[i].Row)
		if a != b || in[i].Op != out[i].Op || in[i].Pos != out[i].Pos || in[i].Table != out[i].Table || in[i].OldKnown != out[i].OldKnown {
			t.Errorf("change %d: got %+v\nwant %+v", i, out[i], in[i])
		}
		for j, v := range in[i].Row {
			if f, ok := v.(float64); ok && math.Float64bits(f) != math.Float64bits(out[i].Row[j].(float64)) {
				t.Errorf("change %d value %d: %v lost its bits", i, j, f)
			}
			if tv, ok := v.(time.Time); ok {
				got := out[i].Row[j].(time.Time)
				_, off1 := tv.Zone()
				_, off2 := got.Zone()
				if !tv.Equal(got) || off1 != off2 {
					t.Errorf("change %d value %d: time %v came back as %v", i, j, tv, got)
				}
			}
		}
	}
	if !reflect.DeepEqual(in[0].Schema, out[0].Schema) {
		t.Errorf("schema: got %+v, want %+v", out[0].Schema, in[0].Schema)
	}
}

// startRun runs an exporter (Run) in a goroutine; the returned stop
// cancels it and waits for it, once, failing the test if Run failed.
func startRun(t *testing.T, src lakelink.Source, lake lakelink.Lake, cfg Config) (stop func()) {
	t.Helper()
	e, err := New(src, lake, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// waitState polls the lake's state until ok accepts it.
func waitState(t *testing.T, lake lakelink.Lake, what string, ok func(*State) bool) *State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := ReadState(context.Background(), lake); err == nil && ok(st) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
	return nil
}

// TestTableAddedWhileRunning: a table the source gains while a link that
// exports every table runs is copied in the background while the other
// tables keep committing; its changes during the copy are applied after
// it, exactly, in both write modes.
func TestTableAddedWhileRunning(t *testing.T) {
	src, w, lake := newSetup(11, 30)
	cfg := testConfig()
	cfg.TableScanInterval = 10 * time.Millisecond
	stop := startRun(t, src, lake, cfg)
	defer stop()
	waitState(t, lake, "the first copies", func(st *State) bool {
		return st.Tables["account"] != nil && st.Tables["account"].InitialSync == SyncCompleted && st.Tables["event"].InitialSync == SyncCompleted
	})

	// Two tables appear, each with rows; their copies wait at a gate.
	added, addedEv := accountDef(), eventDef()
	added.Name, addedEv.Name = "added", "added_ev"
	gate := make(chan struct{})
	src.mu.Lock()
	src.gates = map[string]chan struct{}{"added": gate, "added_ev": gate}
	src.mu.Unlock()
	src.createTable(added)
	src.createTable(addedEv)
	for i := int64(0); i < 20; i++ {
		row := w.accountRow(i)
		src.apply(
			lakelink.Change{Op: lakelink.OpInsert, Table: "added", Row: row},
			lakelink.Change{Op: lakelink.OpInsert, Table: "added_ev", Row: []lakelink.Value{i, "k", "seed"}},
		)
	}
	st := waitState(t, lake, "the added tables' copies to start", func(st *State) bool {
		return st.Tables["added"] != nil && st.Tables["added"].InitialSync == SyncInProgress && st.Tables["added_ev"] != nil
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		src.mu.Lock()
		n := src.snaps["added"] + src.snaps["added_ev"]
		src.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the copies to take their snapshots")
		}
	}
	// While the copies wait: the added tables change (updates, deletes,
	// inserts, odd values), and the other tables go on committing.
	before := st.Position
	for i := int64(0); i < 30; i++ {
		w.step(1)
		id := i % 25
		var tx []lakelink.Change
		switch {
		case i < 5:
			tx = append(tx, lakelink.Change{Op: lakelink.OpDelete, Table: "added", Row: []lakelink.Value{id, nil, nil, nil}})
		default:
			tx = append(tx, lakelink.Change{Op: lakelink.OpInsert, Table: "added", Row: w.accountRow(id)})
		}
		note := []lakelink.Value{"quote \" comma , newline \n", "", nil, "🎉", fmt.Sprint(math.Inf(1))}[i%5]
		tx = append(tx, lakelink.Change{Op: lakelink.OpUpdate, Table: "added_ev", Row: []lakelink.Value{i % 20, "k", note}})
		src.apply(tx...)
	}
	st = waitState(t, lake, "commits of the other tables during the copies", func(st *State) bool {
		return st.Position > before+20 && st.Tables["added"].InitialSync == SyncInProgress
	})
	close(gate)
	st = waitState(t, lake, "the added tables' copies to be published", func(st *State) bool {
		return st.Tables["added"].InitialSync == SyncCompleted && st.Tables["added_ev"].InitialSync == SyncCompleted
	})
	copyPos := st.Tables["added_ev"].CopyPosition
	if st.Tables["added"].Error != "" || st.Tables["added_ev"].Error != "" {
		t.Fatalf("added tables stopped: %q %q", st.Tables["added"].Error, st.Tables["added_ev"].Error)
	}
	// And after: more changes through the stream as usual.
	for i := int64(0); i < 10; i++ {
		w.step(1)
		src.apply(
			lakelink.Change{Op: lakelink.OpInsert, Table: "added", Row: w.accountRow(100 + i)},
			lakelink.Change{Op: lakelink.OpDelete, Table: "added_ev", Row: []lakelink.Value{i, "k", nil}},
		)
	}
	stop()
	// The updates made while the copy waited came after its position:
	// they reached the lake through the spool.
	src.mu.Lock()
	after := 0
	for _, e := range src.log {
		if e.c.Table == "added_ev" && e.c.Op == lakelink.OpUpdate && e.c.Pos > copyPos {
			after++
		}
	}
	src.mu.Unlock()
	if after < 30 {
		t.Fatalf("only %d updates of added_ev came after its copy's position %d: the test did not exercise the spool", after, copyPos)
	}
	runOnce(t, src, lake)
	for _, name := range []string{"account", "added"} {
		checkInPlace(t, src, lake, name)
	}
	checkAppend(t, src, lake, "added_ev", copyPos)
	if ent := modelEntity(t, lake, "added"); len(ent.Partitions) == 0 {
		t.Errorf("model.json names no partition of the added table")
	}
}

// TestTableDroppedWhileRunning: a linked table that is gone from the
// source stops, with an error in the state that says so; the lake keeps
// its rows and the other tables go on.
func TestTableDroppedWhileRunning(t *testing.T) {
	src, w, lake := newSetup(12, 30)
	cfg := testConfig()
	cfg.TableScanInterval = 10 * time.Millisecond
	stop := startRun(t, src, lake, cfg)
	defer stop()
	waitState(t, lake, "the first copies", func(st *State) bool {
		return st.Tables["event"] != nil && st.Tables["event"].InitialSync == SyncCompleted
	})
	before := len(readLake(t, lake, "event"))
	src.mu.Lock()
	delete(src.tables, "event")
	src.mu.Unlock()
	st := waitState(t, lake, "the dropped table to stop", func(st *State) bool { return st.Tables["event"].Error != "" })
	if msg := st.Tables["event"].Error; !strings.Contains(msg, "gone from the source") {
		t.Fatalf("event's error: %q; want one saying it is gone from the source", msg)
	}
	pos := st.Position
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: w.accountRow(99)})
	waitState(t, lake, "account's next commit", func(st *State) bool { return st.Position > pos })
	stop()
	if after := len(readLake(t, lake, "event")); after != before {
		t.Errorf("the dropped table's lake rows went from %d to %d, want them kept", before, after)
	}
	checkInPlace(t, src, lake, "account")
}
