package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// exactTables are the tables of the exactness test: one with a createdon
// column (in place, by year; its key column "id" becomes attribute "id_"),
// one with a composite key partitioned by month, one without createdOn
// (append only, numbered partitions). Between them they hold every SQLite
// storage class.
func exactTables() (orders, events, logs *tableDef) {
	orders = &tableDef{
		name: "orders",
		cols: []col{
			{"id", "INTEGER", nil}, {"createdon", "DATETIME", genDateTime}, {"qty", "INTEGER", genInt},
			{"price", "REAL", genReal}, {"note", "TEXT", genText}, {"photo", "BLOB", genBlob},
			{"paid", "BOOLEAN", genBool}, {"amount", "DECIMAL", genDecimal},
		},
		key: []string{"id"}, createdOn: "createdon", newKey: intKey, record: true,
	}
	events = &tableDef{
		name: "events",
		cols: []col{
			{"region", "TEXT", nil}, {"seq", "INTEGER", nil}, {"created_at", "DATETIME", genDateTime},
			{"payload", "TEXT", genText}, {"v", "REAL", genReal}, {"data", "BLOB", genBlob}, {"n", "INTEGER", genInt},
		},
		key: []string{"region", "seq"}, createdOn: "created_at", month: true, newKey: regionSeqKey, record: true,
	}
	logs = &tableDef{
		name: "logs",
		cols: []col{
			{"k", "TEXT", nil}, {"n", "INTEGER", genInt}, {"x", "REAL", genReal}, {"msg", "TEXT", genText},
			{"bl", "BLOB", genBlob}, {"anyv", "", genUntyped},
		},
		key: []string{"k"}, newKey: textKey, record: true,
	}
	return orders, events, logs
}

// TestExact checks G1 through the built binary: a seeded random workload
// of at least 20,000 changes over three tables runs while `lakelink run`
// exports it into three lakes (link a: the tables' default modes with
// events by month; link b: orders forced append-only with --mode; link c:
// events append-only and logs in place), then SIGTERM, a catch-up with
// --once, and a comparison of every lake with the source (in place) or
// with the recorded sequence of changes (append only).
func TestExact(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary with a 20,000-change workload")
	}
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	orders, events, logs := exactTables()
	mustExec(t, db, orders.ddl(), events.ddl(), logs.ddl())
	ctx := ctxTimeout(t, 4*time.Minute)
	w := newWorkload(db, newGen(seed), orders, events, logs)
	for w.changes < 1500 {
		if err := w.tx(ctx, 50, nil, true); err != nil {
			t.Fatalf("seed rows: %v", err)
		}
	}
	seeded := w.changes

	lakeA, lakeB, lakeC := filepath.Join(dir, "lake-a"), filepath.Join(dir, "lake-b"), filepath.Join(dir, "lake-c")
	cfg := filepath.Join(dir, "lakelink.yaml")
	yaml := fmt.Sprintf(`links:
  - name: a
    source: %q
    lake: %q
    commit_interval: 1s
    tables:
      - name: orders
      - name: events
        partition: month
      - name: logs
  - name: c
    source: %q
    lake: %q
    commit_interval: 1s
    tables:
      - name: events
        mode: append-only
        partition: month
      - name: logs
        mode: in-place
`, sourceURL(dbPath), lakeURL(lakeA), sourceURL(dbPath), lakeURL(lakeC))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	argsB := []string{"--source", sourceURL(dbPath), "--lake", lakeURL(lakeB), "--link", "b", "--table", "orders", "--mode", "append-only", "--commit-interval", "1s"}

	since := time.Now()
	p1 := startLakelink(t, dir, "run", "--config", cfg)
	p2 := startLakelink(t, dir, append([]string{"run"}, argsB...)...)
	start := time.Now()
	if err := w.run(ctx, seeded+20000, 25, 3*time.Millisecond); err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload: %d seed rows, then %d changes in %s while lakelink ran (%d busy retries)", seeded, w.changes-seeded, time.Since(start).Round(time.Millisecond), w.busy)
	for _, p := range []*proc{p1, p2} {
		if p.exited() {
			t.Fatalf("lakelink %v exited during the workload (code %d); log tail:\n%s", p.cmd.Args[1:], p.code, p.tail(30))
		}
	}
	time.Sleep(1500 * time.Millisecond) // let a commit or two land before the stop
	p1.signal(syscall.SIGTERM)
	p2.signal(syscall.SIGTERM)
	for _, p := range []*proc{p1, p2} {
		if code := p.wait(time.Minute); code != 0 {
			t.Errorf("lakelink %v: exit %d after SIGTERM, want 0; log tail:\n%s", p.cmd.Args[1:], code, p.tail(20))
		}
	}
	onceStart := time.Now()
	mustRunOnce(t, dir, "--config", cfg)
	mustRunOnce(t, dir, argsB...)
	t.Logf("catch-up with --once took %s", time.Since(onceStart).Round(time.Millisecond))

	srcOrders, srcEvents, srcLogs := readSource(t, db, orders), readSource(t, db, events), readSource(t, db, logs)
	t.Run("a/orders/in-place", func(t *testing.T) { checkInPlace(t, lakeA, orders, srcOrders, since) })
	t.Run("a/events/in-place-month", func(t *testing.T) { checkInPlace(t, lakeA, events, srcEvents, since) })
	t.Run("a/logs/append-only", func(t *testing.T) { checkAppendOnly(t, lakeA, logs, w.live["logs"].log, since) })
	t.Run("b/orders/append-only", func(t *testing.T) { checkAppendOnly(t, lakeB, orders, w.live["orders"].log, since) })
	t.Run("c/events/append-only-month", func(t *testing.T) { checkAppendOnly(t, lakeC, events, w.live["events"].log, since) })
	t.Run("c/logs/in-place", func(t *testing.T) { checkInPlace(t, lakeC, logs, srcLogs, since) })
}
