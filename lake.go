package lakelink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ObjectInfo describes one object of a lake.
type ObjectInfo struct {
	Path    string // slash-separated, relative to the lake's root
	Size    int64
	ModTime time.Time
}

// Lake is where a link's CDM folder is written: a local folder, a blob
// container or a bucket, each with an optional prefix. Paths are
// slash-separated and relative to the lake's root; they never start with a
// slash and never contain "..".
//
// A Lake is safe for concurrent use. Every method honours ctx.
type Lake interface {
	// Create starts writing the object at path, replacing any object there.
	// The new object becomes visible only when Close returns nil: until then
	// readers see the old object, or none. Canceling ctx before Close
	// abandons the write; Close then returns an error and nothing changes.
	Create(ctx context.Context, path string) (io.WriteCloser, error)
	// Open reads the object at path. A missing object gives an error that
	// wraps ErrNotExist.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Stat describes the object at path; a missing one wraps ErrNotExist.
	Stat(ctx context.Context, path string) (ObjectInfo, error)
	// List returns every object whose path starts with prefix, sorted by
	// path. Objects whose Close has returned are listed.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the object at path. Deleting a missing object is not an
	// error.
	Delete(ctx context.Context, path string) error
	// URL returns the absolute location of path as model.json names it:
	// file:///..., https://ACCOUNT.dfs.core.windows.net:443/..., s3://...
	URL(path string) string
	// String describes the lake for logs and status, without credentials.
	String() string
	// Close releases the lake.
	Close() error
}

// Appender is a Lake that can grow an object without rewriting it.
type Appender interface {
	// Append opens the object at path for writing after its first size
	// bytes. Bytes past size, left by a write that was never committed, are
	// cut off first. A missing object is created when size is 0, and is an
	// error wrapping ErrNotExist otherwise. The appended bytes are durable
	// when Close returns nil; readers may see them earlier.
	Append(ctx context.Context, path string, size int64) (io.WriteCloser, error)
}

// Copier is a Lake that can copy an object without moving its bytes through
// lakelink.
type Copier interface {
	// Copy makes dst a copy of the first n bytes of src, replacing any
	// object at dst. dst becomes visible only once complete.
	Copy(ctx context.Context, src, dst string, n int64) error
}

// CheckPath returns an error unless p is a valid object path: non-empty,
// slash-separated and relative, with no empty, "." or ".." element, no
// backslash and no NUL. Every lake refuses the same paths.
func CheckPath(p string) error {
	if p == "" {
		return errors.New("bad object path: empty")
	}
	return checkElems(p, false)
}

// CheckPrefix returns an error unless p is a valid List prefix: like a
// path, but it may be empty or end in "/".
func CheckPrefix(p string) error {
	if p == "" {
		return nil
	}
	return checkElems(p, true)
}

func checkElems(p string, prefix bool) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("bad object path %q: absolute; paths are relative to the lake's root", p)
	}
	if strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("bad object path %q: holds a backslash or a NUL", p)
	}
	elems := strings.Split(p, "/")
	for i, e := range elems {
		switch {
		case e == "" && prefix && i == len(elems)-1:
			// a prefix ending in "/": everything in that folder
		case e == "":
			return fmt.Errorf("bad object path %q: empty element", p)
		case e == "." || e == "..":
			return fmt.Errorf("bad object path %q: element %q", p, e)
		}
	}
	return nil
}
