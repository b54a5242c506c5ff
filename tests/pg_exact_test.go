package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPGExact checks G1 for the PostgreSQL source through the built binary
// (issue 4, acceptance 3): two tables covering int8, numeric(20,4),
// unconstrained numeric, adversarial text, timestamptz written in several
// time zones, bytea and jsonb, exported by two links into two lakes in
// both write modes (link a: orders in place by its createdon, ledger
// append only; link b: the other way round). A seeded writer on its own
// connection makes inserts, updates, deletes and key updates before,
// during and after the initial copies; then SIGTERM, a catch-up with
// --once, and every lake is compared with the source (in place) or the
// writer's log (append only).
func TestPGExact(t *testing.T) {
	admin := pgTestDSN(t)
	seed := testSeed(t)
	lakelinkBin(t)
	db := newPGDB(t, admin, "exact")
	conn := mustPGConnect(t, db.dsn)
	orders, ledger := pgOrders("orders"), pgLedger("ledger")
	mustPGExec(t, conn, orders.ddl(), ledger.ddl(), pgTxLog)
	w := newPGWriter(t, db.dsn, newGen(seed), orders, ledger)
	ctx := ctxTimeout(t, 5*time.Minute)
	seedStart := time.Now()
	for w.changes.Load() < 20000 {
		if err := w.tx(ctx, 200, []*pgTable{orders}, true); err != nil {
			t.Fatalf("seed orders: %v", err)
		}
	}
	for w.changes.Load() < 22000 {
		if err := w.tx(ctx, 100, nil, false); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	seeded := w.changes.Load()
	t.Logf("seeded %d changes in %s", seeded, time.Since(seedStart).Round(time.Millisecond))

	dir := t.TempDir()
	lakeA, lakeB := filepath.Join(dir, "lake-a"), filepath.Join(dir, "lake-b")
	suffix := randHex(3)
	cfg := filepath.Join(dir, "lakelink.yaml")
	yaml := fmt.Sprintf(`links:
  - name: exa%[3]s
    source: %[1]q
    lake: %[2]q
    commit_interval: 500ms
    tables:
      - name: orders
      - name: ledger
  - name: exb%[3]s
    source: %[1]q
    lake: %[4]q
    commit_interval: 500ms
    tables:
      - name: orders
        mode: append-only
      - name: ledger
        mode: in-place
`, db.sourceURL(), lakeURL(lakeA), suffix, lakeURL(lakeB))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	since := time.Now()
	stop := w.background(t, 12, time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the writer is under way before the copies start
	before := w.changes.Load()
	p := startLakelink(t, dir, "run", "--config", cfg)
	waitSynced(t, p, lakeA, 2*time.Minute, "orders", "ledger")
	waitSynced(t, p, lakeB, 2*time.Minute, "orders", "ledger")
	during := w.changes.Load() - before
	// Stream a while under the writer.
	for w.changes.Load() < seeded+during+8000 && ctx.Err() == nil && !p.exited() {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	if p.exited() {
		t.Fatalf("lakelink exited while the writer ran (code %d); log tail:\n%s", p.code, p.tail(30))
	}
	t.Logf("writer: %d changes in %d transactions; %d while lakelink started and copied, %d after the seed in all", w.changes.Load(), w.txs.Load(), during, w.changes.Load()-seeded)
	if during == 0 {
		t.Errorf("the writer made no change while the initial copies ran")
	}
	time.Sleep(time.Second) // let a commit or two land before the stop
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM, want 0; log tail:\n%s", code, p.tail(20))
	}
	onceStart := time.Now()
	mustRunOnce(t, dir, "--config", cfg)
	t.Logf("catch-up with --once took %s", time.Since(onceStart).Round(time.Millisecond))

	srcOrders, srcLedger := pgReadSource(t, conn, orders), pgReadSource(t, conn, ledger)
	t.Run("a/orders/in-place", func(t *testing.T) { pgCheckInPlace(t, lakeA, orders, srcOrders, since) })
	t.Run("a/ledger/append-only", func(t *testing.T) { pgCheckAppendOnly(t, lakeA, ledger, w.live["ledger"].log, since) })
	t.Run("b/orders/append-only", func(t *testing.T) { pgCheckAppendOnly(t, lakeB, orders, w.live["orders"].log, since) })
	t.Run("b/ledger/in-place", func(t *testing.T) { pgCheckInPlace(t, lakeB, ledger, srcLedger, since) })
}
