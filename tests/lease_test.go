package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/lease"
)

// readLease reads the lake's writer lease record.
func readLease(t testing.TB, lake string) lease.Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lake, filepath.FromSlash(lease.Path)))
	if err != nil {
		t.Fatalf("read the lake's lease: %v", err)
	}
	var rec lease.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("lease record: %v", err)
	}
	return rec
}

// TestSingleWriter checks one writer per lake through the binary: while a
// `lakelink run` exports into a folder, a second one on the same folder
// exits 1 naming the holder; after a kill -9 of the first, a run on the
// same machine takes over at once (the holder's process is gone); a holder
// of another machine that stopped renewing is waited out until its lease
// expires; the export is exact afterwards, and a clean exit releases the
// lease so the next run starts at once.
func TestSingleWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary and waits out a lease")
	}
	dir, dbPath, db, orders, g := ordersSource(t)
	ctx := ctxTimeout(t, 4*time.Minute)
	w := newWorkload(db, g, orders)
	for w.changes < 500 {
		if err := w.tx(ctx, 50, nil, true); err != nil {
			t.Fatalf("seed rows: %v", err)
		}
	}
	lake := filepath.Join(dir, "lake")
	const ttl = 5 * time.Second
	args := []string{"run", "--source", sourceURL(dbPath), "--lake", lakeURL(lake), "--link", "crm", "--commit-interval", "200ms", "--lease-ttl", ttl.String()}
	since := time.Now()
	first := startLakelink(t, dir, args...)
	waitSynced(t, first, lake, time.Minute, "orders")
	if err := w.run(ctx, w.changes+1000, 20, time.Millisecond); err != nil {
		t.Fatalf("workload: %v", err)
	}
	holder := readLease(t, lake).Holder
	if holder.PID != first.cmd.Process.Pid || holder.Link != "crm" {
		t.Fatalf("lease holder %+v, want link crm, pid %d", holder, first.cmd.Process.Pid)
	}

	// A second writer, continuous or once, with the same link or another.
	for _, extra := range [][]string{{}, {"--once"}} {
		second := append(append(append([]string{}, args...), extra...), "--link", "other")
		code, out := runLakelink(t, dir, time.Minute, second...)
		if code != 1 {
			t.Fatalf("second lakelink %v on the same lake: exit %d, want 1; output:\n%s", extra, code, out)
		}
		for _, want := range []string{"being written by another lakelink", `link "crm"`, holder.Host, fmt.Sprintf("pid %d", holder.PID), "lease expires", "folder or prefix"} {
			if !strings.Contains(out, want) {
				t.Errorf("second lakelink's refusal does not say %q; output:\n%s", want, out)
			}
		}
	}
	if first.exited() {
		t.Fatalf("the first lakelink exited (code %d) while the second was refused; log tail:\n%s", first.code, first.tail(20))
	}
	if err := w.run(ctx, w.changes+500, 20, time.Millisecond); err != nil {
		t.Fatalf("workload: %v", err)
	}

	// kill -9: the lease stays, but a run on the same machine sees that its
	// holder is gone and takes over at once.
	first.signal(syscall.SIGKILL)
	first.wait(30 * time.Second)
	dead := readLease(t, lake)
	if dead.Released || dead.Holder.ID != holder.ID {
		t.Fatalf("after kill -9 the lease is %+v, want the killed holder's, not released", dead)
	}
	if err := w.run(ctx, w.changes+300, 20, time.Millisecond); err != nil {
		t.Fatalf("workload: %v", err)
	}
	once := append(append([]string{}, args...), "--once")
	if code, out := runLakelink(t, dir, 2*time.Minute, once...); code != 0 || !strings.Contains(out, "process that is gone") {
		t.Fatalf("run after kill -9: exit %d, want 0 and a log of taking over the killed holder's lease; output:\n%s", code, out)
	}

	// A holder on another machine that stopped renewing (its host died):
	// runs are refused until its lease expires, then one takes over.
	foreign := readLease(t, lake)
	now := time.Now().UTC()
	foreign.Holder = lease.Holder{ID: "elsewhere", Host: "other-host", PID: 4242, Link: "crm", Since: now, Machine: "another-machine"}
	foreign.Counter++
	foreign.Released = false
	foreign.Renewed, foreign.Expires = now, now.Add(ttl)
	data, err := json.Marshal(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lake, filepath.FromSlash(lease.Path)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for try := 0; ; try++ {
		if try == 30 {
			t.Fatalf("no run took over the lease of the silent holder in 30 tries (refused %d)", refused)
		}
		code, out := runLakelink(t, dir, 2*time.Minute, once...)
		ended := time.Now()
		if code == 0 {
			if !ended.After(foreign.Expires) {
				t.Fatalf("a run took over the silent holder's lease at %s, before it expired at %s", ended, foreign.Expires)
			}
			if !strings.Contains(out, "took over an expired lease") {
				t.Errorf("the run that took over does not log it; output:\n%s", out)
			}
			break
		}
		if code != 1 || !strings.Contains(out, "pid 4242") {
			t.Fatalf("run during the silent holder's lease: exit %d, want 0 or 1 with a refusal naming pid 4242; output:\n%s", code, out)
		}
		if ended.After(foreign.Expires.Add(2 * time.Second)) {
			t.Fatalf("run refused at %s, though the lease expired at %s; output:\n%s", ended, foreign.Expires, out)
		}
		refused++
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("silent holder: %d runs refused, then one took over (TTL %s)", refused, ttl)
	if refused == 0 {
		t.Errorf("no run was refused before the silent holder's lease expired")
	}
	dead = foreign
	if rec := readLease(t, lake); !rec.Released || rec.Counter <= dead.Counter {
		t.Errorf("after a clean --once exit the lease is %+v, want released with a counter above %d", rec, dead.Counter)
	}
	// Released: the next run starts at once, well within the TTL.
	if err := w.run(ctx, w.changes+300, 20, time.Millisecond); err != nil {
		t.Fatalf("workload: %v", err)
	}
	mustRunOnce(t, dir, args[1:]...)
	checkInPlace(t, lake, orders, readSource(t, db, orders), since)
}
