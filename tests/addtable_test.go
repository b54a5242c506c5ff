package tests

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/export"
)

// copiedRows returns how many rows the log says the last initial copy of
// table wrote, or -1.
func copiedRows(log, table string) int {
	n := -1
	re := regexp.MustCompile(`msg="initial copy done".* table=` + regexp.QuoteMeta(table) + ` rows=(\d+)`)
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		n, _ = strconv.Atoi(m[1])
	}
	return n
}

// TestTableAddedWhileRunning checks that tables created in the source while
// `lakelink run` exports every table are picked up without a restart,
// copied while the other table keeps streaming, and exact afterwards, in
// both write modes, while a workload writes to every table; and that a
// kill -9 while such a copy is under way loses nothing (the next run copies
// the table again).
func TestTableAddedWhileRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary while tables are created")
	}
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	big, ledger := crashTables()
	orders, _, _ := exactTables()
	mustExec(t, db, big.ddl())
	g := newGen(seed)
	w := newWorkload(db, g, big, orders, ledger)
	seedFast(t, w, big, 20000)
	ctx := ctxTimeout(t, 4*time.Minute)

	lake := filepath.Join(dir, "lake")
	args := []string{"run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--commit-interval", "300ms", "--snapshot-interval", "2s", "--table-scan-interval", "200ms"}
	p := startLakelink(t, dir, args...)
	waitSynced(t, p, lake, time.Minute, "big")
	since := time.Now()

	// Phase 1: only big changes.
	for i := 0; i < 20; i++ {
		if err := w.tx(ctx, 20, []*tableDef{big}, false); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	// Two new tables: orders (createdon: in place) with 50,000 rows, so
	// that its copy takes a while, and ledger (append only).
	// Each appears with its rows, in one transaction.
	seedFast(t, w, orders, 50000, orders.ddl())
	mustExec(t, db, ledger.ddl())
	for i := 0; i < 10; i++ {
		if err := w.tx(ctx, 100, []*tableDef{ledger}, true); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	// Phase 2: every table changes while the new ones are copied.
	stopWorkload := w.background(t, ctx, 8, 3*time.Millisecond)

	// The copies start without a restart; big keeps committing meanwhile.
	commit := readState(t, lake).Commit
	if !waitFor(30*time.Second, func() bool {
		st := tryReadState(lake)
		return st != nil && st.Tables["orders"] != nil && st.Tables["ledger"] != nil
	}) {
		t.Fatalf("the new tables were not picked up within 30 s; log tail:\n%s", p.tail(20))
	}
	waitSynced(t, p, lake, time.Minute, "orders", "ledger")
	st := readState(t, lake)
	t.Logf("new tables added while running: orders %d rows (%d copied), ledger %d; %d commits since they appeared", st.Tables["orders"].Rows, copiedRows(p.output(), "orders"), st.Tables["ledger"].Rows, st.Commit-commit)
	if n := copiedRows(p.output(), "orders"); n < 50000 {
		t.Errorf("the background copy of orders wrote %d rows, want the 50,000 it appeared with; log tail:\n%s", n, p.tail(20))
	}
	if !strings.Contains(p.output(), "table added to the running link") {
		t.Errorf("the log does not say the tables were added to the running link; tail:\n%s", p.tail(20))
	}

	// A kill -9 in the middle of another added table's copy.
	orders2 := *orders
	orders2.name = "orders2"
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{orders2.ddl(), "INSERT INTO orders2 SELECT * FROM orders"} {
		if _, err := tx.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool {
		st := tryReadState(lake)
		return st != nil && st.Tables["orders2"] != nil
	}) {
		t.Fatalf("orders2 was not picked up within 30 s; log tail:\n%s", p.tail(20))
	}
	phase := "copy"
	if st := tryReadState(lake); st != nil && st.Tables["orders2"].InitialSync == export.SyncCompleted {
		phase = "after the copy"
	}
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
	t.Logf("killed while orders2 was in its background copy (phase: %s)", phase)
	p = startLakelink(t, dir, args...)
	waitSynced(t, p, lake, time.Minute, "big", "orders", "ledger", "orders2")
	time.Sleep(time.Second)
	if err := stopWorkload(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	mustRunOnce(t, dir, args[1:]...)
	st = readState(t, lake)
	if st.Tables["orders2"].InitialSync != export.SyncCompleted {
		t.Errorf("orders2: initial sync %s after the restart", st.Tables["orders2"].InitialSync)
	}
	t.Logf("workload: %d changes", w.changesSafe())
	t.Run("big/in-place", func(t *testing.T) { checkInPlace(t, lake, big, readSource(t, db, big), since) })
	t.Run("orders/in-place", func(t *testing.T) { checkInPlace(t, lake, orders, readSource(t, db, orders), since) })
	t.Run("orders2/in-place", func(t *testing.T) { checkInPlace(t, lake, &orders2, readSource(t, db, &orders2), since) })
	t.Run("ledger/append-only", func(t *testing.T) { checkAppendOnly(t, lake, ledger, w.live["ledger"].log, since) })
}
