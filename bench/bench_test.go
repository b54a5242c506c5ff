package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRunTiny runs the whole benchmark at 1,000 rows, so that the program
// keeps building and working as the engine changes. Its figures mean
// nothing; it only checks that every section printed them.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several exports (a few seconds); skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	args := []string{
		"-rows", "1000", "-merge-sizes", "500,1000", "-changes", "100",
		"-commit-interval", "200ms", "-repeat", "1", "-merge-repeat", "2",
		"-gobench=false", "-dir", t.TempDir(),
	}
	if err := run(ctx, args, &out, &errs); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	got := out.String()
	for _, want := range []string{
		"== 1. Initial write: 1,000 rows",
		"lakelink initial copy",
		"== 2. In-place merge: 100 changes",
		"== Summary ==",
		"merge 100 changes into 1,000 rows: rewrite",
		"cpus: ",
		"go run ./bench -rows 1000",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// The baseline is there, or says why not.
	if !strings.Contains(got, "sqlite3 -csv > file (baseline)") {
		t.Errorf("output lacks the baseline row:\n%s", got)
	}
	// Engine warnings (retries) are shown, not failed on: this test keeps
	// the program working; the engine's own tests judge the engine.
	if errs.Len() > 0 {
		t.Logf("stderr:\n%s", errs.String())
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.rows != 100_000 || len(o.mergeSizes) != 2 || o.mergeSizes[1] != 100_000 || o.changes != 1_000 {
		t.Errorf("-quick: rows %d, merge sizes %v, changes %d; want 100000, [10000 100000], 1000", o.rows, o.mergeSizes, o.changes)
	}
	o, err = parseFlags([]string{"-quick", "-rows", "5000"}, &bytes.Buffer{})
	if err != nil || o.rows != 5000 {
		t.Errorf("-quick -rows 5000: rows %d, err %v; want 5000", o.rows, err)
	}
	for _, bad := range [][]string{{"-rows", "0"}, {"-merge-sizes", "10,x"}, {"-update-pct", "101"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", bad)
		}
	}
}

func TestGoBenchLine(t *testing.T) {
	name, figs := goBenchLine("BenchmarkMergeTable/partition=1000000-2   3  75167635 ns/op  1868.41 MB/s  9658368 peak-heap-B  2832789 B/op  15095 allocs/op")
	if name != "merge alone (Go benchmark), 1,000,000 rows" {
		t.Errorf("name = %q", name)
	}
	if want := "75 ms/op, 2.7 MiB/op in 15,095 allocs, peak heap 9.2 MiB"; figs != want {
		t.Errorf("figures = %q, want %q", figs, want)
	}
}

func TestParseFlagsSets(t *testing.T) {
	for _, c := range []struct {
		args              []string
		sqlite, pg, lakes bool
	}{
		{nil, true, false, false},
		{[]string{"-pg"}, false, true, false},
		{[]string{"-lakes"}, false, false, true},
		{[]string{"-pg", "-sqlite"}, true, true, false},
		{[]string{"-all"}, true, true, true},
	} {
		o, err := parseFlags(c.args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", c.args, err)
		}
		if o.sqlite != c.sqlite || o.pg != c.pg || o.lakes != c.lakes {
			t.Errorf("parseFlags(%q): sqlite %v, pg %v, lakes %v; want %v, %v, %v", c.args, o.sqlite, o.pg, o.lakes, c.sqlite, c.pg, c.lakes)
		}
	}
	o, err := parseFlags([]string{"-quick", "-pg"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.pgRows != 100_000 || o.pgBacklog != 50_000 || o.pgBigTx != 200_000 || len(o.lakeSizes) != 2 || o.lakeSizes[1] != 50 {
		t.Errorf("-quick: pg rows %d, backlog %d, big tx %d, lake sizes %v; want 100000, 50000, 200000, [10 50]", o.pgRows, o.pgBacklog, o.pgBigTx, o.lakeSizes)
	}
	o, err = parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.pgRows != 1_000_000 || o.pgBacklog != 500_000 || o.pgBigTx != 2_000_000 || len(o.lakeSizes) != 2 || o.lakeSizes[1] != 500 || len(o.lakeKinds) != 3 {
		t.Errorf("defaults: pg rows %d, backlog %d, big tx %d, lake sizes %v, kinds %v", o.pgRows, o.pgBacklog, o.pgBigTx, o.lakeSizes, o.lakeKinds)
	}
	for _, bad := range [][]string{{"-lake-kinds", "ftp"}, {"-lake-sizes", "0"}, {"-pg-rate", "0"}, {"-pg-rows", "10"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", bad)
		}
	}
}

func TestFirstTrue(t *testing.T) {
	rows := []int{0, 3, 3, 7, 10}
	for _, c := range []struct{ atLeast, index int }{{0, 0}, {1, 1}, {3, 1}, {4, 3}, {7, 3}, {8, 4}, {10, 4}, {11, 5}} {
		if got := firstTrue(rows, func(r int) bool { return r >= c.atLeast }); got != c.index {
			t.Errorf("first count >= %d: index %d, want %d", c.atLeast, got, c.index)
		}
	}
}

func TestRowGen(t *testing.T) {
	g := &rowGen{}
	b := g.rows(3)
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Fatalf("rows(3) made %d lines:\n%s", n, b)
	}
	// Read continues the ids and ends exactly where the limit says.
	var out strings.Builder
	n, err := io.Copy(&out, io.LimitReader(g, 10_000))
	if err != nil || n != 10_000 {
		t.Fatalf("copy 10,000 bytes of rows: %d, %v", n, err)
	}
	if !strings.HasPrefix(out.String(), `"00000004-`) {
		t.Errorf("Read starts with %.20q, want row 4", out.String())
	}
}

func TestOpName(t *testing.T) {
	for _, c := range []struct{ method, url, copy, want string }{
		{"PUT", "/acct/c/t/2020.csv?comp=block&blockid=x", "", "PUT ?comp=block"},
		{"PUT", "/b/t/2020.csv?partNumber=1&uploadId=u", "b/t/2020.csv", "PUT ?uploadId&partNumber (server-side copy)"},
		{"HEAD", "/b/t/2020.csv", "", "HEAD"},
		{"POST", "/b/t/2020.csv?uploads", "", "POST ?uploads"},
	} {
		req := httptest.NewRequest(c.method, c.url, nil)
		if c.copy != "" {
			req.Header.Set("x-amz-copy-source", c.copy)
		}
		if got := opName(req); got != c.want {
			t.Errorf("opName(%s %s) = %q, want %q", c.method, c.url, got, c.want)
		}
	}
}
