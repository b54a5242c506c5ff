// Package tests runs the built lakelink binary against real SQLite
// databases and file lakes, and checks the lake with an independent reader
// (package lakecheck): exactness (G1), crash safety (G2), safe readers (G3),
// schema changes and bad input (G6).
package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/tests/lakecheck"
)

var seedFlag = flag.Int64("seed", 0, "random seed of the workloads (0: from LAKELINK_TEST_SEED or the clock)")

// binDir holds the binary built once per test run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "lakelink-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// lakelinkBin builds ./cmd/lakelink once per test run and returns its path.
func lakelinkBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binPath = filepath.Join(binDir, "lakelink")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/lakelink")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/lakelink: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// testSeed returns the workload seed and prints it so that a failure can
// be replayed with -seed or LAKELINK_TEST_SEED.
func testSeed(t testing.TB) int64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("LAKELINK_TEST_SEED"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("LAKELINK_TEST_SEED=%q: %v", s, err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (replay with -seed %d or LAKELINK_TEST_SEED=%d)", seed, seed, seed)
	return seed
}

// proc is a running lakelink process.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	log    string // its stdout and stderr
	done   chan struct{}
	code   int
	waitMu sync.Mutex
}

// startLakelink starts the binary with args; its output goes to a log file
// in the test's temp dir. Cleanup kills it if it still runs.
func startLakelink(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	bin := lakelinkBin(t)
	f, err := os.CreateTemp(dir, "lakelink-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start lakelink: %v", err)
	}
	p := &proc{t: t, cmd: cmd, log: f.Name(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.code = cmd.ProcessState.ExitCode()
		if err != nil && p.code == 0 {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// wait waits up to timeout for the process to exit and returns its exit
// code; it fails the test when the process is still running.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("lakelink %s did not exit within %s; log tail:\n%s", strings.Join(p.cmd.Args[1:], " "), timeout, p.tail(30))
		return -1
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output returns the process's log.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runLakelink runs the binary to completion (at most timeout) and returns
// its exit code and output.
func runLakelink(t testing.TB, dir string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	p := startLakelink(t, dir, args...)
	code := p.wait(timeout)
	return code, p.output()
}

// mustRunOnce runs `lakelink run ... --once` and fails the test unless it
// exits 0.
func mustRunOnce(t testing.TB, dir string, args ...string) {
	t.Helper()
	args = append(append([]string{"run"}, args...), "--once")
	p := startLakelink(t, dir, args...)
	if code := p.wait(90 * time.Second); code != 0 {
		t.Fatalf("lakelink %s: exit %d; log tail:\n%s", strings.Join(args, " "), code, p.tail(30))
	}
}

// sourceURL and lakeURL turn absolute paths into the URLs the CLI takes.
func sourceURL(path string) string { return "sqlite://" + (&url.URL{Path: path}).EscapedPath() }
func lakeURL(path string) string   { return "file://" + (&url.URL{Path: path}).EscapedPath() }

// openDB opens a SQLite database for the test's own writes: WAL mode,
// busy_timeout, BEGIN IMMEDIATE, one connection.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	dsn := "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustExec runs SQL statements or fails the test.
func mustExec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", shorten(s, 80), err)
		}
	}
}

// readState reads the lake's export state (export.State).
func readState(t testing.TB, lake string) *export.State {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lake, filepath.FromSlash(export.StatePath)))
	if err != nil {
		t.Fatalf("read lake state: %v", err)
	}
	var st export.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("lake state: %v", err)
	}
	return &st
}

// tryReadState reads the lake's export state, or returns nil.
func tryReadState(lake string) *export.State {
	data, err := os.ReadFile(filepath.Join(lake, filepath.FromSlash(export.StatePath)))
	if err != nil {
		return nil
	}
	var st export.State
	if json.Unmarshal(data, &st) != nil {
		return nil
	}
	return &st
}

// statusDoc is the part of `lakelink status --json` the tests read.
type statusDoc struct {
	Link     string `json:"link"`
	Position uint64 `json:"position"`
	Tables   []struct {
		Name         string `json:"name"`
		Folder       string `json:"folder"`
		InitialSync  string `json:"initialSync"`
		Rows         int64  `json:"rows"`
		LastPosition uint64 `json:"lastPosition"`
		Error        string `json:"error"`
	} `json:"tables"`
}

// status runs `lakelink status --lake URL --json`.
func status(t testing.TB, dir, lake string) statusDoc {
	t.Helper()
	cmd := exec.Command(lakelinkBin(t), "status", "--lake", lakeURL(lake), "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lakelink status --json: %v: %s", err, stderr.String())
	}
	var doc statusDoc
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("lakelink status --json: %v: %s", err, shorten(stdout.String(), 200))
	}
	return doc
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSynced waits until every named table's initial sync completed in the
// lake's state.
func waitSynced(t testing.TB, p *proc, lake string, timeout time.Duration, tables ...string) {
	t.Helper()
	ok := waitFor(timeout, func() bool {
		st := tryReadState(lake)
		if st == nil {
			return false
		}
		for _, name := range tables {
			ts := st.Tables[name]
			if ts == nil || ts.InitialSync != export.SyncCompleted {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("initial sync of %v in %s not completed within %s; log tail:\n%s", tables, lake, timeout, p.tail(20))
	}
}

// shorten cuts s for a one-line message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}

// hashFile returns the SHA-256 of a file, or "" when it is missing.
func hashFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// namedFiles tracks every file any model.json named and its hash when
// first seen (G3: such a file never changes afterwards).
type namedFiles struct {
	hashes map[string]string
	models int
}

func newNamedFiles() *namedFiles { return &namedFiles{hashes: map[string]string{}} }

// observe reads model.json (if there is one), checks that every file it
// names exists, is a complete CSV file and has not changed since first
// seen, and records new ones. It returns a problem, or "".
func (n *namedFiles) observe(t testing.TB, lake string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lake, "model.json"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	m := lakecheck.ParseModel(t, data)
	n.models++
	for _, e := range m.Entities {
		for _, p := range e.Partitions {
			path, err := lakecheck.LocationPath(p.Location)
			if err != nil {
				return err.Error()
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return fmt.Sprintf("entity %s partition %s: model.json names %s, which can't be read: %v", e.Name, p.Name, path, err)
			}
			if _, err := lakecheck.ParseCSV(raw); err != nil {
				return fmt.Sprintf("entity %s partition %s: %s is not complete CSV: %v", e.Name, p.Name, path, err)
			}
			sum := sha256.Sum256(raw)
			h := hex.EncodeToString(sum[:])
			if old, ok := n.hashes[path]; ok && old != h {
				return fmt.Sprintf("entity %s: %s changed after model.json named it (sha256 %s… then %s…)", e.Name, path, old[:12], h[:12])
			}
			n.hashes[path] = h
		}
	}
	return ""
}

// recheck checks that every file seen so far is unchanged, or gone and no
// longer named by model.json (retention).
func (n *namedFiles) recheck(t testing.TB, lake string) string {
	t.Helper()
	named := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(lake, "model.json")); err == nil {
		m := lakecheck.ParseModel(t, data)
		for _, e := range m.Entities {
			for _, p := range e.Partitions {
				if path, err := lakecheck.LocationPath(p.Location); err == nil {
					named[path] = true
				}
			}
		}
	}
	for path, want := range n.hashes {
		got, err := hashFile(path)
		switch {
		case os.IsNotExist(err):
			if named[path] {
				return fmt.Sprintf("%s is named by model.json but missing", path)
			}
		case err != nil:
			return err.Error()
		case got != want:
			return fmt.Sprintf("%s changed after a model.json named it (sha256 %s… then %s…)", path, want[:12], got[:12])
		}
	}
	return ""
}

// ctxTimeout returns a context that ends after d or when the test ends.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// killAfter waits delay, fails the test if lakelink exited by itself
// meanwhile, notes whether the initial copy was complete (copied), then
// kills it with SIGKILL and waits for it: a crash at a random instant.
// It returns the phase the kill landed in, "copy" or "stream".
func killAfter(t testing.TB, kill int, p *proc, delay time.Duration, copied func() bool) string {
	t.Helper()
	time.Sleep(delay)
	if p.exited() {
		t.Fatalf("kill %d: lakelink exited by itself (code %d); log tail:\n%s", kill, p.code, p.tail(30))
	}
	phase := "stream"
	if !copied() {
		phase = "copy"
	}
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
	return phase
}

// bigCopied reports whether the folder lake's state says big's initial
// copy is complete.
func bigCopied(lake string) func() bool {
	return func() bool {
		st := tryReadState(lake)
		return st != nil && st.Tables["big"] != nil && st.Tables["big"].InitialSync == export.SyncCompleted
	}
}

// recopyBig marks big for a fresh copy with `lakelink resync` when the
// folder lake's state says its copy is complete, so that the next run
// copies it again; it reports whether it did.
func recopyBig(t testing.TB, dir, lake string) bool {
	t.Helper()
	if !bigCopied(lake)() {
		return false
	}
	if code, out := runLakelink(t, dir, 30*time.Second, "resync", "--lake", lakeURL(lake), "--table", "big"); code != 0 {
		t.Fatalf("lakelink resync: exit %d:\n%s", code, out)
	}
	return true
}

// ordersSource makes, in a new work folder, a SQLite database with the
// orders table of exactTables, and a seeded generator for a workload on it.
// The lakelink binary is built.
func ordersSource(t *testing.T) (dir, dbPath string, db *sql.DB, orders *tableDef, g *gen) {
	t.Helper()
	g = newGen(testSeed(t))
	lakelinkBin(t)
	dir = t.TempDir()
	dbPath = filepath.Join(dir, "app.db")
	db = openDB(t, dbPath)
	orders, _, _ = exactTables()
	mustExec(t, db, orders.ddl())
	return dir, dbPath, db, orders, g
}
