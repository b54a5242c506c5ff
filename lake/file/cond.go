//go:build unix

package file

// Conditional writes: create-if-absent and compare-and-swap on a version,
// the two operations a writer lease (package lease) needs, as the object
// stores offer them with If-None-Match and If-Match.
//
// The version of a file is the SHA-256 of its bytes. Other candidates
// were weighed and refused:
//   - size + mtime: the mtime's resolution is the kernel's coarse clock (a
//     few ms on ext4), so two writes of one size in one tick share a
//     version, and a compare-and-swap would wrongly succeed;
//   - the inode number (every replace is a new inode): freed inodes are
//     reused at once, which is the same ABA problem.
//
// A hash changes whenever the bytes do, and two versions with equal bytes
// are equal objects, so a swap that succeeds on them replaces what it
// meant to. It costs a read of the object under the lock, which is cheap
// for the small records (a lease, a state record) this is for.
//
// Checking the version and renaming over the file must be one step for
// all writers of the object, so both happen under an exclusive flock(2)
// on a sidecar lock file, ".<name>.tmp-lock" beside the object: a name
// that List skips and that no object can have (see isTemp). It is never
// deleted: deleting a lock file races with a writer that has just opened
// it. A sidecar rather than the folder itself because on NFS an exclusive
// flock needs a file opened for writing, which a folder can't be. A lock
// dies with its process, so a crash (kill -9) never leaves it held.
//
// Only writers that go through CreateIfAbsent and CreateIfVersion are
// serialized: a plain Create or Delete of the same object does not take
// the lock, so don't mix them on an object that is swapped.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lakelink/lakelink"
)

// ErrChanged is what a write conditional on an object's version fails
// with when the object has another version, or is gone: lakelink.ErrChanged.
var ErrChanged = lakelink.ErrChanged

// lockSuffix ends the name of an object's sidecar lock file.
const lockSuffix = tmpMark + "lock"

// CreateIfAbsent is Create, but conditional: when an object is at path by
// the time Close runs, Close returns an error wrapping lakelink.ErrExist
// and nothing changes. Of racing writers, one wins. The temp file is made
// the object with link(2), which fails if the name exists.
func (l *Lake) CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error) {
	return l.createCond(ctx, path, "", "create if absent")
}

// CreateIfVersion is Create, but conditional: when the object at path no
// longer has the version that Version or OpenVersion returned, or is gone,
// Close returns an error wrapping ErrChanged and nothing changes.
func (l *Lake) CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error) {
	if version == "" {
		return nil, fmt.Errorf("file: create %q: empty version; use CreateIfAbsent for an object that must not exist", path)
	}
	return l.createCond(ctx, path, version, "create if version")
}

func (l *Lake) createCond(ctx context.Context, path, version, verb string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: %s %q: %w", verb, path, err)
	}
	w, err := l.create(ctx, path)
	if err != nil {
		return nil, err
	}
	w.what = fmt.Sprintf("%s %q", verb, path)
	return &condWriter{writer: w, path: path, version: version}, nil
}

// Version returns the version of the object at path: the SHA-256 of its
// bytes. A missing object wraps lakelink.ErrNotExist.
func (l *Lake) Version(ctx context.Context, path string) (string, error) {
	r, v, err := l.OpenVersion(ctx, path)
	if err != nil {
		return "", err
	}
	r.Close()
	return v, nil
}

// OpenVersion is Open, and the version of the bytes it reads. A missing
// object wraps lakelink.ErrNotExist. The open file is the version read:
// a replace makes a new file and leaves this one as it is.
func (l *Lake) OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error) {
	r, err := l.Open(ctx, path)
	if err != nil {
		return nil, "", err
	}
	f := r.(*os.File)
	v, err := versionOf(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("file: open %q: %w", path, err)
	}
	return f, v, nil
}

// versionOf hashes the rest of f.
func versionOf(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// condWriter is a conditional Create: a temp file that Close makes the
// object, under the object's lock, if the condition holds.
type condWriter struct {
	*writer
	path    string
	version string // "": the object must be absent
}

func (w *condWriter) Close() (err error) {
	if w.closed {
		return fmt.Errorf("file: %s: Close called twice", w.what)
	}
	w.closed = true
	defer os.Remove(w.tmp) // after link(2) or rename, the temp name is gone or an extra link
	if err := w.finishTemp(); err != nil {
		return err
	}
	unlock, err := lockObject(w.target)
	if err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	defer unlock()
	if err := w.swap(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(w.target)); err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	return nil
}

// swap makes the temp file the object if the condition holds; the caller
// holds the object's lock.
func (w *condWriter) swap() error {
	if w.version == "" {
		err := os.Link(w.tmp, w.target)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("file: %s: an object is there already: %w", w.what, lakelink.ErrExist)
		}
		if err != nil {
			return fmt.Errorf("file: %s: %w", w.what, err)
		}
		return nil
	}
	cur, err := os.Open(w.target)
	if errors.Is(notExist(err), fs.ErrNotExist) {
		return fmt.Errorf("file: %s: the object at version %s is gone: %w", w.what, w.version, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	v, err := versionOf(cur)
	cur.Close()
	if err != nil {
		return fmt.Errorf("file: %s: read the current version: %w", w.what, err)
	}
	if v != w.version {
		return fmt.Errorf("file: %s: the object changed since version %s: %w", w.what, w.version, ErrChanged)
	}
	if err := os.Rename(w.tmp, w.target); err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	return nil
}

// lockObject takes the exclusive lock of the object at the file path
// target (see the top of this file) and returns its release.
func lockObject(target string) (func(), error) {
	base := filepath.Base(target)
	if len(base) > 200 { // keep the name within 255 bytes; a shared lock only serializes more
		base = base[:200]
	}
	name := filepath.Join(filepath.Dir(target), "."+base+lockSuffix)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
