package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lakelink/lakelink/lease"
)

// pgBig is the crash test's big table (in place, by createdon); the
// writer does not record its changes: the lake is compared with the
// source's rows.
func pgBig() *pgTable {
	return &pgTable{
		name: "big",
		cols: []pgCol{
			{"id", "int8", pgInt8, nil}, {"createdon", "timestamptz", pgTimestamptz, pgGenTimestamptz},
			{"n", "int8", pgInt8, pgGenInt8}, {"s", "text", pgText, pgGenText},
			{"b", "bytea", pgBytea, pgGenBytea}, {"j", "jsonb", pgJSONB, pgGenJSONB},
		},
		createdOn: "createdon", newKey: pgIntKey,
	}
}

// copyStarted matches lakelink's log line when the copy of big starts
// reading rows.
var copyStarted = regexp.MustCompile(`msg="initial copy started"[^\n]* table=big `)

// copyDone matches lakelink's log line when the copy of big is done.
var copyDone = regexp.MustCompile(`msg="initial copy done"[^\n]* table=big [^\n]*took=([^ \n]+)`)

// waitLeaseExpired waits until the lake's writer lease (if any) has
// expired, so that a run after a kill -9 may take over.
func waitLeaseExpired(t testing.TB, lake string) {
	t.Helper()
	path := filepath.Join(lake, filepath.FromSlash(lease.Path))
	data, err := os.ReadFile(path)
	fi, serr := os.Stat(path)
	if err != nil || serr != nil {
		return
	}
	var rec lease.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("lease record: %v", err)
	}
	time.Sleep(time.Until(rec.ExpiresAt(fi.ModTime())) + 100*time.Millisecond)
}

// pgSeedBig fills big with n rows in one statement.
const pgSeedBig = `INSERT INTO big
SELECT g, timestamptz '1999-01-01 00:00:00+00' + g * 4513 * interval '1 second', g * 7 - 100000,
       CASE WHEN g %% 10 = 0 THEN NULL ELSE 'row "' || g || E'",\n x' END,
       decode(md5(g::text), 'hex'), jsonb_build_object('g', g, 't', 'ü' || g)
FROM generate_series(1, %d) g`

// slotGuard checks after each kill that the link's slot was never ahead of
// what the lake's state says it holds.
type slotGuard struct {
	slot    string
	birth   uint64 // the slot's position while no copy had completed
	checks  int
	atState int // checks where the slot was exactly at the lake's position
}

// check reads the slot (once its walsender let go of it) and the lake's
// state, and returns a problem, or "".
func (sg *slotGuard) check(t testing.TB, conn *pgx.Conn, lake string) string {
	t.Helper()
	lsn, exists := pgWaitSlotIdle(t, conn, sg.slot)
	if !exists {
		return ""
	}
	sg.checks++
	committed, ok := lakeCommitted(tryReadState(lake))
	if !ok {
		// The slot exists but no copy completed and nothing was committed:
		// it must still be where it was created (the first copy's
		// consistent point); nothing may have acknowledged it further.
		if sg.birth == 0 {
			sg.birth = lsn
		}
		if lsn != sg.birth {
			return fmt.Sprintf("slot %s moved from %d to %d while the lake holds no completed copy and no commit", sg.slot, sg.birth, lsn)
		}
		return ""
	}
	if lsn > committed {
		return fmt.Sprintf("slot %s confirmed_flush_lsn %d is ahead of the lake's committed position %d by %d bytes", sg.slot, lsn, committed, lsn-committed)
	}
	if lsn == committed {
		sg.atState++
	}
	return ""
}

// TestPGCrash checks G2 and G3 for the PostgreSQL source (issue 4,
// acceptance 6): `lakelink run` is killed with SIGKILL at 24 random
// instants, the first 8 aimed at the initial copy of a 100,000-row table
// (after a `lakelink resync` when the copy finished before the kill) and
// the rest while it streams, while a seeded writer keeps changing both
// tables through its own connection. After each kill the link's slot's
// confirmed_flush_lsn is not ahead of the lake's committed position and no
// file that any model.json named has changed; at the end, after a --once
// catch-up, big (in place) equals the source and ledger (append only) the
// writer's changes.
func TestPGCrash(t *testing.T) {
	admin := pgTestDSN(t)
	const kills = 24
	seed := testSeed(t)
	lakelinkBin(t)
	db := newPGDB(t, admin, "crash")
	conn := mustPGConnect(t, db.dsn)
	big, ledger := pgBig(), pgLedger("ledger")
	const bigRows = 100000
	seedStart := time.Now()
	mustPGExec(t, conn, big.ddl(), ledger.ddl(), pgTxLog, fmt.Sprintf(pgSeedBig, bigRows), "ANALYZE big")
	g := newGen(seed)
	g.counter = 10 * bigRows // new keys above the seeded ones
	w := newPGWriter(t, db.dsn, g, big, ledger)
	for i := 1; i <= bigRows; i++ {
		w.live["big"].add(strconv.Itoa(i))
	}
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes.Load() < 5000 {
		if err := w.tx(ctx, 100, []*pgTable{ledger}, false); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	t.Logf("seeded %d rows of big and %d changes of ledger in %s", bigRows, w.changes.Load(), time.Since(seedStart).Round(time.Millisecond))

	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	link := "crash" + randHex(3)
	args := []string{"run", "--source", db.sourceURL(), "--lake", lakeURL(lake), "--link", link, "--table", "big", "--table", "ledger",
		"--commit-interval", "500ms", "--snapshot-interval", "2s"}
	args = append(args, leaseFlags(t)...)
	stop := w.background(t, 10, 2*time.Millisecond)

	since := time.Now()
	named := newNamedFiles()
	guard := &slotGuard{slot: "lakelink_" + link}
	inCopy, inStream, resyncs := 0, 0, 0
	for i := 0; i < kills; i++ {
		aimAtCopy := i < kills/3
		if aimAtCopy && recopyBig(t, dir, lake) {
			resyncs++
		}
		p := startLakelink(t, dir, args...)
		var delay time.Duration
		if aimAtCopy {
			// Once this run's copy of big reads rows (creating the slot,
			// or a temporary one, can wait for the writer's transactions
			// to end), a random instant within its first 500 ms.
			deadline := time.Now().Add(45 * time.Second)
			for time.Now().Before(deadline) && !p.exited() && !copyStarted.MatchString(p.output()) {
				time.Sleep(2 * time.Millisecond)
			}
			delay = time.Duration(g.r.Int63n(int64(500 * time.Millisecond)))
		} else {
			waitSynced(t, p, lake, time.Minute, "big", "ledger")
			delay = time.Duration(g.r.Int63n(int64(2 * time.Second)))
		}
		phase := killAfter(t, i+1, p, delay, bigCopied(lake))
		if phase == "copy" {
			inCopy++
		} else {
			inStream++
		}
		waitLeaseExpired(t, lake)
		if msg := guard.check(t, conn, lake); msg != "" {
			t.Fatalf("after kill %d (%s phase): %s; log tail:\n%s", i+1, phase, msg, p.tail(20))
		}
		t.Logf("kill %d at %s after start (%s phase), %d writer changes so far", i+1, delay.Round(time.Millisecond), phase, w.changes.Load())
		for _, m := range copyDone.FindAllStringSubmatch(p.output(), -1) {
			t.Logf("kill %d: the copy of big had completed in %s", i+1, m[1])
		}

		if msg := named.recheck(t, lake); msg != "" {
			t.Fatalf("after kill %d: %s", i+1, msg)
		}
		if msg := named.observe(t, lake); msg != "" {
			t.Fatalf("after kill %d: %s", i+1, msg)
		}
	}
	t.Logf("%d kills: %d during the initial copy, %d while streaming; %d resyncs of big; slot checked %d times, %d times exactly at the lake's position", kills, inCopy, inStream, resyncs, guard.checks, guard.atState)
	if inCopy == 0 {
		t.Errorf("no kill landed during the initial copy of big (%d rows): the copy is faster than the test aims", bigRows)
	}
	// One more run that lives, while the writer still writes.
	p := startLakelink(t, dir, args...)
	waitSynced(t, p, lake, time.Minute, "big", "ledger")
	time.Sleep(2 * time.Second)
	for _, m := range copyDone.FindAllStringSubmatch(p.output(), -1) {
		t.Logf("the copy of big took %s in the last run", m[1])
	}
	if err := stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writer: %d changes in %d transactions", w.changes.Load(), w.txs.Load())
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	if msg := guard.check(t, conn, lake); msg != "" {
		t.Fatalf("after SIGTERM: %s", msg)
	}
	mustRunOnce(t, dir, args[1:]...)
	if msg := guard.check(t, conn, lake); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	if msg := named.recheck(t, lake); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	if msg := named.observe(t, lake); msg != "" {
		t.Fatalf("after the final catch-up: %s", msg)
	}
	t.Logf("G3: %d model.json files read, %d distinct files named, none changed", named.models, len(named.hashes))
	t.Run("big/in-place", func(t *testing.T) { pgCheckInPlace(t, lake, big, pgReadSource(t, conn, big), since) })
	t.Run("ledger/append-only", func(t *testing.T) { pgCheckAppendOnly(t, lake, ledger, w.live["ledger"].log, since) })
}
