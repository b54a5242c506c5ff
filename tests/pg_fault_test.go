package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/internal/testenv"
)

// privatePG is a PostgreSQL cluster of the test's own, so that it can be
// restarted without disturbing other tests.
type privatePG struct {
	bin, root string
	dsn       string // of its postgres database
}

// pgCmd runs a PostgreSQL program as the postgres user when we are root
// (PostgreSQL refuses to run as root).
func (pg *privatePG) cmd(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(pg.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	}
	return exec.Command(prog, args...)
}

// run runs a PostgreSQL program with its output in a file (a pipe would
// be held open by a postmaster that pg_ctl starts).
func (pg *privatePG) run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := os.CreateTemp(pg.root, name+"-*.out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := pg.cmd(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		text, _ := os.ReadFile(out.Name())
		log, _ := os.ReadFile(filepath.Join(pg.root, "server.log"))
		t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, text, shorten(string(log), 2000))
	}
}

// startPrivatePG initdbs a cluster in a temp folder and starts it on a
// free port with wal_level=logical; cleanup stops it and removes it.
func startPrivatePG(t testing.TB) *privatePG {
	t.Helper()
	pg := &privatePG{bin: testenv.Need(t, "PG_TEST_BIN")}
	root, err := os.MkdirTemp("", "lakelink-pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	pg.root = root
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("a private PostgreSQL runs as user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = pg.cmd("pg_ctl", "-D", filepath.Join(root, "data"), "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(root)
	})
	pg.run(t, "initdb", "-D", filepath.Join(root, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	port := freePort(t)
	pg.run(t, "pg_ctl", "-D", filepath.Join(root, "data"), "-l", filepath.Join(root, "server.log"), "-w", "-t", "60", "start", "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, root))
	pg.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return pg
}

// waitProgress waits until the lake's state has committed a transaction
// that ended after the source's current WAL position: the export makes
// progress (by itself) from now on. It returns how long that took.
func waitProgress(t testing.TB, p *proc, dsn, lake, what string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx := ctxTimeout(t, 2*time.Minute)
	var now uint64
	for {
		conn, err := pgConnect(ctx, dsn)
		if err == nil {
			var s string
			err = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s)
			conn.Close(context.Background())
			if err == nil {
				now, err = lsnText(s)
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: read the WAL position: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok := waitFor(2*time.Minute, func() bool {
		st := tryReadState(lake)
		return p.exited() || (st != nil && uint64(st.Position) > now)
	})
	if p.exited() {
		t.Fatalf("%s: lakelink exited (code %d); log tail:\n%s", what, p.code, p.tail(30))
	}
	if !ok {
		t.Fatalf("%s: the lake's position did not pass %d within 2 minutes; log tail:\n%s", what, now, p.tail(30))
	}
	return time.Since(start)
}

// TestPGFaults checks G5 for the PostgreSQL source (issue 4, acceptance
// 7) on a private cluster: while `lakelink run` streams under a seeded
// writer, (a) the server is restarted with pg_ctl restart -m fast, and (b)
// the walsender's connection is terminated; each time the same lakelink
// process waits it out and resumes by itself (the lake's position passes
// the WAL position after the fault), the writer retrying its transactions.
// After SIGTERM and a --once catch-up the lake is exact (G1) in both
// modes.
func TestPGFaults(t *testing.T) {
	testenv.Slow(t)
	pg := startPrivatePG(t)
	seed := testSeed(t)
	lakelinkBin(t)
	db := newPGDB(t, pg.dsn, "faults")
	conn := mustPGConnect(t, db.dsn)
	orders, ledger := pgOrders("orders"), pgLedger("ledger")
	mustPGExec(t, conn, orders.ddl(), ledger.ddl(), pgTxLog)
	w := newPGWriter(t, db.dsn, newGen(seed), orders, ledger)
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes.Load() < 3000 {
		if err := w.tx(ctx, 100, nil, false); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	link := "faults" + randHex(3)
	args := append([]string{"--source", db.sourceURL(), "--lake", lakeURL(lake), "--link", link, "--table", "orders", "--table", "ledger",
		"--commit-interval", "500ms", "--snapshot-interval", "3s"}, leaseFlags(t)...)
	since := time.Now()
	stop := w.background(t, 8, 3*time.Millisecond)
	p := startLakelink(t, dir, append([]string{"run"}, args...)...)
	waitSynced(t, p, lake, 2*time.Minute, "orders", "ledger")
	t.Logf("streaming: progress after %s", waitProgress(t, p, db.dsn, lake, "before the faults").Round(time.Millisecond))

	// (a) A fast restart of the server.
	reconnects := w.reconnect.Load()
	restart := time.Now()
	pg.run(t, "pg_ctl", "-D", filepath.Join(pg.root, "data"), "-l", filepath.Join(pg.root, "server.log"), "-m", "fast", "-w", "-t", "60", "restart")
	t.Logf("pg_ctl restart -m fast took %s", time.Since(restart).Round(time.Millisecond))
	d := waitProgress(t, p, db.dsn, lake, "after pg_ctl restart -m fast")
	t.Logf("after the restart: the export resumed by itself within %s; the writer reconnected %d times", d.Round(time.Millisecond), w.reconnect.Load()-reconnects)
	if w.reconnect.Load() == reconnects {
		t.Errorf("the writer never lost its connection: did the server restart?")
	}

	// (b) The walsender's connection dropped.
	var killed int
	ok := waitFor(time.Minute, func() bool {
		err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_replication) x").Scan(&killed)
		if err != nil { // conn was lost in the restart
			conn.Close(context.Background())
			conn = mustPGConnect(t, db.dsn)
		}
		return killed > 0
	})
	if !ok {
		t.Fatalf("no walsender to terminate within a minute; log tail:\n%s", p.tail(20))
	}
	d = waitProgress(t, p, db.dsn, lake, "after pg_terminate_backend of the walsender")
	t.Logf("after terminating %d walsender(s): the export resumed by itself within %s", killed, d.Round(time.Millisecond))

	time.Sleep(time.Second)
	if err := stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writer: %d changes in %d transactions, %d reconnections, %d commits looked up", w.changes.Load(), w.txs.Load(), w.reconnect.Load(), w.ambiguous.Load())
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM, want 0; log tail:\n%s", code, p.tail(20))
	}
	mustRunOnce(t, dir, args...)
	t.Run("orders/in-place", func(t *testing.T) { pgCheckInPlace(t, lake, orders, pgReadSource(t, conn, orders), since) })
	t.Run("ledger/append-only", func(t *testing.T) { pgCheckAppendOnly(t, lake, ledger, w.live["ledger"].log, since) })
}
