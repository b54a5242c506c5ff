package tests

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/export"
)

func genSmallText(g *gen) any {
	if g.r.Intn(10) == 0 {
		return nil
	}
	if g.r.Intn(2) == 0 {
		return textPool[g.r.Intn(len(textPool))]
	}
	return g.randText(24)
}

func genSmallBlob(g *gen) any {
	if g.r.Intn(10) == 0 {
		return nil
	}
	b := make([]byte, g.r.Intn(24))
	g.r.Read(b)
	return b
}

// crashTables: a big table with createdon (in place, by year), and a
// ledger without createdOn (append only).
func crashTables() (big, ledger *tableDef) {
	big = &tableDef{
		name: "big",
		cols: []col{
			{"id", "INTEGER", nil}, {"createdon", "DATETIME", genDateTime}, {"n", "INTEGER", genInt},
			{"r", "REAL", genReal}, {"s", "TEXT", genSmallText}, {"b", "BLOB", genSmallBlob},
		},
		key: []string{"id"}, createdOn: "createdon", newKey: intKey,
	}
	ledger = &tableDef{
		name: "ledger",
		cols: []col{
			{"k", "TEXT", nil}, {"amount", "INTEGER", genInt}, {"x", "REAL", genReal}, {"memo", "TEXT", genSmallText}, {"raw", "BLOB", genSmallBlob},
		},
		key: []string{"k"}, newKey: textKey, record: true,
	}
	return big, ledger
}

// seedFast inserts n rows into a table that is not recorded, without
// reading them back, in one transaction that runs the statements of
// before first (a CREATE TABLE, say: the table then appears with its rows).
func seedFast(t testing.TB, w *workload, td *tableDef, n int, before ...string) {
	t.Helper()
	tx, err := w.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range before {
		if _, err := tx.Exec(s); err != nil {
			t.Fatalf("seed %s: %s: %v", td.name, s, err)
		}
	}
	names := make([]string, len(td.cols))
	marks := make([]string, len(td.cols))
	for i, c := range td.cols {
		names[i], marks[i] = qi(c.name), "?"
	}
	stmt, err := tx.Prepare("INSERT INTO " + qi(td.name) + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")")
	if err != nil {
		t.Fatal(err)
	}
	l := w.live[td.name]
	for i := 0; i < n; i++ {
		row := make([]any, len(td.cols))
		for j, c := range td.cols {
			if c.gen != nil {
				row[j] = c.gen(w.g)
			}
		}
		kv := td.newKey(w.g)
		for j, ki := range td.keyIdx() {
			row[ki] = kv[j]
		}
		if _, err := stmt.Exec(row...); err != nil {
			t.Fatalf("seed %s: %v", td.name, err)
		}
		l.add(td.keyOf(row), kv)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	w.changes += n
}

// TestCrash checks G2 (and G3 across crashes): `lakelink run` is killed
// with SIGKILL at 24 random instants, the first ones during the initial
// copy of a 200,000-row table (after a `lakelink resync` when the copy
// finished before the kill) and the rest while it streams, while a
// workload keeps writing through its own connection; after each kill and
// restart no file that any model.json named has changed, and once the
// workload stops and a --once run catches up, both tables are exact.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills the binary 24 times")
	}
	const kills = 24
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	big, ledger := crashTables()
	mustExec(t, db, big.ddl(), ledger.ddl())
	g := newGen(seed)
	w := newWorkload(db, g, big, ledger)
	seedStart := time.Now()
	seedFast(t, w, big, 200000)
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes < 200000+10000 {
		if err := w.tx(ctx, 200, []*tableDef{ledger}, true); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	t.Logf("seeded 200,000 rows of big and 10,000 of ledger in %s", time.Since(seedStart).Round(time.Millisecond))
	seeded := w.changes

	lake := filepath.Join(dir, "lake")
	args := []string{"run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--commit-interval", "500ms", "--snapshot-interval", "2s"}

	// The workload: its own goroutine and connection, until stopped.
	stopWorkload := w.background(t, ctx, 12, 2*time.Millisecond)

	since := time.Now()
	named := newNamedFiles()
	inCopy, inStream, resyncs := 0, 0, 0
	for i := 0; i < kills; i++ {
		aimAtCopy := i < kills/3
		// The copy of big takes well under a second; once it is done, a
		// resync makes the next run copy it again.
		if aimAtCopy && recopyBig(t, dir, lake) {
			resyncs++
		}
		p := startLakelink(t, dir, args...)
		var delay time.Duration
		if aimAtCopy {
			// Once the copy of big is under way, a random instant within
			// its first quarter second.
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) && !p.exited() {
				if st := tryReadState(lake); st != nil && st.Tables["big"] != nil && st.Tables["big"].InitialSync == export.SyncInProgress {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			delay = time.Duration(g.r.Int63n(int64(250 * time.Millisecond)))
		} else {
			waitSynced(t, p, lake, time.Minute, "big", "ledger")
			delay = time.Duration(g.r.Int63n(int64(2 * time.Second)))
		}
		phase := killAfter(t, i+1, p, delay, bigCopied(lake))
		if phase == "copy" {
			inCopy++
		} else {
			inStream++
		}
		t.Logf("kill %d at %s after start (%s phase), %d changes so far", i+1, delay.Round(time.Millisecond), phase, w.changesSafe())
		if msg := named.recheck(t, lake); msg != "" {
			t.Fatalf("after kill %d: %s", i+1, msg)
		}
		if msg := named.observe(t, lake); msg != "" {
			t.Fatalf("after kill %d: %s", i+1, msg)
		}
	}
	t.Logf("%d kills: %d during the initial copy, %d while streaming; %d resyncs of big", kills, inCopy, inStream, resyncs)
	if inCopy == 0 {
		t.Errorf("no kill landed during the initial copy of big (200,000 rows): the copy is faster than the test aims")
	}
	// One more restart that lives, while the workload still writes.
	p := startLakelink(t, dir, args...)
	waitSynced(t, p, lake, time.Minute, "big", "ledger")
	time.Sleep(2 * time.Second)
	if err := stopWorkload(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload: %d changes after the seed (%d busy retries)", w.changes-seeded, w.busy)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	mustRunOnce(t, dir, args[1:]...)
	if msg := named.recheck(t, lake); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	if msg := named.observe(t, lake); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	t.Logf("G3: %d model.json files read, %d distinct files named, none changed", named.models, len(named.hashes))
	t.Run("big/in-place", func(t *testing.T) { checkInPlace(t, lake, big, readSource(t, db, big), since) })
	t.Run("ledger/append-only", func(t *testing.T) { checkAppendOnly(t, lake, ledger, w.live["ledger"].log, since) })
}
