package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// mergeResult is benchmark 2 for one partition size.
type mergeResult struct {
	rows, updates, inserts int
	copyTook               time.Duration // the initial copy that built the partition
	partBytes              int64         // the partition file's size before the merge
	idle                   time.Duration // RunOnce with no changes (the fastest round)
	idleHeap               heapStats
	busy                   time.Duration // RunOnce that merges the batch (the round with the fastest merge)
	busyHeap               heapStats
	merge                  time.Duration // the partition rewrite as the lake saw it: Create to Close
	rewrites               int           // most partition files one merge RunOnce wrote (1 when each batch made one commit)
	snapshot               time.Duration // the snapshot copy after the merge
	rowsAfter              int64
}

// mergeBench is benchmark 2: for each partition size, a table whose rows
// all fall in one year partition, copied into a lake, then one batch of
// changes merged into it through the public engine.
func mergeBench(ctx context.Context, r *report, o options, dir string, logger *slog.Logger) error {
	updPart := o.changes * o.updatePct / 100
	r.section(fmt.Sprintf("2. In-place merge: %s changes (%d%% updates of existing rows, the rest inserts) into one partition", count(o.changes), o.updatePct))
	r.printf("Each size: a SQLite table with every createdon in 2020, copied into a fresh file lake (one partition, 2020.csv);\n")
	r.printf("then RunOnce with no changes (the fixed cost), then the batch made in SQLite in one transaction, then the RunOnce that merges it.\n")
	biggest := 0
	for _, n := range o.mergeSizes {
		biggest = max(biggest, n)
	}
	profiled := false
	for _, n := range o.mergeSizes {
		updates := min(updPart, n)
		inserts := o.changes - updates
		profile := ""
		if n == biggest && !profiled {
			profile, profiled = o.mergeCPUProfile, true
		}
		res, err := mergeOne(ctx, o, dir, n, updates, inserts, logger, profile)
		if err != nil {
			return fmt.Errorf("partition of %d rows: %w", n, err)
		}
		r.merges = append(r.merges, res)
		r.printf("  %s rows: merge %s, RunOnce %s (empty %s), peak heap during merge %s\n",
			count(n), dur(res.merge), dur(res.busy), dur(res.idle), mib(int64(res.busyHeap.PeakWin)))
	}
	r.mergeTable(o)
	return nil
}

func mergeOne(ctx context.Context, o options, dir string, n, updates, inserts int, logger *slog.Logger, profile string) (mergeResult, error) {
	res := mergeResult{rows: n, updates: updates, inserts: inserts}
	db := filepath.Join(dir, fmt.Sprintf("merge-%d.db", n))
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		os.Remove(p)
	}
	lakeDir := filepath.Join(dir, fmt.Sprintf("lake-merge-%d", n))
	if err := os.RemoveAll(lakeDir); err != nil {
		return res, err
	}
	if err := buildDB(ctx, db, n, oneYear); err != nil {
		return res, err
	}
	e, err := openEngine(ctx, o, db, lakeDir, logger)
	if err != nil {
		return res, err
	}
	defer e.Close()

	// The partition: an initial copy.
	start := time.Now()
	if err := e.exp.RunOnce(ctx); err != nil {
		return res, fmt.Errorf("initial copy: %w", err)
	}
	res.copyTook = time.Since(start)
	ts, err := e.tableState(ctx)
	if err != nil {
		return res, err
	}
	p := ts.Partitions["2020"]
	if len(ts.Partitions) != 1 || p == nil || p.Rows != int64(n) {
		return res, fmt.Errorf("after the initial copy the lake holds partitions %v, want one, 2020, of %d rows", keys(ts.Partitions), n)
	}
	res.partBytes = p.Size

	// Rounds: the fixed cost (a RunOnce with nothing to do), then a batch
	// and the RunOnce that merges it. The fastest of each is kept, and the
	// highest peak heap.
	total := n
	for round := 0; round < o.mergeRepeat; round++ {
		e.lake.reset()
		h := startHeap(e.lake.window)
		start = time.Now()
		err = e.exp.RunOnce(ctx)
		idle := time.Since(start)
		idleHeap := h.Stop()
		if err != nil {
			return res, fmt.Errorf("empty RunOnce: %w", err)
		}
		if st := e.lake.stats(); st.Partitions() != 0 {
			return res, fmt.Errorf("the empty RunOnce rewrote %d partition files", st.Partitions())
		}
		if res.idle == 0 || idle < res.idle {
			res.idle = idle
		}
		res.idleHeap = maxHeap(res.idleHeap, idleHeap)

		if err := applyChanges(ctx, db, n, total+1, updates, inserts, oneYear); err != nil {
			return res, fmt.Errorf("make changes: %w", err)
		}
		total += inserts

		e.lake.reset()
		prof := ""
		if round == 0 {
			prof = profile
		}
		if prof != "" {
			f, err := os.Create(prof)
			if err != nil {
				return res, err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return res, err
			}
			defer f.Close()
		}
		h = startHeap(e.lake.window)
		start = time.Now()
		err = e.exp.RunOnce(ctx)
		busy := time.Since(start)
		busyHeap := h.Stop()
		if prof != "" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return res, fmt.Errorf("merge RunOnce: %w", err)
		}
		st := e.lake.stats()
		rewrites := 0
		for _, c := range st.Creates {
			rewrites += c
		}
		res.rewrites = max(res.rewrites, rewrites)
		if res.merge == 0 || st.Window() < res.merge {
			res.merge, res.busy, res.snapshot = st.Window(), busy, st.CopyTime
		}
		res.busyHeap = maxHeap(res.busyHeap, busyHeap)
		if ts, err = e.tableState(ctx); err != nil {
			return res, err
		}
		if ts.Rows != int64(total) {
			return res, fmt.Errorf("after merge %d the lake counts %d rows, want %d", round+1, ts.Rows, total)
		}
		res.rowsAfter = ts.Rows
	}
	return res, nil
}

// maxHeap keeps the higher of each figure.
func maxHeap(a, b heapStats) heapStats {
	a.Baseline = max(a.Baseline, b.Baseline)
	a.Peak = max(a.Peak, b.Peak)
	a.PeakWin = max(a.PeakWin, b.PeakWin)
	a.HWM = max(a.HWM, b.HWM)
	a.HWMReset = b.HWMReset
	return a
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
