// Package api is lakelink's HTTP API: the live status of the links a
// process runs, as JSON, and Prometheus metrics. It reads what each link's
// exporter records (export.Progress) at request time; it changes nothing.
//
//	GET /v1/links          every link's status: {"links": [LinkStatus...]}
//	GET /v1/links/{name}   one link's LinkStatus, or 404
//	GET /metrics           Prometheus text format
//	GET /healthz           200 "ok"
//	GET /, GET /ui/...     the web UI, which shows GET /v1/links (ui.go)
//
// It binds to loopback by default: a server on any other address needs a
// token (see CheckListen), which every request must then carry as
// "Authorization: Bearer TOKEN". See docs/http-api.md.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lakelink/lakelink/export"
)

// Link is one link a process runs, as the API shows it.
type Link struct {
	Name   string
	Source string // the source URL without credentials
	Lake   string // the lake URL without credentials
	// Progress returns the link's live progress; it is called at every
	// request and scrape, from any goroutine.
	Progress func() export.Progress
	// State, when set, says where the link is in its life: Starting,
	// Running or Stopped, and for Stopped the error that ended it (nil for
	// a clean stop). Without it the link is Running.
	State func() (state string, err error)
}

// The states of a link.
const (
	Starting = "starting" // opening its source and lake, taking the lake's lease
	Running  = "running"  // exporting, or waiting out an outage (see Down)
	Stopped  = "stopped"  // ended: done, interrupted or failed (see LinkStatus.Error)
)

// Options are the settings of a Handler.
type Options struct {
	// Token, when not empty, must come with every request as
	// "Authorization: Bearer TOKEN"; a request without it gets 401.
	Token string
	// Now returns the time; nil: time.Now. For tests.
	Now func() time.Time
}

// LinksJSON is the document of GET /v1/links. Its fields are stable: new
// ones may be added, none are renamed or removed.
type LinksJSON struct {
	Links []LinkStatus `json:"links"` // in the order the process was given them
}

// LinkStatus is one link's live status: GET /v1/links/{name}, and an
// element of LinksJSON. Times are RFC 3339 in UTC, or null when the event
// has not happened in this process.
type LinkStatus struct {
	Link   string `json:"link"`
	Source string `json:"source"` // without credentials
	Lake   string `json:"lake"`   // without credentials
	State  string `json:"state"`  // starting, running or stopped
	Error  string `json:"error"`  // why a stopped link failed, or ""
	// Position is the last position this process committed (0 before its
	// first commit); every change up to it is in the lake.
	Position     uint64          `json:"position"`
	Commits      int64           `json:"commits"`    // commits made by this process
	Changes      int64           `json:"changes"`    // changes exported by those commits
	CopiedRows   int64           `json:"copiedRows"` // rows written by initial copies
	Snapshots    int64           `json:"snapshots"`  // snapshots taken
	LastCommit   *time.Time      `json:"lastCommit"`
	LastSnapshot *time.Time      `json:"lastSnapshot"`
	LagSeconds   float64         `json:"lagSeconds"` // how long the oldest change of the last commit waited
	Down         DownJSON        `json:"down"`
	Tables       []TableProgress `json:"tables"` // sorted by name
}

// DownJSON says whether a link is waiting out an outage of its source or
// lake: the export retries with backoff and resumes by itself.
type DownJSON struct {
	Down bool `json:"down"`
	// What is down, as far as the error tells: "lake", "source", or ""
	// when it does not say.
	What       string     `json:"what"`
	Error      string     `json:"error"`      // the last error, or ""
	Since      *time.Time `json:"since"`      // when the outage began, or null
	ForSeconds float64    `json:"forSeconds"` // how long it has lasted, by the server's clock
}

// TableProgress is one table of LinkStatus.
type TableProgress struct {
	Name        string `json:"name"`        // the source's name
	InitialSync string `json:"initialSync"` // NotStarted, InProgress, Completed or Failed
	Rows        int64  `json:"rows"`        // rows (in place) or records (append only) in the lake
	Error       string `json:"error"`       // why the table stopped, or ""
}

// errorJSON is the body of every error response.
type errorJSON struct {
	Error string `json:"error"`
}

// handler serves the API of a fixed set of links.
type handler struct {
	links  []Link
	byName map[string]int
	opts   Options
	mux    *http.ServeMux
}

// NewHandler returns the API's handler for links. Link names must be
// unique and every link needs a Progress func.
func NewHandler(links []Link, opts Options) (http.Handler, error) {
	h := &handler{links: append([]Link(nil), links...), byName: map[string]int{}, opts: opts}
	if h.opts.Now == nil {
		h.opts.Now = time.Now
	}
	for i, l := range h.links {
		if l.Name == "" {
			return nil, fmt.Errorf("api: link %d has no name", i)
		}
		if _, dup := h.byName[l.Name]; dup {
			return nil, fmt.Errorf("api: link %q given twice", l.Name)
		}
		if l.Progress == nil {
			return nil, fmt.Errorf("api: link %q has no Progress", l.Name)
		}
		h.byName[l.Name] = i
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(&collector{links: h.links, now: h.opts.Now}); err != nil {
		return nil, fmt.Errorf("api: metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /v1/links", h.list)
	h.mux.HandleFunc("GET /v1/links/{name}", h.one)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	// The web UI (ui.go): the page at / and its assets under /ui/.
	h.mux.Handle("GET /{$}", uiHandler())
	h.mux.Handle("GET /ui/", uiHandler())
	// GET only: another method on a known path is then the mux's 405.
	h.mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s; try GET / (the web UI), /v1/links, /v1/links/{name}, /metrics or /healthz", r.URL.Path))
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token != "" && !isUI(r) && !authorized(r, h.opts.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lakelink"`)
		writeError(w, http.StatusUnauthorized, "this lakelink API needs a token: send the header \"Authorization: Bearer <token>\" with the token of "+TokenEnv)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the bearer token, comparing in
// constant time so that the time taken does not tell how much matched.
func authorized(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	doc := LinksJSON{Links: make([]LinkStatus, 0, len(h.links))}
	now := h.opts.Now()
	for _, l := range h.links {
		doc.Links = append(doc.Links, Status(l, now))
	}
	writeJSON(w, http.StatusOK, doc)
}

func (h *handler) one(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	i, ok := h.byName[name]
	if !ok {
		names := make([]string, 0, len(h.links))
		for _, l := range h.links {
			names = append(names, l.Name)
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no link %q in this process; it runs %s", name, strings.Join(names, ", ")))
		return
	}
	writeJSON(w, http.StatusOK, Status(h.links[i], h.opts.Now()))
}

// Status returns a link's live status at time now.
func Status(l Link, now time.Time) LinkStatus { return status(l, l.Progress(), now) }

// status returns a link's status from its progress p at time now.
func status(l Link, p export.Progress, now time.Time) LinkStatus {
	s := LinkStatus{
		Link:         l.Name,
		Source:       l.Source,
		Lake:         l.Lake,
		State:        Running,
		Position:     uint64(p.Position),
		Commits:      p.Commits,
		Changes:      p.Changes,
		CopiedRows:   p.Copied,
		Snapshots:    p.Snapshots,
		LastCommit:   utc(p.LastCommit),
		LastSnapshot: utc(p.LastSnapshot),
		LagSeconds:   seconds(p.Lag),
		Tables:       make([]TableProgress, 0, len(p.Tables)),
	}
	if l.State != nil {
		state, err := l.State()
		s.State = state
		if err != nil {
			s.Error = err.Error()
		}
	}
	if p.Down != "" && s.State != Stopped {
		s.Down = DownJSON{Down: true, What: downWhat(p.Down), Error: p.Down, Since: utc(p.DownSince)}
		if !p.DownSince.IsZero() {
			s.Down.ForSeconds = seconds(max(now.Sub(p.DownSince), 0))
		}
	}
	for _, t := range p.Tables {
		s.Tables = append(s.Tables, TableProgress{Name: t.Name, InitialSync: t.InitialSync, Rows: t.Rows, Error: t.Error})
	}
	sort.Slice(s.Tables, func(i, j int) bool { return s.Tables[i].Name < s.Tables[j].Name })
	return s
}

// downWhat tells from an error's text whether the source or the lake
// failed: the backend that wrapped it first names it ("azure: ...",
// "sqlite: ..."; lakelink's errors start with their package's name).
// "" when the text names neither.
func downWhat(msg string) string {
	at, what := len(msg), ""
	for _, m := range downMarkers {
		if i := strings.Index(msg, m.prefix); i >= 0 && i < at {
			at, what = i, m.what
		}
	}
	return what
}

// downMarkers are the prefixes of the errors of sources and lakes.
var downMarkers = []struct{ prefix, what string }{
	{"sqlite:", "source"},
	{"postgres:", "source"},
	{"source ", "source"},
	{"file:", "lake"},
	{"s3:", "lake"},
	{"azure:", "lake"},
	{"lease:", "lake"},
	{"lake ", "lake"},
}

// utc returns &t in UTC, to the second, or nil for the zero time.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

// seconds returns d in seconds, to the millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorJSON{Error: msg})
}

// ErrorText returns the message of an error response body, or "" when
// body is not one.
func ErrorText(body []byte) string {
	var e errorJSON
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}
