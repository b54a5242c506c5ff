package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// countingProxy is an HTTP reverse proxy on loopback in front of a real
// object store, counting the requests that pass and their body bytes. It
// changes nothing in them: the Host header stays the proxy's, which is what
// the client signed.
type countingProxy struct {
	URL string // http://127.0.0.1:PORT
	srv *http.Server

	mu    sync.Mutex
	calls traffic // requests of lakelink's SDK client
	other traffic // requests of anyone else, such as the server fetching a copy source
}

// traffic is what went through the proxy for one kind of caller.
type traffic struct {
	Requests int
	Sent     int64          // request body bytes
	Received int64          // response body bytes
	Ops      map[string]int // by operation, see opName
}

func startProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("proxy target %q: not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{URL: "http://" + ln.Addr().String()}
	p.reset()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.ErrorLog = nil
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body := &countReader{r: req.Body}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = body
			}
			cw := &countWriter{ResponseWriter: w}
			rp.ServeHTTP(cw, req)
			p.note(req, body.n, cw.n)
		}),
		ReadHeaderTimeout: time.Minute,
	}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *countingProxy) Close() error { return p.srv.Close() }

// reset zeroes the counters.
func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = traffic{Ops: map[string]int{}}
	p.other = traffic{Ops: map[string]int{}}
}

// counts returns the counters since the last reset.
func (p *countingProxy) counts() (calls, other traffic) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls.clone(), p.other.clone()
}

func (p *countingProxy) note(req *http.Request, sent, received int64) {
	ua := req.UserAgent()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.other
	if strings.Contains(ua, "azsdk-go") || strings.Contains(ua, "aws-sdk-go") {
		t = &p.calls
	}
	t.Requests++
	t.Sent += sent
	t.Received += received
	t.Ops[opName(req)]++
}

func (t traffic) clone() traffic {
	c := t
	c.Ops = map[string]int{}
	for k, v := range t.Ops {
		c.Ops[k] = v
	}
	return c
}

// String lists the operations, such as "HEAD 1, PUT ?comp=block 1".
func (t traffic) String() string {
	var ops []string
	for k, v := range t.Ops {
		ops = append(ops, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(ops)
	return strings.Join(ops, ", ")
}

// opName names a request by its method and the query keys and headers
// that tell S3's and Azure's operations apart.
func opName(req *http.Request) string {
	q := req.URL.Query()
	var parts []string
	for _, k := range []string{"comp", "uploads", "uploadId", "partNumber", "restype"} {
		if !q.Has(k) {
			continue
		}
		if v := q.Get(k); v != "" && (k == "comp" || k == "restype") {
			parts = append(parts, k+"="+v)
		} else {
			parts = append(parts, k)
		}
	}
	s := req.Method
	if len(parts) > 0 {
		s += " ?" + strings.Join(parts, "&")
	}
	if req.Header.Get("x-amz-copy-source") != "" || req.Header.Get("x-ms-copy-source") != "" {
		s += " (server-side copy)"
	}
	return s
}

type countReader struct {
	r io.ReadCloser
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *countWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
