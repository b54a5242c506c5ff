// Package laketest holds what every lake is tested with: the conformance
// suite Run, which each lake package runs against itself; Memory, an
// in-memory lake for tests of the code above lakes; and Faulty, a lake
// wrapper that fails writes on command.
package laketest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
)

// Run runs the lake conformance suite against lakes made by newLake. Every
// subtest calls newLake for a fresh, empty lake, which newLake cleans up
// with t.Cleanup. The Append and Copy subtests run when the lake has those
// abilities, and are skipped otherwise.
func Run(t *testing.T, newLake func(t testing.TB) lakelink.Lake) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l lakelink.Lake)
	}{
		{"NotFound", testNotFound},
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Empty", testEmpty},
		{"List", testList},
		{"InvisibleUntilClose", testInvisibleUntilClose},
		{"Abandon", testAbandon},
		{"Delete", testDelete},
		{"OddNames", testOddNames},
		{"BadPaths", testBadPaths},
		{"Large", testLarge},
		{"Concurrent", testConcurrent},
		{"Append", testAppend},
		{"Copy", testCopy},
		{"Conditional", testConditional},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLake(t)
			if l == nil {
				t.Fatal("newLake returned nil")
			}
			tt.fn(t, l)
		})
	}
}

func testNotFound(t *testing.T, l lakelink.Lake) {
	ctx := t.Context()
	if r, err := l.Open(ctx, "missing/x.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		closeIf(r)
		t.Errorf("Open(missing) error = %v, want one wrapping ErrNotExist", err)
	}
	if _, err := l.Stat(ctx, "missing.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Stat(missing) error = %v, want one wrapping ErrNotExist", err)
	}
	if err := l.Delete(ctx, "missing/x.csv"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	// A folder of objects is not an object itself.
	Put(t, l, "dir/sub/a.csv", "a")
	for _, p := range []string{"dir", "dir/sub"} {
		if r, err := l.Open(ctx, p); !errors.Is(err, lakelink.ErrNotExist) {
			closeIf(r)
			t.Errorf("Open(%q), a folder, error = %v, want one wrapping ErrNotExist", p, err)
		}
		if _, err := l.Stat(ctx, p); !errors.Is(err, lakelink.ErrNotExist) {
			t.Errorf("Stat(%q), a folder, error = %v, want one wrapping ErrNotExist", p, err)
		}
	}
	// Nor is anything below an object.
	if _, err := l.Stat(ctx, "dir/sub/a.csv/b"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Stat below an object error = %v, want one wrapping ErrNotExist", err)
	}
}

func closeIf(c io.Closer) {
	if c != nil {
		c.Close()
	}
}

func testRoundTrip(t *testing.T, l lakelink.Lake) {
	want := "Id,name\n1,\"a, b\"\n"
	Put(t, l, "tbl/2021.csv", want)
	if got := Get(t, l, "tbl/2021.csv"); got != want {
		t.Errorf("read back %q, want %q", got, want)
	}
	fi, err := l.Stat(t.Context(), "tbl/2021.csv")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Path != "tbl/2021.csv" || fi.Size != int64(len(want)) || fi.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want path tbl/2021.csv, size %d and a ModTime", fi, len(want))
	}
}

func testOverwrite(t *testing.T, l lakelink.Lake) {
	for _, content := range []string{"first", "second, longer than the first", "3", ""} {
		Put(t, l, "model.json", content)
		if got := Get(t, l, "model.json"); got != content {
			t.Errorf("after overwrite read %q, want %q", got, content)
		}
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"model.json"}) {
		t.Errorf("List after overwrites = %q, want just model.json", got)
	}
}

func testEmpty(t *testing.T, l lakelink.Lake) {
	w, err := l.Create(t.Context(), "empty.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close of an empty object: %v", err)
	}
	if got := Get(t, l, "empty.csv"); got != "" {
		t.Errorf("read %q, want nothing", got)
	}
	if fi, err := l.Stat(t.Context(), "empty.csv"); err != nil || fi.Size != 0 {
		t.Errorf("Stat = %+v, %v, want size 0", fi, err)
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"empty.csv"}) {
		t.Errorf("List = %q, want [empty.csv]", got)
	}
}

func testList(t *testing.T, l lakelink.Lake) {
	ctx := t.Context()
	all := []string{
		"model.json",
		"t.csv",
		"t/2021.csv",
		"t/2022.csv",
		"t/Snapshot/2021_1600000000.csv",
		"t/Snapshot/2021_1700000000.csv",
		"t/Snapshot/2022_1700000000.csv",
		"t2/1.csv",
		"z/a/b/c/deep.csv",
	}
	// Write in an order unlike the sorted one.
	for i := range all {
		p := all[(i*4)%len(all)]
		Put(t, l, p, "content of "+p)
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"t", all[1:8]},
		{"t/", all[2:7]},
		{"t/Snapshot/", all[4:7]},
		{"t/Snapshot/2021_", all[4:6]},
		{"t/Snapshot/2021_1700000000.csv", all[5:6]},
		{"t/2", all[2:4]},
		{"t2", all[7:8]},
		{"z/a/", all[8:]},
		{"model", all[:1]},
		{"nope/", nil},
		{"nope/deeper/x", nil},
		{"t/Snapshot/2023", nil},
	} {
		got := paths(t, l, tt.prefix)
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	infos, err := l.List(ctx, "t/2021")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Size != int64(len("content of t/2021.csv")) || infos[0].ModTime.IsZero() {
		t.Errorf("List(t/2021) = %+v, want t/2021.csv with its size and ModTime", infos)
	}
}

func testInvisibleUntilClose(t *testing.T, l lakelink.Lake) {
	ctx := t.Context()
	Put(t, l, "tbl/old.csv", "old")
	wOld, err := l.Create(ctx, "tbl/old.csv")
	if err != nil {
		t.Fatal(err)
	}
	wNew, err := l.Create(ctx, "tbl/new.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []io.Writer{wOld, wNew} {
		if _, err := io.WriteString(w, "new content"); err != nil {
			t.Fatal(err)
		}
	}
	if got := Get(t, l, "tbl/old.csv"); got != "old" {
		t.Errorf("while a Create is open, read %q, want the old content", got)
	}
	if _, err := l.Stat(ctx, "tbl/new.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("while a Create is open, Stat(new) error = %v, want ErrNotExist", err)
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"tbl/old.csv"}) {
		t.Errorf("while a Create is open, List = %q, want only the old object", got)
	}
	if got := paths(t, l, "tbl/new"); len(got) != 0 {
		t.Errorf("while a Create is open, List(tbl/new) = %q, want nothing", got)
	}
	for _, w := range []io.Closer{wOld, wNew} {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"tbl/new.csv", "tbl/old.csv"}) {
		t.Errorf("after Close, List = %q, want both objects", got)
	}
	for _, p := range []string{"tbl/new.csv", "tbl/old.csv"} {
		if got := Get(t, l, p); got != "new content" {
			t.Errorf("after Close, %s holds %q, want the new content", p, got)
		}
	}
}

func testAbandon(t *testing.T, l lakelink.Lake) {
	Put(t, l, "tbl/old.csv", "old")
	for _, p := range []string{"tbl/old.csv", "tbl/new.csv", "new/dir/x.csv"} {
		ctx, cancel := context.WithCancel(t.Context())
		w, err := l.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "abandoned") // may fail: ctx is still alive, but needn't be checked
		cancel()
		io.WriteString(w, "after cancel") // may fail
		if err := w.Close(); err == nil {
			t.Errorf("Close of %s after cancel = nil, want an error", p)
		}
		// A second Close must not panic, nor change anything.
		w.Close()
	}
	if got := Get(t, l, "tbl/old.csv"); got != "old" {
		t.Errorf("after an abandoned overwrite, read %q, want the old content", got)
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"tbl/old.csv"}) {
		t.Errorf("after abandoned writes, List = %q, want only the old object", got)
	}
	// Canceled before Create: an error at once, or at Close.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if w, err := l.Create(ctx, "late.csv"); err == nil {
		w.Write([]byte("x"))
		if err := w.Close(); err == nil {
			t.Errorf("Create with a canceled ctx succeeded")
		}
	}
	if _, err := l.Stat(t.Context(), "late.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after a canceled Create, Stat error = %v, want ErrNotExist", err)
	}
	// Write after Close is an error, and changes nothing.
	w, err := l.Create(t.Context(), "closed.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "done")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "more"); err == nil {
		t.Errorf("Write after Close = nil, want an error")
	}
	if got := Get(t, l, "closed.csv"); got != "done" {
		t.Errorf("after a Write after Close, read %q, want %q", got, "done")
	}
}

func testDelete(t *testing.T, l lakelink.Lake) {
	ctx := t.Context()
	Put(t, l, "tbl/a.csv", "a")
	Put(t, l, "tbl/b.csv", "b")
	for i := range 2 {
		if err := l.Delete(ctx, "tbl/a.csv"); err != nil {
			t.Errorf("Delete #%d = %v, want nil", i+1, err)
		}
	}
	if _, err := l.Stat(ctx, "tbl/a.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after Delete, Stat error = %v, want ErrNotExist", err)
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"tbl/b.csv"}) {
		t.Errorf("after Delete, List = %q, want [tbl/b.csv]", got)
	}
	if err := l.Delete(ctx, "tbl/b.csv"); err != nil {
		t.Fatal(err)
	}
	if got := paths(t, l, ""); len(got) != 0 {
		t.Errorf("after deleting all, List = %q, want nothing", got)
	}
	// The folder can be written again.
	Put(t, l, "tbl/a.csv", "again")
	if got := Get(t, l, "tbl/a.csv"); got != "again" {
		t.Errorf("after Delete and Create, read %q, want %q", got, "again")
	}
}

// OddNames are object paths with characters that need care in file systems,
// URLs and CSV.
var OddNames = []string{
	"with space.csv",
	`quote's "double".csv`,
	"comma,separated.csv",
	"café/é.csv",
	"emoji 😀/🐘.csv",
	"percent%20encoded.csv",
	"-leading-dash.csv",
	"plus+equals=amp&semi;.csv",
	"hash#question?.csv",
	"brackets[1](2){3}.csv",
	"tbl/Snapshot/2021_1700000000.csv",
	"日本語/表.csv",
}

func testOddNames(t *testing.T, l lakelink.Lake) {
	for _, p := range OddNames {
		Put(t, l, p, "content of "+p)
	}
	for _, p := range OddNames {
		if got := Get(t, l, p); got != "content of "+p {
			t.Errorf("read %q: %q, want its own content", p, got)
		}
		if fi, err := l.Stat(t.Context(), p); err != nil || fi.Path != p {
			t.Errorf("Stat(%q) = %+v, %v", p, fi, err)
		}
		u, err := url.Parse(l.URL(p))
		if err != nil {
			t.Errorf("URL(%q) = %q, which does not parse: %v", p, l.URL(p), err)
		} else if !strings.HasSuffix(u.Path, "/"+p) || u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("URL(%q) = %q, which does not name the path (parsed path %q)", p, l.URL(p), u.Path)
		}
	}
	want := slices.Clone(OddNames)
	slices.Sort(want)
	if diff := cmp.Diff(want, paths(t, l, "")); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
	for _, p := range OddNames {
		if got := paths(t, l, p); !slices.Equal(got, []string{p}) {
			t.Errorf("List(%q) = %q, want just it", p, got)
		}
	}
}

// BadPaths are paths that every lake refuses: they could escape the lake's
// root or mean different objects on different lakes.
var BadPaths = []string{
	"",
	"/abs.csv",
	"../up.csv",
	"a/../../up.csv",
	"a/..",
	"..",
	".",
	"./a.csv",
	"a/./b.csv",
	"a//b.csv",
	"a/",
	`a\b.csv`,
	`..\up.csv`,
	"nul\x00.csv",
}

func testBadPaths(t *testing.T, l lakelink.Lake) {
	ctx := t.Context()
	Put(t, l, "good.csv", "good")
	for _, p := range BadPaths {
		if w, err := l.Create(ctx, p); err == nil {
			if err := w.Close(); err == nil {
				t.Errorf("Create(%q) succeeded, want an error", p)
			}
		}
		if r, err := l.Open(ctx, p); err == nil {
			r.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
		if _, err := l.Stat(ctx, p); err == nil {
			t.Errorf("Stat(%q) succeeded, want an error", p)
		}
		if err := l.Delete(ctx, p); err == nil {
			t.Errorf("Delete(%q) = nil, want an error", p)
		}
		if a, ok := l.(lakelink.Appender); ok {
			if w, err := a.Append(ctx, p, 0); err == nil {
				w.Close()
				t.Errorf("Append(%q) succeeded, want an error", p)
			}
		}
		if c, ok := l.(lakelink.Copier); ok {
			if err := c.Copy(ctx, "good.csv", p, 1); err == nil {
				t.Errorf("Copy to %q succeeded, want an error", p)
			}
			if err := c.Copy(ctx, p, "copy.csv", 0); err == nil {
				t.Errorf("Copy from %q succeeded, want an error", p)
			}
		}
	}
	for _, prefix := range []string{"/", "/abs", "../", "a/../", "..", "a//", `a\`, "nul\x00"} {
		if got, err := l.List(ctx, prefix); err == nil {
			t.Errorf("List(%q) = %v, want an error", prefix, got)
		}
	}
	if got := paths(t, l, ""); !slices.Equal(got, []string{"good.csv"}) {
		t.Errorf("after bad paths, List = %q, want [good.csv]", got)
	}
}

func testLarge(t *testing.T, l lakelink.Lake) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	w, err := l.Create(t.Context(), "large/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(w, io.TeeReader(io.LimitReader(NewGenerator(1), size), h))
	if err != nil {
		w.Close()
		t.Fatalf("write %d bytes: %v", size, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	if fi, err := l.Stat(t.Context(), "large/big.csv"); err != nil || fi.Size != n {
		t.Fatalf("Stat = %+v, %v, want size %d", fi, err, n)
	}
	r, err := l.Open(t.Context(), "large/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h.Reset()
	m, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Sum(nil); m != n || !bytes.Equal(got, want) {
		t.Errorf("read back %d bytes with sha256 %x, want %d bytes with %x", m, got, n, want)
	}
}

// Generator is an endless reader of pseudo-random bytes: large objects in
// tests without holding them in memory. The same seed gives the same bytes.
type Generator struct{ x uint64 }

// NewGenerator returns a Generator whose bytes are determined by seed.
func NewGenerator(seed uint64) *Generator { return &Generator{x: seed*0x9e3779b97f4a7c15 | 1} }

// Read fills p; it never fails.
func (g *Generator) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		// xorshift64*
		g.x ^= g.x >> 12
		g.x ^= g.x << 25
		g.x ^= g.x >> 27
		v := g.x * 0x2545f4914f6cdd1d
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return len(p), nil
}

func testConcurrent(t *testing.T, l lakelink.Lake) {
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				p := fmt.Sprintf("conc/tbl%d/%d.csv", g%3, g*each+i)
				if err := write(t.Context(), l, p, strings.NewReader(p)); err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := paths(t, l, "conc/")
	if len(got) != writers*each {
		t.Errorf("after concurrent writes, List has %d objects, want %d", len(got), writers*each)
	}
	for _, p := range got {
		if c := Get(t, l, p); c != p {
			t.Errorf("%s holds %q, want its own path", p, c)
		}
	}

	// Writers racing for one object: one of them wins, whole.
	contents := make([]string, writers)
	for g := range writers {
		contents[g] = strings.Repeat(string(rune('a'+g)), 64<<10)
		wg.Go(func() {
			if err := write(t.Context(), l, "conc/same.csv", strings.NewReader(contents[g])); err != nil {
				t.Errorf("writer %d of the same object: %v", g, err)
			}
		})
	}
	wg.Wait()
	if got := Get(t, l, "conc/same.csv"); !slices.Contains(contents, got) {
		t.Errorf("after racing writers, the object holds %d bytes starting %q, not one writer's whole content", len(got), got[:min(len(got), 8)])
	}
}

func testAppend(t *testing.T, l lakelink.Lake) {
	a, ok := l.(lakelink.Appender)
	if !ok {
		t.Skipf("%s has no Append", l)
	}
	ctx := t.Context()
	appendTo := func(p string, size int64, s string) error {
		w, err := a.Append(ctx, p, size)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
	// A missing object is created at size 0, with its folders.
	for _, p := range []string{"ap.csv", "tbl/new/dir/ap.csv"} {
		if err := appendTo(p, 0, "abc"); err != nil {
			t.Fatalf("Append(%q, 0) to a missing object: %v", p, err)
		}
		if got := Get(t, l, p); got != "abc" {
			t.Errorf("after Append to missing %s, read %q, want abc", p, got)
		}
	}
	// Append after size.
	if err := appendTo("ap.csv", 3, "def"); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, l, "ap.csv"); got != "abcdef" {
		t.Errorf("after Append at 3, read %q, want abcdef", got)
	}
	// A torn tail past size is cut off first.
	Put(t, l, "torn.csv", "committed|torn tail of a crashed write")
	if err := appendTo("torn.csv", 10, "next"); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, l, "torn.csv"); got != "committed|next" {
		t.Errorf("after Append over a torn tail, read %q, want committed|next", got)
	}
	// An Append with no bytes cuts the tail too.
	Put(t, l, "cut.csv", "keep|drop")
	if err := appendTo("cut.csv", 5, ""); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, l, "cut.csv"); got != "keep|" {
		t.Errorf("after an empty Append at 5, read %q, want keep|", got)
	}
	// Size 0 on an existing object starts it over.
	if err := appendTo("cut.csv", 0, "new"); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, l, "cut.csv"); got != "new" {
		t.Errorf("after Append at 0, read %q, want new", got)
	}
	// Size past the end: the lake lost committed bytes.
	if w, err := a.Append(ctx, "ap.csv", 100); err == nil {
		w.Close()
		t.Errorf("Append at 100 to a 6-byte object succeeded, want an error")
	}
	if got := Get(t, l, "ap.csv"); got != "abcdef" {
		t.Errorf("after a failed Append, read %q, want abcdef", got)
	}
	// Missing with size > 0.
	if w, err := a.Append(ctx, "gone.csv", 5); !errors.Is(err, lakelink.ErrNotExist) {
		closeIf(w)
		t.Errorf("Append at 5 to a missing object error = %v, want one wrapping ErrNotExist", err)
	}
	if _, err := l.Stat(ctx, "gone.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after a failed Append, Stat(gone.csv) error = %v, want ErrNotExist", err)
	}
	// Many appends.
	var want strings.Builder
	size := int64(0)
	for i := range 20 {
		s := fmt.Sprintf("row %d\n", i)
		if err := appendTo("many.csv", size, s); err != nil {
			t.Fatal(err)
		}
		want.WriteString(s)
		size += int64(len(s))
	}
	if got := Get(t, l, "many.csv"); got != want.String() {
		t.Errorf("after 20 appends, read %q, want %q", got, want.String())
	}
	if fi, err := l.Stat(ctx, "many.csv"); err != nil || fi.Size != size {
		t.Errorf("after 20 appends, Stat = %+v, %v, want size %d", fi, err, size)
	}
}

func testCopy(t *testing.T, l lakelink.Lake) {
	c, ok := l.(lakelink.Copier)
	if !ok {
		t.Skipf("%s has no Copy", l)
	}
	ctx := t.Context()
	const src = "tbl/2021.csv"
	Put(t, l, src, "0123456789")
	for _, tt := range []struct {
		dst  string
		n    int64
		want string
	}{
		{"tbl/Snapshot/2021_1.csv", 4, "0123"},
		{"tbl/Snapshot/2021_2.csv", 10, "0123456789"},
		{"tbl/Snapshot/2021_1.csv", 6, "012345"}, // replaces
		{"empty.csv", 0, ""},
		{"new/folder/copy.csv", 1, "0"},
	} {
		if err := c.Copy(ctx, src, tt.dst, tt.n); err != nil {
			t.Errorf("Copy(%s, %s, %d): %v", src, tt.dst, tt.n, err)
			continue
		}
		if got := Get(t, l, tt.dst); got != tt.want {
			t.Errorf("after Copy(%s, %s, %d), read %q, want %q", src, tt.dst, tt.n, got, tt.want)
		}
	}
	if got := Get(t, l, src); got != "0123456789" {
		t.Errorf("after copies, source holds %q, want 0123456789", got)
	}
	// Too many bytes: an error, and dst unchanged.
	if err := c.Copy(ctx, src, "tbl/Snapshot/2021_1.csv", 11); err == nil {
		t.Errorf("Copy of 11 bytes of a 10-byte object succeeded, want an error")
	}
	if err := c.Copy(ctx, src, "tbl/Snapshot/2021_9.csv", 11); err == nil {
		t.Errorf("Copy of 11 bytes of a 10-byte object succeeded, want an error")
	}
	if got := Get(t, l, "tbl/Snapshot/2021_1.csv"); got != "012345" {
		t.Errorf("after a failed Copy, dst holds %q, want 012345", got)
	}
	if err := c.Copy(ctx, "missing.csv", "x.csv", 0); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Copy of a missing object error = %v, want one wrapping ErrNotExist", err)
	}
	want := []string{"empty.csv", "new/folder/copy.csv", src, "tbl/Snapshot/2021_1.csv", "tbl/Snapshot/2021_2.csv"}
	if diff := cmp.Diff(want, paths(t, l, "")); diff != "" {
		t.Errorf("List after copies mismatch (-want +got):\n%s", diff)
	}
	// A large copy.
	size := int64(20 << 20)
	if testing.Short() {
		size = 2 << 20
	}
	if err := write(ctx, l, "big.csv", io.LimitReader(NewGenerator(2), size)); err != nil {
		t.Fatal(err)
	}
	if err := c.Copy(ctx, "big.csv", "big-copy.csv", size-7); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, io.LimitReader(NewGenerator(2), size-7))
	if got, want := Hash(t, l, "big-copy.csv"), h.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("large copy has sha256 %x, want %x", got, want)
	}
}

// Hash returns the sha256 of the object at p, read as a stream.
func Hash(t testing.TB, l lakelink.Lake, p string) []byte {
	t.Helper()
	r, err := l.Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return h.Sum(nil)
}

// Paths lists the paths of the objects under prefix.
func Paths(t testing.TB, l lakelink.Lake, prefix string) []string {
	t.Helper()
	infos, err := l.List(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fi := range infos {
		out = append(out, fi.Path)
	}
	return out
}

// write creates the object at p with the bytes of r.
func write(ctx context.Context, l lakelink.Lake, p string, r io.Reader) error {
	w, err := l.Create(ctx, p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	return w.Close()
}

// Put creates the object at p holding content, or fails the test.
func Put(t testing.TB, l lakelink.Lake, p, content string) {
	t.Helper()
	if err := write(t.Context(), l, p, strings.NewReader(content)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
}

// Get returns the content of the object at p, or fails the test.
func Get(t testing.TB, l lakelink.Lake, p string) string {
	t.Helper()
	r, err := l.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// paths lists the paths under prefix, or fails the test.
func paths(t testing.TB, l lakelink.Lake, prefix string) []string {
	t.Helper()
	infos, err := l.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	var out []string
	for _, fi := range infos {
		out = append(out, fi.Path)
	}
	return out
}

// conditional is what a lake with conditional writes offers (lake/file,
// lake/s3, lake/azure); the lease package relies on it.
type conditional interface {
	CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error)
	CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error)
	OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error)
}

// condWrite returns a function that writes data through what a
// conditional create returned, and returns Close's error:
// condWrite("x")(c.CreateIfAbsent(ctx, path)).
func condWrite(data string) func(io.WriteCloser, error) error {
	return func(w io.WriteCloser, err error) error {
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, data); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
}

// testConditional: create-if-absent succeeds once and then fails with
// ErrExist leaving the object; create-if-version succeeds on the version
// read and fails with ErrChanged on a stale or missing one; of racing
// creators exactly one wins.
func testConditional(t *testing.T, l lakelink.Lake) {
	c, ok := l.(conditional)
	if !ok {
		t.Skip("this lake has no conditional writes")
	}
	ctx := t.Context()
	const path = "cond/lease.json"
	if err := condWrite("first")(c.CreateIfAbsent(ctx, path)); err != nil {
		t.Fatalf("CreateIfAbsent of a new object: %v", err)
	}
	if err := condWrite("again")(c.CreateIfAbsent(ctx, path)); !errors.Is(err, lakelink.ErrExist) {
		t.Errorf("CreateIfAbsent over an object: %v, want ErrExist", err)
	}
	if got := Get(t, l, path); got != "first" {
		t.Errorf("after a refused CreateIfAbsent the object is %q, want %q", got, "first")
	}
	r, v1, err := c.OpenVersion(ctx, path)
	if err != nil {
		t.Fatalf("OpenVersion: %v", err)
	}
	data, _ := io.ReadAll(r)
	r.Close()
	if string(data) != "first" || v1 == "" {
		t.Fatalf("OpenVersion = %q, version %q; want %q and a version", data, v1, "first")
	}
	if err := condWrite("second")(c.CreateIfVersion(ctx, path, v1)); err != nil {
		t.Fatalf("CreateIfVersion with the version read: %v", err)
	}
	if err := condWrite("third")(c.CreateIfVersion(ctx, path, v1)); !errors.Is(err, lakelink.ErrChanged) {
		t.Errorf("CreateIfVersion with a stale version: %v, want ErrChanged", err)
	}
	if got := Get(t, l, path); got != "second" {
		t.Errorf("after a refused CreateIfVersion the object is %q, want %q", got, "second")
	}
	if err := condWrite("x")(c.CreateIfVersion(ctx, "cond/missing.json", v1)); err == nil {
		t.Errorf("CreateIfVersion of a missing object succeeded")
	}
	if _, err := l.Stat(ctx, "cond/missing.json"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after a refused CreateIfVersion of a missing object: Stat = %v, want ErrNotExist", err)
	}

	// A race of creators: exactly one wins.
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = condWrite(fmt.Sprint("writer ", i))(c.CreateIfAbsent(ctx, "cond/race.json"))
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("writers %d and %d both created cond/race.json", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, lakelink.ErrExist):
			t.Errorf("writer %d: %v, want success or ErrExist", i, err)
		}
	}
	if won < 0 {
		t.Fatalf("no writer created cond/race.json: %v", errs)
	}
	if got := Get(t, l, "cond/race.json"); got != fmt.Sprint("writer ", won) {
		t.Errorf("cond/race.json = %q, want the winner's %q", got, fmt.Sprint("writer ", won))
	}
}
