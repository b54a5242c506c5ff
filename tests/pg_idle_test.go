package tests

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPGIdleSlotAdvances (issue 4, acceptance 8): with the linked table
// quiet and another table of the same database busy for a minute, the
// slot's confirmed_flush_lsn keeps advancing (heartbeats and progress
// commits through the lake's state), and never passes the lake's state.
func TestPGIdleSlotAdvances(t *testing.T) {
	db, conn, dir, lake := pgSetup(t, "idle",
		"CREATE TABLE quiet (id int8 PRIMARY KEY, createdon timestamptz, v text)",
		"INSERT INTO quiet SELECT g, now(), 'v' FROM generate_series(1, 100) g",
		"CREATE TABLE busy (id bigserial PRIMARY KEY, v text)")
	src := db.sourceURL()
	if strings.Contains(src, "?") {
		src += "&heartbeat=2s"
	} else {
		src += "?heartbeat=2s"
	}
	p := startLakelink(t, dir, "run", "--source", src, "--lake", lakeURL(lake), "--link", "idle", "--table", "quiet", "--commit-interval", "200ms")
	waitSynced(t, p, lake, time.Minute, "quiet")

	ctx, stop := context.WithCancel(ctxTimeout(t, 3*time.Minute))
	defer stop()
	busy := mustPGConnect(t, db.dsn)
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if _, err := busy.Exec(ctx, "INSERT INTO busy (v) SELECT repeat('x', 100) FROM generate_series(1, 20)"); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	const samples = 6
	var lsns []uint64
	for i := 0; i <= samples; i++ {
		if i > 0 {
			time.Sleep(10 * time.Second)
		}
		lsn, _, ok, err := pgSlot(ctx, conn, "lakelink_idle")
		if err != nil || !ok {
			t.Fatalf("slot lakelink_idle: ok %v, %v", ok, err)
		}
		if pos, ok := lakeCommitted(tryReadState(lake)); ok && lsn > pos {
			t.Errorf("sample %d: the slot is confirmed at %d, ahead of the lake's committed position %d", i, lsn, pos)
		}
		lsns = append(lsns, lsn)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("busy writer: %v", err)
	}
	t.Logf("confirmed_flush_lsn every 10 s while only the unlinked table was written: %v", lsns)
	for i := 1; i < len(lsns); i++ {
		if lsns[i] <= lsns[i-1] {
			t.Errorf("the slot did not advance between samples %d and %d (%d then %d)", i-1, i, lsns[i-1], lsns[i])
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
}
