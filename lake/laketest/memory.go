package laketest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
)

// Memory is an in-memory lake, with Append and Copy, for unit tests of the
// logic above the storage interface. It follows the Lake contract exactly;
// it never fails unless a context is canceled or a path is bad. It is safe
// for concurrent use.
type Memory struct {
	mu   sync.Mutex
	objs map[string]*memObject
}

// memObject is one object. Its data is never changed once stored, so a
// reader can keep reading it while a writer replaces the object.
type memObject struct {
	data []byte
	mod  time.Time
}

var (
	_ lakelink.Lake     = (*Memory)(nil)
	_ lakelink.Appender = (*Memory)(nil)
	_ lakelink.Copier   = (*Memory)(nil)
)

// NewMemory returns an empty in-memory lake.
func NewMemory() *Memory { return &Memory{objs: make(map[string]*memObject)} }

// Create starts writing the object at path; the bytes are kept by the writer
// until Close stores them. See lakelink.Lake.
func (m *Memory) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: create %q: %w", path, err)
	}
	return &memWriter{ctx: ctx, what: fmt.Sprintf("create %q", path), commit: func(b []byte) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.objs[path] = &memObject{data: b, mod: lakelink.Now()}
		return nil
	}}, nil
}

// Open reads the object at path. See lakelink.Lake.
func (m *Memory) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	o, err := m.get(ctx, "open", path)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// Stat describes the object at path. See lakelink.Lake.
func (m *Memory) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	o, err := m.get(ctx, "stat", path)
	if err != nil {
		return lakelink.ObjectInfo{}, err
	}
	return lakelink.ObjectInfo{Path: path, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

func (m *Memory) get(ctx context.Context, op, path string) (*memObject, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %s %q: %w", op, path, err)
	}
	m.mu.Lock()
	o := m.objs[path]
	m.mu.Unlock()
	if o == nil {
		return nil, fmt.Errorf("memory: %s %q: %w", op, path, lakelink.ErrNotExist)
	}
	return o, nil
}

// List returns every object whose path starts with prefix, sorted by path.
// See lakelink.Lake.
func (m *Memory) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: list %q: %w", prefix, err)
	}
	m.mu.Lock()
	var out []lakelink.ObjectInfo
	for p, o := range m.objs {
		if strings.HasPrefix(p, prefix) {
			out = append(out, lakelink.ObjectInfo{Path: p, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b lakelink.ObjectInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Delete removes the object at path; a missing one is not an error. See
// lakelink.Lake.
func (m *Memory) Delete(ctx context.Context, path string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete %q: %w", path, err)
	}
	m.mu.Lock()
	delete(m.objs, path)
	m.mu.Unlock()
	return nil
}

// Append writes after the first size bytes of the object at path. The
// writer keeps the bytes until Close, which cuts the object to size and
// adds them in one step; a canceled ctx makes Close fail and change nothing.
// See lakelink.Appender.
func (m *Memory) Append(ctx context.Context, path string, size int64) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("memory: append %q at %d: negative size", path, size)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: append %q: %w", path, err)
	}
	// check says whether the object can take bytes at size, now and again
	// at Close (it may have changed in between).
	check := func(o *memObject) error {
		switch {
		case o == nil && size > 0:
			return fmt.Errorf("memory: append %q at %d: the object is missing: %w", path, size, lakelink.ErrNotExist)
		case o != nil && int64(len(o.data)) < size:
			return fmt.Errorf("memory: append %q at %d: the object has only %d bytes, so the lake lost committed bytes", path, size, len(o.data))
		}
		return nil
	}
	m.mu.Lock()
	err := check(m.objs[path])
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &memWriter{ctx: ctx, what: fmt.Sprintf("append %q", path), commit: func(b []byte) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		o := m.objs[path]
		if err := check(o); err != nil {
			return err
		}
		var data []byte
		if o != nil {
			data = o.data[:size:size] // the full slice expression makes append copy
		}
		m.objs[path] = &memObject{data: append(data, b...), mod: lakelink.Now()}
		return nil
	}}, nil
}

// Copy makes dst a copy of the first n bytes of src. See lakelink.Copier.
func (m *Memory) Copy(ctx context.Context, src, dst string, n int64) error {
	if err := checkPath(dst); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("memory: copy %q to %q: negative length %d", src, dst, n)
	}
	o, err := m.get(ctx, "copy to "+fmt.Sprintf("%q", dst)+" from", src)
	if err != nil {
		return err
	}
	if int64(len(o.data)) < n {
		return fmt.Errorf("memory: copy %q to %q: source has %d bytes, fewer than the %d to copy", src, dst, len(o.data), n)
	}
	m.mu.Lock()
	m.objs[dst] = &memObject{data: o.data[:n:n], mod: lakelink.Now()} // shared: never changed
	m.mu.Unlock()
	return nil
}

// URL returns mem:/// and the escaped path.
func (m *Memory) URL(path string) string {
	return (&url.URL{Scheme: "mem", Path: "/" + path}).String()
}

// String describes the lake.
func (m *Memory) String() string { return "memory lake" }

// Close does nothing; the lake stays usable.
func (m *Memory) Close() error { return nil }

// memWriter gathers an object's bytes and hands them to commit on Close.
type memWriter struct {
	ctx    context.Context
	what   string // the operation, for errors: create "path"
	buf    bytes.Buffer
	commit func([]byte) error
	closed bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("memory: %s: write after Close", w.what)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: %s: %w", w.what, err)
	}
	return w.buf.Write(p)
}

func (w *memWriter) Close() error {
	if w.closed {
		return fmt.Errorf("memory: %s: Close called twice", w.what)
	}
	w.closed = true
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s abandoned: %w", w.what, err)
	}
	b := w.buf.Bytes()
	w.buf = bytes.Buffer{}
	return w.commit(b)
}

// checkPath returns an error unless p is a valid object path: slash
// separated, relative, every element a real name, no backslash or NUL.
// Lakes on object stores accept more, but a path that one lake refuses
// must be refused by all, so that a link can move between them.
func checkPath(p string) error {
	if err := lakelink.CheckPath(p); err != nil {
		return fmt.Errorf("laketest: %w", err)
	}
	return nil
}

// checkPrefix returns an error unless p is a valid List prefix.
func checkPrefix(p string) error {
	if err := lakelink.CheckPrefix(p); err != nil {
		return fmt.Errorf("laketest: %w", err)
	}
	return nil
}
