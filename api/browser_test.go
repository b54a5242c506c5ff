package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserEnv turns the headless-browser test on; it needs Chromium
// (Debian: apt-get install -y chromium).
const browserEnv = "LAKELINK_BROWSER_TEST"

// chromium returns the path of a Chromium or Chrome binary. The test runs
// only with LAKELINK_BROWSER_TEST=1 (and not under -short); then a missing
// browser fails it rather than letting it pass as green.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("headless browser test: skipped under -short")
	}
	if os.Getenv(browserEnv) != "1" {
		t.Skipf("headless browser test: set %s=1 to run it (needs chromium)", browserEnv)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("%s=1 but no chromium, chromium-browser or google-chrome on PATH; install it (Debian: apt-get install -y chromium)", browserEnv)
	return ""
}

// browse loads url in headless Chromium, lets its scripts run for a few
// seconds of virtual time, and returns the DOM as HTML. With
// LAKELINK_BROWSER_SCREENSHOT=DIR it also saves a screenshot to DIR/name.png.
func browse(t *testing.T, bin, url, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}
	out, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s --dump-dom %s: %v\n%s", bin, url, err, stderr)
	}
	if dir := os.Getenv("LAKELINK_BROWSER_SCREENSHOT"); dir != "" {
		png := filepath.Join(dir, name+".png")
		shot := append(args, "--window-size=1200,1600", "--hide-scrollbars", "--screenshot="+png, url)
		if b, err := exec.CommandContext(ctx, bin, shot...).CombinedOutput(); err != nil {
			t.Errorf("screenshot %s: %v\n%s", png, err, b)
		}
	}
	return string(out)
}

// The page, in a real browser, shows every link of the API with its tables,
// the outage of the lake and since when, and the errors; with a token it
// asks for the token instead.
func TestUIInBrowser(t *testing.T) {
	bin := chromium(t)
	for _, tt := range []struct {
		name    string
		token   string   // the server's
		entered string   // the token in the page's storage, as if entered in its form
		want    []string // in the DOM after the scripts ran
		not     []string
	}{
		{
			name: "links",
			want: []string{
				// Every link, as a section with a heading.
				`<h2 id="link-crm">`, `<h2 id="link-shop">`, `<h2 id="link-new">`, `<h2 id="link-old">`,
				"4 links: 1 waiting out an outage, 1 stopped on an error, 1 table stopped.",
				// The figures of crm, and its tables.
				"sqlite:///srv/crm.db", "file:///srv/lake/crm", "7,300", "1,200", "0.412 s",
				"2026-12-02 19:49:58 UTC",
				"<caption>Tables of crm</caption>", `<th scope="row">account</th>`, `<th scope="row">contact</th>`, "1,096", "2,000",
				`<tr class="row-bad"><th scope="row">account</th>`, `Stopped: </strong>column "n": "x" is not an integer`,
				// The outage of shop's lake, prominent, since when.
				`<span class="badge badge-bad">lake down</span>`,
				"Lake unavailable since <time datetime=\"2026-12-02T19:50:01Z\">2026-12-02 19:50:01 UTC</time> (for 2 min 10 s)",
				`create "state.json" refused: lease: expired`,
				// The stopped link's error, and the one still starting.
				"The link stopped on an error.", `lake holds the export of link "x"`,
				`<span class="badge badge-starting">starting</span>`,
			},
			not: []string{`<form id="login" class="login">`, "does not answer"},
		},
		{
			name:  "token asked for",
			token: "s3cret-token",
			want:  []string{`<form id="login" class="login">`, "A token is needed to show the links.", `<label for="token">Token</label>`},
			not:   []string{`<h2 id="link-crm">`, "s3cret-token"},
		},
		{
			name:  "token given",
			token: "s3cret-token", entered: "s3cret-token",
			want: []string{`<h2 id="link-crm">`, "4 links: 1 waiting out an outage", `<button id="forget" type="button">Forget the token</button>`},
			not:  []string{`<form id="login" class="login">`, "s3cret-token"},
		},
		{
			name:  "token refused",
			token: "s3cret-token", entered: "wrong-token",
			want: []string{`<form id="login" class="login">`, "That token was refused"},
			not:  []string{`<h2 id="link-crm">`, "wrong-token"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHandler(testLinks(), Options{Token: tt.token, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			// As if the token had been entered in the page's form: a page of
			// the same origin puts it where the form does, then opens the UI.
			mux := http.NewServeMux()
			mux.Handle("/", h)
			mux.HandleFunc("GET /test/enter-token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, `<!doctype html><script>sessionStorage.setItem('lakelink.apiToken', %q); location.replace('/');</script>`, tt.entered)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			url := srv.URL + "/"
			if tt.entered != "" {
				url = srv.URL + "/test/enter-token"
			}
			dom := browse(t, bin, url, strings.ReplaceAll(tt.name, " ", "-"))
			for _, w := range tt.want {
				if !strings.Contains(dom, w) {
					t.Errorf("the page does not show %q; its DOM:\n%s", w, dom)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(dom, n) {
					t.Errorf("the page shows %q; its DOM:\n%s", n, dom)
				}
			}
		})
	}
}
