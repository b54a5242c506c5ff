package file_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/lake/laketest"
)

func open(t testing.TB, dir string) *file.Lake {
	t.Helper()
	l, err := file.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return open(t, t.TempDir()) })
}

func TestConformanceFaulty(t *testing.T) {
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return laketest.NewFaulty(open(t, t.TempDir())) })
}

func TestOpenCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "lake")
	l := open(t, dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Open did not create %s: %v", dir, err)
	}
	if l.String() != dir {
		t.Errorf("String() = %q, want %q", l.String(), dir)
	}
	// The probe leaves nothing behind.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after Open, the folder holds %v, want nothing", entries)
	}
}

func TestOpenRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	l := open(t, "lake")
	want, _ := filepath.Abs("lake")
	if l.String() != want {
		t.Errorf("String() = %q, want the absolute %q", l.String(), want)
	}
}

func TestOpenRegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lake")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{p, filepath.Join(p, "below")} {
		_, err := file.Open(t.Context(), dir)
		if err == nil {
			t.Fatalf("Open(%s), a file, succeeded", dir)
		}
		if !strings.Contains(err.Error(), "not a folder") && !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open(%s) error = %q, want it to say it is not a folder", dir, err)
		}
	}
}

func TestOpenUnwritable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("folder permissions differ on Windows")
	}
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	for _, d := range []string{dir, filepath.Join(dir, "lake")} {
		_, err := file.Open(t.Context(), d)
		if err == nil {
			t.Fatalf("Open(%s) of a read-only folder succeeded", d)
		}
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(%s) error = %q, want a permission error naming the folder", d, err)
		}
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := file.Open(ctx, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled ctx error = %v, want context.Canceled", err)
	}
}

func TestLeftoversNotListed(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	ctx := t.Context()
	laketest.Put(t, l, "tbl/2021.csv", "data")
	// What a crash leaves: a temp file mid-write, and a probe.
	for _, name := range []string{"tbl/.2021.csv.tmp-12345", ".model.json.tmp-abc", ".lakelink-probe-xyz"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Nor are folders objects.
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	infos, err := l.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Path != "tbl/2021.csv" {
		t.Errorf("List = %+v, want only tbl/2021.csv", infos)
	}
	// Names like the temp files are refused, so no object hides among them.
	if _, err := l.Create(ctx, "tbl/.x.tmp-1"); err == nil {
		t.Errorf("Create of a temp-like name succeeded, want an error")
	}
	// Delete of a folder deletes nothing.
	if err := l.Delete(ctx, "emptydir"); err != nil {
		t.Errorf("Delete(folder) = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "emptydir")); err != nil {
		t.Errorf("Delete(folder) removed it: %v", err)
	}
}

func TestCreateLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	ctx, cancel := context.WithCancel(t.Context())
	laketest.Put(t, l, "tbl/ok.csv", "ok")
	w, err := l.Create(ctx, "tbl/abandoned.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x")
	cancel()
	if err := w.Close(); err == nil {
		t.Fatal("Close after cancel succeeded")
	}
	if err := w.Close(); err == nil {
		t.Errorf("second Close = nil, want an error")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"ok.csv"}) {
		t.Errorf("folder holds %q, want only ok.csv", names)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tbl", "ok.csv")); err != nil || fi.Mode().Perm()&0o044 == 0 {
		t.Errorf("object mode = %v, %v, want readable by others (0644 before umask)", fi.Mode(), err)
	}
}

func TestBadPathErrors(t *testing.T) {
	l := open(t, t.TempDir())
	for _, p := range laketest.BadPaths {
		_, err := l.Stat(t.Context(), p)
		if err == nil {
			t.Errorf("Stat(%q) succeeded", p)
			continue
		}
		if p != "" && !strings.Contains(err.Error(), strings.ReplaceAll(strings.ReplaceAll(p, `\`, `\\`), "\x00", `\x00`)) {
			t.Errorf("Stat(%q) error = %q, want it to name the path", p, err)
		}
		if errors.Is(err, lakelink.ErrNotExist) {
			t.Errorf("Stat(%q) error = %q wraps ErrNotExist, want a bad-path error", p, err)
		}
	}
}

func TestAppendShortFile(t *testing.T) {
	l := open(t, t.TempDir())
	laketest.Put(t, l, "a.csv", "abc")
	_, err := l.Append(t.Context(), "a.csv", 10)
	if err == nil || !strings.Contains(err.Error(), "lost committed bytes") || !strings.Contains(err.Error(), "only 3 bytes") {
		t.Errorf("Append past the end error = %v, want it to say the lake lost committed bytes", err)
	}
}

func TestAppendCanceled(t *testing.T) {
	l := open(t, t.TempDir())
	laketest.Put(t, l, "a.csv", "abc")
	ctx, cancel := context.WithCancel(t.Context())
	w, err := l.Append(ctx, "a.csv", 3)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "def")
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel = %v, want context.Canceled", err)
	}
	// The tail may be there; the next Append at the committed size cuts it.
	w, err = l.Append(t.Context(), "a.csv", 3)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "xyz")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := laketest.Get(t, l, "a.csv"); got != "abcxyz" {
		t.Errorf("read %q, want abcxyz", got)
	}
}

func TestURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my lake%")
	l := open(t, dir)
	for _, tt := range []struct{ path, suffix string }{
		{"", "/my%20lake%25"},
		{"model.json", "/my%20lake%25/model.json"},
		{"tbl/é 1.csv", "/my%20lake%25/tbl/%C3%A9%201.csv"},
		{"a#b?c.csv", "/my%20lake%25/a%23b%3Fc.csv"},
		{"100%20.csv", "/my%20lake%25/100%2520.csv"},
	} {
		got := l.URL(tt.path)
		if !strings.HasPrefix(got, "file:///") || !strings.HasSuffix(got, tt.suffix) {
			t.Errorf("URL(%q) = %q, want file:///...%s", tt.path, got, tt.suffix)
		}
	}
	back, err := file.ParseURL(l.URL(""))
	if err != nil || back != dir {
		t.Errorf("ParseURL(URL(\"\")) = %q, %v, want %q", back, err, dir)
	}
}

func TestParseURL(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{"file:///srv/lake", "/srv/lake"},
		{"file:///srv/lake/", "/srv/lake"},
		{"file://localhost/srv/lake", "/srv/lake"},
		{"file:///srv/my%20lake", "/srv/my lake"},
		{"file:/srv/lake", "/srv/lake"},
		{"/srv/lake", "/srv/lake"},
		{"/srv/../srv/lake/", "/srv/lake"},
		{"lake", filepath.Join(cwd, "lake")},
		{"./a b/lake", filepath.Join(cwd, "a b", "lake")},
		{"", ""},
		{"file://host/srv/lake", ""},
		{"file://lake", ""},
		{"file:lake", ""},
		{"file:///srv/lake?x=1", ""},
		{"file:///srv/lake#frag", ""},
		{"s3://bucket/prefix", ""},
		{"azure://account/container", ""},
	} {
		got, err := file.ParseURL(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseURL(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if runtime.GOOS == "windows" && strings.HasPrefix(tt.want, "/") {
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCopyUsesKernel(t *testing.T) {
	// Not a check that copy_file_range ran, but that a copy of a file far
	// larger than any buffer is exact and the source stays intact.
	l := open(t, t.TempDir())
	size := int64(70 << 20) // more than one copy chunk
	if testing.Short() {
		size = 3 << 20
	}
	w, err := l.Create(t.Context(), "src.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(7), size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Copy(t.Context(), "src.csv", "dst.csv", size-1); err != nil {
		t.Fatal(err)
	}
	r, err := l.Open(t.Context(), "dst.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := io.LimitReader(laketest.NewGenerator(7), size-1)
	if !sameBytes(t, r, want) {
		t.Errorf("copy differs from the source's first %d bytes", size-1)
	}
}

func sameBytes(t *testing.T, a, b io.Reader) bool {
	t.Helper()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

func BenchmarkCreate1MiB(b *testing.B) {
	l := open(b, b.TempDir())
	data := make([]byte, 1<<20)
	laketest.NewGenerator(1).Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, err := l.Create(b.Context(), "tbl/2021.csv")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend100KiB(b *testing.B) {
	l := open(b, b.TempDir())
	data := make([]byte, 100<<10)
	laketest.NewGenerator(1).Read(data)
	b.SetBytes(int64(len(data)))
	size := int64(0)
	for b.Loop() {
		if size > 64<<20 {
			size = 0 // start over, so the file stays small
		}
		w, err := l.Append(b.Context(), "tbl/1.csv", size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		size += int64(len(data))
	}
}
