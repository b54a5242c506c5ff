package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/internal/testenv"
)

// apiLinks is the part of GET /v1/links the test reads, by the field
// names docs/http-api.md promises (decoded here independently of package
// api, so that a renamed field fails).
type apiLinks struct {
	Links []apiLink `json:"links"`
}

type apiLink struct {
	Link       string     `json:"link"`
	Lake       string     `json:"lake"`
	State      string     `json:"state"`
	Position   uint64     `json:"position"`
	Commits    int64      `json:"commits"`
	Changes    int64      `json:"changes"`
	CopiedRows int64      `json:"copiedRows"`
	LastCommit *time.Time `json:"lastCommit"`
	Down       struct {
		Down  bool       `json:"down"`
		What  string     `json:"what"`
		Error string     `json:"error"`
		Since *time.Time `json:"since"`
	} `json:"down"`
	Tables []struct {
		Name        string `json:"name"`
		InitialSync string `json:"initialSync"`
		Rows        int64  `json:"rows"`
		Error       string `json:"error"`
	} `json:"tables"`
}

// apiGet returns the body of GET base+path, which must answer 200.
func apiGet(base, path string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return nil, err
	}
	if tok := os.Getenv("LAKELINK_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// liveLink returns the link "default" of GET /v1/links, or an error.
func liveLink(base string) (*apiLink, error) {
	body, err := apiGet(base, "/v1/links")
	if err != nil {
		return nil, err
	}
	var doc apiLinks
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("GET /v1/links: %v: %s", err, shorten(string(body), 300))
	}
	if len(doc.Links) != 1 || doc.Links[0].Link != "default" {
		return nil, fmt.Errorf("GET /v1/links: want the one link default: %s", shorten(string(body), 300))
	}
	return &doc.Links[0], nil
}

// metricValue returns the value of the sample name{link="default"} of
// GET /metrics, or an error when it is not there.
func metricValue(base, name string) (float64, error) {
	body, err := apiGet(base, "/metrics")
	if err != nil {
		return 0, err
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+`{link="default"}`) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("GET /metrics: no %s{link=\"default\"}", name)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// TestAPIOutage checks issue 5's "status says the lake is unavailable and
// since when" through the HTTP API of a running lakelink (run --listen):
// while it streams into a private Azurite, /v1/links shows it up and
// committing and /metrics counts its commits; once Azurite is stopped,
// /v1/links says the lake is down and since when, /metrics says so too,
// `lakelink status --server` prints "lake unavailable since ...", and
// `lakelink status --lake` says the lake is unavailable and points at
// --server; once Azurite is back, the outage clears and commits go on.
func TestAPIOutage(t *testing.T) {
	testenv.Slow(t)
	seed := testSeed(t)
	lakelinkBin(t)
	srv := startPrivateServer(t, "azure")
	l := newObjLake(t, objServer{"azure", srv.endpoint()})
	dir := t.TempDir()
	live, ledger := objTables(genDateTime)
	dbPath, _, w := newObjSource(t, dir, seed, live, ledger)
	ctx := ctxTimeout(t, 5*time.Minute)
	for w.changes < 200 {
		if err := w.tx(ctx, 50, nil, true); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + addr
	p := startRun(t, dir, "--source", sourceURL(dbPath), "--lake", l.url, "--commit-interval", "300ms", "--listen", addr)
	bg := goWorkload(t, ctx, w, 4, 20*time.Millisecond)

	// Up: the copies are done and commits go on.
	var up *apiLink
	var lastErr error
	if !waitFor(2*time.Minute, func() bool {
		up, lastErr = liveLink(base)
		return p.exited() || (lastErr == nil && up.Commits >= 3 && len(up.Tables) == 2 &&
			up.Tables[0].InitialSync == "Completed" && up.Tables[1].InitialSync == "Completed")
	}) || p.exited() {
		t.Fatalf("GET /v1/links did not show 3 commits after the copies within 2 minutes (exited: %v; last: %+v, %v); log tail:\n%s", p.exited(), up, lastErr, p.tail(20))
	}
	if up.State != "running" || up.Down.Down || up.Down.Since != nil || up.Down.Error != "" {
		t.Errorf("while the lake is up, GET /v1/links says state %q, down %+v; want running, not down", up.State, up.Down)
	}
	if up.LastCommit == nil || up.LastCommit.Location() != time.UTC || up.Position == 0 || up.CopiedRows == 0 {
		t.Errorf("GET /v1/links: lastCommit %v, position %d, copiedRows %d; want a UTC time and both > 0", up.LastCommit, up.Position, up.CopiedRows)
	}
	if strings.Contains(up.Lake, "AccountKey") || !strings.HasPrefix(up.Lake, "azure://") {
		t.Errorf("GET /v1/links: lake %q, want the azure:// URL without credentials", up.Lake)
	}
	if v, err := metricValue(base, "lakelink_commits_total"); err != nil || v <= 0 {
		t.Errorf("lakelink_commits_total = %v (%v), want > 0", v, err)
	}
	if v, err := metricValue(base, "lakelink_down"); err != nil || v != 0 {
		t.Errorf("lakelink_down = %v (%v) while the lake is up, want 0", v, err)
	}

	// Down: the API says so, and since when.
	srv.stop()
	stopped := time.Now().UTC().Truncate(time.Second)
	var down *apiLink
	if !waitFor(2*time.Minute, func() bool {
		down, lastErr = liveLink(base)
		return p.exited() || (lastErr == nil && down.Down.Down)
	}) || p.exited() {
		t.Fatalf("GET /v1/links did not say the lake is down within 2 minutes of stopping Azurite (exited: %v; last: %+v, %v); log tail:\n%s", p.exited(), down, lastErr, p.tail(20))
	}
	t.Logf("down: %+v", down.Down)
	if down.Down.Since == nil || down.Down.Since.Before(stopped.Add(-time.Second)) || down.Down.Error == "" {
		t.Errorf("down %+v: want an error and a since time at or after the stop (%s)", down.Down, stopped.Format(time.RFC3339))
	}
	if down.Down.What != "lake" {
		t.Errorf("down.what = %q, want lake (error %q)", down.Down.What, down.Down.Error)
	}
	if v, err := metricValue(base, "lakelink_down"); err != nil || v != 1 {
		t.Errorf("lakelink_down = %v (%v) while the lake is down, want 1", v, err)
	}
	if v, err := metricValue(base, "lakelink_down_since_timestamp_seconds"); err != nil || int64(v) != down.Down.Since.Unix() {
		t.Errorf("lakelink_down_since_timestamp_seconds = %v (%v), want %d", v, err, down.Down.Since.Unix())
	}
	since := down.Down.Since.Format(time.RFC3339)
	code, out := runLakelink(t, dir, time.Minute, "status", "--server", base)
	t.Logf("lakelink status --server while the lake is down:\n%s", out)
	if code != 0 || !strings.Contains(out, "lake unavailable since "+since) {
		t.Errorf("lakelink status --server: exit %d, want 0 and \"lake unavailable since %s\":\n%s", code, since, out)
	}
	code, out = runLakelink(t, dir, 2*time.Minute, "status", "--lake", l.url)
	t.Logf("lakelink status --lake while the lake is down:\n%s", out)
	if code != 1 || !strings.Contains(out, "is unavailable") || !strings.Contains(out, "lakelink status --server") {
		t.Errorf("lakelink status --lake while the lake is down: exit %d, want 1 saying it is unavailable and pointing at --server:\n%s", code, out)
	}
	commits := down.Commits

	// Up again: the outage clears, and commits go on.
	srv.start()
	var back *apiLink
	if !waitFor(3*time.Minute, func() bool {
		back, lastErr = liveLink(base)
		return p.exited() || (lastErr == nil && !back.Down.Down && back.Commits > commits)
	}) || p.exited() {
		t.Fatalf("GET /v1/links did not show the outage cleared and new commits within 3 minutes of Azurite's return (exited: %v; last: %+v, %v); log tail:\n%s", p.exited(), back, lastErr, p.tail(30))
	}
	if back.Down.Since != nil || back.Down.Error != "" {
		t.Errorf("after the outage, down = %+v; want no error and since null", back.Down)
	}
	code, out = runLakelink(t, dir, time.Minute, "status", "--server", base)
	if code != 0 || strings.Contains(out, "unavailable") || !strings.Contains(out, "link      default (running)") {
		t.Errorf("lakelink status --server after the outage: exit %d, want 0, running and nothing unavailable:\n%s", code, out)
	}

	bg.finish(t)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	if !strings.Contains(p.output(), "addr="+addr) {
		t.Errorf("the log does not name the API's address %s; log tail:\n%s", addr, p.tail(20))
	}
}
