package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/laketest"
	"github.com/lakelink/lakelink/lake/s3"
)

// TestConditional checks If-None-Match and If-Match writes, for a small
// object (one PutObject) and a large one (a multipart upload).
func TestConditional(t *testing.T) {
	l := newLake(t)
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		size int64
	}{{"small", 10}, {"multipart", 9 << 20}} {
		t.Run(tt.name, func(t *testing.T) {
			p := "lease-" + tt.name
			seed := uint64(1)
			// write fills a conditional writer with size bytes of seed's.
			write := func(w io.WriteCloser, err error) error {
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(seed), tt.size)); err != nil {
					w.Close()
					return err
				}
				return w.Close()
			}
			if err := write(l.CreateIfAbsent(ctx, p)); err != nil {
				t.Fatalf("CreateIfAbsent of a missing object: %v", err)
			}
			seed = 2
			if err := write(l.CreateIfAbsent(ctx, p)); !errors.Is(err, lakelink.ErrExist) {
				t.Errorf("second CreateIfAbsent = %v, want ErrExist", err)
			}
			v1, err := l.Version(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			seed = 3
			if err := write(l.CreateIfVersion(ctx, p, v1)); err != nil {
				t.Fatalf("CreateIfVersion with the current version: %v", err)
			}
			want := laketest.Hash(t, l, p)
			seed = 4
			if err := write(l.CreateIfVersion(ctx, p, v1)); !errors.Is(err, s3.ErrChanged) {
				t.Errorf("CreateIfVersion with a stale version = %v, want ErrChanged", err)
			}
			if got := laketest.Hash(t, l, p); !bytes.Equal(got, want) {
				t.Errorf("a failed conditional write changed the object")
			}
			if err := write(l.CreateIfVersion(ctx, "missing-"+tt.name, v1)); !errors.Is(err, s3.ErrChanged) {
				t.Errorf("CreateIfVersion of a missing object = %v, want ErrChanged", err)
			}
			noUploads(t, l)
		})
	}
}

// TestCreateBoundedMemory streams 128 MiB into one object and checks that
// the heap stays far below that: a writer holds at most two parts (one
// filling, one in flight).
func TestCreateBoundedMemory(t *testing.T) {
	l := newLake(t)
	w, err := l.Create(t.Context(), "big.csv")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	g := laketest.NewGenerator(4)
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	for range 128 {
		g.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := l.Stat(t.Context(), "big.csv"); err != nil || fi.Size != 128<<20 {
		t.Fatalf("Stat = %+v, %v, want 128 MiB", fi, err)
	}
	if peak > 32<<20 {
		t.Errorf("heap grew by up to %d MiB while streaming 128 MiB, want it bounded by the part size", peak>>20)
	}
	t.Logf("heap grew by up to %d MiB while streaming 128 MiB", peak>>20)
}

// TestAppendConflict checks that an Append does not overwrite an object
// that another writer replaced while the Append was open, small or large.
func TestAppendConflict(t *testing.T) {
	l := newLake(t)
	ctx := t.Context()
	for _, base := range []int64{10, 6 << 20} {
		p := fmt.Sprintf("tbl/%d.csv", base)
		w, err := l.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, io.LimitReader(laketest.NewGenerator(6), base))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		a, err := l.Append(ctx, p, base)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(a, "appended")
		laketest.Put(t, l, p, "another writer's")
		if err := a.Close(); !errors.Is(err, s3.ErrChanged) {
			t.Errorf("Append of %d bytes over a replaced object: Close = %v, want ErrChanged", base, err)
		}
		if got := laketest.Get(t, l, p); got != "another writer's" {
			t.Errorf("after a conflicting Append, read %d bytes, want the other writer's object", len(got))
		}
	}
	noUploads(t, l)
}
