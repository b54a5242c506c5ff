package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/azure"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/lake/laketest"
	lakes3 "github.com/lakelink/lakelink/lake/s3"
	"github.com/lakelink/lakelink/lease"
)

// lakes are the lakes every test runs on: a local folder always, Azurite
// and versitygw when their endpoints are set (and under CI, where a
// missing one fails).
var lakes = []struct {
	name string
	open func(t *testing.T) lease.Lake
}{
	{"file", func(t *testing.T) lease.Lake {
		l, err := file.Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}},
	{"azure", func(t *testing.T) lease.Lake {
		testenv.Slow(t)
		endpoint := testenv.Need(t, azure.EnvEndpoint)
		account := os.Getenv(azure.EnvAccount)
		if account == "" {
			account = "devstoreaccount1"
		}
		cfg := azure.Config{Account: account, Container: fmt.Sprintf("lakelink-lease-%016x", rand.Uint64()), Endpoint: endpoint, Prefix: "crm"}
		if err := azure.CreateContainer(t.Context(), cfg); err != nil {
			t.Fatalf("create test container: %v", err)
		}
		t.Cleanup(func() {
			if err := azure.DeleteContainer(context.Background(), cfg); err != nil {
				t.Errorf("delete test container: %v", err)
			}
		})
		l, err := azure.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}},
	{"s3", func(t *testing.T) lease.Lake {
		testenv.Slow(t)
		endpoint := testenv.Need(t, "S3_ENDPOINT")
		cfg := lakes3.Config{Bucket: "lakelink-lease-test", Endpoint: endpoint, PathStyle: true, Region: "us-east-1"}
		if err := lakes3.CreateBucket(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Prefix = fmt.Sprintf("t%d-%x", time.Now().Unix(), rand.Uint64())
		l, err := lakes3.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			l.Delete(context.Background(), lease.Path)
			l.Close()
		})
		return l
	}},
}

// forEachLake runs test on each lake in lakes.
func forEachLake(t *testing.T, test func(t *testing.T, l lease.Lake)) {
	for _, lk := range lakes {
		t.Run(lk.name, func(t *testing.T) { test(t, lk.open(t)) })
	}
}

// acquire takes the lease or fails the test; Cleanup releases it.
func acquire(t *testing.T, l lease.Lake, opts lease.Options) *lease.Lease {
	t.Helper()
	ls, err := lease.Acquire(t.Context(), l, opts)
	if err != nil {
		t.Fatalf("Acquire(%+v): %v", opts, err)
	}
	t.Cleanup(func() { ls.Release(context.Background()) })
	return ls
}

// mustBeHeld checks that Acquire with opts is refused with a *HeldError
// naming want's holder.
func mustBeHeld(t *testing.T, l lease.Lake, opts lease.Options, want lease.Holder) {
	t.Helper()
	ls, err := lease.Acquire(t.Context(), l, opts)
	if err == nil {
		ls.Release(context.Background())
		t.Fatalf("Acquire(link %q) succeeded while %s holds the lease", opts.Link, want)
	}
	var he *lease.HeldError
	if !errors.As(err, &he) || !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire(link %q) = %v, want a *HeldError", opts.Link, err)
	}
	if he.Holder.ID != want.ID || he.Holder.Link != want.Link || he.Holder.PID != want.PID || he.Holder.Host != want.Host {
		t.Errorf("HeldError names %+v, want %+v", he.Holder, want)
	}
	for _, s := range []string{want.Link, want.Host, fmt.Sprint(want.PID), "expires"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not name %q", err, s)
		}
	}
}

// readRecord reads the lease object as it is in the lake.
func readRecord(t *testing.T, l lease.Lake) (lease.Record, string) {
	t.Helper()
	r, v, err := l.OpenVersion(t.Context(), lease.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec lease.Record
	if err := json.NewDecoder(r).Decode(&rec); err != nil {
		t.Fatalf("lease record: %v", err)
	}
	return rec, v
}

// put returns a function that writes rec as the lease object with what a
// conditional Create returned: put(t, rec)(l.CreateIfAbsent(ctx, lease.Path)).
func put(t *testing.T, rec lease.Record) func(io.WriteCloser, error) {
	return func(w io.WriteCloser, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(rec)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatalf("write lease record: %v", err)
		}
	}
}

// waitDone waits for ctx to end (at most d) and returns its cause.
func waitDone(t *testing.T, ctx context.Context, d time.Duration) error {
	t.Helper()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		t.Fatalf("the holder's context was not canceled within %s", d)
		return nil
	}
}

func TestAcquireRefuseRelease(t *testing.T) {
	forEachLake(t, func(t *testing.T, l lease.Lake) {
		first := acquire(t, l, lease.Options{Link: "crm", TTL: time.Minute})
		h := first.Record().Holder
		host, _ := os.Hostname()
		if h.Link != "crm" || h.PID != os.Getpid() || h.Host != host || h.ID == "" || h.Since.IsZero() {
			t.Errorf("holder %+v, want link crm, pid %d, host %s, an ID and a start time", h, os.Getpid(), host)
		}
		if rec, _ := readRecord(t, l); rec.Holder != h || rec.Counter < 1 || !rec.Expires.After(rec.Renewed) {
			t.Errorf("lease object %+v, want holder %+v and an expiry after its renewal", rec, h)
		}
		mustBeHeld(t, l, lease.Options{Link: "other"}, h)
		ctx, cancel := first.Hold(t.Context())
		defer cancel()
		if err := first.Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := waitDone(t, ctx, 10*time.Second); !errors.Is(err, lease.ErrReleased) {
			t.Errorf("after Release, Hold's cause = %v, want ErrReleased", err)
		}
		rec, _ := readRecord(t, l)
		if !rec.Released || rec.Holder.ID != h.ID {
			t.Errorf("after Release the lease object is %+v, want ours, marked released", rec)
		}
		// A released lease is taken at once, though its TTL has not passed.
		second := acquire(t, l, lease.Options{Link: "other"})
		if rec, _ := readRecord(t, l); rec.Holder.ID != second.Record().Holder.ID || rec.Released || rec.Counter <= first.Record().Counter {
			t.Errorf("after the second Acquire the lease object is %+v, want the second holder's with a higher counter", rec)
		}
	})
}

// TestAcquireRace checks that of concurrent Acquires exactly one wins.
func TestAcquireRace(t *testing.T) {
	forEachLake(t, func(t *testing.T, l lease.Lake) {
		const n = 8
		var wins atomic.Int32
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ls, err := lease.Acquire(t.Context(), l, lease.Options{Link: fmt.Sprintf("l%d", i), TTL: time.Minute})
				errs[i] = err
				if err == nil {
					wins.Add(1)
					t.Cleanup(func() { ls.Release(context.Background()) })
				}
			})
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d of %d concurrent Acquires won, want exactly 1 (errors: %v)", w, n, errs)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, lease.ErrHeld) {
				t.Errorf("Acquire %d: %v, want a *HeldError", i, err)
			}
		}
	})
}

// TestExpiredTakeover leaves a lease as a killed holder does (written, then
// never renewed) and checks that it is refused until it expires, then
// taken over.
func TestExpiredTakeover(t *testing.T) {
	forEachLake(t, func(t *testing.T, l lease.Lake) {
		const ttl = 500 * time.Millisecond
		now := time.Now()
		dead := lease.Record{Format: 1, Counter: 7, Renewed: now, Expires: now.Add(ttl), TTLMilli: ttl.Milliseconds(),
			Holder: lease.Holder{ID: "dead", Host: "elsewhere", PID: 4242, Link: "crm", Since: now.Add(-time.Hour)}}
		put(t, dead)(l.CreateIfAbsent(t.Context(), lease.Path))
		mustBeHeld(t, l, lease.Options{Link: "crm"}, dead.Holder)
		var ls *lease.Lease
		if !poll(10*time.Second, func() bool {
			var err error
			ls, err = lease.Acquire(t.Context(), l, lease.Options{Link: "crm"})
			if err != nil && !errors.Is(err, lease.ErrHeld) {
				t.Fatalf("Acquire: %v", err)
			}
			return err == nil
		}) {
			t.Fatalf("the lease of a dead holder (TTL %s) was not taken over within 10 s", ttl)
		}
		defer ls.Release(context.Background())
		if time.Now().Before(dead.Expires) {
			t.Errorf("the lease was taken over at %s, before it expired at %s", time.Now(), dead.Expires)
		}
		rec, _ := readRecord(t, l)
		if rec.Holder.ID != ls.Record().Holder.ID || rec.Counter != dead.Counter+1 {
			t.Errorf("after the takeover the lease object is %+v, want the new holder's with counter %d", rec, dead.Counter+1)
		}
	})
}

// shortOr returns long, or short under -short.
func shortOr(long, short time.Duration) time.Duration {
	if testing.Short() {
		return short
	}
	return long
}

// poll calls cond every 50 ms until it holds or d passes.
func poll(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// TestRenewKeepsIt holds a short lease for several TTLs and checks that it
// was renewed and is still refused to others.
func TestRenewKeepsIt(t *testing.T) {
	forEachLake(t, func(t *testing.T, l lease.Lake) {
		ttl := shortOr(time.Second, 600*time.Millisecond)
		ls := acquire(t, l, lease.Options{Link: "crm", TTL: ttl})
		ctx, cancel := ls.Hold(t.Context())
		defer cancel()
		first, _ := readRecord(t, l)
		time.Sleep(3 * ttl)
		if err := ls.Err(); err != nil || ctx.Err() != nil {
			t.Fatalf("after 3 TTLs: Err = %v, Hold's context: %v; want the lease held", err, context.Cause(ctx))
		}
		rec, _ := readRecord(t, l)
		if rec.Counter <= first.Counter || !rec.Expires.After(first.Expires) {
			t.Errorf("after 3 TTLs the lease object has counter %d, expiry %s; want more than %d, %s", rec.Counter, rec.Expires, first.Counter, first.Expires)
		}
		mustBeHeld(t, l, lease.Options{Link: "other"}, ls.Record().Holder)
	})
}

// TestStolen overwrites a held lease as another writer and checks that the
// holder's context is canceled with ErrTakenOver and that the holder
// leaves the new record alone, even on Release.
func TestStolen(t *testing.T) {
	forEachLake(t, func(t *testing.T, l lease.Lake) {
		const ttl = time.Second
		ls := acquire(t, l, lease.Options{Link: "crm", TTL: ttl})
		ctx, cancel := ls.Hold(t.Context())
		defer cancel()
		rec, v := readRecord(t, l)
		thief := rec
		thief.Holder = lease.Holder{ID: "thief", Host: "elsewhere", PID: 1, Link: "crm", Since: time.Now()}
		thief.Counter++
		thief.Expires = time.Now().Add(time.Hour)
		put(t, thief)(l.CreateIfVersion(t.Context(), lease.Path, v))
		err := waitDone(t, ctx, 10*ttl)
		if !errors.Is(err, lease.ErrTakenOver) || !errors.Is(ls.Err(), lease.ErrTakenOver) {
			t.Fatalf("after a takeover, Hold's cause = %v, Err = %v; want ErrTakenOver", err, ls.Err())
		}
		if !strings.Contains(err.Error(), "elsewhere") {
			t.Errorf("cause %q does not name the new holder's host", err)
		}
		if err := ls.Release(t.Context()); err != nil {
			t.Errorf("Release of a lost lease: %v", err)
		}
		if got, _ := readRecord(t, l); got.Holder.ID != "thief" || got.Counter != thief.Counter {
			t.Errorf("the old holder overwrote the new holder's lease: %+v", got)
		}
	})
}

// failing is a lake whose conditional writes and reads fail while down
// is set, as when the lake is unreachable.
type failing struct {
	lease.Lake
	down atomic.Bool
}

var errDown = errors.New("lake unreachable (test)")

func (f *failing) OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error) {
	if f.down.Load() {
		return nil, "", errDown
	}
	return f.Lake.OpenVersion(ctx, path)
}

func (f *failing) CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Lake.CreateIfVersion(ctx, path, version)
}

// TestLakeDown checks that a holder that can't renew stops writing before
// its lease expires (ErrExpired), that others are refused until it
// expires, and that the holder takes it back with its ID once the lake
// answers.
func TestLakeDown(t *testing.T) {
	for _, lk := range lakes {
		t.Run(lk.name, func(t *testing.T) {
			l := &failing{Lake: lk.open(t)}
			ttl := shortOr(3*time.Second, 1200*time.Millisecond) // its margin (TTL/6) covers the test's own delays
			ls := acquire(t, l, lease.Options{Link: "crm", TTL: ttl})
			ctx, cancel := ls.Hold(t.Context())
			defer cancel()
			l.down.Store(true)
			err := waitDone(t, ctx, 10*ttl)
			stopped := time.Now()
			if !errors.Is(err, lease.ErrExpired) || !strings.Contains(err.Error(), errDown.Error()) {
				t.Fatalf("Hold's cause with the lake down = %v, want ErrExpired naming the last error", err)
			}
			l.down.Store(false)
			rec, _ := readRecord(t, l)
			if !stopped.Before(rec.Expires) {
				t.Errorf("the holder stopped writing at %s, not before its lease expired at %s", stopped, rec.Expires)
			}
			if time.Now().Before(rec.Expires) {
				mustBeHeld(t, l, lease.Options{Link: "other"}, rec.Holder)
			}
			again := acquire(t, l, lease.Options{Link: "crm", ID: rec.Holder.ID, TTL: ttl})
			if got := again.Record(); got.Holder.ID != rec.Holder.ID || got.Holder.Since != rec.Holder.Since || got.Counter != rec.Counter+1 {
				t.Errorf("taken back: %+v, want the same holder and start, counter %d", got, rec.Counter+1)
			}
		})
	}
}

func TestBadRecord(t *testing.T) {
	l, err := file.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, _ := l.Create(t.Context(), lease.Path)
	io.WriteString(w, "not json")
	w.Close()
	_, err = lease.Acquire(t.Context(), l, lease.Options{Link: "crm"})
	if err == nil || !strings.Contains(err.Error(), "not a lease record") || !strings.Contains(err.Error(), lease.Path) {
		t.Errorf("Acquire over a corrupt lease = %v, want an error naming %s as not a lease record", err, lease.Path)
	}
	if _, err := lease.Acquire(t.Context(), l, lease.Options{TTL: time.Millisecond}); err == nil {
		t.Errorf("Acquire with a 1 ms TTL succeeded, want an error")
	}
}

// Every lake lakelink writes can hold a lease.
var _ lease.Lake = (*file.Lake)(nil)
var _ lease.Lake = (*lakes3.Lake)(nil)
var _ lease.Lake = (*azure.Lake)(nil)

// TestGuard checks that a guarded lake's writes stop when the lease is
// lost: a write in flight is abandoned (nothing visible) and new ones are
// refused, naming why.
func TestGuard(t *testing.T) {
	l, err := file.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ls := acquire(t, l, lease.Options{Link: "crm", TTL: time.Second})
	g := ls.Guard(l)
	if _, ok := g.(lakelink.Appender); !ok {
		t.Errorf("the guarded file lake is not an Appender")
	}
	if _, ok := g.(lakelink.Copier); !ok {
		t.Errorf("the guarded file lake is not a Copier")
	}
	if err := write(g, "before.csv", "ok"); err != nil {
		t.Fatalf("write under a held lease: %v", err)
	}
	w, err := g.Create(t.Context(), "inflight.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "half")
	ctx, cancel := ls.Hold(t.Context())
	defer cancel()
	rec, v := readRecord(t, l)
	rec.Holder.ID, rec.Counter = "thief", rec.Counter+1
	put(t, rec)(l.CreateIfVersion(t.Context(), lease.Path, v))
	waitDone(t, ctx, 10*time.Second)
	if err := w.Close(); err == nil || !errors.Is(err, lease.ErrTakenOver) {
		t.Errorf("Close of a write in flight when the lease was lost = %v, want an error wrapping ErrTakenOver", err)
	}
	if _, err := l.Stat(t.Context(), "inflight.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("the abandoned write is visible: Stat = %v", err)
	}
	for what, err := range map[string]error{
		"Create": write(g, "after.csv", "no"),
		"Delete": g.Delete(t.Context(), "before.csv"),
		"Copy":   g.(lakelink.Copier).Copy(t.Context(), "before.csv", "copy.csv", 2),
	} {
		if !errors.Is(err, lease.ErrTakenOver) {
			t.Errorf("%s after the lease was lost = %v, want an error wrapping ErrTakenOver", what, err)
		}
	}
	if got := laketest.Get(t, l, "before.csv"); got != "ok" {
		t.Errorf("before.csv = %q after a refused Delete, want %q", got, "ok")
	}
}

// write creates the object at path in l holding s.
func write(l lakelink.Lake, path, s string) error {
	w, err := l.Create(context.Background(), path)
	if err != nil {
		return err
	}
	io.WriteString(w, s)
	return w.Close()
}

// TestGoneHolderTakeover: a lease whose holder was a process of this
// machine that no longer exists (killed) is taken over at once; one whose
// holder still runs, or ran on another machine, is not.
func TestGoneHolderTakeover(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no PID liveness check on windows")
	}
	me, err := lease.Acquire(t.Context(), openFolder(t), lease.Options{Link: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	machine, host := me.Record().Holder.Machine, me.Record().Holder.Host
	me.Release(context.Background())
	if machine == "" {
		t.Skip("this system does not name its machine (no /proc)")
	}
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	alive := exec.Command("sleep", "30")
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { alive.Process.Kill(); alive.Wait() }()
	for _, tt := range []struct {
		name     string
		holder   lease.Holder
		takeOver bool
	}{
		{"gone process of this machine", lease.Holder{Host: host, PID: exited.Process.Pid, Machine: machine}, true},
		{"live process of this machine", lease.Holder{Host: host, PID: alive.Process.Pid, Machine: machine}, false},
		{"gone PID of another machine", lease.Holder{Host: host, PID: exited.Process.Pid, Machine: machine + "x"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := openFolder(t)
			now := time.Now()
			tt.holder.ID, tt.holder.Link, tt.holder.Since = "other", "crm", now
			put(t, lease.Record{Format: 1, Counter: 3, Renewed: now, Expires: now.Add(time.Hour), TTLMilli: time.Hour.Milliseconds(), Holder: tt.holder})(l.CreateIfAbsent(t.Context(), lease.Path))
			ls, err := lease.Acquire(t.Context(), l, lease.Options{Link: "crm"})
			if ls != nil {
				defer ls.Release(context.Background())
			}
			switch {
			case tt.takeOver && err != nil:
				t.Errorf("Acquire = %v, want a takeover of the gone holder's lease", err)
			case !tt.takeOver && !errors.Is(err, lease.ErrHeld):
				t.Errorf("Acquire = %v, want a refusal while the lease is live", err)
			}
		})
	}
}

func openFolder(t *testing.T) *file.Lake {
	t.Helper()
	l, err := file.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}
