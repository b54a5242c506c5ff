package tests

import (
	"database/sql"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/export"
)

// outageFor is how long the lake's server stays down.
const outageFor = 30 * time.Second

// TestObjOutage checks G5 on each object lake (issue 5, acceptance 5):
// while lakelink streams under a writer, the lake's server (a private
// versitygw or Azurite, never the shared one) is stopped for 30 s and
// started again on the same port and data folder. lakelink, not
// restarted, resumes by itself; it logs the outage once per backoff step
// (1, 2, 4, ... s), not once per retry; the SQLite source's acknowledged
// position does not move while the lake is down; and G1 holds after the
// catch-up.
func TestObjOutage(t *testing.T) {
	// The shared server is not used: a private one of the same kind is.
	forEachKind(t, func(t *testing.T, srv objServer) { objOutage(t, srv.kind) })
}

// ackedPosition is the SQLite source's acknowledged position for link
// "default": an Ack deletes the change log up to and including its
// position, so it is one less than the oldest change left, or, with
// none left, the last change ever logged. It returns the count of
// changes the log holds too.
func ackedPosition(db *sql.DB) (acked, pending int64, err error) {
	var minSeq sql.NullInt64
	if err := db.QueryRow(`SELECT min(seq), count(*) FROM "_lakelink_default_log"`).Scan(&minSeq, &pending); err != nil {
		return 0, 0, err
	}
	if minSeq.Valid {
		return minSeq.Int64 - 1, pending, nil
	}
	err = db.QueryRow(`SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = '_lakelink_default_log'`).Scan(&acked)
	return acked, 0, err
}

// warnLine matches a WARN or ERROR line of lakelink's text log.
var warnLine = regexp.MustCompile(`level=(WARN|ERROR)`)

// backoffAttr is the backoff of a retry warning.
var backoffAttr = regexp.MustCompile(`backoff=(\S+)`)

func objOutage(t *testing.T, kind string) {
	seed := testSeed(t)
	lakelinkBin(t)
	srv := startPrivateServer(t, kind)
	l := newObjLake(t, objServer{kind, srv.endpoint()})
	dir := t.TempDir()
	live, ledger := objTables(genDateTime)
	dbPath, db, w := newObjSource(t, dir, seed, live, ledger)
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes < 2000 {
		if err := w.tx(ctx, 100, nil, true); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	args := []string{"--source", sourceURL(dbPath), "--lake", l.url, "--commit-interval", "300ms", "--snapshot-interval", "2s"}
	since := time.Now()
	p := startRun(t, dir, args...)
	waitObjSynced(t, p, l, time.Minute, "live", "ledger")
	bg := goWorkload(t, ctx, w, 6, 10*time.Millisecond)
	// Streaming: a few commits after the initial copies.
	start := l.state()
	var before *export.State
	if !waitFor(time.Minute, func() bool {
		before = l.state()
		return before != nil && before.Position > 0 && before.Commit >= start.Commit+3
	}) {
		t.Fatalf("lakelink did not commit 3 times within a minute of the initial copies; log tail:\n%s", p.tail(20))
	}
	// The acknowledged position, sampled through a connection of its own.
	probe := openDB(t, dbPath)
	logBefore := len(p.output())

	srv.stop()
	down := time.Now()
	t.Logf("%s server stopped at position %d of the lake's state", kind, before.Position)
	// A commit whose state write returned just before the stop may still
	// be acknowledged; after that, nothing may be.
	time.Sleep(2 * time.Second)
	first, firstPending, err := ackedPosition(probe)
	if err != nil {
		t.Fatalf("acknowledged position: %v", err)
	}
	samples, lastPending := 0, firstPending
	for time.Since(down) < outageFor {
		acked, pending, err := ackedPosition(probe)
		if err != nil {
			t.Fatalf("acknowledged position: %v", err)
		}
		samples++
		lastPending = pending
		if acked != first {
			t.Errorf("%s after the lake went down: the source's acknowledged position moved from %d to %d", time.Since(down).Round(time.Millisecond), first, acked)
			break
		}
		if p.exited() {
			t.Fatalf("lakelink exited while the lake was down (code %d); log tail:\n%s", p.code, p.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if kind == "s3" {
		// versitygw keeps objects as plain files: the lake's durable
		// state, read while the server is down.
		key := strings.TrimPrefix(l.base, "s3://")
		data, err := os.ReadFile(filepath.Join(srv.data, filepath.FromSlash(key), filepath.FromSlash(export.StatePath)))
		var st export.State
		if err == nil {
			err = json.Unmarshal(data, &st)
		}
		if err != nil {
			t.Errorf("read the lake's state from versitygw's folder: %v", err)
		} else if first > int64(st.Position) {
			t.Errorf("the source's acknowledged position %d is ahead of the lake's durable state (%d)", first, st.Position)
		}
	}
	t.Logf("while the lake was down: %d samples of the acknowledged position, all %d; changes pending in the source %d, then %d", samples, first, firstPending, lastPending)
	if lastPending <= firstPending {
		t.Errorf("the source's pending changes did not grow during the outage (%d, then %d): the writer was not writing", firstPending, lastPending)
	}

	srv.start()
	up := time.Now()
	if !waitFor(3*time.Minute, func() bool {
		st := l.state()
		return p.exited() || (st != nil && st.Position > before.Position && st.Commit > before.Commit)
	}) || p.exited() {
		t.Fatalf("lakelink did not resume within 3 minutes of the lake's return (exited: %v); log tail:\n%s", p.exited(), p.tail(30))
	}
	resumed := time.Since(up)
	t.Logf("lakelink resumed %s after the server came back (%s after it stopped)", resumed.Round(time.Millisecond), time.Since(down).Round(time.Millisecond))
	checkOutageLog(t, p.output()[logBefore:], time.Since(down))

	// A second, short outage: the backoff starts again at its first step,
	// since the export resumed in between.
	time.Sleep(2 * time.Second)
	logBefore = len(p.output())
	before = l.state()
	srv.stop()
	down = time.Now()
	time.Sleep(5 * time.Second)
	srv.start()
	if !waitFor(3*time.Minute, func() bool {
		st := l.state()
		return p.exited() || (st != nil && st.Commit > before.Commit)
	}) || p.exited() {
		t.Fatalf("lakelink did not resume within 3 minutes of the lake's return (exited: %v); log tail:\n%s", p.exited(), p.tail(30))
	}
	t.Logf("after a second outage of 5 s, lakelink resumed %s after the server stopped", time.Since(down).Round(time.Millisecond))
	if b := checkOutageLog(t, p.output()[logBefore:], time.Since(down)); len(b) > 0 && b[0] != time.Second {
		t.Errorf("second outage: the first retry waited %s, want 1s: the backoff was not reset when the export resumed after the first outage (export/exporter.go run)", b[0])
	}

	time.Sleep(2 * time.Second)
	bg.finish(t)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	runOnceObj(t, dir, args...)
	mirror := l.mirror(t)
	t.Run("live/in-place", func(t *testing.T) { checkInPlace(t, mirror, live, readSource(t, db, live), since) })
	t.Run("ledger/append-only", func(t *testing.T) { checkAppendOnly(t, mirror, ledger, w.live["ledger"].log, since) })
}

// checkOutageLog checks the log lakelink wrote from the outage until it
// resumed (d long): the outage shows once per backoff step, never once
// per retry. The exporter retries after 1, 2, 4, ... s (export/exporter.go
// run), logging a step only when its error differs from the last one's;
// so the retry warnings carry distinct, doubling backoffs, and there are
// at most as many WARN or ERROR lines as steps fit in d. It returns the
// backoffs logged.
func checkOutageLog(t *testing.T, log string, d time.Duration) []time.Duration {
	t.Helper()
	var warns, retries []string
	var backoffs []time.Duration
	for _, line := range strings.Split(log, "\n") {
		if !warnLine.MatchString(line) {
			continue
		}
		warns = append(warns, line)
		if !strings.Contains(line, "export interrupted; retrying") {
			continue
		}
		retries = append(retries, line)
		m := backoffAttr.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("retry warning without a backoff: %s", line)
			continue
		}
		b, err := time.ParseDuration(m[1])
		if err != nil {
			t.Errorf("retry warning: backoff %q: %v", m[1], err)
			continue
		}
		backoffs = append(backoffs, b)
	}
	// Steps of 1, 2, 4, ... s that fit in d: 2^n - 1 <= d.
	steps := int(math.Floor(math.Log2(d.Seconds()+1))) + 1
	t.Logf("outage of %s in the log: %d WARN/ERROR lines, %d retry warnings with backoffs %v (at most %d backoff steps fit)", d.Round(time.Millisecond), len(warns), len(retries), backoffs, steps)
	for _, line := range warns {
		t.Logf("  %s", shorten(line, 300))
	}
	if len(retries) == 0 {
		t.Errorf("the log does not show the outage: no retry warning")
	}
	for i, b := range backoffs {
		if secs := b / time.Second; b%time.Second != 0 || secs < 1 || secs&(secs-1) != 0 {
			t.Errorf("retry warning %d: backoff %s is not a step of 1, 2, 4, ... s", i+1, b)
		}
		if i > 0 && b <= backoffs[i-1] {
			t.Errorf("retry warnings %d and %d: backoff %s then %s; each backoff step is logged once", i, i+1, backoffs[i-1], b)
		}
	}
	if len(warns) > steps+1 {
		t.Errorf("%d WARN/ERROR lines during an outage of %s, when at most %d backoff steps fit: the outage is logged per retry, not per backoff step", len(warns), d.Round(time.Millisecond), steps)
	}
	return backoffs
}
