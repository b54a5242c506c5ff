package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPGTableAddedWhileRunning: a PostgreSQL table created while `lakelink
// run` exports every table of the database is added to the link's
// publication and copied (from a temporary slot's snapshot) while the
// other table keeps streaming under a writer, and both are exact once
// caught up: the new one append only, with every change after its copy
// exactly once.
func TestPGTableAddedWhileRunning(t *testing.T) {
	orders, ledger := pgOrders("orders"), pgLedger("ledger")
	db, conn, dir, lake := pgSetup(t, "added", orders.ddl(), pgTxLog)
	seed := testSeed(t)
	w := newPGWriter(t, db.dsn, newGen(seed), orders, ledger)
	ctx := ctxTimeout(t, 4*time.Minute)
	for w.changes.Load() < 5000 {
		if err := w.tx(ctx, 200, []*pgTable{orders}, true); err != nil {
			t.Fatalf("seed orders: %v", err)
		}
	}
	link := "added" + randHex(3)
	args := []string{"run", "--source", db.sourceURL(), "--lake", lakeURL(lake), "--link", link, "--commit-interval", "300ms", "--table-scan-interval", "300ms"}
	since := time.Now()
	p := startLakelink(t, dir, args...)
	waitSynced(t, p, lake, time.Minute, "orders", "writer_txlog")
	for i := 0; i < 20; i++ {
		if err := w.tx(ctx, 20, []*pgTable{orders}, false); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}

	// ledger appears with rows, then both tables change while its copy
	// runs and after.
	mustPGExec(t, conn, ledger.ddl())
	for i := 0; i < 10; i++ {
		if err := w.tx(ctx, 200, []*pgTable{ledger}, true); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	commits := readState(t, lake).Commit
	stop := w.background(t, 8, 2*time.Millisecond)
	waitSynced(t, p, lake, time.Minute, "ledger")
	st := readState(t, lake)
	t.Logf("ledger added while running: %d rows copied at %d; %d commits since it appeared", st.Tables["ledger"].Rows, st.Tables["ledger"].CopyPosition, st.Commit-commits)
	if !strings.Contains(p.output(), "table added to the running link") {
		t.Errorf("the log does not say ledger was added to the running link; tail:\n%s", p.tail(20))
	}
	time.Sleep(2 * time.Second)
	if err := stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	mustRunOnce(t, dir, args[1:]...)
	t.Logf("writer: %d changes in %d transactions", w.changes.Load(), w.txs.Load())
	srcOrders := pgReadSource(t, conn, orders)
	t.Run("orders/in-place", func(t *testing.T) { pgCheckInPlace(t, lake, orders, srcOrders, since) })
	t.Run("ledger/append-only", func(t *testing.T) { pgCheckAppendOnly(t, lake, ledger, w.live["ledger"].log, since) })
}
