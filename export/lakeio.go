package export

import (
	"context"
	"fmt"
	"io"

	"github.com/lakelink/lakelink"
)

// appendTo writes data at offset size of the object at path, cutting off
// anything past size first. Lakes that can append do it in place; others
// get the object rewritten whole.
func appendTo(ctx context.Context, lake lakelink.Lake, path string, size int64, data []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a, ok := lake.(lakelink.Appender); ok {
		w, err := a.Append(ctx, path, size)
		if err != nil {
			return fmt.Errorf("append %s: %w", path, err)
		}
		if _, err := w.Write(data); err != nil {
			cancel()
			_ = w.Close()
			return fmt.Errorf("append %s: %w", path, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("append %s: %w", path, err)
		}
		return nil
	}
	w, err := lake.Create(ctx, path)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	fail := func(err error) error {
		cancel()
		_ = w.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if size > 0 {
		r, err := lake.Open(ctx, path)
		if err != nil {
			return fail(err)
		}
		n, err := io.Copy(w, io.LimitReader(r, size))
		r.Close()
		if err != nil {
			return fail(err)
		}
		if n != size {
			return fail(fmt.Errorf("the lake holds %d bytes, %d were committed", n, size))
		}
	}
	if _, err := w.Write(data); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	return nil
}

// copyObject makes dst a copy of the first n bytes of src.
func copyObject(ctx context.Context, lake lakelink.Lake, src, dst string, n int64) error {
	if n == 0 {
		// An empty partition (every row deleted, or gone after a resync):
		// its copy is an empty file, whether or not src exists.
		return writeObject(ctx, lake, dst, nil)
	}
	if c, ok := lake.(lakelink.Copier); ok {
		if err := c.Copy(ctx, src, dst, n); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := lake.Open(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer r.Close()
	w, err := lake.Create(ctx, dst)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if m, err := io.Copy(w, io.LimitReader(r, n)); err != nil || m != n {
		cancel()
		_ = w.Close()
		if err == nil {
			err = fmt.Errorf("%s holds %d bytes, %d were committed", src, m, n)
		}
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}
