package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lakelink/lakelink/export"
)

// pgResult holds the PostgreSQL benchmarks' figures (section 3).
type pgResult struct {
	version string

	// 3a. Initial write.
	rows       int
	tableBytes int64 // pg_table_size of the table
	base       *baselineResult
	write      *writeResult

	// 3b. Catch-up.
	backlog, backlogTxs int
	walBytes            int64         // WAL written by the backlog
	recv                time.Duration // pg_recvlogical to the backlog's end
	recvBytes           int64
	catchUp             time.Duration // Run's start to the durable commit of the last change
	catchUpCommits      int

	// 3c. Latency.
	latN           int
	latRate        float64 // changes/s the writer achieved
	latCommits     int
	p50, p99, pMax time.Duration

	// 3d. One large transaction.
	bigRows  int
	bigTook  time.Duration
	bigHeap  heapStats
	bigSpill int64 // bytes PostgreSQL spilled decoding it (pg_stat_replication_slots)
}

// pgBench runs section 3 against the server of -pg-dsn.
func pgBench(ctx context.Context, r *report, o options, dir string, logger *slog.Logger) error {
	r.section(fmt.Sprintf("3. PostgreSQL source: %s-row table, %s-change backlog, %s changes/s, one %s-row transaction",
		count(o.pgRows), count(o.pgBacklog), count(o.pgRate), count(o.pgBigTx)))
	if o.pgDSN == "" {
		return errors.New("no PostgreSQL server: give -pg-dsn postgres://USER@HOST:PORT/DB or set PG_TEST_DSN (`. ci/services.sh; PGPORT=55441 pg_start` starts one)")
	}
	pg, err := openPG(ctx, o.pgDSN, o.pgBin)
	if err != nil {
		return err
	}
	defer func() {
		if err := pg.Close(context.WithoutCancel(ctx), o.keep); err != nil {
			r.printf("cleanup: %v\n", err)
		}
	}()
	res := &pgResult{version: pg.version}
	r.pg = res
	r.machineExtra = append(r.machineExtra, "PostgreSQL: "+pg.version+" ("+pg.shown+", programs in "+pg.bin+")")
	r.printf("server: PostgreSQL %s, database %s (created for the run%s)\n", pg.version, pg.shown, map[bool]string{true: ", kept (-keep)", false: ", dropped at the end"}[o.keep])

	lakeDir := filepath.Join(dir, "lake-pg")
	if err := pgInitial(ctx, r, o, pg, res, dir, lakeDir, logger); err != nil {
		return fmt.Errorf("initial write: %w", err)
	}
	if err := pgCatchUp(ctx, r, o, pg, res, dir, lakeDir, logger); err != nil {
		return fmt.Errorf("catch-up: %w", err)
	}
	if err := pgLatency(ctx, r, o, pg, res, dir, logger); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if err := pgBigTx(ctx, r, o, pg, res, dir, logger); err != nil {
		return fmt.Errorf("large transaction: %w", err)
	}
	return nil
}

const (
	pgTable = "bench_t"  // tables of 3a and 3b
	pgLink  = "bench_pg" // their link
)

// pgInitial is 3a: psql's COPY to a CSV file against lakelink's initial
// copy of the same table into a fresh file lake, alternating, -repeat times.
func pgInitial(ctx context.Context, r *report, o options, pg *pgServer, res *pgResult, dir, lakeDir string, logger *slog.Logger) error {
	r.printf("\n-- 3a. Initial write of %s rows --\n", count(o.pgRows))
	start := time.Now()
	if err := buildPGTable(ctx, pg, pgTable, o.pgRows); err != nil {
		return err
	}
	if err := pg.pool.QueryRow(ctx, "SELECT pg_table_size($1)", pgTable).Scan(&res.tableBytes); err != nil {
		return err
	}
	res.rows = o.pgRows
	r.printf("setup: table %s (%s) built, vacuumed and checkpointed in %s\n", pgTable, mib(res.tableBytes), dur(time.Since(start)))

	psql := filepath.Join(pg.bin, "psql")
	out := filepath.Join(dir, "pg-baseline.csv")
	copySQL := "COPY (SELECT * FROM " + pgTable + ") TO STDOUT (FORMAT csv)"
	r.cmds = append(r.cmds, fmt.Sprintf("pg baseline: %s -X -q -d %s -c %q > %s", psql, pg.shown, copySQL, out))
	r.cmds = append(r.cmds, fmt.Sprintf("pg lakelink (in process, the engine behind): lakelink run --source %s --lake file://%s --once (link %s, table %s)", pg.shown, filepath.ToSlash(lakeDir), pgLink, pgTable))
	for i := 0; i < o.repeat; i++ {
		took, n, _, err := runTool(ctx, out, psql, "-X", "-q", "-d", pg.dsn, "-c", copySQL)
		if err != nil {
			return err
		}
		if res.base == nil || took < res.base.took {
			res.base = &baselineResult{took: took, bytes: n}
		}
		// Each run links afresh: a new slot with an exported snapshot.
		if err := pg.unlink(ctx, pgLink); err != nil {
			return err
		}
		open := func(l *slog.Logger) (*engine, error) {
			return openPGEngine(ctx, o, pg, pgLink, pgTable, lakeDir, o.commitInterval, l)
		}
		profile := ""
		if i == 0 {
			profile = o.pgCPUProfile
		}
		w, err := lakelinkWrite(ctx, open, lakeDir, logger, profile)
		if err != nil {
			return err
		}
		if w.rows != int64(o.pgRows) {
			return fmt.Errorf("the lake's state counts %d rows, want %d", w.rows, o.pgRows)
		}
		if o.repeat > 1 {
			r.printf("run %d: psql %s, lakelink copy %s (RunOnce %s)\n", i+1, dur(took), dur(w.copyTook), dur(w.total))
		}
		if res.write == nil || w.copyTook < res.write.copyTook {
			res.write = &w
		}
	}
	r.pgInitial(o)
	return nil
}

// pgCatchUp is 3b. The lake and slot of 3a's last run are left where the
// copy ended; a second slot is created at that point for the baseline.
// Then the backlog is made while lakelink is stopped, pg_recvlogical
// decodes it from the second slot to a file, and lakelink catches up.
func pgCatchUp(ctx context.Context, r *report, o options, pg *pgServer, res *pgResult, dir, lakeDir string, logger *slog.Logger) error {
	const perTx = 1000
	updPerTx := perTx / 2
	res.backlogTxs = max(o.pgBacklog/perTx, 1)
	r.printf("\n-- 3b. Catch-up over a backlog of %s changes (%d transactions of %d updates and %d inserts) --\n",
		count(res.backlogTxs*perTx), res.backlogTxs, updPerTx, perTx-updPerTx)
	const baseSlot = "bench_baseline"
	var startLSN string
	if err := pg.pool.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", baseSlot).Scan(&startLSN); err != nil {
		return fmt.Errorf("create the baseline's slot: %w", err)
	}
	defer pg.dropSlot(context.WithoutCancel(ctx), baseSlot)
	var llConfirmed string
	if err := pg.pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "lakelink_"+pgLink).Scan(&llConfirmed); err != nil {
		return fmt.Errorf("read lakelink's slot: %w", err)
	}

	// The backlog: each transaction updates rows spread over the whole
	// table (every partition) and inserts new ones.
	start := time.Now()
	stride := max(o.pgRows/updPerTx, 1)
	changes := 0
	for j := 0; j < res.backlogTxs; j++ {
		n, err := backlogTx(ctx, pg, j, stride, o.pgRows, o.pgRows+1+j*(perTx-updPerTx), perTx-updPerTx)
		if err != nil {
			return err
		}
		changes += n
	}
	res.backlog = changes
	var endLSN string
	if err := pg.pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text, pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", startLSN).Scan(&endLSN, &res.walBytes); err != nil {
		return err
	}
	// A logical message past the end makes pg_recvlogical stop at once
	// rather than at the server's next keepalive.
	if _, err := pg.pool.Exec(ctx, "SELECT pg_logical_emit_message(false, 'lakelink_bench', 'end')"); err != nil {
		return err
	}
	r.printf("setup: both slots at %s (lakelink's confirmed %s); backlog of %s changes made in %s, %s of WAL, up to %s\n",
		startLSN, llConfirmed, count(changes), dur(time.Since(start)), mib(res.walBytes), endLSN)

	// Baseline: pg_recvlogical decoding the backlog to a file, with the
	// same plugin and options as lakelink's stream.
	out := filepath.Join(dir, "pg-recvlogical.out")
	recv := filepath.Join(pg.bin, "pg_recvlogical")
	took, n, line, err := runTool(ctx, out, recv, "-d", pg.dsn, "--slot", baseSlot, "--start", "--no-loop",
		"--endpos", endLSN, "-o", "proto_version=1", "-o", "publication_names=lakelink_"+pgLink, "-o", "messages=true", "-f", "-")
	if err != nil {
		return err
	}
	res.recv, res.recvBytes = took, n
	r.cmds = append(r.cmds, "pg catch-up baseline: "+line)

	// lakelink: a new engine on the same lake and slot, as a restarted
	// lakelink would be. The catch-up ends with the durable commit whose
	// state counts the last insert's row.
	want := int64(o.pgRows + res.backlogTxs*(perTx-updPerTx))
	e, err := openPGEngine(ctx, o, pg, pgLink, pgTable, lakeDir, o.commitInterval, logger)
	if err != nil {
		return err
	}
	defer e.Close()
	if o.pgCatchUpProfile != "" {
		f, err := os.Create(o.pgCatchUpProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	res.catchUp, res.catchUpCommits, err = runUntil(ctx, e, want, 30*time.Minute)
	if o.pgCatchUpProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	r.cmds = append(r.cmds, fmt.Sprintf("pg catch-up lakelink (in process): lakelink run --source %s --lake file://%s, stopped once caught up", pg.shown, filepath.ToSlash(lakeDir)))
	r.pgCatchUp(o)
	return nil
}

// backlogTx makes one transaction of the backlog: it updates the rows of
// 1..rows whose id is j+1 modulo stride, and inserts n new rows from first.
func backlogTx(ctx context.Context, pg *pgServer, j, stride, rows, first, n int) (int, error) {
	tx, err := pg.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	// Ids j+1, j+1+stride, ...: found by the key's index, not a scan.
	tag, err := tx.Exec(ctx, "UPDATE "+pgTable+" SET amount = amount + 1, qty = qty + 1, note = 'updated by the catch-up benchmark' WHERE id IN (SELECT generate_series($2::bigint + 1, $3::bigint, $1::bigint))",
		stride, j%stride, rows)
	if err != nil {
		return 0, fmt.Errorf("backlog update: %w", err)
	}
	ins, err := insertPGRows(ctx, tx, pgTable, first, n, tenYears)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected() + ins), tx.Commit(ctx)
}

// pgLatency is 3c: lakelink runs with a short commit interval while a
// writer inserts one row per transaction at a steady rate; each row's
// latency is from its COMMIT returning to the writer until the lake's
// state record of the commit holding it was durable (its Close returned).
func pgLatency(ctx context.Context, r *report, o options, pg *pgServer, res *pgResult, dir string, logger *slog.Logger) error {
	const table, link = "bench_lat", "bench_lat"
	n := max(int(o.pgLatencyFor.Seconds()*float64(o.pgRate)), 1)
	r.printf("\n-- 3c. Commit-to-lake latency: %s single-row transactions at %s/s, CommitInterval %s --\n", count(n), count(o.pgRate), o.pgCommitInterval)
	if err := createPGTable(ctx, pg.pool, table); err != nil {
		return err
	}
	lakeDir := filepath.Join(dir, "lake-pg-latency")
	e, err := openPGEngine(ctx, o, pg, link, table, lakeDir, o.pgCommitInterval, logger)
	if err != nil {
		return err
	}
	defer e.Close()
	type durable struct {
		at   time.Time
		rows int64
	}
	var mu sync.Mutex
	var events []durable
	e.lake.onState = func(at time.Time, b []byte) {
		if rows := tableRows(b, table); rows >= 0 {
			mu.Lock()
			events = append(events, durable{at, rows})
			mu.Unlock()
		}
	}
	last := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if len(events) == 0 {
			return -1
		}
		return events[len(events)-1].rows
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- e.exp.Run(runCtx) }()
	// Wait for the (empty) initial copy: rows written from then on stream.
	if err := waitFor(ctx, errc, 2*time.Minute, "the initial copy of "+table, func() bool {
		for _, t := range e.exp.Progress().Tables {
			if t.InitialSync == export.SyncCompleted {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, pg.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	committed := make([]time.Time, n)
	every := time.Second / time.Duration(o.pgRate)
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" (id, name, amount, qty, createdon, note) VALUES ($1, 'customer', 1.25, 1, now(), 'latency')", i+1); err != nil {
			return fmt.Errorf("writer: %w", err)
		}
		committed[i] = time.Now()
	}
	res.latRate = float64(n) / time.Since(start).Seconds()
	if err := waitFor(ctx, errc, time.Minute, fmt.Sprintf("lakelink to commit the %s rows", count(n)), func() bool { return last() >= int64(n) }); err != nil {
		return err
	}
	stop()
	if err := <-errc; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, n)
	for i := range committed {
		k := firstTrue(events, func(d durable) bool { return d.rows >= int64(i+1) })
		lat[i] = events[k].at.Sub(committed[i])
	}
	slices.Sort(lat)
	res.latN, res.latCommits = n, len(events)
	res.p50, res.p99, res.pMax = lat[n/2], lat[min(n*99/100, n-1)], lat[n-1]
	r.pgLatency(o)
	return nil
}

// firstTrue returns the index of the first element for which ok holds, in a
// slice where ok is false, then true.
func firstTrue[T any](s []T, ok func(T) bool) int {
	i, _ := slices.BinarySearchFunc(s, true, func(e T, _ bool) int {
		if ok(e) {
			return 1
		}
		return -1
	})
	return i
}

// runUntil runs the engine (Run) until the durable state record of a
// commit counts at least want rows of its table, then stops it, and returns
// the time from the start until that record was durable and the commits
// made. Run, not RunOnce: RunOnce ends once the stream has been quiet for
// IdleExit, and PostgreSQL sends nothing while it decodes a large
// transaction or the start of a long backlog, so RunOnce can return before
// the first change arrives.
func runUntil(ctx context.Context, e *engine, want int64, limit time.Duration) (time.Duration, int, error) {
	var mu sync.Mutex
	var done time.Time
	commits := 0
	e.lake.onState = func(at time.Time, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		commits++
		if done.IsZero() && tableRows(b, e.table) >= want {
			done = at
		}
	}
	isDone := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !done.IsZero()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- e.exp.Run(runCtx) }()
	err := waitFor(ctx, errc, limit, fmt.Sprintf("a commit with %s rows", count(int(want))), isDone)
	stop()
	if err != nil {
		return 0, 0, err
	}
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	ts, err := e.tableState(ctx)
	if err != nil {
		return 0, 0, err
	}
	if ts.Rows != want {
		return 0, 0, fmt.Errorf("the lake counts %d rows, want %d", ts.Rows, want)
	}
	mu.Lock()
	defer mu.Unlock()
	return done.Sub(start), commits, nil
}

// waitFor polls done every 10 ms until it holds, the engine fails
// (errc), or the wait exceeds limit.
func waitFor(ctx context.Context, errc chan error, limit time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(limit)
	for !done() {
		select {
		case err := <-errc:
			errc <- err // for the caller's final receive
			return fmt.Errorf("waiting for %s, the export stopped: %v", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting %s for %s", limit, what)
		}
	}
	return nil
}

// pgBigTx is 3d: one transaction of -pg-big-tx rows, exported while the
// process's heap and resident set are watched, from the start of Run until
// the commit that holds the rows is durable.
func pgBigTx(ctx context.Context, r *report, o options, pg *pgServer, res *pgResult, dir string, logger *slog.Logger) error {
	const table, link = "bench_big", "bench_big"
	r.printf("\n-- 3d. Memory while exporting one transaction of %s rows --\n", count(o.pgBigTx))
	if err := createPGTable(ctx, pg.pool, table); err != nil {
		return err
	}
	lakeDir := filepath.Join(dir, "lake-pg-big")
	e, err := openPGEngine(ctx, o, pg, link, table, lakeDir, o.commitInterval, logger)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.exp.RunOnce(ctx); err != nil { // the empty initial copy, which creates the slot
		return fmt.Errorf("initial copy: %w", err)
	}
	start := time.Now()
	if _, err := insertPGRows(ctx, pg.pool, table, 1, o.pgBigTx, tenYears); err != nil {
		return err
	}
	r.printf("setup: one INSERT ... SELECT of %s rows committed in %s\n", count(o.pgBigTx), dur(time.Since(start)))
	debug.FreeOSMemory() // so that the resident set starts from what is live
	h := startHeap(nil)
	res.bigTook, _, err = runUntil(ctx, e, int64(o.pgBigTx), 30*time.Minute)
	res.bigHeap = h.Stop()
	if err != nil {
		return err
	}
	res.bigRows = o.pgBigTx
	// PostgreSQL 14+: what the server spilled decoding the transaction.
	_ = pg.pool.QueryRow(ctx, "SELECT coalesce(spill_bytes, 0) FROM pg_stat_replication_slots WHERE slot_name = $1", "lakelink_"+link).Scan(&res.bigSpill)
	r.pgBigTx(o)
	return nil
}
