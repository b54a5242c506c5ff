package tests

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/tests/lakecheck"
)

// snapshotCounts counts the Snapshot files of each partition of a table:
// <lake>/<folder>/Snapshot/<partition>_<unixsec>.csv.
func snapshotCounts(lake, folder string) map[string]int {
	counts := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(lake, folder, "Snapshot", "*.csv"))
	for _, f := range files {
		base := filepath.Base(f)
		for i := len(base) - 1; i >= 0; i-- {
			if base[i] == '_' {
				counts[base[:i]]++
				break
			}
		}
	}
	return counts
}

// TestReaders checks G3 while lakelink commits continuously (every 200 ms)
// with a snapshot every second: a reader that reads model.json and then
// every file it names always finds them complete, no file that any
// model.json named ever changes, every file the current model.json names
// exists, a slow reader (3 s between model.json and the files) still finds
// its files, and retention keeps at most 5 generations per partition.
func TestReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary for about 15 s")
	}
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	live := &tableDef{
		name: "live",
		cols: []col{{"id", "INTEGER", nil}, {"createdon", "DATETIME", genDateTime}, {"n", "INTEGER", genInt}, {"s", "TEXT", genSmallText}},
		key:  []string{"id"}, createdOn: "createdon", newKey: intKey,
	}
	feed := &tableDef{
		name: "feed",
		cols: []col{{"k", "TEXT", nil}, {"x", "REAL", genReal}, {"s", "TEXT", genSmallText}},
		key:  []string{"k"}, newKey: textKey,
	}
	mustExec(t, db, live.ddl(), feed.ddl())
	w := newWorkload(db, newGen(seed), live, feed)
	seedFast(t, w, live, 5000)
	seedFast(t, w, feed, 2000)

	lake := filepath.Join(dir, "lake")
	p := startLakelink(t, dir, "run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--commit-interval", "200ms", "--snapshot-interval", "1s")
	waitSynced(t, p, lake, time.Minute, "live", "feed")

	stopWorkload := w.background(t, ctxTimeout(t, 2*time.Minute), 10, 5*time.Millisecond)

	named := newNamedFiles()
	maxGen := 0
	slowReads := 0
	type pending struct {
		at    time.Time
		model *lakecheck.Model
	}
	var slow []pending
	end := time.Now().Add(12 * time.Second)
	for time.Now().Before(end) {
		if msg := named.observe(t, lake); msg != "" {
			t.Fatalf("reader: %s", msg)
		}
		for _, folder := range []string{"live", "feed"} {
			for _, n := range snapshotCounts(lake, folder) {
				maxGen = max(maxGen, n)
			}
		}
		// A slow reader: model.json now, its files 3 s later.
		if len(slow) == 0 || time.Since(slow[len(slow)-1].at) > time.Second {
			if data, err := os.ReadFile(filepath.Join(lake, "model.json")); err == nil {
				slow = append(slow, pending{time.Now(), lakecheck.ParseModel(t, data)})
			}
		}
		for len(slow) > 0 && time.Since(slow[0].at) >= 3*time.Second {
			for _, e := range slow[0].model.Entities {
				if _, err := lakecheck.ReadSnapshot(&e); err != nil {
					t.Fatalf("slow reader (model.json read %s ago): entity %s: %v", time.Since(slow[0].at).Round(time.Millisecond), e.Name, err)
				}
			}
			slow = slow[1:]
			slowReads++
		}
		time.Sleep(30 * time.Millisecond)
	}
	if err := stopWorkload(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	if msg := named.recheck(t, lake); msg != "" {
		t.Fatalf("after the run: %s", msg)
	}
	t.Logf("%d changes; reader read model.json %d times, %d distinct files named, none changed; %d slow reads (3 s) succeeded; at most %d Snapshot files of one partition seen during the run", w.changesSafe(), named.models, len(named.hashes), slowReads, maxGen)
	if maxGen > 6 {
		t.Errorf("during the run a partition had %d Snapshot files; retention keeps 5 (6 while a new one is being published)", maxGen)
	}
	gens := 0
	for _, folder := range []string{"live", "feed"} {
		for part, n := range snapshotCounts(lake, folder) {
			if n > 5 {
				t.Errorf("%s partition %s: %d Snapshot files after the run, retention keeps at most 5", folder, part, n)
			}
			gens = max(gens, n)
		}
	}
	if gens < 5 {
		t.Errorf("no partition reached 5 Snapshot generations in 12 s with a 1 s snapshot interval (max %d): snapshots are not being taken", gens)
	}
}
