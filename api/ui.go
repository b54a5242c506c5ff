package api

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The web UI: a page at GET / that polls GET /v1/links every 2 s and shows
// every link, with its assets under /ui/. Plain HTML, CSS and JavaScript,
// embedded in the binary: no build step, nothing loaded from elsewhere.
//
//go:embed ui
var uiFiles embed.FS

// uiTypes are the content types of the UI's files, by extension: set here
// rather than taken from the system's MIME tables, which differ.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// uiPolicy is the page's Content-Security-Policy: scripts, styles and
// requests only from this server, no inline code, no framing.
const uiPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiHandler serves the page at "/" and its assets at "/ui/NAME".
func uiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := uiFile(r.URL.Path)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such file %s in the web UI; the page is at /", r.URL.Path))
			return
		}
		data, err := fs.ReadFile(uiFiles, name)
		if err != nil { // only names uiFile found: can't happen
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("web UI: %v", err))
			return
		}
		h := w.Header()
		h.Set("Content-Type", uiTypes[path.Ext(name)])
		// Revalidated at every load, so that an upgraded lakelink serves
		// its own page, never a stale cached script.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", uiPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(data)
	})
}

// uiFile returns the embedded file a URL path names: "/" is the page,
// "/ui/NAME" an asset. Only files of a known type count.
func uiFile(urlPath string) (string, bool) {
	if urlPath == "/" {
		return "ui/index.html", true
	}
	name, ok := strings.CutPrefix(urlPath, "/ui/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	if _, known := uiTypes[path.Ext(name)]; !known {
		return "", false
	}
	if _, err := fs.Stat(uiFiles, "ui/"+name); err != nil {
		return "", false
	}
	return "ui/" + name, true
}

// isUI reports whether r asks for the web UI's page or one of its assets,
// which are served without the token: they hold no status, and the page
// must load to ask for the token. Its data comes from /v1/links, which
// needs the token like every other endpoint.
func isUI(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	_, ok := uiFile(r.URL.Path)
	return ok
}
