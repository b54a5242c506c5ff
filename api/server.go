package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// TokenEnv is the environment variable that holds the API's token. The
// token is a secret: it is never logged or shown.
const TokenEnv = "LAKELINK_API_TOKEN"

// shutdownTimeout is how long a server waits for requests in flight when
// it shuts down, before it closes their connections.
const shutdownTimeout = 5 * time.Second

// CheckListen says whether a server may listen on addr (HOST:PORT): a
// loopback address (127.0.0.0/8, ::1, localhost) always, any other address
// (including an empty host, which is every interface) only with a token,
// since anyone who can reach it could read the links' status otherwise.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v; give HOST:PORT, such as 127.0.0.1:7077", addr, err)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address: anyone who can reach it could read the links' status. "+
		"Set %s to a secret token, which every request must then carry as \"Authorization: Bearer <token>\", "+
		"or listen on 127.0.0.1", addr, TokenEnv)
}

// isLoopback reports whether host is a loopback IP address or localhost.
// Other names are not resolved: they count as not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Config is what Start needs.
type Config struct {
	Addr   string // HOST:PORT to listen on; port 0 picks a free one
	Token  string // see Options.Token and CheckListen
	Links  []Link
	Logger *slog.Logger // nil: slog.Default
}

// Server is a running API server; see Start.
type Server struct {
	addr string
	done chan struct{}
	err  error
}

// Start checks cfg.Addr (CheckListen), listens on it and serves the API of
// cfg.Links in the background until ctx ends; it then shuts down
// gracefully, giving requests in flight a few seconds. It returns an error
// when it can't listen (the address is taken, say); Wait returns once the
// server has shut down.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := CheckListen(cfg.Addr, cfg.Token); err != nil {
		return nil, err
	}
	h, err := NewHandler(cfg.Links, Options{Token: cfg.Token})
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = Serve(ctx, ln, h, logger)
	}()
	return s, nil
}

// Addr is the address the server listens on, with the port it got.
func (s *Server) Addr() string { return s.addr }

// Wait waits until the server has shut down (after its context ended) and
// returns the error that stopped it, if any.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, waits a few seconds for requests in flight, then closes their
// connections. It returns nil after a shutdown, or the error that stopped
// serving. Errors of single connections go to logger at debug level.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("api: shut down %s: %w", ln.Addr(), err)
	}
	return nil
}
