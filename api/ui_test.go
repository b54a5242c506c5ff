package api

import (
	"net/http"
	"strings"
	"testing"
)

// The web UI's page and assets come with their content types, also to a
// client without the token; what they show needs it.
func TestUI(t *testing.T) {
	const token = "s3cret-token"
	for _, tt := range []struct {
		method, path string
		code         int
		ctype        string
		body         string // a part of the body
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="/ui/app.js" defer></script>`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/index.html", 200, "text/html; charset=utf-8", `<link rel="stylesheet" href="/ui/style.css">`},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", `fetch('/v1/links'`},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8", ".banner-bad"},
		{"GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/ui/", 404, "application/json", `"error": "no such file /ui/ in the web UI; the page is at /"`},
		{"GET", "/ui/nope.js", 404, "application/json", "no such file /ui/nope.js"},
		{"GET", "/ui/ui/app.js", 404, "application/json", "no such file"},
		{"GET", "/index.html", 404, "application/json", `"error": "no such endpoint /index.html; try GET / (the web UI)`},
		{"POST", "/", 405, "", ""},
		{"PUT", "/ui/app.js", 405, "", ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			for _, tok := range []string{"", token} {
				srv := newTestServer(t, Options{Token: tok})
				code, ctype, body := get(t, tt.method, srv.URL+tt.path, "")
				want := tt.code
				if tok != "" && tt.code != 200 {
					want = 401 // only the UI's own files are served without the token
				}
				if code != want {
					t.Fatalf("%s %s (token %q) = %d, want %d: %s", tt.method, tt.path, tok, code, want, body)
				}
				if want == 401 {
					continue
				}
				if ctype != tt.ctype && tt.ctype != "" {
					t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, ctype, tt.ctype)
				}
				if !strings.Contains(string(body), tt.body) {
					t.Errorf("%s %s: body does not hold %q:\n%.300s", tt.method, tt.path, tt.body, body)
				}
			}
		})
	}
}

// The UI's files tell the browser to load nothing from elsewhere, and the
// page refers only to files the server has.
func TestUIHeadersAndReferences(t *testing.T) {
	srv := newTestServer(t, Options{})
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy": uiPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-cache",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("GET /: %s %q, want %q", h, got, want)
		}
	}
	_, _, page := get(t, "GET", srv.URL+"/", "")
	for _, ref := range []string{"/ui/app.js", "/ui/style.css", "/ui/favicon.svg"} {
		if !strings.Contains(string(page), `"`+ref+`"`) {
			t.Errorf("the page does not refer to %s", ref)
		}
		if code, _, body := get(t, "GET", srv.URL+ref, ""); code != 200 {
			t.Errorf("GET %s = %d: %s", ref, code, body)
		}
	}
	for _, external := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(string(page), `src="`+external) || strings.Contains(string(page), `href="`+external) {
			t.Errorf("the page loads something from elsewhere (%s)", external)
		}
	}
}

// Paths that only look like the UI's need the token.
func TestUITokenBypass(t *testing.T) {
	srv := newTestServer(t, Options{Token: "s3cret-token"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/ui/../v1/links", "/ui/..%2fv1/links", "/ui/%2e%2e/metrics", "/ui/app.js/../../v1/links"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token = %d, want 401", p, resp.StatusCode)
		}
	}
}
