package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/api"
	"github.com/lakelink/lakelink/export"
)

// liveServer serves the API of two links, crm exporting and shop waiting
// out a lake outage that began 2m10s before now, with token (if any).
func liveServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	now := time.Date(2026, 12, 2, 19, 52, 11, 0, time.UTC)
	links := []api.Link{
		{
			Name: "crm", Source: "sqlite:///srv/crm.db", Lake: "file:///srv/lake/crm",
			Progress: func() export.Progress {
				return export.Progress{Commits: 42, Changes: 1200, Copied: 6000, Position: 7300, Lag: 412 * time.Millisecond,
					LastCommit: now.Add(-time.Second),
					Tables:     []export.TableProgress{{Name: "account", InitialSync: "Completed", Rows: 1096}}}
			},
		},
		{
			Name: "shop", Source: "postgres://db.example.com/shop", Lake: "azure://acct/lake/shop",
			Progress: func() export.Progress {
				return export.Progress{Commits: 3, Position: 99,
					Down: `azure: put "x": connection refused`, DownSince: now.Add(-130 * time.Second)}
			},
		},
	}
	h, err := api.NewHandler(links, api.Options{Token: token, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestStatusServer(t *testing.T) {
	const token = "t0ken-for-the-test"
	srv := liveServer(t, token)
	closed := liveServer(t, "")
	closed.Close()
	for _, tt := range []struct {
		desc   string
		token  string
		args   []string
		code   int
		want   []string // in stdout (exit 0) or stderr
		absent []string // not in stdout
	}{
		{
			desc: "every link", token: token, args: []string{"--server", srv.URL},
			want: []string{
				"link      crm (running)", "source    sqlite:///srv/crm.db", "lake      file:///srv/lake/crm",
				"position  7300 (42 commits, last 2026-12-02 19:52:10Z, lag 0.4 s)",
				"exported  1200 changes, 6000 rows copied by this process",
				"account  Completed     1096  -",
				"link      shop (running)",
				`lake unavailable since 2026-12-02T19:50:01Z (2m10s): azure: put "x": connection refused`,
			},
		},
		{
			desc: "one link", token: token, args: []string{"--server", srv.URL, "--link", "shop"},
			want:   []string{"link      shop (running)", "lake unavailable since 2026-12-02T19:50:01Z (2m10s)"},
			absent: []string{"crm"},
		},
		{
			desc: "HOST:PORT without a scheme", token: token, args: []string{"--server", strings.TrimPrefix(srv.URL, "http://") + "/", "--link", "crm"},
			want: []string{"link      crm (running)"}, absent: []string{"unavailable"},
		},
		{
			desc: "no such link", token: token, args: []string{"--server", srv.URL, "--link", "nope"},
			code: exitFailure, want: []string{`no link "nope" in this process; it runs crm, shop`},
		},
		{
			desc: "no token", args: []string{"--server", srv.URL},
			code: exitFailure, want: []string{"Authorization: Bearer <token>", api.TokenEnv + " is not set here"},
		},
		{
			desc: "wrong token", token: "wrong", args: []string{"--server", srv.URL},
			code: exitFailure, want: []string{api.TokenEnv + " is not the run's token"},
		},
		{
			desc: "nothing listens", args: []string{"--server", closed.URL},
			code: exitFailure, want: []string{"no lakelink answers at " + closed.URL, "lakelink run --listen"},
		},
		{desc: "with --lake", args: []string{"--server", srv.URL, "--lake", "/tmp/x"}, code: exitUsage, want: []string{"can't be used together"}},
		{desc: "with --source", args: []string{"--server", srv.URL, "--source", "postgres://h/db"}, code: exitUsage, want: []string{"--source can't be used with --server"}},
		{desc: "--link alone", args: []string{"--lake", "/tmp/x", "--link", "crm"}, code: exitUsage, want: []string{"--link goes with --server"}},
		{desc: "not http", args: []string{"--server", "ftp://h:1"}, code: exitUsage, want: []string{"give http://HOST:PORT"}},
		{desc: "credentials in the URL", args: []string{"--server", "http://u:pw-secret@h:1"}, code: exitUsage, want: []string{"give http://HOST:PORT"}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Setenv(api.TokenEnv, tt.token)
			code, stdout, stderr := runCLI(t, append([]string{"status"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("status %v: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, stdout, stderr)
			}
			out := stdout
			if code != exitOK {
				out = stderr
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("status %v does not say %q:\n%s", tt.args, w, out)
				}
			}
			for _, w := range tt.absent {
				if strings.Contains(stdout, w) {
					t.Errorf("status %v says %q:\n%s", tt.args, w, stdout)
				}
			}
			if strings.Contains(stdout+stderr, "pw-secret") || strings.Contains(stdout+stderr, token) {
				t.Errorf("status %v shows a secret:\n%s%s", tt.args, stdout, stderr)
			}
		})
	}
}

// TestStatusServerJSON: --json prints the API's document.
func TestStatusServerJSON(t *testing.T) {
	srv := liveServer(t, "")
	t.Setenv(api.TokenEnv, "")
	code, stdout, stderr := runCLI(t, "status", "--server", srv.URL, "--json")
	var doc api.LinksJSON
	if code != exitOK || json.Unmarshal([]byte(stdout), &doc) != nil || len(doc.Links) != 2 {
		t.Fatalf("status --server --json: exit code %d, want 0 and 2 links\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	d := doc.Links[1].Down
	if !d.Down || d.What != "lake" || d.Since == nil || d.Since.Format(time.RFC3339) != "2026-12-02T19:50:01Z" {
		t.Errorf("status --server --json: shop's down = %+v, want the lake down since 2026-12-02T19:50:01Z", d)
	}
	code, stdout, _ = runCLI(t, "status", "--server", srv.URL, "--link", "crm", "--json")
	var one api.LinkStatus
	if code != exitOK || json.Unmarshal([]byte(stdout), &one) != nil || one.Link != "crm" || one.Commits != 42 || one.Down.Down {
		t.Errorf("status --server --link crm --json: exit code %d:\n%s", code, stdout)
	}
}

func TestDownLine(t *testing.T) {
	since := time.Date(2026, 12, 2, 19, 50, 1, 0, time.UTC)
	for _, tt := range []struct {
		d    api.DownJSON
		want string
	}{
		{api.DownJSON{Down: true, What: "lake", Error: "e", Since: &since, ForSeconds: 129.6}, "lake unavailable since 2026-12-02T19:50:01Z (2m10s): e"},
		{api.DownJSON{Down: true, What: "source", Error: "e", Since: &since, ForSeconds: 3}, "source unavailable since 2026-12-02T19:50:01Z (3s): e"},
		{api.DownJSON{Down: true, Error: "e"}, "source or lake unavailable since an unknown time (0s): e"},
	} {
		if got := downLine(tt.d); got != tt.want {
			t.Errorf("downLine(%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestRunListenUsage(t *testing.T) {
	for _, tt := range []struct {
		desc, token, listen string
		want                string
	}{
		{"public without a token", "", "0.0.0.0:7077", "Set " + api.TokenEnv},
		{"every interface without a token", "", ":7077", "Authorization: Bearer <token>"},
		{"no port", "", "127.0.0.1", "give HOST:PORT"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Setenv(api.TokenEnv, tt.token)
			code, _, stderr := runCLI(t, "run", "--source", "/tmp/app.db", "--lake", "/tmp/lake", "--listen", tt.listen)
			if code != exitUsage || !strings.Contains(stderr, "--listen") || !strings.Contains(stderr, tt.want) {
				t.Errorf("run --listen %s: exit code %d, stderr %q; want 2 with %q", tt.listen, code, stderr, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunListenConfig runs two links of a config file with --listen: one
// server shows both, their copies reach /metrics, and the server stops
// with the run.
func TestRunListenConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`links:
  - name: one
    source: sqlite://%s
    lake: %s
    commit_interval: 100ms
  - name: two
    source: %s
    lake: %s
    commit_interval: 100ms
`, makeDB(t), filepath.Join(dir, "one"), makeDB(t), filepath.Join(dir, "two"))
	path := filepath.Join(dir, "lakelink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	t.Setenv(api.TokenEnv, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, []string{"run", "--config", path, "--listen", addr}, io.Discard, &stderr) }()

	var doc api.LinksJSON
	ok := waitUntil(20*time.Second, func() bool {
		doc = api.LinksJSON{}
		body, err := apiGet(context.Background(), base, "/v1/links")
		if err != nil || json.Unmarshal(body, &doc) != nil || len(doc.Links) != 2 {
			return false
		}
		for _, l := range doc.Links {
			if l.State != api.Running || l.CopiedRows != 3 || len(l.Tables) != 1 || l.Tables[0].Rows != 3 {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("GET /v1/links did not show both links running with their 3 rows copied within 20 s: %+v\nlog:\n%s", doc, stderr.String())
	}
	for _, l := range doc.Links {
		if l.Down.Down || l.Down.Since != nil {
			t.Errorf("link %s is down: %+v", l.Link, l.Down)
		}
	}
	if !strings.Contains(stderr.String(), "addr="+addr) {
		t.Errorf("the log does not name the address %s:\n%s", addr, stderr.String())
	}
	body, err := apiGet(context.Background(), base, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`lakelink_copied_rows_total{link="one"} 3`, `lakelink_copied_rows_total{link="two"} 3`, `lakelink_down{link="one"} 0`, `lakelink_table_rows{link="two",table="item"} 3`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET /metrics has no line %q", want)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run: exit code %d after cancel, want 0\nlog:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop within 30 s of cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("the API still answers after the run ended")
	}
}

// TestServeAPIRedacts: the API shows source and lake URLs without
// credentials, and a link that has not opened yet as starting.
func TestServeAPIRedacts(t *testing.T) {
	specs := []linkSpec{{Link: lakelink.Link{
		Name:   "x",
		Source: "postgres://lakelink:pw-secret@db.example.com/app?sslpassword=pw-secret2",
		Lake:   "s3://bucket/p?endpoint=http://127.0.0.1:9&secret_key=pw-secret3",
	}}}
	live := []*liveLink{{name: "x", state: api.Starting}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := freeAddr(t)
	stop, err := serveAPI(ctx, slog.New(slog.DiscardHandler), specs, live, runOpts{listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	t.Setenv(api.TokenEnv, "")
	body, err := apiGet(ctx, "http://"+addr, "/v1/links/x")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("pw-secret")) {
		t.Errorf("GET /v1/links/x shows a secret:\n%s", body)
	}
	var l api.LinkStatus
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if l.State != api.Starting || !strings.Contains(l.Source, "db.example.com/app") || !strings.Contains(l.Lake, "s3://bucket/p") {
		t.Errorf("GET /v1/links/x = %+v, want x starting with its source and lake", l)
	}
	if _, err := serveAPI(ctx, slog.New(slog.DiscardHandler), specs, live, runOpts{listen: addr}); err == nil || !strings.Contains(err.Error(), "--listen "+addr) {
		t.Errorf("a second server on %s: %v, want an error naming --listen", addr, err)
	}
}

// waitUntil polls cond every 50 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
