package tests

// Helpers of the end-to-end tests on object lakes (S3 through versitygw,
// Azure Blob through Azurite): a fresh bucket or container per test, reads
// of the lake's objects through lakelink's own lake packages (bytes only:
// every parse stays lakecheck's), a mirror of the lake into a local folder
// so that the folder-based checks of compare_test.go run unchanged, and
// private servers that a test may stop and start again.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/azure"
	lakes3 "github.com/lakelink/lakelink/lake/s3"
	"github.com/lakelink/lakelink/tests/lakecheck"
)

// objKinds are the object lakes every TestObj test runs against.
var objKinds = []string{"s3", "azure"}

// forEachKind runs test as a parallel subtest per object lake, against
// the shared server of that kind.
func forEachKind(t *testing.T, test func(t *testing.T, srv objServer)) {
	testenv.Slow(t)
	for _, kind := range objKinds {
		t.Run(kind, func(t *testing.T) {
			srv := sharedServer(t, kind)
			t.Parallel()
			test(t, srv)
		})
	}
}

// objServer is where an object store answers: the S3 endpoint
// (http://127.0.0.1:PORT) or the Azure blob service URL
// (http://127.0.0.1:PORT/ACCOUNT).
type objServer struct {
	kind     string
	endpoint string
}

// sharedServer returns the shared test server of a kind, from the
// environment ci/services.sh sets; it skips (fails under CI) without one.
func sharedServer(t testing.TB, kind string) objServer {
	t.Helper()
	switch kind {
	case "s3":
		return objServer{kind, strings.TrimSuffix(testenv.Need(t, "S3_ENDPOINT"), "/")}
	case "azure":
		return objServer{kind, strings.TrimSuffix(testenv.Need(t, "AZURE_BLOB_ENDPOINT"), "/")}
	}
	t.Fatalf("no object lake kind %q", kind)
	return objServer{}
}

// azureAccount is the storage account of the Azure test server.
func azureAccount() string {
	if a := os.Getenv(azure.EnvAccount); a != "" {
		return a
	}
	return "devstoreaccount1"
}

// objLake is a lake in a fresh bucket or container, below a prefix.
type objLake struct {
	kind string
	url  string        // the lake URL lakelink takes
	lake lakelink.Lake // the test's own handle, for reading
	base string        // lake.URL(""): how model.json locations start
}

// randomName returns a bucket or container name: lower-case letters,
// digits and hyphens.
func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newObjLake creates a fresh bucket (S3) or container (Azure) on srv and
// returns the lake below a prefix in it; cleanup deletes it.
func newObjLake(t testing.TB, srv objServer) *objLake {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	name := randomName("lltest")
	const prefix = "exports/crm"
	l := &objLake{kind: srv.kind}
	switch srv.kind {
	case "s3":
		cfg := lakes3.Config{Bucket: name, Endpoint: srv.endpoint, Region: "us-east-1", PathStyle: true}
		if err := lakes3.CreateBucket(ctx, cfg); err != nil {
			t.Fatalf("create bucket %s at %s: %v", name, srv.endpoint, err)
		}
		l.url = fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1&path-style=true", name, prefix, url.QueryEscape(srv.endpoint))
	case "azure":
		cfg := azure.Config{Account: azureAccount(), Container: name, Endpoint: srv.endpoint}
		if err := azure.CreateContainer(ctx, cfg); err != nil {
			t.Fatalf("create container %s at %s: %v", name, srv.endpoint, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := azure.DeleteContainer(ctx, cfg); err != nil {
				t.Logf("cleanup: %v", err)
			}
		})
		l.url = fmt.Sprintf("azure://%s/%s/%s?endpoint=%s", cfg.Account, name, prefix, url.QueryEscape(srv.endpoint))
	default:
		t.Fatalf("no object lake kind %q", srv.kind)
	}
	l.lake = openObjLake(t, l.url)
	l.base = l.lake.URL("")
	if srv.kind == "s3" {
		t.Cleanup(func() { l.dropBucket(t, name, srv.endpoint) })
	}
	return l
}

// openObjLake opens a lake URL with lakelink's own lake package.
func openObjLake(t testing.TB, u string) lakelink.Lake {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	var (
		lake lakelink.Lake
		err  error
	)
	switch scheme, _, _ := strings.Cut(u, ":"); scheme {
	case "s3":
		cfg, perr := lakes3.ParseURL(u)
		if perr != nil {
			t.Fatal(perr)
		}
		lake, err = lakes3.Open(ctx, cfg)
	case "azure":
		cfg, perr := azure.ParseURL(u)
		if perr != nil {
			t.Fatal(perr)
		}
		lake, err = azure.Open(ctx, cfg)
	default:
		t.Fatalf("not an object lake URL: %s", u)
	}
	if err != nil {
		t.Fatalf("open lake %s: %v", u, err)
	}
	return lake
}

// dropBucket deletes every object below the lake and then the bucket.
func (l *objLake) dropBucket(t testing.TB, bucket, endpoint string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := l.lake.List(ctx, "")
	if err != nil {
		t.Logf("cleanup: list %s: %v", l.lake, err)
		return
	}
	for _, o := range objs {
		_ = l.lake.Delete(ctx, o.Path)
	}
	cfg := lakes3.Config{Bucket: bucket, Endpoint: endpoint, Region: "us-east-1", PathStyle: true}
	if err := lakes3.DeleteBucket(ctx, cfg); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// read returns the bytes of the object at path.
func (l *objLake) read(ctx context.Context, path string) ([]byte, error) {
	r, err := l.lake.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// state returns the lake's export state, or nil when there is none (yet)
// or it can't be read.
func (l *objLake) state() *export.State {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data, err := l.read(ctx, export.StatePath)
	if err != nil {
		return nil
	}
	var st export.State
	if json.Unmarshal(data, &st) != nil {
		return nil
	}
	return &st
}

// syncState is the initial sync state of a table in the lake's state, or
// "" when the table is not there.
func (l *objLake) syncState(table string) string {
	st := l.state()
	if st == nil || st.Tables[table] == nil {
		return ""
	}
	return st.Tables[table].InitialSync
}

// waitObjSynced waits until every named table's initial sync completed in
// the lake's state.
func waitObjSynced(t testing.TB, p *proc, l *objLake, timeout time.Duration, tables ...string) {
	t.Helper()
	ok := waitFor(timeout, func() bool {
		for _, name := range tables {
			if l.syncState(name) != export.SyncCompleted {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("initial sync of %v in %s not completed within %s; log tail:\n%s", tables, l.url, timeout, p.tail(20))
	}
}

// locationPath turns a partition location of model.json into the path of
// the object in the lake.
func (l *objLake) locationPath(loc string) (string, error) {
	rest, ok := strings.CutPrefix(loc, l.base)
	if !ok {
		return "", fmt.Errorf("partition location %q is not below the lake's %q", loc, l.base)
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("partition location %q: %v", loc, err)
	}
	return p, nil
}

// mirror copies every object of the lake into a new local folder, with
// the locations in its JSON files turned into file:// URIs of the copies,
// so that the folder-based checks (checkInPlace, checkAppendOnly) read it.
// Call it while no lakelink writes into the lake.
func (l *objLake) mirror(t testing.TB) string {
	t.Helper()
	ctx := ctxTimeout(t, 2*time.Minute)
	dir := t.TempDir()
	objs, err := l.lake.List(ctx, "")
	if err != nil {
		t.Fatalf("mirror: list %s: %v", l.url, err)
	}
	local := lakeURL(dir) + "/"
	for _, o := range objs {
		data, err := l.read(ctx, o.Path)
		if err != nil {
			t.Fatalf("mirror: read %s: %v", o.Path, err)
		}
		if strings.HasSuffix(o.Path, ".json") {
			data = bytes.ReplaceAll(data, []byte(l.base), []byte(local))
		}
		path := filepath.Join(dir, filepath.FromSlash(o.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("mirrored %d objects of %s into %s", len(objs), l.url, dir)
	return dir
}

// parseModel validates model.json bytes of the lake against the CDM schema
// (failing the test when they are not valid) and parses them. The
// locations under an emulator's http:// endpoint, which lakelink writes by
// design (issue 5: "the emulator's endpoint when one is set"), are checked
// as file:// URIs: cdmtest accepts only https://, s3:// and file://.
func (l *objLake) parseModel(t testing.TB, data []byte) *lakecheck.Model {
	t.Helper()
	if !strings.HasPrefix(l.base, "http://") {
		return lakecheck.ParseModel(t, data)
	}
	lakecheck.ParseModel(t, bytes.ReplaceAll(data, []byte(l.base), []byte("file:///lake/")))
	var m lakecheck.Model
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("model.json: %v", err)
	}
	return &m
}

// objNamed tracks, for G3 on an object lake, every object that any
// model.json named and its hash when first seen.
type objNamed struct {
	l      *objLake
	hashes map[string]string // lake path -> sha256
	models int
}

func newObjNamed(l *objLake) *objNamed { return &objNamed{l: l, hashes: map[string]string{}} }

// namedPaths reads model.json and returns the lake paths it names by
// entity, or nil when there is no model.json yet.
func (n *objNamed) namedPaths(t testing.TB, ctx context.Context) (map[string][]string, error) {
	t.Helper()
	data, err := n.l.read(ctx, "model.json")
	if errors.Is(err, lakelink.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := n.l.parseModel(t, data)
	n.models++
	named := map[string][]string{}
	for _, e := range m.Entities {
		for _, p := range e.Partitions {
			path, err := n.l.locationPath(p.Location)
			if err != nil {
				return nil, fmt.Errorf("entity %s: %v", e.Name, err)
			}
			named[e.Name] = append(named[e.Name], path)
		}
	}
	return named, nil
}

// check reads model.json and every object it names: each must be
// complete CSV and unchanged since first seen. Then every object seen so
// far must be unchanged, or gone and no longer named (retention). It
// returns a problem, or "".
func (n *objNamed) check(t testing.TB) string {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	named, err := n.namedPaths(t, ctx)
	if err != nil {
		return err.Error()
	}
	now := map[string]bool{}
	for entity, paths := range named {
		for _, path := range paths {
			now[path] = true
			data, err := n.l.read(ctx, path)
			if err != nil {
				return fmt.Sprintf("entity %s: model.json names %s, which can't be read: %v", entity, path, err)
			}
			if _, err := lakecheck.ParseCSV(data); err != nil {
				return fmt.Sprintf("entity %s: %s is not complete CSV: %v", entity, path, err)
			}
			if msg := n.note(path, data); msg != "" {
				return msg
			}
		}
	}
	for path := range n.hashes {
		if now[path] {
			continue
		}
		data, err := n.l.read(ctx, path)
		switch {
		case errors.Is(err, lakelink.ErrNotExist):
			// Deleted by retention once no model.json named it.
		case err != nil:
			return fmt.Sprintf("read %s: %v", path, err)
		default:
			if msg := n.note(path, data); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// note records an object's hash, or says that it changed.
func (n *objNamed) note(path string, data []byte) string {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if old, ok := n.hashes[path]; ok && old != h {
		return fmt.Sprintf("%s changed after a model.json named it (sha256 %s… then %s…)", path, old[:12], h[:12])
	}
	n.hashes[path] = h
	return ""
}

// objTables are the tables of the readers and outage tests: "live", in
// place, partitioned by its createdon (from created), and "ledger", append
// only, every change recorded.
func objTables(created func(*gen) any) (live, ledger *tableDef) {
	live = &tableDef{
		name: "live",
		cols: []col{{"id", "INTEGER", nil}, {"createdon", "DATETIME", created}, {"n", "INTEGER", genInt}, {"s", "TEXT", genSmallText}},
		key:  []string{"id"}, createdOn: "createdon", newKey: intKey,
	}
	ledger = &tableDef{
		name: "ledger",
		cols: []col{{"k", "TEXT", nil}, {"amount", "INTEGER", genInt}, {"memo", "TEXT", genSmallText}},
		key:  []string{"k"}, newKey: textKey, record: true,
	}
	return live, ledger
}

// newObjSource creates the SQLite database dir/app.db with the tables and
// returns its path, the test's connection and a workload over it.
func newObjSource(t testing.TB, dir string, seed int64, tables ...*tableDef) (string, *sql.DB, *workload) {
	t.Helper()
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	for _, td := range tables {
		mustExec(t, db, td.ddl())
	}
	return path, db, newWorkload(db, newGen(seed), tables...)
}

// bgWorkload is a workload running in a goroutine of its own.
type bgWorkload struct {
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// goWorkload runs w with transactions of 1..maxN changes and a pause
// between them until finish (or the test's end).
func goWorkload(t testing.TB, parent context.Context, w *workload, maxN int, pause time.Duration) *bgWorkload {
	ctx, stop := context.WithCancel(parent)
	b := &bgWorkload{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = w.run(ctx, 1<<62, maxN, pause)
	}()
	t.Cleanup(func() { stop(); <-b.done })
	return b
}

// finish stops the workload and fails the test on its error.
func (b *bgWorkload) finish(t testing.TB) {
	t.Helper()
	b.stop()
	<-b.done
	if b.err != nil {
		t.Fatalf("workload: %v", b.err)
	}
}

var (
	leaseOnce sync.Once
	leaseArgs []string
)

// leaseFlags returns the flags that make a lease (one writer per folder)
// expire fast, when this lakelink has them: the crash tests restart at
// once after a kill -9, which a lease would otherwise refuse for its
// whole time to live.
func leaseFlags(t testing.TB) []string {
	t.Helper()
	bin := lakelinkBin(t)
	leaseOnce.Do(func() {
		out, _ := exec.Command(bin, "run", "--help").CombinedOutput()
		if bytes.Contains(out, []byte("--lease-ttl")) {
			leaseArgs = []string{"--lease-ttl", "1s"}
		}
	})
	return leaseArgs
}

// startRun starts `lakelink run` with args (and the lease flags). When
// lakelink refuses at once because a killed process's lease has not
// expired yet, it waits and starts again. It returns once the link has
// started (its "link started" line: the lease is taken), or exited, or
// after 3 s.
func startRun(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	args = append(append([]string{"run"}, args...), leaseFlags(t)...)
	for try := 1; ; try++ {
		p := startLakelink(t, dir, args...)
		if len(leaseArgs) == 0 {
			return p
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if p.exited() || strings.Contains(p.output(), "link started") {
				break
			}
		}
		if try == 10 || !p.exited() || !strings.Contains(strings.ToLower(p.output()), "lease") {
			return p
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// runOnceObj runs `lakelink run ... --once` (with the lease flags) and
// fails the test unless it exits 0.
func runOnceObj(t testing.TB, dir string, args ...string) {
	t.Helper()
	p := startRun(t, dir, append(args, "--once")...)
	if code := p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("lakelink run --once: exit %d; log tail:\n%s", code, p.tail(30))
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on port.
func waitListening(port int, timeout time.Duration) bool {
	return waitFor(timeout, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// privateServer is an Azurite or versitygw process of the test's own, on
// a port and in a data folder of its own, which the test may stop and
// start again: the shared servers are never stopped.
type privateServer struct {
	t    testing.TB
	kind string
	port int
	data string
	logs string
	cmd  *exec.Cmd
	done chan struct{}
}

// startPrivateServer starts a private server of a kind on a free port.
func startPrivateServer(t testing.TB, kind string) *privateServer {
	t.Helper()
	switch kind {
	case "s3":
		testenv.Need(t, "VGW_BIN")
		testenv.Need(t, "AWS_SECRET_ACCESS_KEY")
	case "azure":
		testenv.Need(t, "AZURITE_BIN")
	}
	s := &privateServer{t: t, kind: kind, port: freePort(t), data: t.TempDir(), logs: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// endpoint is the server's S3 endpoint or Azure blob service URL.
func (s *privateServer) endpoint() string {
	if s.kind == "azure" {
		return fmt.Sprintf("http://127.0.0.1:%d/%s", s.port, azureAccount())
	}
	return fmt.Sprintf("http://127.0.0.1:%d", s.port)
}

// start starts the server on its port and data folder and waits until it
// listens.
func (s *privateServer) start() {
	t := s.t
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	var cmd *exec.Cmd
	switch s.kind {
	case "s3":
		// The flags of s3_start in ci/services.sh; the root user is the
		// one the environment's AWS credentials name.
		cmd = exec.Command(os.Getenv("VGW_BIN"), "--port", addr, "--quiet", "posix", s.data)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+os.Getenv("AWS_ACCESS_KEY_ID"), "ROOT_SECRET_KEY="+os.Getenv("AWS_SECRET_ACCESS_KEY"))
	case "azure":
		// The flags of azurite_start in ci/services.sh.
		cmd = exec.Command(os.Getenv("AZURITE_BIN"), "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(s.port),
			"--location", s.data, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	}
	f, err := os.CreateTemp(s.logs, s.kind+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, stopped as one
	if err := cmd.Start(); err != nil {
		t.Fatalf("start private %s server: %v", s.kind, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	if !waitListening(s.port, 60*time.Second) {
		t.Fatalf("private %s server did not listen on %s within 60 s", s.kind, addr)
	}
}

// stop stops the server: versitygw with SIGKILL; Azurite with SIGTERM,
// because it keeps its blob metadata in an in-memory database that it
// saves to disk only now and then, so a SIGKILL would lose blobs it
// already acknowledged (a server losing acknowledged writes is outside
// what lakelink can guarantee). Either way the lake is gone at once.
func (s *privateServer) stop() {
	if s.cmd == nil {
		return
	}
	pgid := -s.cmd.Process.Pid
	sig := syscall.SIGKILL
	if s.kind == "azure" {
		sig = syscall.SIGTERM
	}
	_ = syscall.Kill(pgid, sig)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.done
	}
	// Until the port is free again, so a restart can take it.
	waitFor(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	s.cmd = nil
}
