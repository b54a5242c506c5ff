package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lakelink/lakelink/export"
)

var (
	now       = time.Date(2026, 12, 2, 19, 52, 11, 0, time.UTC)
	downSince = time.Date(2026, 12, 2, 19, 50, 1, 500e6, time.UTC)
	committed = time.Date(2026, 12, 2, 19, 49, 58, 250e6, time.UTC)
	snapped   = time.Date(2026, 12, 2, 19, 0, 0, 0, time.UTC)
)

func ptr(t time.Time) *time.Time { return &t }

// testLinks are the links of the tests: crm exports, shop waits out a lake
// outage, new is still opening its lake, old stopped on an error.
func testLinks() []Link {
	return []Link{
		{
			Name: "crm", Source: "sqlite:///srv/crm.db", Lake: "file:///srv/lake/crm",
			Progress: func() export.Progress {
				return export.Progress{
					Link: "crm", Copied: 6000, Changes: 1200, Commits: 42, Snapshots: 2, Position: 7300,
					LastCommit: committed, LastSnapshot: snapped, Lag: 412 * time.Millisecond,
					// Out of order, as a map gives them: the API sorts.
					Tables: []export.TableProgress{
						{Name: "contact", InitialSync: "Completed", Rows: 2000},
						{Name: "account", InitialSync: "Completed", Rows: 1096, Error: `column "n": "x" is not an integer`},
					},
				}
			},
		},
		{
			Name: "shop", Source: "postgres://db.example.com/shop", Lake: "azure://acct/lake/shop",
			Progress: func() export.Progress {
				return export.Progress{
					Link: "shop", Commits: 3, Changes: 9, Position: 99, LastCommit: committed,
					Down: "lake azure://acct/lake/shop: create \"state.json\" refused: lease: expired", DownSince: downSince,
					Tables: []export.TableProgress{{Name: "orders", InitialSync: "Completed", Rows: 5}},
				}
			},
		},
		{
			Name: "new", Source: "/srv/new.db", Lake: "/srv/lake/new",
			Progress: func() export.Progress { return export.Progress{} },
			State:    func() (string, error) { return Starting, nil },
		},
		{
			Name: "old", Source: "/srv/old.db", Lake: "/srv/lake/old",
			// Down is left over from the outage that preceded the failure:
			// a stopped link is not down.
			Progress: func() export.Progress { return export.Progress{Down: "sqlite: locked", DownSince: downSince} },
			State:    func() (string, error) { return Stopped, errors.New(`lake holds the export of link "x"`) },
		},
	}
}

// wantStatus is what the API says about testLinks at now.
var wantStatus = map[string]LinkStatus{
	"crm": {
		Link: "crm", Source: "sqlite:///srv/crm.db", Lake: "file:///srv/lake/crm", State: Running,
		Position: 7300, Commits: 42, Changes: 1200, CopiedRows: 6000, Snapshots: 2,
		LastCommit: ptr(committed.Truncate(time.Second)), LastSnapshot: ptr(snapped), LagSeconds: 0.412,
		Tables: []TableProgress{
			{Name: "account", InitialSync: "Completed", Rows: 1096, Error: `column "n": "x" is not an integer`},
			{Name: "contact", InitialSync: "Completed", Rows: 2000},
		},
	},
	"shop": {
		Link: "shop", Source: "postgres://db.example.com/shop", Lake: "azure://acct/lake/shop", State: Running,
		Position: 99, Commits: 3, Changes: 9, LastCommit: ptr(committed.Truncate(time.Second)),
		Down: DownJSON{
			Down: true, What: "lake", Error: "lake azure://acct/lake/shop: create \"state.json\" refused: lease: expired",
			Since: ptr(downSince.Truncate(time.Second)), ForSeconds: 129.5,
		},
		Tables: []TableProgress{{Name: "orders", InitialSync: "Completed", Rows: 5}},
	},
	"new": {Link: "new", Source: "/srv/new.db", Lake: "/srv/lake/new", State: Starting, Tables: []TableProgress{}},
	"old": {
		Link: "old", Source: "/srv/old.db", Lake: "/srv/lake/old", State: Stopped,
		Error: `lake holds the export of link "x"`, Tables: []TableProgress{},
	},
}

// newTestServer serves testLinks with opts (at the fixed time now).
func newTestServer(t testing.TB, opts Options) *httptest.Server {
	t.Helper()
	opts.Now = func() time.Time { return now }
	h, err := NewHandler(testLinks(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get sends a request and returns the status code, content type and body.
func get(t testing.TB, method, url, auth string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestLinks(t *testing.T) {
	srv := newTestServer(t, Options{})
	code, ctype, body := get(t, "GET", srv.URL+"/v1/links", "")
	if code != http.StatusOK || ctype != "application/json" {
		t.Fatalf("GET /v1/links = %d %s, want 200 application/json: %s", code, ctype, body)
	}
	var doc LinksJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET /v1/links: %v: %s", err, body)
	}
	var want []LinkStatus
	for _, name := range []string{"crm", "shop", "new", "old"} { // the order given
		want = append(want, wantStatus[name])
	}
	if diff := cmp.Diff(want, doc.Links); diff != "" {
		t.Errorf("GET /v1/links mismatch (-want +got):\n%s", diff)
	}
}

// TestLinkJSON checks the JSON text of a link: the field names are part of
// the API, and a time is RFC 3339 UTC or null.
func TestLinkJSON(t *testing.T) {
	srv := newTestServer(t, Options{})
	_, _, body := get(t, "GET", srv.URL+"/v1/links/shop", "")
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET /v1/links/shop: %v: %s", err, body)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"changes", "commits", "copiedRows", "down", "error", "lagSeconds", "lake", "lastCommit",
		"lastSnapshot", "link", "position", "snapshots", "source", "state", "tables"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("fields of a link (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ field, want string }{
		{`"lastCommit"`, `"lastCommit": "2026-12-02T19:49:58Z"`},
		{`"lastSnapshot"`, `"lastSnapshot": null`},
		{`"since"`, `"since": "2026-12-02T19:50:01Z"`},
		{`"what"`, `"what": "lake"`},
		{`"initialSync"`, `"initialSync": "Completed"`},
	} {
		if !strings.Contains(string(body), tt.want) {
			t.Errorf("GET /v1/links/shop: no %s; body:\n%s", tt.want, body)
		}
	}
}

func TestRoutes(t *testing.T) {
	srv := newTestServer(t, Options{})
	for _, tt := range []struct {
		method, path string
		code         int
		ctype        string
		body         string // a part of the body
	}{
		{"GET", "/v1/links/crm", 200, "application/json", `"link": "crm"`},
		{"GET", "/v1/links/old", 200, "application/json", `"state": "stopped"`},
		{"GET", "/v1/links/nope", 404, "application/json", `"error": "no link \"nope\" in this process; it runs crm, shop, new, old"`},
		{"GET", "/healthz", 200, "text/plain; charset=utf-8", "ok\n"},
		{"GET", "/metrics", 200, "text/plain", "lakelink_commits_total"},
		{"GET", "/v2", 404, "application/json", `"error": "no such endpoint /v2`},
		{"POST", "/v1/links", 405, "", ""},
		{"DELETE", "/v1/links/crm", 405, "", ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, ctype, body := get(t, tt.method, srv.URL+tt.path, "")
			if code != tt.code {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, code, tt.code, body)
			}
			if !strings.HasPrefix(ctype, tt.ctype) {
				t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, ctype, tt.ctype)
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("%s %s: body does not hold %q:\n%s", tt.method, tt.path, tt.body, body)
			}
		})
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-token"
	for _, tt := range []struct {
		desc, token, auth string
		code              int
	}{
		{"no token needed", "", "", 200},
		{"no token needed, one sent", "", "Bearer whatever", 200},
		{"missing", token, "", 401},
		{"wrong", token, "Bearer s3cret-tokeN", 401},
		{"prefix of it", token, "Bearer s3cret", 401},
		{"longer", token, "Bearer s3cret-token2", 401},
		{"not bearer", token, "Basic " + token, 401},
		{"bare token", token, token, 401},
		{"right", token, "Bearer " + token, 200},
		{"scheme in lower case", token, "bearer " + token, 200},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			srv := newTestServer(t, Options{Token: tt.token})
			for _, path := range []string{"/v1/links", "/v1/links/crm", "/metrics", "/healthz"} {
				code, _, body := get(t, "GET", srv.URL+path, tt.auth)
				if code != tt.code {
					t.Fatalf("GET %s with Authorization %q = %d, want %d: %s", path, tt.auth, code, tt.code, body)
				}
				if code == 401 {
					msg := ErrorText(body)
					if !strings.Contains(msg, "Authorization: Bearer <token>") || !strings.Contains(msg, TokenEnv) {
						t.Errorf("401 says %q, want how to send the token", msg)
					}
					if strings.Contains(string(body), token) {
						t.Errorf("401 shows the token: %s", body)
					}
				}
			}
		})
	}
}

// scrape returns the samples of GET /metrics by "name{label=value,...}".
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	code, _, body := get(t, "GET", url+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics = %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET /metrics: %v\n%s", err, body)
	}
	samples := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				samples[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				samples[key] = m.GetGauge().GetValue()
			default:
				samples[key] = 0
			}
		}
	}
	return samples
}

func TestMetrics(t *testing.T) {
	srv := newTestServer(t, Options{})
	got := scrape(t, srv.URL)
	for _, tt := range []struct {
		key  string
		want float64 // -1: absent
	}{
		{"lakelink_changes_total{link=crm}", 1200},
		{"lakelink_commits_total{link=crm}", 42},
		{"lakelink_copied_rows_total{link=crm}", 6000},
		{"lakelink_snapshots_total{link=crm}", 2},
		{"lakelink_position{link=crm}", 7300},
		{"lakelink_last_commit_timestamp_seconds{link=crm}", float64(committed.UnixNano()) / 1e9},
		{"lakelink_last_snapshot_timestamp_seconds{link=crm}", float64(snapped.Unix())},
		{"lakelink_commit_lag_seconds{link=crm}", 0.412},
		{"lakelink_down{link=crm}", 0},
		{"lakelink_down_since_timestamp_seconds{link=crm}", -1},
		{"lakelink_running{link=crm}", 1},
		{"lakelink_table_rows{link=crm,table=account}", 1096},
		{"lakelink_table_stopped{link=crm,table=account}", 1},
		{"lakelink_table_rows{link=crm,table=contact}", 2000},
		{"lakelink_table_stopped{link=crm,table=contact}", 0},
		{"lakelink_down{link=shop}", 1},
		{"lakelink_down_since_timestamp_seconds{link=shop}", float64(downSince.UnixNano()) / 1e9},
		{"lakelink_last_snapshot_timestamp_seconds{link=shop}", -1},
		{"lakelink_running{link=new}", 0},
		{"lakelink_commits_total{link=new}", 0},
		{"lakelink_last_commit_timestamp_seconds{link=new}", -1},
		{"lakelink_running{link=old}", 0},
		{"lakelink_down{link=old}", 0},
	} {
		v, ok := got[tt.key]
		switch {
		case tt.want < 0 && ok:
			t.Errorf("%s = %g, want it absent", tt.key, v)
		case tt.want >= 0 && !ok:
			t.Errorf("%s is missing", tt.key)
		case tt.want >= 0 && v != tt.want:
			t.Errorf("%s = %g, want %g", tt.key, v, tt.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		found := false
		for k := range got {
			found = found || strings.HasPrefix(k, name+"{")
		}
		if !found {
			t.Errorf("GET /metrics: no %s (the Go and process collectors)", name)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	p := func() export.Progress { return export.Progress{} }
	for _, tt := range []struct {
		desc  string
		links []Link
		want  string
	}{
		{"twice", []Link{{Name: "a", Progress: p}, {Name: "a", Progress: p}}, `link "a" given twice`},
		{"no name", []Link{{Progress: p}}, "link 0 has no name"},
		{"no progress", []Link{{Name: "a"}}, `link "a" has no Progress`},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := NewHandler(tt.links, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHandler = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestDownWhat(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{`azure: put "a/1.csv": dial tcp 127.0.0.1:10000: connect: connection refused`, "lake"},
		{`commit 7: s3: PutObject: 503`, "lake"},
		{`lake /srv/lake: create "x" refused: lease: expired`, "lake"},
		{`read state: file: open /srv/lake/state.json: input/output error`, "lake"},
		{`postgres: start replication: dial error`, "source"},
		{`sqlite: read changes: database is locked (file: /srv/app.db)`, "source"},
		{`context deadline exceeded`, ""},
	} {
		if got := downWhat(tt.msg); got != tt.want {
			t.Errorf("downWhat(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, tt := range []struct {
		addr, token string
		want        string // a part of the error, or "" for none
	}{
		{"127.0.0.1:7077", "", ""},
		{"127.0.0.2:7077", "", ""},
		{"localhost:7077", "", ""},
		{"[::1]:7077", "", ""},
		{"127.0.0.1:0", "", ""},
		{"0.0.0.0:7077", "", "0.0.0.0:7077 is not a loopback address"},
		{":7077", "", "is not a loopback address"},
		{"[::]:7077", "", "is not a loopback address"},
		{"192.0.2.1:7077", "", "Set " + TokenEnv},
		{"lakelink.example.com:7077", "", "Authorization: Bearer <token>"},
		{"0.0.0.0:7077", "t0ken", ""},
		{"7077", "", "give HOST:PORT"},
	} {
		err := CheckListen(tt.addr, tt.token)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckListen(%q, token %v) = %v, want nil", tt.addr, tt.token != "", err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckListen(%q, token %v) = %v, want an error with %q", tt.addr, tt.token != "", err, tt.want)
		}
	}
}

// TestStart serves on a free loopback port until the context ends, and
// refuses a public address without a token.
func TestStart(t *testing.T) {
	if _, err := Start(context.Background(), Config{Addr: "0.0.0.0:0", Links: testLinks()}); err == nil || !strings.Contains(err.Error(), TokenEnv) {
		t.Errorf("Start on 0.0.0.0 without a token = %v, want a refusal naming %s", err, TokenEnv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Config{Addr: "127.0.0.1:0", Links: testLinks()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(ctx, Config{Addr: s.Addr(), Links: testLinks()}); err == nil {
		t.Errorf("a second Start on %s succeeded, want address in use", s.Addr())
	}
	code, _, body := get(t, "GET", "http://"+s.Addr()+"/healthz", "")
	if code != 200 || string(body) != "ok\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", code, body)
	}
	cancel()
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait after cancel = %v, want nil", err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Errorf("GET after shutdown succeeded")
	}
}
