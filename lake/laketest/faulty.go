package laketest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/lakelink/lakelink"
)

// ErrInjected is the error of a write that Faulty was told to fail.
var ErrInjected = errors.New("laketest: injected fault")

// Faulty wraps a lake and fails on command, to test what the code above a
// lake does when writes fail, are cut off, or the lake is down.
//
// Writes are numbered in the order they start: a Create or an Append when it
// is called (it fails at its Close, or at the Write that is cut), a Copy or
// a Delete when it is called. Writes counts them; FailWrite and CutWrite pick
// one by its number counted from the call. Calls made while the lake is down
// fail before they are numbered.
//
// Faulty always has Append and Copy; they return an error wrapping
// errors.ErrUnsupported when the inner lake lacks them. Wrap it in Basic to
// hide them. A Faulty is safe for concurrent use.
type Faulty struct {
	inner lakelink.Lake

	mu       sync.Mutex
	writes   int   // writes started
	fail     int   // the number of the write to fail; 0 for none
	cut      int   // the number of the write to cut; 0 for none
	cutAfter int64 // bytes the cut write passes on first
	down     bool
}

var (
	_ lakelink.Lake     = (*Faulty)(nil)
	_ lakelink.Appender = (*Faulty)(nil)
	_ lakelink.Copier   = (*Faulty)(nil)
)

// NewFaulty returns inner wrapped, with no fault planned.
func NewFaulty(inner lakelink.Lake) *Faulty { return &Faulty{inner: inner} }

// FailWrite makes the n-th following write (n ≥ 1) fail with ErrInjected,
// without effect: a Create's Close abandons the object (its Write calls pass
// through), an Append's Close fails with the bytes uncommitted (the inner
// lake may keep them as a tail past the committed size), a Copy or a Delete
// does nothing. n ≤ 0 cancels a planned failure.
func (f *Faulty) FailWrite(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = 0
	if n > 0 {
		f.fail = f.writes + n
	}
}

// CutWrite makes the n-th following write (n ≥ 1) fail with ErrInjected
// after passing on its first `after` bytes, as a crash would: for a Create
// nothing becomes visible; for an Append the bytes are committed to the
// inner lake and stay there as a torn tail past the size the caller
// committed. A Copy or a Delete fails without effect. A write with no more
// than `after` bytes fails at its Close. n ≤ 0 cancels a planned cut.
func (f *Faulty) CutWrite(n int, after int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut, f.cutAfter = 0, max(after, 0)
	if n > 0 {
		f.cut = f.writes + n
	}
}

// Down makes every call, including the Write, Close and Read calls of
// writers and readers already handed out, fail with an error wrapping
// lakelink.ErrTransient, until Down(false).
func (f *Faulty) Down(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// Writes returns how many writes have started (see Faulty).
func (f *Faulty) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

type fault uint8

const (
	faultNone fault = iota
	faultFail
	faultCut
)

// check returns an error while the lake is down.
func (f *Faulty) check() error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return fmt.Errorf("laketest: %s is down: %w", f.inner, lakelink.ErrTransient)
	}
	return nil
}

// start numbers a write and says which fault it gets.
func (f *Faulty) start() (fault, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return faultNone, 0, fmt.Errorf("laketest: %s is down: %w", f.inner, lakelink.ErrTransient)
	}
	f.writes++
	switch f.writes {
	case f.fail:
		f.fail = 0
		return faultFail, 0, nil
	case f.cut:
		f.cut = 0
		return faultCut, f.cutAfter, nil
	}
	return faultNone, 0, nil
}

// Create starts writing the object at path in the inner lake. See
// lakelink.Lake.
func (f *Faulty) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	return f.write(ctx, "create", path, func(ctx context.Context) (io.WriteCloser, error) {
		return f.inner.Create(ctx, path)
	})
}

// Append starts appending to the object at path in the inner lake. See
// lakelink.Appender.
func (f *Faulty) Append(ctx context.Context, path string, size int64) (io.WriteCloser, error) {
	a, ok := f.inner.(lakelink.Appender)
	if !ok {
		return nil, fmt.Errorf("laketest: append %q: %s can't append: %w", path, f.inner, errors.ErrUnsupported)
	}
	return f.write(ctx, "append", path, func(ctx context.Context) (io.WriteCloser, error) {
		return a.Append(ctx, path, size)
	})
}

func (f *Faulty) write(ctx context.Context, op, path string, open func(context.Context) (io.WriteCloser, error)) (io.WriteCloser, error) {
	flt, after, err := f.start()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &faultyWriter{f: f, w: w, cancel: cancel, what: fmt.Sprintf("%s %q", op, path), appending: op == "append", fault: flt, after: after}, nil
}

// faultyWriter passes bytes on to an inner writer until its fault strikes.
type faultyWriter struct {
	f         *Faulty
	w         io.WriteCloser
	cancel    context.CancelFunc // cancels the inner writer's context: abandons it
	what      string
	appending bool
	fault     fault
	after     int64 // for faultCut: bytes to pass on
	n         int64 // bytes passed on
	err       error // sticks once set
	done      bool  // the inner writer is closed
	closed    bool
}

func (w *faultyWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("laketest: %s: write after Close", w.what)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.f.check(); err != nil {
		w.err = err
		w.abandon()
		return 0, err
	}
	if w.fault == faultCut && w.n+int64(len(p)) > w.after {
		k, _ := w.w.Write(p[:w.after-w.n])
		w.n += int64(k)
		w.err = fmt.Errorf("laketest: %s: cut after %d bytes: %w", w.what, w.n, ErrInjected)
		w.crash()
		return k, w.err
	}
	k, err := w.w.Write(p)
	w.n += int64(k)
	if err != nil {
		w.err = err
	}
	return k, err
}

func (w *faultyWriter) Close() error {
	if w.closed {
		return fmt.Errorf("laketest: %s: Close called twice", w.what)
	}
	w.closed = true
	if w.done {
		return w.err
	}
	if w.err != nil {
		w.abandon()
		return w.err
	}
	if err := w.f.check(); err != nil {
		w.abandon()
		return err
	}
	switch w.fault {
	case faultFail:
		w.abandon()
		return fmt.Errorf("laketest: %s: %w", w.what, ErrInjected)
	case faultCut:
		w.crash()
		return fmt.Errorf("laketest: %s: cut after %d bytes: %w", w.what, w.n, ErrInjected)
	}
	err := w.w.Close()
	w.cancel()
	return err
}

// abandon closes the inner writer with its context canceled, so that it
// commits nothing.
func (w *faultyWriter) abandon() {
	if !w.done {
		w.done = true
		w.cancel()
		w.w.Close()
	}
}

// crash leaves what a crash at this instant leaves: nothing of a Create,
// the bytes so far of an Append.
func (w *faultyWriter) crash() {
	if !w.appending {
		w.abandon()
		return
	}
	if !w.done {
		w.done = true
		w.w.Close() // commits the torn tail
		w.cancel()
	}
}

// Copy copies in the inner lake. See lakelink.Copier.
func (f *Faulty) Copy(ctx context.Context, src, dst string, n int64) error {
	c, ok := f.inner.(lakelink.Copier)
	if !ok {
		return fmt.Errorf("laketest: copy %q to %q: %s can't copy: %w", src, dst, f.inner, errors.ErrUnsupported)
	}
	flt, _, err := f.start()
	if err != nil {
		return err
	}
	if flt != faultNone {
		return fmt.Errorf("laketest: copy %q to %q: %w", src, dst, ErrInjected)
	}
	return c.Copy(ctx, src, dst, n)
}

// Delete deletes in the inner lake. See lakelink.Lake.
func (f *Faulty) Delete(ctx context.Context, path string) error {
	flt, _, err := f.start()
	if err != nil {
		return err
	}
	if flt != faultNone {
		return fmt.Errorf("laketest: delete %q: %w", path, ErrInjected)
	}
	return f.inner.Delete(ctx, path)
}

// Open opens the object in the inner lake; its reader fails while the lake
// is down. See lakelink.Lake.
func (f *Faulty) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	r, err := f.inner.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return &faultyReader{f: f, r: r}, nil
}

type faultyReader struct {
	f *Faulty
	r io.ReadCloser
}

func (r *faultyReader) Read(p []byte) (int, error) {
	if err := r.f.check(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *faultyReader) Close() error { return r.r.Close() }

// Stat describes the object in the inner lake. See lakelink.Lake.
func (f *Faulty) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	if err := f.check(); err != nil {
		return lakelink.ObjectInfo{}, err
	}
	return f.inner.Stat(ctx, path)
}

// List lists the inner lake. See lakelink.Lake.
func (f *Faulty) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.inner.List(ctx, prefix)
}

// URL returns the inner lake's URL of path; it works while the lake is down.
func (f *Faulty) URL(path string) string { return f.inner.URL(path) }

// String describes the lake as faulty, then the inner lake.
func (f *Faulty) String() string { return "faulty " + f.inner.String() }

// Close closes the inner lake.
func (f *Faulty) Close() error { return f.inner.Close() }

// Basic returns l with only the methods of lakelink.Lake, hiding optional
// abilities such as Append and Copy, to test that code works without them.
func Basic(l lakelink.Lake) lakelink.Lake { return basic{l} }

type basic struct{ lakelink.Lake }
