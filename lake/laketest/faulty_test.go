package laketest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/laketest"
)

func create(ctx context.Context, l lakelink.Lake, p, s string) error {
	w, err := l.Create(ctx, p)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, s); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func appendTo(ctx context.Context, l lakelink.Lake, p string, size int64, s string) error {
	w, err := l.(lakelink.Appender).Append(ctx, p, size)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, s); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func read(t *testing.T, l lakelink.Lake, p string) (string, error) {
	t.Helper()
	r, err := l.Open(t.Context(), p)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func TestFaultyFailWrite(t *testing.T) {
	ctx := t.Context()
	mem := laketest.NewMemory()
	f := laketest.NewFaulty(mem)
	if err := create(ctx, f, "a.csv", "old"); err != nil {
		t.Fatal(err)
	}
	f.FailWrite(2)
	if err := create(ctx, f, "b.csv", "b"); err != nil {
		t.Fatalf("write 1 of 2: %v", err)
	}
	if err := create(ctx, f, "a.csv", "new"); !errors.Is(err, laketest.ErrInjected) {
		t.Fatalf("write 2 of 2 error = %v, want ErrInjected", err)
	}
	if got, _ := read(t, mem, "a.csv"); got != "old" {
		t.Errorf("after a failed Create, a.csv holds %q, want old", got)
	}
	if err := create(ctx, f, "a.csv", "new"); err != nil {
		t.Fatalf("the write after the failed one: %v", err)
	}
	if got := f.Writes(); got != 4 {
		t.Errorf("Writes() = %d, want 4", got)
	}

	// Each kind of write fails without effect.
	f.FailWrite(1)
	if err := f.Delete(ctx, "a.csv"); !errors.Is(err, laketest.ErrInjected) {
		t.Errorf("failed Delete error = %v, want ErrInjected", err)
	}
	f.FailWrite(1)
	if err := f.Copy(ctx, "a.csv", "c.csv", 1); !errors.Is(err, laketest.ErrInjected) {
		t.Errorf("failed Copy error = %v, want ErrInjected", err)
	}
	f.FailWrite(1)
	if err := appendTo(ctx, f, "a.csv", 3, "more"); !errors.Is(err, laketest.ErrInjected) {
		t.Errorf("failed Append error = %v, want ErrInjected", err)
	}
	if got, _ := read(t, mem, "a.csv"); got != "new" {
		t.Errorf("after failed writes, a.csv holds %q, want new", got)
	}
	if _, err := mem.Stat(ctx, "c.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after a failed Copy, Stat(c.csv) error = %v, want ErrNotExist", err)
	}

	// A planned failure can be called off.
	f.FailWrite(1)
	f.FailWrite(0)
	if err := f.Delete(ctx, "b.csv"); err != nil {
		t.Errorf("Delete after FailWrite(0) = %v, want nil", err)
	}
}

func TestFaultyCutWrite(t *testing.T) {
	ctx := t.Context()
	mem := laketest.NewMemory()
	f := laketest.NewFaulty(mem)

	// A cut Create leaves nothing.
	f.CutWrite(1, 4)
	w, err := f.Create(ctx, "c.csv")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.WriteString(w, "0123456789")
	if n != 4 || !errors.Is(err, laketest.ErrInjected) {
		t.Errorf("cut Write = %d, %v, want 4, ErrInjected", n, err)
	}
	if err := w.Close(); !errors.Is(err, laketest.ErrInjected) {
		t.Errorf("Close of a cut Create = %v, want ErrInjected", err)
	}
	if _, err := mem.Stat(ctx, "c.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after a cut Create, Stat error = %v, want ErrNotExist", err)
	}

	// A cut Append leaves a torn tail, which the next Append cuts off.
	if err := create(ctx, f, "a.csv", "head|"); err != nil {
		t.Fatal(err)
	}
	f.CutWrite(1, 3)
	if err := appendTo(ctx, f, "a.csv", 5, "row1\n"); !errors.Is(err, laketest.ErrInjected) {
		t.Fatalf("cut Append error = %v, want ErrInjected", err)
	}
	if got, _ := read(t, mem, "a.csv"); got != "head|row" {
		t.Errorf("after a cut Append, a.csv holds %q, want the torn tail head|row", got)
	}
	if err := appendTo(ctx, f, "a.csv", 5, "row1\n"); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, mem, "a.csv"); got != "head|row1\n" {
		t.Errorf("after the retried Append, a.csv holds %q, want head|row1\\n", got)
	}

	// A write shorter than the cut fails at Close.
	f.CutWrite(1, 100)
	if err := appendTo(ctx, f, "a.csv", 10, "short"); !errors.Is(err, laketest.ErrInjected) {
		t.Fatalf("short cut Append error = %v, want ErrInjected", err)
	}
	if got, _ := read(t, mem, "a.csv"); got != "head|row1\nshort" {
		t.Errorf("after a short cut Append, a.csv holds %q, want every byte as a tail", got)
	}
}

func TestFaultyDown(t *testing.T) {
	ctx := t.Context()
	f := laketest.NewFaulty(laketest.NewMemory())
	if err := create(ctx, f, "a.csv", "a"); err != nil {
		t.Fatal(err)
	}
	open, err := f.Create(ctx, "b.csv")
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Open(ctx, "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	writes := f.Writes()

	f.Down(true)
	transient := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, lakelink.ErrTransient) {
			t.Errorf("%s while down: error = %v, want one wrapping ErrTransient", what, err)
		}
	}
	transient("Create", create(ctx, f, "c.csv", "c"))
	_, err = f.Open(ctx, "a.csv")
	transient("Open", err)
	_, err = f.Stat(ctx, "a.csv")
	transient("Stat", err)
	_, err = f.List(ctx, "")
	transient("List", err)
	transient("Delete", f.Delete(ctx, "a.csv"))
	transient("Copy", f.Copy(ctx, "a.csv", "d.csv", 1))
	transient("Append", appendTo(ctx, f, "a.csv", 1, "x"))
	_, err = io.WriteString(open, "b")
	transient("Write of an open writer", err)
	transient("Close of an open writer", open.Close())
	_, err = r.Read(make([]byte, 1))
	transient("Read of an open reader", err)
	if got := f.Writes(); got != writes {
		t.Errorf("Writes() = %d after calls while down, want %d: they are not counted", got, writes)
	}
	if !strings.Contains(f.URL("a.csv"), "a.csv") {
		t.Errorf("URL while down = %q", f.URL("a.csv"))
	}

	f.Down(false)
	if err := create(ctx, f, "c.csv", "c"); err != nil {
		t.Errorf("Create after Down(false): %v", err)
	}
	infos, err := f.List(ctx, "")
	if err != nil || len(infos) != 2 {
		t.Errorf("List after Down(false) = %v, %v, want a.csv and c.csv", infos, err)
	}
}
