package tests

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnceWhileWriting: `run --once` exports everything committed before
// it started and exits, although the application keeps writing.
func TestOnceWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary against a busy database")
	}
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, createdon DATETIME, v TEXT)")
	lake := filepath.Join(dir, "lake")
	args := []string{"--source", sourceURL(dbPath), "--lake", lakeURL(lake)}
	mustRunOnce(t, dir, args...)

	ctx, stop := context.WithCancel(context.Background())
	var committed atomic.Int64 // the highest id whose insert has committed
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := int64(1); ctx.Err() == nil; id++ {
			if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?, '2024-05-01 10:00:00', 'row')", id); err != nil {
				if ctx.Err() == nil {
					werr = err
				}
				return
			}
			committed.Store(id)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()
	time.Sleep(500 * time.Millisecond)
	before := committed.Load()
	start := time.Now()
	mustRunOnce(t, dir, args...)
	t.Logf("run --once exited after %s while the writer went on (%d rows committed before it started, %d by its end)", time.Since(start).Round(time.Millisecond), before, committed.Load())
	stop()
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	st := tryReadState(lake)
	if st == nil || st.Tables["t"] == nil {
		t.Fatal("no export state for t")
	}
	if got := st.Tables["t"].Rows; got < before {
		t.Errorf("the lake holds %d rows of t after run --once, want at least the %d committed before it started", got, before)
	}
}
