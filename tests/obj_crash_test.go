package tests

import (
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/export"
)

// TestObjCrash runs the foundation's exactness (G1) and kill -9 (G2) tests
// against each object lake (versitygw for S3, Azurite for Azure), with a
// SQLite source: a seeded workload writes into an in-place table with
// createdOn (20,000 rows to start with) and an append-only ledger while
// `lakelink run` is killed with SIGKILL 21 times, a third of them during
// the initial copy of big (the first ones interrupt its first copy; then
// a run is let finish it and `lakelink resync` makes the next run copy it
// again) and the rest while it streams. After every kill no object that any
// model.json named has changed (G3); once the workload stops and a --once
// run caught up, the lake, mirrored into a folder, holds exactly the
// source's rows (in place) and exactly the workload's changes (append
// only).
func TestObjCrash(t *testing.T) { forEachKind(t, objCrash) }

func objCrash(t *testing.T, srv objServer) {
	const kills = 21
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	big, ledger := crashTables()
	dbPath, db, w := newObjSource(t, dir, seed, big, ledger)
	g := w.g
	seedFast(t, w, big, 20000)
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes < 20000+2000 {
		if err := w.tx(ctx, 200, []*tableDef{ledger}, true); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	seeded := w.changes
	l := newObjLake(t, srv)
	args := []string{"--source", sourceURL(dbPath), "--lake", l.url, "--commit-interval", "300ms", "--snapshot-interval", "2s"}

	bg := goWorkload(t, ctx, w, 8, 10*time.Millisecond)

	since := time.Now()
	named := newObjNamed(l)
	inCopy, inStream, resyncs := 0, 0, 0
	for i := 0; i < kills; i++ {
		aimAtCopy := i < kills/3
		if aimAtCopy && (i == 3 || i == 5) && l.syncState("big") != export.SyncCompleted {
			// The kills so far interrupted the first copy: let a run
			// finish it, so that a resync starts it again. (Not --once:
			// under a writer that never pauses it does not finish.)
			p := startRun(t, dir, args...)
			waitObjSynced(t, p, l, time.Minute, "big", "ledger")
			p.signal(syscall.SIGTERM)
			if code := p.wait(time.Minute); code != 0 {
				t.Fatalf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
			}
		}
		if aimAtCopy && l.syncState("big") == export.SyncCompleted {
			// A resync makes the next run copy big again.
			if code, out := runLakelink(t, dir, 30*time.Second, "resync", "--lake", l.url, "--table", "big"); code != 0 {
				t.Errorf("lakelink resync --lake (%s) --table big: exit %d:\n%s", l.kind, code, out)
				aimAtCopy = false
			} else {
				resyncs++
			}
		}
		p := startRun(t, dir, args...)
		// Once the copy of big is under way, a random instant within its
		// first 250 ms; or, once both tables are synced, within 2 s.
		window := 2 * time.Second
		if aimAtCopy {
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if p.exited() || l.syncState("big") == export.SyncInProgress {
					break
				}
			}
			window = 250 * time.Millisecond
		} else {
			waitObjSynced(t, p, l, time.Minute, "big", "ledger")
		}
		delay := time.Duration(g.r.Int63n(int64(window)))
		phase := killAfter(t, i+1, p, delay, func() bool { return l.syncState("big") == export.SyncCompleted })
		if phase == "copy" {
			inCopy++
		} else {
			inStream++
		}
		t.Logf("kill %d at %s after start (%s phase), %d changes so far", i+1, delay.Round(time.Millisecond), phase, w.changesSafe())
		if msg := named.check(t); msg != "" {
			t.Fatalf("after kill %d: %s", i+1, msg)
		}
	}
	t.Logf("%d kills: %d during the initial copy, %d while streaming; %d resyncs of big", kills, inCopy, inStream, resyncs)
	if inCopy == 0 {
		t.Errorf("no kill landed during the initial copy of big (20,000 rows)")
	}
	if inStream < kills/2 {
		t.Errorf("only %d kills landed while streaming", inStream)
	}
	// One more run that lives, while the workload still writes.
	p := startRun(t, dir, args...)
	waitObjSynced(t, p, l, time.Minute, "big", "ledger")
	time.Sleep(2 * time.Second)
	bg.finish(t)
	t.Logf("workload: %d changes after the seed (%d busy retries)", w.changes-seeded, w.busy)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	runOnceObj(t, dir, args...)
	if msg := named.check(t); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	t.Logf("G3: %d model.json files read, %d distinct objects named, none changed", named.models, len(named.hashes))
	mirror := l.mirror(t)
	t.Run("big/in-place", func(t *testing.T) { checkInPlace(t, mirror, big, readSource(t, db, big), since) })
	t.Run("ledger/append-only", func(t *testing.T) { checkAppendOnly(t, mirror, ledger, w.live["ledger"].log, since) })
}
