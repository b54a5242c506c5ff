package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnlinkThenLinkAgain: after `lakelink unlink` drops a SQLite link's
// change tracking, a run into the same lake must not silently skip changes
// (it links the tables again with a new change log, whose positions mean
// nothing to the lake): it refuses and says to resync, also once the new
// log has counted past the lake's position; after a resync of the table
// the lake is exact again.
func TestUnlinkThenLinkAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary several times")
	}
	dir, dbPath, db, orders, g := ordersSource(t)
	ctx := ctxTimeout(t, 3*time.Minute)
	w := newWorkload(db, g, orders)
	if err := w.run(ctx, 600, 20, 0); err != nil {
		t.Fatalf("workload: %v", err)
	}
	lake := filepath.Join(dir, "lake")
	args := []string{"--source", sourceURL(dbPath), "--lake", lakeURL(lake)}
	mustRunOnce(t, dir, args...)
	if err := w.run(ctx, w.changes+300, 20, 0); err != nil {
		t.Fatalf("workload: %v", err)
	}
	mustRunOnce(t, dir, args...)
	if code, out := runLakelink(t, dir, time.Minute, append([]string{"unlink"}, args...)...); code != 0 {
		t.Fatalf("lakelink unlink: exit %d:\n%s", code, out)
	}
	// More changes than the whole earlier log held: a new log counting
	// from 1 again would pass the lake's position and look like a resume.
	if err := w.run(ctx, w.changes+1500, 20, 0); err != nil {
		t.Fatalf("workload: %v", err)
	}
	code, out := runLakelink(t, dir, time.Minute, append(append([]string{"run"}, args...), "--once")...)
	if code != 1 || !strings.Contains(out, "resync") {
		t.Fatalf("run after unlink: exit %d, want 1 and a message saying to resync; output:\n%s", code, out)
	}
	// That run linked the tables again, with a new change log. Once the new
	// log has counted past the lake's position, a run must still refuse,
	// not take the new log's changes for the ones after the lake's.
	oldPos := int64(readState(t, lake).Position)
	for {
		var seq int64
		if err := db.QueryRow(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_lakelink_default_log'), 0)`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		if seq > oldPos {
			break
		}
		if err := w.run(ctx, w.changes+500, 20, 0); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	code, out = runLakelink(t, dir, time.Minute, append(append([]string{"run"}, args...), "--once")...)
	if code != 1 || !strings.Contains(out, "resync") {
		t.Fatalf("run after unlink, once the new change log passed the lake's position: exit %d, want 1 and a message saying to resync; output:\n%s", code, out)
	}
	if code, out := runLakelink(t, dir, time.Minute, "resync", "--lake", lakeURL(lake), "--table", orders.name); code != 0 {
		t.Fatalf("lakelink resync: exit %d:\n%s", code, out)
	}
	since := time.Now()
	mustRunOnce(t, dir, args...)
	if err := w.run(ctx, w.changes+200, 20, 0); err != nil {
		t.Fatalf("workload: %v", err)
	}
	mustRunOnce(t, dir, args...)
	checkInPlace(t, lake, orders, readSource(t, db, orders), since)
}
