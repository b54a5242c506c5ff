package lease

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lakelink/lakelink"
)

// Term is what Guard binds writes to: a *Lease, or something that holds
// one lease after another (taking it back after an outage).
type Term interface {
	// Err is nil while writes are allowed, else why not.
	Err() error
	// Hold returns ctx, also canceled when writes stop being allowed.
	Hold(ctx context.Context) (context.Context, context.CancelFunc)
}

// Guard returns lake with every write bound to the lease: see Guard.
func (l *Lease) Guard(lake lakelink.Lake) lakelink.Lake { return Guard(lake, l) }

// Guard returns lake with every write bound to t: Create, Append, Copy and
// Delete fail while t.Err is not nil, and a write in flight when it stops
// being nil is abandoned (its context is canceled, so its Close fails and
// nothing becomes visible). This is how a holder stops writing at once,
// even in a commit that shutdown would let finish. Reads pass through.
//
// The guarded lake is an Appender and a Copier when lake is both.
func Guard(lake lakelink.Lake, t Term) lakelink.Lake {
	g := &guard{Lake: lake, l: t}
	_, a := lake.(lakelink.Appender)
	_, c := lake.(lakelink.Copier)
	if a && c {
		return &fullGuard{g}
	}
	return g
}

// guard is a lake whose writes are bound to a lease.
type guard struct {
	lakelink.Lake
	l Term
}

// hold returns a context for one write: ctx, canceled when the lease ends.
func (g *guard) hold(ctx context.Context, op, path string) (context.Context, context.CancelFunc, error) {
	if err := g.l.Err(); err != nil {
		return nil, nil, fmt.Errorf("lake %s: %s %q refused: %w", g.Lake, op, path, err)
	}
	hctx, cancel := g.l.Hold(ctx)
	return hctx, cancel, nil
}

// closeErr explains a failed Close or write by the lost lease, when it was.
func (g *guard) closeErr(err error, op, path string) error {
	if err == nil {
		return nil
	}
	if lerr := g.l.Err(); lerr != nil {
		return fmt.Errorf("lake %s: %s %q abandoned: %w (%w)", g.Lake, op, path, lerr, err)
	}
	return err
}

func (g *guard) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	hctx, cancel, err := g.hold(ctx, "create", path)
	if err != nil {
		return nil, err
	}
	w, err := g.Lake.Create(hctx, path)
	if err != nil {
		cancel()
		return nil, g.closeErr(err, "create", path)
	}
	return &guardWriter{WriteCloser: w, g: g, cancel: cancel, op: "create", path: path}, nil
}

func (g *guard) Delete(ctx context.Context, path string) error {
	hctx, cancel, err := g.hold(ctx, "delete", path)
	if err != nil {
		return err
	}
	defer cancel()
	return g.closeErr(g.Lake.Delete(hctx, path), "delete", path)
}

// fullGuard is a guard over a lake that can append and copy.
type fullGuard struct{ *guard }

func (g *fullGuard) Append(ctx context.Context, path string, size int64) (io.WriteCloser, error) {
	hctx, cancel, err := g.hold(ctx, "append", path)
	if err != nil {
		return nil, err
	}
	w, err := g.Lake.(lakelink.Appender).Append(hctx, path, size)
	if err != nil {
		cancel()
		return nil, g.closeErr(err, "append", path)
	}
	return &guardWriter{WriteCloser: w, g: g.guard, cancel: cancel, op: "append", path: path}, nil
}

func (g *fullGuard) Copy(ctx context.Context, src, dst string, n int64) error {
	hctx, cancel, err := g.hold(ctx, "copy", dst)
	if err != nil {
		return err
	}
	defer cancel()
	return g.closeErr(g.Lake.(lakelink.Copier).Copy(hctx, src, dst, n), "copy", dst)
}

// guardWriter is a write under a lease.
type guardWriter struct {
	io.WriteCloser
	g        *guard
	cancel   context.CancelFunc
	op, path string
}

func (w *guardWriter) Close() error {
	if w.g.l.Err() != nil {
		w.cancel() // at once: Hold's cancel runs in a goroutine of its own
	}
	err := w.WriteCloser.Close()
	w.cancel()
	return w.g.closeErr(err, w.op, w.path)
}

// SplitSize passes on the lake's advice on append-only file sizes (0 when
// it gives none); see export.Config.SplitBytes.
func (g *guard) SplitSize() int64 {
	if s, ok := g.Lake.(interface{ SplitSize() int64 }); ok {
		return s.SplitSize()
	}
	return 0
}

// OpenVersion reads an object with its version, as Lake does; a lake
// without conditional writes gives errors.ErrUnsupported.
func (g *guard) OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error) {
	v, ok := g.Lake.(Lake)
	if !ok {
		return nil, "", fmt.Errorf("lake %s: read %q with its version: %w", g.Lake, path, errors.ErrUnsupported)
	}
	return v.OpenVersion(ctx, path)
}

// CreateIfAbsent is the lake's conditional create, bound to the lease.
func (g *guard) CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error) {
	return g.conditional(ctx, "create", path, func(v Lake, ctx context.Context) (io.WriteCloser, error) {
		return v.CreateIfAbsent(ctx, path)
	})
}

// CreateIfVersion is the lake's compare-and-swap, bound to the lease.
func (g *guard) CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error) {
	return g.conditional(ctx, "replace", path, func(v Lake, ctx context.Context) (io.WriteCloser, error) {
		return v.CreateIfVersion(ctx, path, version)
	})
}

func (g *guard) conditional(ctx context.Context, op, path string, create func(Lake, context.Context) (io.WriteCloser, error)) (io.WriteCloser, error) {
	v, ok := g.Lake.(Lake)
	if !ok {
		return nil, fmt.Errorf("lake %s: conditional %s of %q: %w", g.Lake, op, path, errors.ErrUnsupported)
	}
	hctx, cancel, err := g.hold(ctx, op, path)
	if err != nil {
		return nil, err
	}
	w, err := create(v, hctx)
	if err != nil {
		cancel()
		return nil, g.closeErr(err, op, path)
	}
	return &guardWriter{WriteCloser: w, g: g, cancel: cancel, op: op, path: path}, nil
}

var (
	_ lakelink.Appender = (*fullGuard)(nil)
	_ lakelink.Copier   = (*fullGuard)(nil)
	_ Lake              = (*guard)(nil)
)
