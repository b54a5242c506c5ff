package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/cdm/cdmtest"
	"github.com/lakelink/lakelink/lake/laketest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// accountDef has createdOn (in place by default); eventDef has none
// (append only, numbered partitions).
func accountDef() lakelink.Table {
	return lakelink.Table{Name: "account", Key: []int{0}, Columns: []lakelink.Column{
		{Name: "id", Kind: lakelink.KindInt64, MaxLength: -1, Precision: -1, Scale: -1},
		{Name: "name", Kind: lakelink.KindString, MaxLength: -1, Precision: -1, Scale: -1},
		{Name: "createdon", Kind: lakelink.KindDateTime, MaxLength: -1, Precision: -1, Scale: -1},
		{Name: "amount", Kind: lakelink.KindDecimal, MaxLength: -1, Precision: -1, Scale: -1},
	}}
}

func eventDef() lakelink.Table {
	return lakelink.Table{Name: "event", Key: []int{0, 1}, Columns: []lakelink.Column{
		{Name: "a", Kind: lakelink.KindInt64, MaxLength: -1, Precision: -1, Scale: -1},
		{Name: "b", Kind: lakelink.KindString, MaxLength: -1, Precision: -1, Scale: -1},
		{Name: "note", Kind: lakelink.KindString, MaxLength: -1, Precision: -1, Scale: -1},
	}}
}

// workload makes seeded random changes to account (ids 0..49, createdOn
// moving between years, so rows move between partitions) and event.
type workload struct {
	r     *rand.Rand
	src   *fakeSource
	live  map[int64]bool
	evs   map[string]bool
	years int // createdOn spans this many years (4)
	maxTx int // changes per transaction: 1 to maxTx (3)
}

func newWorkload(seed uint64, src *fakeSource) *workload {
	return &workload{r: rand.New(rand.NewPCG(seed, 7)), src: src, live: map[int64]bool{}, evs: map[string]bool{}, years: 4, maxTx: 3}
}

func (w *workload) accountRow(id int64) []lakelink.Value {
	var created lakelink.Value
	if w.r.IntN(10) > 0 {
		created = time.Date(1990+w.r.IntN(w.years), time.Month(1+w.r.IntN(12)), 1+w.r.IntN(28), w.r.IntN(24), 0, 0, 0, time.UTC)
	}
	names := []string{"plain", "with, comma", "with \"quote\"", "line\nbreak", "", " spaced ", "emoji 🎉 עברית"}
	var name lakelink.Value = names[w.r.IntN(len(names))]
	if w.r.IntN(8) == 0 {
		name = nil
	}
	return []lakelink.Value{id, name, created, strconv.Itoa(w.r.IntN(100000)) + "." + strconv.Itoa(w.r.IntN(100))}
}

func (w *workload) step(n int) {
	for i := 0; i < n; i++ {
		var tx []lakelink.Change
		for j := 0; j < 1+w.r.IntN(w.maxTx); j++ {
			if w.r.IntN(3) == 0 {
				a, b := int64(w.r.IntN(5)), fmt.Sprint("k", w.r.IntN(5))
				k := fmt.Sprint(a, b)
				switch {
				case w.evs[k] && w.r.IntN(3) == 0:
					tx = append(tx, lakelink.Change{Op: lakelink.OpDelete, Table: "event", Row: []lakelink.Value{a, b, nil}})
					delete(w.evs, k)
				case w.evs[k]:
					tx = append(tx, lakelink.Change{Op: lakelink.OpUpdate, Table: "event", Row: []lakelink.Value{a, b, fmt.Sprint("n", w.r.IntN(99))}})
				default:
					tx = append(tx, lakelink.Change{Op: lakelink.OpInsert, Table: "event", Row: []lakelink.Value{a, b, "new"}})
					w.evs[k] = true
				}
				continue
			}
			id := int64(w.r.IntN(50))
			switch {
			case w.live[id] && w.r.IntN(4) == 0:
				tx = append(tx, lakelink.Change{Op: lakelink.OpDelete, Table: "account", Row: []lakelink.Value{id, nil, nil, nil}})
				delete(w.live, id)
			case w.live[id]:
				tx = append(tx, lakelink.Change{Op: lakelink.OpUpdate, Table: "account", Row: w.accountRow(id)})
			default:
				tx = append(tx, lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: w.accountRow(id)})
				w.live[id] = true
			}
		}
		// The fake applies deletes by key and records the old row itself.
		w.src.apply(tx...)
	}
}

// lakeRow is one record read back from the lake.
type lakeRow struct {
	part    string
	id      string
	fields  []*string // every field; nil is NULL
	version uint64
	delete  bool
}

// readLake reads every live partition file of a folder, with the format's
// reader, and the model.json attribute list.
func readLake(t testing.TB, lake lakelink.Lake, folder string) []lakeRow {
	t.Helper()
	ctx := context.Background()
	r, err := lake.Open(ctx, cdm.ModelPath)
	if err != nil {
		t.Fatalf("open model.json: %v", err)
	}
	data, _ := io.ReadAll(r)
	r.Close()
	cdmtest.MustValidateModel(t, data)
	m, err := cdm.ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	ent, ok := m.Entity(folder)
	if !ok {
		t.Fatalf("model.json has no entity %q", folder)
	}
	vf, df := -1, -1
	for i, a := range ent.Attributes {
		switch a.Name {
		case "versionnumber":
			vf = i
		case "IsDelete":
			df = i
		}
	}
	objs, err := lake.List(ctx, folder+"/")
	if err != nil {
		t.Fatal(err)
	}
	var rows []lakeRow
	for _, o := range objs {
		part, ok := livePartition(folder, o.Path)
		if !ok {
			continue
		}
		rc, err := lake.Open(ctx, o.Path)
		if err != nil {
			t.Fatal(err)
		}
		rd := cdm.NewReader(bufio.NewReader(rc))
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", o.Path, err)
			}
			raw := cdm.SplitFields(nil, rec)
			if len(raw) > len(ent.Attributes) {
				t.Fatalf("%s: record with %d fields, model.json has %d attributes", o.Path, len(raw), len(ent.Attributes))
			}
			lr := lakeRow{part: part}
			for _, f := range raw {
				s, null := cdm.Field(f)
				if null {
					lr.fields = append(lr.fields, nil)
				} else {
					lr.fields = append(lr.fields, &s)
				}
			}
			lr.id = *lr.fields[0]
			lr.version, err = strconv.ParseUint(*lr.fields[vf], 10, 64)
			if err != nil {
				t.Fatalf("%s: versionnumber: %v", o.Path, err)
			}
			lr.delete = lr.fields[df] != nil && *lr.fields[df] == "True"
			rows = append(rows, lr)
		}
		rc.Close()
	}
	return rows
}

// encodeRow gives the expected lake fields of a source row's columns: the
// CSV field text, decoded, as the independent reader sees it.
func encodeRow(t testing.TB, def lakelink.Table, row []lakelink.Value) []*string {
	var out []*string
	for i, c := range def.Columns {
		if row[i] == nil {
			out = append(out, nil)
			continue
		}
		b, err := cdm.AppendValue(nil, c.Kind, row[i])
		if err != nil {
			t.Fatal(err)
		}
		s, _ := cdm.Field(b)
		out = append(out, &s)
	}
	return out
}

func show(f []*string) string {
	var b strings.Builder
	for _, s := range f {
		if s == nil {
			b.WriteString("<NULL>|")
		} else {
			b.WriteString(strconv.Quote(*s) + "|")
		}
	}
	return b.String()
}

// checkInPlace asserts G1 for an in-place table: the lake holds exactly the
// source's rows, each once, in the partition of its createdOn.
func checkInPlace(t testing.TB, src *fakeSource, lake lakelink.Lake, table string) {
	t.Helper()
	def, rows := src.current(table)
	got := map[string]lakeRow{}
	for _, r := range readLake(t, lake, table) {
		if _, dup := got[r.id]; dup {
			t.Fatalf("%s: Id %s is in the lake twice", table, r.id)
		}
		got[r.id] = r
	}
	if len(got) != len(rows) {
		t.Errorf("%s: lake has %d rows, source %d", table, len(got), len(rows))
	}
	for _, row := range rows {
		id := fmt.Sprint(row[0])
		lr, ok := got[id]
		if !ok {
			t.Errorf("%s: row %s missing from the lake", table, id)
			continue
		}
		want := show(encodeRow(t, def, row))
		if g := show(lr.fields[3 : 3+len(def.Columns)]); g != want {
			t.Errorf("%s: row %s = %s, want %s", table, id, g, want)
		}
		wantPart, _ := cdm.PartitionName(cdm.GranularityYear, row[2])
		if lr.part != wantPart {
			t.Errorf("%s: row %s in partition %s, want %s", table, id, lr.part, wantPart)
		}
	}
}

// checkAppend asserts G1 for an append-only table: the lake holds exactly
// the source's changes after the copy, each once.
func checkAppend(t testing.TB, src *fakeSource, lake lakelink.Lake, table string, copyPos lakelink.Position) {
	t.Helper()
	src.mu.Lock()
	var want []string
	for _, e := range src.log {
		if e.c.Table != table || e.c.Pos <= copyPos || e.c.Op == lakelink.OpSchema {
			continue
		}
		key := fmt.Sprintf("%d:%v", e.c.Pos, e.c.Op == lakelink.OpDelete)
		if e.c.Op != lakelink.OpDelete {
			key += show(encodeRow(t, *e.def, e.c.Row))
		}
		want = append(want, key)
	}
	src.mu.Unlock()
	var got []string
	for _, r := range readLake(t, lake, table) {
		if lakelink.Position(r.version) <= copyPos {
			continue
		}
		key := fmt.Sprintf("%d:%v", r.version, r.delete)
		if !r.delete {
			key += show(r.fields[3:6])
		}
		got = append(got, key)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: lake changes differ from the source's:\n got %d: %.600s\nwant %d: %.600s", table, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}

// memLake is the in-memory lake with file:/// locations, as model.json
// wants absolute URIs a reader understands.
type memLake struct{ *laketest.Memory }

// newSetup makes a fake source with the account and event tables, a
// workload that has taken its first steps, and an empty lake.
func newSetup(seed uint64, steps int) (*fakeSource, *workload, memLake) {
	src := newFakeSource()
	src.createTable(accountDef())
	src.createTable(eventDef())
	w := newWorkload(seed, src)
	w.step(steps)
	return src, w, newMemLake()
}

func newMemLake() memLake { return memLake{laketest.NewMemory()} }

func (m memLake) URL(path string) string { return "file:///lake/" + path }

func testConfig() Config {
	return Config{Link: "t", Logger: quiet, CommitInterval: 5 * time.Millisecond, IdleExit: 30 * time.Millisecond, retryBackoff: time.Millisecond}
}

func runOnce(t testing.TB, src lakelink.Source, lake lakelink.Lake) *State {
	t.Helper()
	return runWith(t, src, lake, testConfig())
}

func TestExportExact(t *testing.T) {
	src, w, lake := newSetup(1, 40)
	st := runOnce(t, src, lake)
	if got := st.Tables["account"].Mode; got != lakelink.ModeInPlace {
		t.Errorf("account mode = %s, want in place (it has createdon)", got)
	}
	if got := st.Tables["event"].Mode; got != lakelink.ModeAppendOnly {
		t.Errorf("event mode = %s, want append only", got)
	}
	checkInPlace(t, src, lake, "account")
	eventCopy := st.Tables["event"].CopyPosition
	for round := 0; round < 5; round++ {
		w.step(60)
		st = runOnce(t, src, lake)
		checkInPlace(t, src, lake, "account")
		checkAppend(t, src, lake, "event", eventCopy)
	}
	if src.acked != st.Position || st.Position != src.pos {
		t.Errorf("acked %d, state position %d, source at %d", src.acked, st.Position, src.pos)
	}
}

// crashLake stops working at its n-th write, as a process killed at that
// instant would: that write is left undone (an append half done), and no
// later write happens. Reads go on working.
type crashLake struct {
	memLake
	mu      sync.Mutex
	n       int
	writes  int
	crashed bool
	onCrash func() // called at the crash: ends the crashing run
}

var errCrashed = errors.New("crashed")

// crashRun runs the export once with a crash at the lake's n-th write from
// now: the run ends at the crash (ctx canceled), or before it, when the
// round writes less (then c.crashed stays false). It returns RunOnce's
// error.
func (c *crashLake) crashRun(t testing.TB, src lakelink.Source, n int, cfg Config) error {
	t.Helper()
	c.n = c.writes + n
	e, err := New(src, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.onCrash = cancel
	err = e.RunOnce(ctx)
	c.onCrash = nil
	return err
}

// write counts a write; it reports whether this one is the crash.
func (c *crashLake) write() (crash bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return false, errCrashed
	}
	c.writes++
	if c.writes == c.n {
		c.crashed = true
		if c.onCrash != nil {
			c.onCrash()
		}
		return true, nil
	}
	return false, nil
}

type crashWriter struct {
	io.WriteCloser
	c      *crashLake
	buf    []byte
	append bool
}

func (w *crashWriter) Write(p []byte) (int, error) { w.buf = append(w.buf, p...); return len(p), nil }

func (w *crashWriter) Close() error {
	crash, err := w.c.write()
	if err != nil {
		return err
	}
	if crash {
		if w.append {
			// A torn tail: half the bytes reached the lake.
			_, _ = w.WriteCloser.Write(w.buf[:len(w.buf)/2])
			_ = w.WriteCloser.Close()
		}
		return errCrashed
	}
	if _, err := w.WriteCloser.Write(w.buf); err != nil {
		return err
	}
	return w.WriteCloser.Close()
}

func (c *crashLake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	w, err := c.memLake.Create(context.Background(), path)
	return &crashWriter{WriteCloser: w, c: c}, err
}

func (c *crashLake) Append(ctx context.Context, path string, size int64) (io.WriteCloser, error) {
	w, err := c.memLake.Append(context.Background(), path, size)
	return &crashWriter{WriteCloser: w, c: c, append: true}, err
}

func (c *crashLake) Copy(ctx context.Context, src, dst string, n int64) error {
	if crash, err := c.write(); crash || err != nil {
		return errCrashed
	}
	return c.memLake.Copy(ctx, src, dst, n)
}

func (c *crashLake) Delete(ctx context.Context, path string) error {
	if crash, err := c.write(); crash || err != nil {
		return errCrashed
	}
	return c.memLake.Delete(ctx, path)
}

// TestExportCrash kills the export at every write of a round in turn, then
// restarts it with other batch boundaries (a commit per transaction), and
// checks G1 each time.
func TestExportCrash(t *testing.T) {
	for _, v := range []struct {
		name     string
		txnPos   bool  // every change of a transaction at its commit position
		maxTx    int   // changes per transaction, up to
		steps    int   // transactions after the first copy
		maxBatch int64 // MaxBatchBytes of the run that crashes (0: default)
		replay   int64 // MaxBatchBytes of the restart
		split    int64 // SplitBytes
	}{
		{name: "small transactions", maxTx: 3, steps: 40, replay: 1},
		// Append-only partitions continued in overflow splits.
		{name: "splits", maxTx: 3, steps: 30, replay: 1, split: 300},
		// Transactions larger than a batch are flushed part by part before
		// their commit; replays meet their own earlier flushes.
		{name: "large transactions", txnPos: true, maxTx: 60, steps: 5, maxBatch: 3000, replay: 1100},
	} {
		t.Run(v.name, func(t *testing.T) { testExportCrash(t, v.txnPos, v.maxTx, v.steps, v.maxBatch, v.replay, v.split) })
	}
}

// testExportCrash crashes a run at each of its lake writes in turn, then
// checks that a restart (with other batch boundaries) makes the lake exact.
func testExportCrash(t *testing.T, txnPos bool, maxTx, steps int, maxBatch, replay, split int64) {
	setup := func(seed uint64) (*fakeSource, *workload, *crashLake, lakelink.Position) {
		src := newFakeSource()
		src.txnPos = txnPos
		src.createTable(accountDef())
		src.createTable(eventDef())
		w := newWorkload(seed, src)
		w.maxTx = maxTx
		if seed%2 == 0 {
			w.years = 60 // sparse partitions: a replay leaves some untouched
		}
		w.step(30)
		lake := &crashLake{memLake: newMemLake()}
		st := runOnce(t, src, lake)
		w.step(steps)
		return src, w, lake, st.Tables["event"].CopyPosition
	}
	crashConfig := testConfig()
	crashConfig.MaxBatchBytes = maxBatch
	crashConfig.SplitBytes = split
	// Count the writes of one round.
	src, _, lake, _ := setup(1)
	before := lake.writes
	e, err := New(src, lake, crashConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	perRound := lake.writes - before
	if perRound < 5 {
		t.Fatalf("only %d writes per round", perRound)
	}
	t.Logf("%d lake writes per round, a crash at each", perRound)
	missed := 0
	defer func() {
		if missed > perRound/4 {
			t.Errorf("%d of %d crash points fell past the end of their round", missed, perRound)
		}
	}()
	for n := 1; n <= perRound; n++ {
		src, _, lake, eventCopy := setup(uint64(100 + n))
		err := lake.crashRun(t, src, n, crashConfig)
		if !lake.crashed {
			if err != nil || n <= perRound/2 {
				t.Fatalf("write %d: no crash happened (RunOnce: %v)", n, err)
			}
			// This seed's round writes less than the first one: all done.
			missed++
			continue
		}
		lake.crashed, lake.n = false, 0
		cfg := testConfig()
		cfg.MaxBatchBytes = replay // other batch boundaries than before the crash
		cfg.SplitBytes = split
		runWith(t, src, lake, cfg)
		checkInPlace(t, src, lake, "account")
		checkAppend(t, src, lake, "event", eventCopy)
		checkSizes(t, lake)
	}
}

// checkSizes asserts that the state's committed length of every partition
// is the live file's length.
func checkSizes(t testing.TB, lake lakelink.Lake) {
	t.Helper()
	ctx := context.Background()
	st, err := ReadState(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range st.Tables {
		for p, ps := range ts.Partitions {
			info, err := lake.Stat(ctx, cdm.PartitionPath(ts.Folder, p))
			if err != nil {
				t.Fatalf("%s/%s: %v", ts.Folder, p, err)
			}
			if info.Size != ps.Size {
				t.Fatalf("%s/%s: the state says %d bytes, the lake holds %d", ts.Folder, p, ps.Size, info.Size)
			}
		}
	}
}

func TestExportSchemaChange(t *testing.T) {
	src, _, lake := newSetup(3, 20)
	runOnce(t, src, lake)
	src.addColumn("account", lakelink.Column{Name: "extra", Kind: lakelink.KindInt64, MaxLength: -1, Precision: -1, Scale: -1})
	id := int64(1000)
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: []lakelink.Value{id, "x", nil, "1", int64(7)}})
	runOnce(t, src, lake)
	ent := modelEntity(t, lake, "account")
	names := attrNames(ent)
	want := "Id,SinkCreatedOn,SinkModifiedOn,id_,name,createdon,amount,versionnumber,IsDelete,extra"
	if names != want {
		t.Fatalf("attributes after ADD COLUMN = %s, want %s", names, want)
	}
	src.dropColumn("account", "name")
	runOnce(t, src, lake)
	if got := attrNames(modelEntity(t, lake, "account")); got != want {
		t.Fatalf("attributes after DROP COLUMN = %s, want %s (dropped columns stay)", got, want)
	}
	src.apply(lakelink.Change{Op: lakelink.OpUpdate, Table: "account", Row: []lakelink.Value{id, nil, "2", int64(8)}})
	runOnce(t, src, lake)
	for _, r := range readLake(t, lake, "account") {
		if r.id != "1000" {
			continue
		}
		if r.fields[4] != nil || *r.fields[6] != "2" || *r.fields[9] != "8" {
			t.Fatalf("row after DROP COLUMN = %s, want name empty, amount 2, extra 8", show(r.fields))
		}
		return
	}
	t.Fatal("row 1000 not in the lake")
}

func TestExportBadValue(t *testing.T) {
	src := newFakeSource()
	src.createTable(accountDef())
	src.createTable(eventDef())
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "event", Row: []lakelink.Value{int64(1), "a", "fine"}})
	lake := newMemLake()
	runOnce(t, src, lake)
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: []lakelink.Value{int64(1), "ok", nil, lakelink.BadValue{Raw: "12abc", Reason: "text in a NUMERIC column"}}})
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "event", Row: []lakelink.Value{int64(2), "b", "still going"}})
	st := runOnce(t, src, lake)
	msg := st.Tables["account"].Error
	for _, want := range []string{`"account"`, `"amount"`, "12abc", "key 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	if n := len(readLake(t, lake, "event")); n != 2 {
		t.Errorf("event has %d rows, want 2: the other table must go on", n)
	}
	// Fixed in the source, resynced: the table is exported again.
	src.apply(lakelink.Change{Op: lakelink.OpUpdate, Table: "account", Row: []lakelink.Value{int64(1), "ok", nil, "12"}})
	if err := Resync(context.Background(), lake, "account"); err != nil {
		t.Fatal(err)
	}
	st = runOnce(t, src, lake)
	if msg := st.Tables["account"].Error; msg != "" {
		t.Fatalf("after resync the table still says %q", msg)
	}
	checkInPlace(t, src, lake, "account")
	if err := Resync(context.Background(), lake, "nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Resync of a missing table = %v, want an error naming it", err)
	}
}

func TestSnapshotsAndRetention(t *testing.T) {
	src, w, lake := newSetup(4, 20)
	named := map[string]string{} // file → content when first named
	clock := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	lakelink.Now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	defer func() { lakelink.Now = func() time.Time { return time.Now().UTC() } }()
	for i := 0; i < 9; i++ {
		w.step(10)
		runOnce(t, src, lake)
		ent := modelEntity(t, lake, "account")
		if len(ent.Partitions) == 0 {
			t.Fatal("model.json names no partitions")
		}
		for _, p := range ent.Partitions {
			path := strings.TrimPrefix(p.Location, "file:///lake/")
			if !strings.Contains(path, "/Snapshot/") {
				t.Fatalf("model.json names %s, not a Snapshot file", p.Location)
			}
			content := laketest.Get(t, lake, path)
			if old, ok := named[path]; ok && old != content {
				t.Fatalf("%s changed after model.json named it", path)
			}
			named[path] = content
		}
	}
	objs, _ := lake.List(context.Background(), "account/Snapshot/")
	perPart := map[string]int{}
	for _, o := range objs {
		p, _, ok := cdm.ParseSnapshotPath("account", o.Path)
		if !ok {
			t.Fatalf("odd snapshot file %s", o.Path)
		}
		perPart[p]++
	}
	for p, n := range perPart {
		if n > 5 {
			t.Errorf("partition %s keeps %d snapshots, retention is 5", p, n)
		}
	}
}

func modelEntity(t testing.TB, lake lakelink.Lake, name string) cdm.Entity {
	t.Helper()
	data := laketest.Get(t, lake, cdm.ModelPath)
	cdmtest.MustValidateModel(t, []byte(data))
	m, err := cdm.ParseModel([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.Entity(name)
	if !ok {
		t.Fatalf("no entity %s", name)
	}
	return e
}

func attrNames(e cdm.Entity) string {
	var names []string
	for _, a := range e.Attributes {
		names = append(names, a.Name)
	}
	return strings.Join(names, ",")
}

// TestRecoverSweepsUncommittedSnapshots: a crash between a snapshot's copy
// and the state write leaves a Snapshot file no state names; the next run
// deletes it and keeps every snapshot the state names.
func TestRecoverSweepsUncommittedSnapshots(t *testing.T) {
	src, w, lake := newSetup(5, 30)
	st := runOnce(t, src, lake)
	ts := st.Tables["account"]
	var part string
	for p := range ts.Partitions {
		part = p
		break
	}
	stray := cdm.SnapshotPath(ts.Folder, part, time.Unix(ts.Partitions[part].Snapshots[0]+3600, 0))
	laketest.Put(t, lake, stray, "1,2\n")
	w.step(5)
	st = runOnce(t, src, lake)
	if _, err := lake.Stat(context.Background(), stray); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("stray snapshot %s: Stat = %v, want it deleted", stray, err)
	}
	for p, ps := range st.Tables["account"].Partitions {
		for _, sec := range ps.Snapshots {
			path := cdm.SnapshotPath(ts.Folder, p, time.Unix(sec, 0))
			if _, err := lake.Stat(context.Background(), path); err != nil {
				t.Errorf("snapshot %s named by the state: %v", path, err)
			}
		}
	}
}

// TestResyncKeepsReadersView: a resync within the same second as the last
// snapshot must not reuse a snapshot name, so no file a model.json named
// changes, and the new model.json names only files that exist.
func TestResyncKeepsReadersView(t *testing.T) {
	src, w, lake := newSetup(6, 40)
	frozen := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	lakelink.Now = func() time.Time { return frozen }
	defer func() { lakelink.Now = func() time.Time { return time.Now().UTC() } }()
	runOnce(t, src, lake)
	before := map[string]string{}
	for _, p := range modelEntity(t, lake, "account").Partitions {
		path := strings.TrimPrefix(p.Location, "file:///lake/")
		before[path] = laketest.Get(t, lake, path)
	}
	if err := Resync(context.Background(), lake, "account"); err != nil {
		t.Fatal(err)
	}
	w.step(40)
	runOnce(t, src, lake)
	for path, content := range before {
		if got := laketest.Get(t, lake, path); got != content {
			t.Errorf("%s changed after a resync", path)
		}
	}
	for _, p := range modelEntity(t, lake, "account").Partitions {
		path := strings.TrimPrefix(p.Location, "file:///lake/")
		if _, ok := before[path]; ok {
			t.Errorf("model.json still names %s after the resync's copy", path)
		}
		laketest.Get(t, lake, path)
	}
	checkInPlace(t, src, lake, "account")
}

// idSource is a fake source that names its instance.
type idSource struct {
	*fakeSource
	id string
}

func (s idSource) SystemID(ctx context.Context) (string, error) { return s.id, nil }

// TestSourceInstanceChecked: a lake exported from one source instance is
// refused by a run against another, until every table is resynced.
func TestSourceInstanceChecked(t *testing.T) {
	src, w, lake := newSetup(7, 20)
	if st := runOnce(t, idSource{src, "A"}, lake); st.SourceID != "A" {
		t.Fatalf("state SourceID = %q, want A", st.SourceID)
	}
	w.step(5)
	e, err := New(idSource{src, "B"}, lake, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	err = e.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "instance A") || !strings.Contains(err.Error(), "resync") {
		t.Fatalf("run against another instance: %v, want a refusal naming instance A and resync", err)
	}
	for _, table := range []string{"account", "event"} {
		if err := Resync(context.Background(), lake, table); err != nil {
			t.Fatal(err)
		}
	}
	if st := runOnce(t, idSource{src, "B"}, lake); st.SourceID != "B" {
		t.Errorf("after resyncing every table, SourceID = %q, want B", st.SourceID)
	}
	checkInPlace(t, src, lake, "account")
}

// TestOptionsetMetadataWritten: the labels of an enum column reach
// OptionsetMetadata/OptionsetMetadata.csv, and a new label is added there.
func TestOptionsetMetadataWritten(t *testing.T) {
	src := newFakeSource()
	def := eventDef()
	def.Columns[2].Options = []string{"low", "high"}
	src.createTable(def)
	lake := newMemLake()
	runOnce(t, src, lake)
	want := `"event","note",1,False,1033,"low"` + "\n" + `"event","note",2,False,1033,"high"` + "\n"
	if got := laketest.Get(t, lake, cdm.OptionsetPath); got != want {
		t.Errorf("%s = %q, want %q", cdm.OptionsetPath, got, want)
	}
}

// TestAppendSplits: an append-only partition that reaches SplitBytes is
// continued in overflow splits; each is a partition of model.json with the
// year of the partition it continues, and the table stays exact.
func TestAppendSplits(t *testing.T) {
	src, w, lake := newSetup(8, 10)
	cfg := testConfig()
	cfg.SplitBytes = 500
	run := func() *State {
		e, err := New(src, lake, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := ReadState(context.Background(), lake)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := run()
	eventCopy := st.Tables["event"].CopyPosition
	for range 4 {
		w.step(30)
		st = run()
	}
	splits := 0
	for name, ps := range st.Tables["event"].Partitions {
		if _, _, ok := cdm.ParseSplitName(name); ok {
			splits++
		}
		if ps.Size >= 500+400 {
			t.Errorf("partition %s holds %d bytes, past the 500-byte split size by more than a commit", name, ps.Size)
		}
	}
	if splits < 2 {
		t.Fatalf("event has %d overflow splits, want several: %v", splits, sortedKeys(st.Tables["event"].Partitions))
	}
	ent := modelEntity(t, lake, "event")
	names := map[string]bool{}
	for _, p := range ent.Partitions {
		names[p.Name] = true
	}
	for name := range st.Tables["event"].Partitions {
		if !names[name] {
			t.Errorf("model.json does not name partition %s", name)
		}
	}
	checkAppend(t, src, lake, "event", eventCopy)
	checkSizes(t, lake)
}
