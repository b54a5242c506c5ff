package azure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/laketest"
)

// testConfig returns the config of a new, empty container on the test
// server (Azurite in CI), deleted when the test ends.
func testConfig(t testing.TB) Config {
	t.Helper()
	endpoint := testenv.Need(t, EnvEndpoint)
	account := os.Getenv(EnvAccount)
	if account == "" {
		account = "devstoreaccount1"
	}
	cfg := Config{
		Account:   account,
		Container: fmt.Sprintf("lakelink-test-%016x", rand.Uint64()),
		Endpoint:  endpoint,
	}
	if err := CreateContainer(t.Context(), cfg); err != nil {
		t.Fatalf("create test container: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteContainer(context.Background(), cfg); err != nil {
			t.Errorf("delete test container: %v", err)
		}
	})
	return cfg
}

func open(t testing.TB, cfg Config) *Lake {
	t.Helper()
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return open(t, testConfig(t)) })
}

func TestConformancePrefix(t *testing.T) {
	testenv.Slow(t)
	laketest.Run(t, func(t testing.TB) lakelink.Lake {
		cfg := testConfig(t)
		cfg.Prefix = "some/prefix é"
		return open(t, cfg)
	})
}

// TestConformanceStream covers Copy and Append without Put Block From URL,
// as with a token credential.
func TestConformanceStream(t *testing.T) {
	testenv.Slow(t)
	forceStream = true
	t.Cleanup(func() { forceStream = false })
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return open(t, testConfig(t)) })
}

func TestConformanceFaulty(t *testing.T) {
	testenv.Slow(t)
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return laketest.NewFaulty(open(t, testConfig(t))) })
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want Config
		err  string // part of the error; empty: no error
	}{
		{url: "azure://acct/lake", want: Config{Account: "acct", Container: "lake"}},
		{url: "azure://acct/lake/", want: Config{Account: "acct", Container: "lake"}},
		{url: "azure://acct/lake/a/b/", want: Config{Account: "acct", Container: "lake", Prefix: "a/b"}},
		{url: "azure://acct/lake/a%20b", want: Config{Account: "acct", Container: "lake", Prefix: "a b"}},
		{url: "azure://devstoreaccount1/my-lake-1/p?endpoint=http://127.0.0.1:10000/devstoreaccount1/",
			want: Config{Account: "devstoreaccount1", Container: "my-lake-1", Prefix: "p", Endpoint: "http://127.0.0.1:10000/devstoreaccount1"}},
		{url: "azure://acct/lake?endpoint=https%3A%2F%2Fx.example%2Facct", want: Config{Account: "acct", Container: "lake", Endpoint: "https://x.example/acct"}},
		{url: "s3://bucket/x", err: `scheme "s3" is not azure`},
		{url: "acct/lake", err: "no scheme"},
		{url: "azure:///lake", err: "no account"},
		{url: "azure://acct", err: "no container"},
		{url: "azure://acct/", err: "no container"},
		{url: "azure://Acct/lake", err: `account name "Acct"`},
		{url: "azure://ac/lake", err: "account name"},
		{url: "azure://acct:443/lake", err: "account name"},
		{url: "azure://acct/La", err: "container name"},
		{url: "azure://acct/la", err: "container name"},
		{url: "azure://acct/-lake", err: "container name"},
		{url: "azure://acct/la--ke", err: "container name"},
		{url: "azure://acct/" + strings.Repeat("a", 64), err: "container name"},
		{url: "azure://acct/lake/../up", err: `element ".."`},
		{url: "azure://acct/lake/a//b", err: "empty element"},
		{url: "azure://acct/lake?sig=s3cr3t", err: `parameter "sig" not supported`},
		{url: "azure://acct/lake?endpoint=ftp://x", err: "not an http(s) URL"},
		{url: "azure://acct/lake?endpoint=http://u:s3cr3t@x/", err: "without credentials"},
		{url: "azure://acct/lake?endpoint=http://x/&endpoint=http://y/", err: "twice"},
		{url: "azure://user:s3cr3t@acct/lake", err: "holds credentials"},
		{url: "azure://acct/lake#frag", err: "fragment"},
	} {
		got, err := ParseURL(tt.url)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParseURL(%q) error: %v", tt.url, err)
		case tt.err != "" && err == nil:
			t.Errorf("ParseURL(%q) = %+v, want an error with %q", tt.url, got, tt.err)
		case tt.err != "" && !strings.Contains(err.Error(), tt.err):
			t.Errorf("ParseURL(%q) error = %q, want one with %q", tt.url, err, tt.err)
		case err != nil && strings.Contains(err.Error(), "s3cr3t"):
			t.Errorf("ParseURL(%q) error = %q repeats the secret", tt.url, err)
		case tt.err == "":
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseURL(%q) mismatch (-want +got):\n%s", tt.url, diff)
			}
		}
	}
}

func TestConfigString(t *testing.T) {
	c := Config{Account: "acct", Container: "lake", Prefix: "p", Key: "s3cr3t", ConnectionString: "AccountKey=s3cr3t"}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("a printed Config shows the key: %s", s)
		}
	}
	if got, want := c.String(), "azure://acct/lake/p"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestResolve(t *testing.T) {
	const cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
	for _, tt := range []struct {
		desc                  string
		env                   map[string]string
		cfg                   Config
		wantKey, wantEndpoint string
	}{
		{desc: "nothing", cfg: Config{Account: "acct", Container: "lake"}},
		{desc: "key", env: map[string]string{EnvKey: "k"}, cfg: Config{Account: "acct", Container: "lake"}, wantKey: "k"},
		{desc: "key of another account", env: map[string]string{EnvKey: "k", EnvAccount: "other"}, cfg: Config{Account: "acct", Container: "lake"}},
		{desc: "connection string", env: map[string]string{EnvConnectionString: cs}, cfg: Config{Account: "devstoreaccount1", Container: "lake"},
			wantKey: "a2V5", wantEndpoint: "http://127.0.0.1:10000/devstoreaccount1"},
		{desc: "connection string of another account", env: map[string]string{EnvConnectionString: cs}, cfg: Config{Account: "acct", Container: "lake"}},
		{desc: "endpoint from env", env: map[string]string{EnvEndpoint: "http://h:1/a/"}, cfg: Config{Account: "acct", Container: "lake"}, wantEndpoint: "http://h:1/a"},
		{desc: "endpoint of another account", env: map[string]string{EnvEndpoint: "http://h:1/a/", EnvAccount: "other"}, cfg: Config{Account: "acct", Container: "lake"}},
		{desc: "endpoint in config wins", env: map[string]string{EnvEndpoint: "http://h:1/a/", EnvConnectionString: cs},
			cfg: Config{Account: "devstoreaccount1", Container: "lake", Endpoint: "http://x/y"}, wantKey: "a2V5", wantEndpoint: "http://x/y"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			for _, k := range []string{EnvKey, EnvAccount, EnvConnectionString, EnvEndpoint} {
				t.Setenv(k, tt.env[k])
			}
			r, err := resolve(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != tt.wantKey || r.Endpoint != tt.wantEndpoint {
				t.Errorf("resolve: key %q, endpoint %q; want %q, %q", r.Key, r.Endpoint, tt.wantKey, tt.wantEndpoint)
			}
		})
	}
}

func TestURL(t *testing.T) {
	l := &Lake{cfg: resolved{Config: Config{Account: "acct", Container: "lake"}}, prefix: "p q/"}
	if got, want := l.URL("tbl/2021 #1.csv"), "https://acct.dfs.core.windows.net:443/lake/p%20q/tbl/2021%20%231.csv"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	l.cfg.Endpoint = "http://127.0.0.1:10000/devstoreaccount1"
	if got, want := l.URL("t/a.csv"), "http://127.0.0.1:10000/devstoreaccount1/lake/p%20q/t/a.csv"; got != want {
		t.Errorf("URL with an endpoint = %q, want %q", got, want)
	}
}

// TestOpenErrors checks that a misconfigured lake fails at Open, saying
// what is wrong, and that no error shows the account key.
func TestOpenErrors(t *testing.T) {
	cfg := testConfig(t)
	key := os.Getenv(EnvKey)
	if key == "" {
		r, err := resolve(cfg)
		if err != nil || r.Key == "" {
			t.Skip("no account key in the environment")
		}
		key = string(r.Key)
	}
	missing := cfg
	missing.Container = "no-such-container-" + fmt.Sprint(rand.Uint32())
	badKey := cfg
	badKey.Key = Secret(strings.Repeat("A", 86) + "==")
	notBase64 := cfg
	notBase64.Key = "not base64 " + Secret(key)
	for _, tt := range []struct {
		desc     string
		cfg      Config
		want     string
		notExist bool
	}{
		{"missing container", missing, `container "` + missing.Container + `" does not exist`, true},
		{"wrong key", badKey, "rejected the credentials", false},
		{"key not base64", notBase64, "not valid base64", false},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			l, err := Open(t.Context(), tt.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded, want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %q, want one with %q", err, tt.want)
			}
			if errors.Is(err, lakelink.ErrNotExist) != tt.notExist {
				t.Errorf("Open error = %q: wraps ErrNotExist %v, want %v", err, !tt.notExist, tt.notExist)
			}
			if strings.Contains(err.Error(), key) || tt.cfg.Key != "" && strings.Contains(err.Error(), string(tt.cfg.Key)) {
				t.Errorf("Open error shows the account key: %q", err)
			}
		})
	}
	// The errors of a working lake don't show the key either.
	l := open(t, cfg)
	ctx := t.Context()
	var errs []error
	_, err := l.Open(ctx, "missing.csv")
	errs = append(errs, err)
	_, err = l.Stat(ctx, "missing.csv")
	errs = append(errs, err)
	_, err = l.Append(ctx, "missing.csv", 3)
	errs = append(errs, err)
	errs = append(errs, l.Copy(ctx, "missing.csv", "x.csv", 1))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = l.List(canceled, "")
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Errorf("an operation that should fail succeeded")
		} else if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "sig=") {
			t.Errorf("error shows a secret: %q", err)
		}
	}
	for _, s := range []string{l.String(), l.URL("a.csv"), fmt.Sprintf("%+v", *l)} {
		if strings.Contains(s, key) {
			t.Errorf("the lake prints its key: %q", s)
		}
	}
}

// TestReadOnly checks that a read-only lake opens without writing, reads,
// and refuses writes.
func TestReadOnly(t *testing.T) {
	cfg := testConfig(t)
	laketest.Put(t, open(t, cfg), "a.csv", "abc")
	cfg.ReadOnly = true
	l := open(t, cfg)
	if got := laketest.Get(t, l, "a.csv"); got != "abc" {
		t.Errorf("read-only lake reads %q, want abc", got)
	}
	ctx := t.Context()
	if _, err := l.Create(ctx, "b.csv"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Create on a read-only lake = %v, want a read-only error", err)
	}
	if _, err := l.Append(ctx, "a.csv", 3); err == nil {
		t.Errorf("Append on a read-only lake succeeded")
	}
	if err := l.Copy(ctx, "a.csv", "b.csv", 3); err == nil {
		t.Errorf("Copy on a read-only lake succeeded")
	}
	if err := l.Delete(ctx, "a.csv"); err == nil {
		t.Errorf("Delete on a read-only lake succeeded")
	}
	if _, err := l.CreateIfAbsent(ctx, "b.csv"); err == nil {
		t.Errorf("CreateIfAbsent on a read-only lake succeeded")
	}
	if got := laketest.Paths(t, l, ""); len(got) != 1 {
		t.Errorf("after refused writes, List = %q, want [a.csv]", got)
	}
	missing := cfg
	missing.Container = "no-such-container-" + fmt.Sprint(rand.Uint32())
	if _, err := Open(ctx, missing); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("read-only Open of a missing container = %v, want ErrNotExist", err)
	}
}

// TestOpenProbeLeavesNothing checks that the probe deletes what it writes.
func TestOpenProbeLeavesNothing(t *testing.T) {
	cfg := testConfig(t)
	l := open(t, cfg)
	var names []string
	pager := l.cc.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			names = append(names, *it.Name)
		}
	}
	if len(names) != 0 {
		t.Errorf("after Open, the container holds %q, want nothing", names)
	}
	if got, want := l.String(), cfg.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestAppendMultiBlock appends to a blob of several blocks: at a block
// boundary (the blocks are kept, not copied), inside a block (the block's
// start is staged again), over a blob put whole, and checks the bytes.
func TestAppendMultiBlock(t *testing.T) {
	l := open(t, testConfig(t))
	ctx := t.Context()
	gen := func(seed uint64, n int64) io.Reader { return io.LimitReader(laketest.NewGenerator(seed), n) }
	var want bytes.Buffer
	appendTo := func(size int64, r io.Reader) {
		t.Helper()
		w, err := l.Append(ctx, "big.csv", size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, io.TeeReader(r, &want)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Two and a half blocks, then one more block: 4 blocks.
	appendTo(0, gen(1, 2*BlockSize+BlockSize/2))
	appendTo(int64(want.Len()), gen(2, BlockSize/4))
	blocks := committed(t, l, "big.csv")
	if len(blocks) != 4 {
		t.Errorf("after two appends, %d committed blocks, want 4", len(blocks))
	}
	check := func(desc string) {
		t.Helper()
		h := laketest.Hash(t, l, "big.csv")
		if w := sha256.Sum256(want.Bytes()); !bytes.Equal(h, w[:]) {
			t.Fatalf("%s: content differs from what was written (%d bytes)", desc, want.Len())
		}
	}
	check("after appends")
	// Cut at a block boundary: the first two blocks are kept as they are.
	want.Truncate(2 * BlockSize)
	appendTo(2*BlockSize, gen(3, 100))
	after := committed(t, l, "big.csv")
	if len(after) != 3 || after[0] != blocks[0] || after[1] != blocks[1] {
		t.Errorf("after a cut at a block boundary, blocks %q, want the first two of %q and one new", after, blocks)
	}
	check("after a cut at a block boundary")
	// Cut inside the first block.
	want.Truncate(1000)
	appendTo(1000, gen(4, 10))
	check("after a cut inside a block")
	// Streamed (as without an account key): cut inside a block.
	forceStream = true
	want.Truncate(500)
	appendTo(500, gen(5, BlockSize+1))
	forceStream = false
	check("after a streamed cut")
	// A blob put whole has no blocks.
	want.Reset()
	w, _ := l.Create(ctx, "big.csv")
	io.Copy(w, io.TeeReader(gen(6, 1000), &want))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want.Truncate(600)
	appendTo(600, strings.NewReader("tail"))
	check("after an append to a blob put whole")
}

// TestAppendCoalesce checks that small appends share a block rather than
// add one each, so the blob stays far from MaxBlocks.
func TestAppendCoalesce(t *testing.T) {
	l := open(t, testConfig(t))
	ctx := t.Context()
	var want strings.Builder
	for i := range 30 {
		w, err := l.Append(ctx, "small.csv", int64(want.Len()))
		if err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("row %d\n", i)
		want.WriteString(s)
		io.WriteString(w, s)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := laketest.Get(t, l, "small.csv"); got != want.String() {
		t.Errorf("after 30 appends, read %q, want %q", got, want.String())
	}
	if n := len(committed(t, l, "small.csv")); n != 1 {
		t.Errorf("after 30 small appends, %d committed blocks, want 1", n)
	}
}

// TestAppendAfterAbandon appends to a blob that has only the uncommitted
// blocks of an abandoned write.
func TestAppendAfterAbandon(t *testing.T) {
	l := open(t, testConfig(t))
	ctx, cancel := context.WithCancel(t.Context())
	w, err := l.Create(ctx, "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(1), BlockSize+1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); err == nil {
		t.Fatal("Close after cancel = nil, want an error")
	}
	if _, err := l.Stat(t.Context(), "x.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Stat of a blob never committed = %v, want ErrNotExist", err)
	}
	if got := laketest.Paths(t, l, ""); len(got) != 0 {
		t.Errorf("List = %q, want nothing: the blob was never committed", got)
	}
	if _, err := l.Append(t.Context(), "x.csv", 5); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Append at 5 to a blob never committed = %v, want ErrNotExist", err)
	}
	a, err := l.Append(t.Context(), "x.csv", 0)
	if err != nil {
		t.Fatalf("Append at 0 to a blob never committed: %v", err)
	}
	io.WriteString(a, "abc")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := laketest.Get(t, l, "x.csv"); got != "abc" {
		t.Errorf("read %q, want abc", got)
	}
}

// TestAppendConflict checks that an Append loses to a write that commits
// while it is open.
func TestAppendConflict(t *testing.T) {
	l := open(t, testConfig(t))
	ctx := t.Context()
	laketest.Put(t, l, "a.csv", "abc")
	w, err := l.Append(ctx, "a.csv", 3)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "def")
	laketest.Put(t, l, "a.csv", "xyz!")
	if err := w.Close(); !errors.Is(err, ErrChanged) {
		t.Errorf("Append's Close after another write = %v, want ErrChanged", err)
	}
	if got := laketest.Get(t, l, "a.csv"); got != "xyz!" {
		t.Errorf("after a lost Append, read %q, want xyz!", got)
	}
}

// TestConditional checks If-None-Match and If-Match writes, for an object
// put whole and for one staged in blocks.
func TestConditional(t *testing.T) {
	l := open(t, testConfig(t))
	ctx := t.Context()
	for _, n := range []int64{10, BlockSize + 10} {
		write := func(w io.WriteCloser, err error) error {
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(uint64(n)), n)); err != nil {
				w.Close()
				return err
			}
			return w.Close()
		}
		p := fmt.Sprintf("cond/%d.json", n)
		if err := write(l.CreateIfAbsent(ctx, p)); err != nil {
			t.Fatalf("CreateIfAbsent(%s) of a missing object: %v", p, err)
		}
		if err := write(l.CreateIfAbsent(ctx, p)); !errors.Is(err, lakelink.ErrExist) {
			t.Errorf("CreateIfAbsent(%s) of an object there = %v, want ErrExist", p, err)
		}
		v, err := l.Version(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(l.CreateIfVersion(ctx, p, v)); err != nil {
			t.Errorf("CreateIfVersion(%s) with the current version: %v", p, err)
		}
		if err := write(l.CreateIfVersion(ctx, p, v)); !errors.Is(err, ErrChanged) {
			t.Errorf("CreateIfVersion(%s) with a stale version = %v, want ErrChanged", p, err)
		}
		if err := l.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := write(l.CreateIfVersion(ctx, p, v)); !errors.Is(err, ErrChanged) {
			t.Errorf("CreateIfVersion(%s) of a deleted object = %v, want ErrChanged", p, err)
		}
		if _, err := l.Stat(ctx, p); !errors.Is(err, lakelink.ErrNotExist) {
			t.Errorf("after failed conditional writes, Stat(%s) = %v, want ErrNotExist", p, err)
		}
	}
	if _, err := l.Version(ctx, "missing.json"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("Version(missing) = %v, want ErrNotExist", err)
	}
}

func TestTooManyBlocks(t *testing.T) {
	w := &writer{what: "append", kept: make([]string, MaxBlocks)}
	if err := w.stage(); !errors.Is(err, ErrTooManyBlocks) {
		t.Errorf("stage of block %d = %v, want ErrTooManyBlocks", MaxBlocks+1, err)
	}
}

func TestScrub(t *testing.T) {
	got := scrub(`PUT "http://h/c/b?sv=1&sig=abc%2Fdef&se=2": AccountKey=s3cr3t; key k3y`, "k3y")
	for _, s := range []string{"abc", "s3cr3t", "k3y"} {
		if strings.Contains(got, s) {
			t.Errorf("scrub left %q in %q", s, got)
		}
	}
}

func committed(t testing.TB, l *Lake, p string) []string {
	t.Helper()
	bl, err := l.blob(p).GetBlockList(t.Context(), blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range bl.CommittedBlocks {
		ids = append(ids, *b.Name)
	}
	return ids
}

// failCred is a token credential that never gets a token.
type failCred struct{}

func (failCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("fake credential: no token")
}

// TestOpenTokenErrors checks Open's errors with a token credential: over
// http, and when no token comes.
func TestOpenTokenErrors(t *testing.T) {
	cfg := testConfig(t)
	t.Setenv(EnvKey, "")
	t.Setenv(EnvConnectionString, "")
	cfg.Credential = failCred{}
	for _, tt := range []struct {
		endpoint, want string
	}{
		{cfg.Endpoint, "needs an https endpoint"},
		{"https://127.0.0.1:1/devstoreaccount1", "no token from the configured token credential"},
	} {
		cfg.Endpoint = tt.endpoint
		if _, err := Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open at %s with a failing token credential = %v, want an error with %q", tt.endpoint, err, tt.want)
		}
	}
}

// TestMemoryBounded checks that writing, appending, copying (streamed) and
// reading a 100 MiB object hold a few blocks in memory, not the object.
func TestMemoryBounded(t *testing.T) {
	testenv.Slow(t)
	l := open(t, testConfig(t))
	ctx := t.Context()
	const size = 100 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	w, err := l.Create(ctx, "big.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(7), size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := l.Append(ctx, "big.csv", size-BlockSize/2) // re-stages half a block
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	forceStream = true
	err = l.Copy(ctx, "big.csv", "copy.csv", size-BlockSize)
	forceStream = false
	if err != nil {
		t.Fatal(err)
	}
	laketest.Hash(t, l, "copy.csv")
	close(done)
	wg.Wait()
	if grew := int64(peak.Load()) - int64(base.HeapInuse); grew > 6*BlockSize {
		t.Errorf("heap in use grew by %d MiB while moving a %d MiB object, want at most %d MiB", grew>>20, size>>20, 6*BlockSize>>20)
	} else {
		t.Logf("heap in use grew by at most %d MiB", grew>>20)
	}
}
