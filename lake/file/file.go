// Package file is the lake in a local folder: every object is a file under
// the lake's root, named by its slash-separated path.
//
// Writes are durable and atomic the one way lakelink writes files (STYLE
// §16): a temp file beside the target, Sync, Close, Rename over the target,
// fsync of the directory. Temp files start with "." and contain ".tmp-";
// List skips them, so one left behind by a crash is never seen as an object.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// Lake is a lake in a local folder. It is safe for concurrent use.
type Lake struct {
	dir string // absolute and clean
}

var (
	_ lakelink.Lake     = (*Lake)(nil)
	_ lakelink.Appender = (*Lake)(nil)
	_ lakelink.Copier   = (*Lake)(nil)
)

const (
	tmpMark     = ".tmp-"            // in the name of every temp file
	probePrefix = ".lakelink-probe-" // the file Open writes and deletes
	fileMode    = 0o644
	dirMode     = 0o755
	// copyChunk is how many bytes Copy moves between two checks of ctx.
	copyChunk = 64 << 20
	writeHint = "check that the user running lakelink may write to it"
)

// Open returns the lake rooted at dir, creating the folder and its parents
// when missing. It probes the folder with a small write and delete (a file
// named .lakelink-probe-<random>), so a folder that can't be written fails
// here, with an error that says so, rather than at the first commit.
func Open(ctx context.Context, dir string) (*Lake, error) {
	if dir == "" {
		return nil, errors.New("file: no lake folder given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file: lake folder %q: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("file: lake folder %s is not a folder but a %s; give a folder path", abs, kindOf(fi.Mode()))
	case errors.Is(err, fs.ErrNotExist):
		if err := mkdirs(abs, ""); err != nil {
			return nil, fmt.Errorf("file: create lake folder %s: %w; %s", abs, err, writeHint)
		}
	case err != nil:
		return nil, fmt.Errorf("file: lake folder: %w", err)
	}
	l := &Lake{dir: abs}
	if err := l.probe(); err != nil {
		return nil, err
	}
	return l, nil
}

// probe writes and deletes a small file, so that a folder lakelink can't
// write is reported when the lake is opened.
func (l *Lake) probe() error {
	name := filepath.Join(l.dir, probePrefix+strconv.FormatUint(rand.Uint64(), 36))
	if err := os.WriteFile(name, []byte("lakelink write probe\n"), fileMode); err != nil {
		os.Remove(name)
		return fmt.Errorf("file: lake folder %s can't be written (%w); %s", l.dir, err, writeHint)
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("file: lake folder %s: can't delete a file in it (%w); %s", l.dir, err, writeHint)
	}
	return nil
}

// ParseURL returns the folder that a lake URL names. It accepts
// "file:///ABS/DIR" (also "file://localhost/ABS/DIR") and a plain folder
// path, which is made absolute.
func ParseURL(u string) (string, error) {
	if u == "" {
		return "", errors.New("file: empty lake URL")
	}
	if !strings.HasPrefix(u, "file:") {
		if i := strings.Index(u, "://"); i > 0 && !strings.ContainsAny(u[:i], `/\`) {
			return "", fmt.Errorf("file: lake URL %q: scheme %q is not file", u, u[:i])
		}
		dir, err := filepath.Abs(u)
		if err != nil {
			return "", fmt.Errorf("file: lake folder %q: %w", u, err)
		}
		return dir, nil
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("file: lake URL: %w", err)
	}
	if p.Host != "" && p.Host != "localhost" {
		return "", fmt.Errorf("file: lake URL %q: host %q not supported; write file:///ABSOLUTE/PATH", u, p.Host)
	}
	if p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return "", fmt.Errorf("file: lake URL %q: only a path is allowed; write file:///ABSOLUTE/PATH", u)
	}
	if p.Opaque != "" || !strings.HasPrefix(p.Path, "/") {
		return "", fmt.Errorf("file: lake URL %q: path is not absolute; write file:///ABSOLUTE/PATH", u)
	}
	path := p.Path
	if runtime.GOOS == "windows" && len(path) >= 3 && path[2] == ':' {
		path = path[1:] // file:///C:/lake
	}
	return filepath.Clean(filepath.FromSlash(path)), nil
}

// URL returns file:// and the absolute path of the object, escaped.
func (l *Lake) URL(path string) string {
	p := filepath.ToSlash(l.dir)
	if path != "" {
		p = strings.TrimSuffix(p, "/") + "/" + path
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// String returns the lake's folder.
func (l *Lake) String() string { return l.dir }

// Close releases the lake; it holds nothing, so it does nothing.
func (l *Lake) Close() error { return nil }

// Create starts writing the object at path into a temp file beside it; Close
// renames the temp file over the object. See lakelink.Lake.
func (l *Lake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: create %q: %w", path, err)
	}
	return l.create(ctx, path)
}

func (l *Lake) create(ctx context.Context, path string) (*writer, error) {
	target := l.full(path)
	dir := filepath.Dir(target)
	f, tmp, err := createTemp(dir, filepath.Base(target))
	if errors.Is(err, fs.ErrNotExist) {
		if err = mkdirs(dir, l.dir); err == nil {
			f, tmp, err = createTemp(dir, filepath.Base(target))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("file: create %q: %w", path, err)
	}
	return &writer{ctx: ctx, what: fmt.Sprintf("create %q", path), f: f, tmp: tmp, target: target}, nil
}

// createTemp creates a new temp file in dir for the object named base.
func createTemp(dir, base string) (*os.File, string, error) {
	// Keep the object's name in the temp name for whoever looks at the
	// folder, shortened so the name stays within the 255-byte limit.
	if len(base) > 100 {
		n := 100
		for n > 0 && !utf8.RuneStart(base[n]) {
			n--
		}
		base = base[:n]
	}
	for try := 0; ; try++ {
		name := filepath.Join(dir, "."+base+tmpMark+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if errors.Is(err, fs.ErrExist) && try < 10 {
			continue
		}
		return f, name, err
	}
}

// writer is an object being created: a temp file that Close renames over
// the target.
type writer struct {
	ctx    context.Context
	what   string // the operation, for errors: create "path"
	f      *os.File
	tmp    string
	target string
	err    error // the first write error; it sticks
	closed bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("file: %s: write after Close", w.what)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("file: %s: %w", w.what, err)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	if err != nil {
		w.err = fmt.Errorf("file: %s: %w", w.what, err)
	}
	return n, w.err
}

// finishTemp ends the writing of the temp file: it fails with the first
// write error or when the write was abandoned (ctx), and else makes the
// temp file's bytes durable and closes it.
func (w *writer) finishTemp() error {
	if w.err != nil {
		w.f.Close()
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.f.Close()
		return fmt.Errorf("file: %s abandoned: %w", w.what, err)
	}
	if err := errors.Join(w.f.Sync(), w.f.Close()); err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	return nil
}

// Close makes the object visible, durably, or removes the temp file and
// returns why not.
func (w *writer) Close() (err error) {
	if w.closed {
		return fmt.Errorf("file: %s: Close called twice", w.what)
	}
	w.closed = true
	defer func() {
		if err != nil {
			os.Remove(w.tmp) // after a successful rename this finds nothing
		}
	}()
	if err := w.finishTemp(); err != nil {
		return err
	}
	if err := os.Rename(w.tmp, w.target); err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	if err := syncDir(filepath.Dir(w.target)); err != nil {
		return fmt.Errorf("file: %s: %w", w.what, err)
	}
	return nil
}

// Open reads the object at path. See lakelink.Lake.
func (l *Lake) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: open %q: %w", path, err)
	}
	f, err := os.Open(l.full(path))
	if err != nil {
		return nil, fmt.Errorf("file: %w", notExist(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("file: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("file: open %q: a folder, not an object: %w", path, lakelink.ErrNotExist)
	}
	return f, nil
}

// Stat describes the object at path. See lakelink.Lake.
func (l *Lake) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	if err := checkPath(path); err != nil {
		return lakelink.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return lakelink.ObjectInfo{}, fmt.Errorf("file: stat %q: %w", path, err)
	}
	fi, err := os.Stat(l.full(path))
	if err != nil {
		return lakelink.ObjectInfo{}, fmt.Errorf("file: %w", notExist(err))
	}
	if fi.IsDir() {
		return lakelink.ObjectInfo{}, fmt.Errorf("file: stat %q: a folder, not an object: %w", path, lakelink.ErrNotExist)
	}
	return lakelink.ObjectInfo{Path: path, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List returns every object whose path starts with prefix, sorted by path.
// It reads only the folder that prefix names (up to its last slash) and the
// subfolders that can match. A missing folder lists nothing.
func (l *Lake) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	dir, partial := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, partial = prefix[:i+1], prefix[i+1:]
	}
	var out []lakelink.ObjectInfo
	if err := l.walk(ctx, dir, partial, &out); err != nil {
		return nil, fmt.Errorf("file: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b lakelink.ObjectInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// walk adds the objects under the folder rel (empty or ending in "/") whose
// names, below rel, start with partial.
func (l *Lake) walk(ctx context.Context, rel, partial string, out *[]lakelink.ObjectInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(l.full(rel))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // missing, or deleted while we walk
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, partial) {
			continue
		}
		if e.IsDir() {
			if err := l.walk(ctx, rel+name+"/", "", out); err != nil {
				return err
			}
			continue
		}
		if isTemp(name) {
			continue
		}
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(l.full(rel + name)) // a link to a file is an object
		} else {
			fi, err = e.Info()
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we walk, or a dangling link
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		*out = append(*out, lakelink.ObjectInfo{Path: rel + name, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return nil
}

// Delete removes the object at path; a missing object is not an error.
// Folders stay, even when empty. See lakelink.Lake.
func (l *Lake) Delete(ctx context.Context, path string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: delete %q: %w", path, err)
	}
	full := l.full(path)
	fi, err := os.Lstat(full)
	if err == nil && fi.IsDir() {
		return nil // a folder is not an object; os.Remove would delete it if empty
	}
	if err == nil {
		err = os.Remove(full)
	}
	if err != nil {
		if errors.Is(notExist(err), fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("file: delete %q: %w", path, err)
	}
	if err := syncDir(filepath.Dir(full)); err != nil {
		return fmt.Errorf("file: delete %q: %w", path, err)
	}
	return nil
}

// Append opens the object at path for writing after its first size bytes,
// cutting off any bytes past size first. See lakelink.Appender.
//
// The bytes reach the file as they are written; Close syncs them. If ctx is
// canceled before Close, Close returns an error and the bytes written so far
// are a tail that a later Append cuts off.
func (l *Lake) Append(ctx context.Context, path string, size int64) (_ io.WriteCloser, err error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("file: append %q at %d: negative size", path, size)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: append %q: %w", path, err)
	}
	full := l.full(path)
	created := false
	f, err := os.OpenFile(full, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) && size == 0 {
		f, created, err = l.createForAppend(full)
	}
	if err != nil {
		err = notExist(err)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file: append %q at %d: the object is missing: %w", path, size, err)
		}
		return nil, fmt.Errorf("file: append %q: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("file: append %q: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("file: append %q: a folder, not an object", path)
	}
	if fi.Size() < size {
		return nil, fmt.Errorf("file: append %q at %d: the object has only %d bytes, so the lake lost committed bytes", path, size, fi.Size())
	}
	if fi.Size() > size {
		if err := f.Truncate(size); err != nil {
			return nil, fmt.Errorf("file: append %q: cut the uncommitted tail: %w", path, err)
		}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return nil, fmt.Errorf("file: append %q: %w", path, err)
	}
	return &appender{ctx: ctx, path: path, f: f, created: created}, nil
}

// createForAppend creates the missing file at full, with its folders. It
// reports whether it created the file: another writer may have been first.
func (l *Lake) createForAppend(full string) (*os.File, bool, error) {
	const flag = os.O_RDWR | os.O_CREATE | os.O_EXCL
	f, err := os.OpenFile(full, flag, fileMode)
	if errors.Is(err, fs.ErrNotExist) {
		if err = mkdirs(filepath.Dir(full), l.dir); err == nil {
			f, err = os.OpenFile(full, flag, fileMode)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(full, os.O_RDWR, 0)
		return f, false, err
	}
	return f, err == nil, err
}

// appender writes at the end of an object's committed bytes.
type appender struct {
	ctx     context.Context
	path    string
	f       *os.File
	created bool // the file is new: its folder must be synced too
	err     error
	closed  bool
}

func (a *appender) Write(p []byte) (int, error) {
	if a.closed {
		return 0, fmt.Errorf("file: append %q: write after Close", a.path)
	}
	if a.err != nil {
		return 0, a.err
	}
	if err := a.ctx.Err(); err != nil {
		a.err = fmt.Errorf("file: append %q: %w", a.path, err)
		return 0, a.err
	}
	n, err := a.f.Write(p)
	if err != nil {
		a.err = fmt.Errorf("file: append %q: %w", a.path, err)
	}
	return n, a.err
}

// Close makes the appended bytes durable.
func (a *appender) Close() error {
	if a.closed {
		return fmt.Errorf("file: append %q: Close called twice", a.path)
	}
	a.closed = true
	if a.err != nil {
		a.f.Close()
		return a.err
	}
	if err := a.ctx.Err(); err != nil {
		a.f.Close()
		return fmt.Errorf("file: append %q abandoned: %w", a.path, err)
	}
	if err := errors.Join(a.f.Sync(), a.f.Close()); err != nil {
		return fmt.Errorf("file: append %q: %w", a.path, err)
	}
	if a.created {
		if err := syncDir(filepath.Dir(a.f.Name())); err != nil {
			return fmt.Errorf("file: append %q: %w", a.path, err)
		}
	}
	return nil
}

// Copy makes dst a copy of the first n bytes of src, written like Create.
// On Linux the kernel copies (copy_file_range), so the bytes don't pass
// through lakelink. See lakelink.Copier.
func (l *Lake) Copy(ctx context.Context, src, dst string, n int64) (err error) {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := checkPath(dst); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("file: copy %q to %q: negative length %d", src, dst, n)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: copy %q to %q: %w", src, dst, err)
	}
	in, err := os.Open(l.full(src))
	if err != nil {
		return fmt.Errorf("file: copy to %q: %w", dst, notExist(err))
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("file: copy %q to %q: %w", src, dst, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("file: copy %q to %q: source is a folder, not an object: %w", src, dst, lakelink.ErrNotExist)
	}
	if fi.Size() < n {
		return fmt.Errorf("file: copy %q to %q: source has %d bytes, fewer than the %d to copy", src, dst, fi.Size(), n)
	}
	w, err := l.create(ctx, dst)
	if err != nil {
		return err
	}
	w.what = fmt.Sprintf("copy %q to %q", src, dst)
	defer func() {
		if err != nil && !w.closed {
			w.f.Close()
			os.Remove(w.tmp)
		}
	}()
	// Copy between the two *os.File with a LimitedReader, which is what
	// (*os.File).ReadFrom hands to copy_file_range; check ctx between chunks.
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("file: copy %q to %q: %w", src, dst, err)
		}
		m, err := io.Copy(w.f, io.LimitReader(in, min(copyChunk, n-done)))
		done += m
		if err != nil {
			return fmt.Errorf("file: copy %q to %q: %w", src, dst, err)
		}
		if m == 0 {
			return fmt.Errorf("file: copy %q to %q: source ended after %d of %d bytes", src, dst, done, n)
		}
	}
	return w.Close()
}

// full returns the file path of the object at the slash path p.
func (l *Lake) full(p string) string {
	if p == "" {
		return l.dir
	}
	return filepath.Join(l.dir, filepath.FromSlash(p))
}

// checkPath returns an error unless p is a valid object path: slash
// separated, relative, every element a real name.
func checkPath(p string) error {
	if err := lakelink.CheckPath(p); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	if isTemp(p[strings.LastIndexByte(p, '/')+1:]) {
		return fmt.Errorf("file: bad object path %q: names starting with \".\" and holding %q, or starting with %q, are kept for temp files", p, tmpMark, probePrefix)
	}
	return nil
}

// checkPrefix returns an error unless p is a valid List prefix: the
// elements up to the last slash are folder names, and what follows is the
// start of a name.
func checkPrefix(p string) error {
	if err := lakelink.CheckPrefix(p); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	return nil
}

// isTemp reports whether a file name is one of the lake's temp files or
// probes, which are not objects.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tmpMark) || strings.HasPrefix(name, probePrefix)
}

// notExist makes "not a directory" (a path through a file) a not-exist
// error, as an object store would see it.
func notExist(err error) error {
	var pe *fs.PathError
	if errors.Is(err, syscall.ENOTDIR) && errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: pe.Path, Err: fs.ErrNotExist}
	}
	return err
}

// mkdirs creates dir and its missing parents, syncing each new folder's
// entry in its parent. It never creates stop, the lake's root: a root that
// vanished is an error rather than something to recreate (it may be an
// unmounted disk).
func mkdirs(dir, stop string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir == stop {
		return fmt.Errorf("lake folder %s is gone", stop)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirs(parent, stop); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Another writer made it and may not have synced it yet.
	}
	return syncDir(parent)
}

// syncDir fsyncs a folder, so that the names created, renamed or removed in
// it survive a crash.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // folders can't be opened for sync there; NTFS journals names
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil // the file system does not sync folders (some network and FUSE ones)
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// kindOf names a non-folder file mode for an error message.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}
