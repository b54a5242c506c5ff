//go:build unix

package file_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/lake/laketest"
)

// write fills a conditional writer with s and closes it.
func write(s string) func(io.WriteCloser, error) error {
	return func(w io.WriteCloser, err error) error {
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
}

func TestConditional(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	ctx := t.Context()
	const p = "state/lease.json"
	if _, err := l.Version(ctx, p); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Version of a missing object = %v, want ErrNotExist", err)
	}
	if err := write("one")(l.CreateIfAbsent(ctx, p)); err != nil {
		t.Fatalf("CreateIfAbsent of a missing object (and folder): %v", err)
	}
	if err := write("two")(l.CreateIfAbsent(ctx, p)); !errors.Is(err, lakelink.ErrExist) {
		t.Errorf("second CreateIfAbsent = %v, want ErrExist", err)
	}
	if got := laketest.Get(t, l, p); got != "one" {
		t.Errorf("after a refused CreateIfAbsent the object holds %q, want %q", got, "one")
	}
	v1, err := l.Version(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	r, v, err := l.OpenVersion(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if v != v1 || string(b) != "one" {
		t.Errorf("OpenVersion = %q, %s; want %q, %s", b, v, "one", v1)
	}
	if err := write("three")(l.CreateIfVersion(ctx, p, v1)); err != nil {
		t.Fatalf("CreateIfVersion with the current version: %v", err)
	}
	v3, _ := l.Version(ctx, p)
	if v3 == v1 {
		t.Errorf("the version did not change when the object did: %s", v3)
	}
	if err := write("four")(l.CreateIfVersion(ctx, p, v1)); !errors.Is(err, file.ErrChanged) {
		t.Errorf("CreateIfVersion with a stale version = %v, want ErrChanged", err)
	}
	if got := laketest.Get(t, l, p); got != "three" {
		t.Errorf("after a refused CreateIfVersion the object holds %q, want %q", got, "three")
	}
	if err := write("five")(l.CreateIfVersion(ctx, "state/missing", v3)); !errors.Is(err, file.ErrChanged) {
		t.Errorf("CreateIfVersion of a missing object = %v, want ErrChanged", err)
	}
	if _, err := l.CreateIfVersion(ctx, p, ""); err == nil {
		t.Errorf("CreateIfVersion with an empty version: no error")
	}
	// Neither the lock file nor a temp file is an object.
	infos, err := l.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Path != p {
		t.Errorf("List = %+v, want only %s", infos, p)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "state"))
	for _, e := range entries {
		if n := e.Name(); strings.Contains(n, ".tmp-") && !strings.HasSuffix(n, ".tmp-lock") {
			t.Errorf("a temp file was left behind: %s", n)
		}
	}
}

// TestConditionalRace checks that of concurrent writers, exactly one
// CreateIfAbsent and exactly one CreateIfVersion on a version wins.
func TestConditionalRace(t *testing.T) {
	l := open(t, t.TempDir())
	ctx := t.Context()
	const n = 16
	race := func(what string, op func(i int) error, want error) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = op(i) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, want):
				t.Errorf("%s %d: %v, want success or %v", what, i, err, want)
			}
		}
		if wins != 1 {
			t.Errorf("%d of %d racing %s won, want exactly 1", wins, n, what)
		}
	}
	race("CreateIfAbsent", func(i int) error {
		return write(fmt.Sprint("writer ", i))(l.CreateIfAbsent(ctx, "lease"))
	}, lakelink.ErrExist)
	v, err := l.Version(ctx, "lease")
	if err != nil {
		t.Fatal(err)
	}
	race("CreateIfVersion", func(i int) error {
		return write(fmt.Sprint("swapper ", i))(l.CreateIfVersion(ctx, "lease", v))
	}, file.ErrChanged)
	if got := laketest.Get(t, l, "lease"); !strings.HasPrefix(got, "swapper ") {
		t.Errorf("after the race the object holds %q, want a swapper's", got)
	}
}
