package main

// wire.go is the one place that turns URLs into concrete sources and lakes.
// A new backend adds a case here and nowhere else.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/azure"
	"github.com/lakelink/lakelink/lake/file"
	lakes3 "github.com/lakelink/lakelink/lake/s3"
	"github.com/lakelink/lakelink/source/postgres"
	"github.com/lakelink/lakelink/source/sqlite"
)

// Backend kinds a URL can name.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
	backendFile     = "file"
	backendS3       = "s3"
	backendAzure    = "azure"
)

// endpoint is a parsed source or lake URL: which backend, and what the
// backend's ParseURL made of it (a file or folder path).
type endpoint struct {
	backend string
	path    string
	s3      lakes3.Config
	azure   azure.Config
}

// urlScheme returns the lower-case scheme of u ("" for a plain path).
func urlScheme(u string) string {
	i := strings.Index(u, ":")
	if i <= 1 { // none, or a Windows drive letter such as C:
		return ""
	}
	s := u[:i]
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return "" // a path with a colon in it
		}
	}
	return strings.ToLower(s)
}

// notYet names the backends that are planned but not built yet.
var notYet = map[string]string{
	"abfs":  "Azure lakes",
	"abfss": "Azure lakes",
}

// parseSource checks a source URL without opening it: sqlite:///ABS/PATH.db
// or a plain path to a SQLite file.
func parseSource(u string) (endpoint, error) {
	if u == "" {
		return endpoint{}, errors.New("empty; give sqlite:///ABSOLUTE/PATH.db or a path to a SQLite file")
	}
	switch s := urlScheme(u); s {
	case "", "sqlite":
		p, err := sqlite.ParseURL(u)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{backend: backendSQLite, path: p}, nil
	case "postgres", "postgresql":
		dsn, err := postgres.ParseURL(u)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{backend: backendPostgres, path: dsn}, nil
	default:
		if what, ok := notYet[s]; ok {
			return endpoint{}, fmt.Errorf("scheme %q: %s are not supported yet; use sqlite:///ABSOLUTE/PATH.db", s, what)
		}
		return endpoint{}, fmt.Errorf("scheme %q not supported; use sqlite:///ABSOLUTE/PATH.db or a path to a SQLite file", s)
	}
}

// parseLake checks a lake URL without opening it: file:///ABS/DIR, a plain
// folder path, s3://BUCKET[/PREFIX]?endpoint=...&region=...&path-style=true,
// or azure://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL].
func parseLake(u string) (endpoint, error) {
	if u == "" {
		return endpoint{}, errors.New("empty; give file:///ABSOLUTE/DIR or a folder path")
	}
	switch s := urlScheme(u); s {
	case "", "file":
		p, err := file.ParseURL(u)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{backend: backendFile, path: p}, nil
	case "s3":
		cfg, err := lakes3.ParseURL(u)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{backend: backendS3, s3: cfg}, nil
	case "azure":
		cfg, err := azure.ParseURL(u)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{backend: backendAzure, azure: cfg}, nil
	default:
		if what, ok := notYet[s]; ok {
			return endpoint{}, fmt.Errorf("scheme %q: %s are not supported yet; use file:///ABSOLUTE/DIR, s3://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX", s, what)
		}
		return endpoint{}, fmt.Errorf("scheme %q not supported; use file:///ABSOLUTE/DIR, a folder path, s3://BUCKET/PREFIX?endpoint=... or azure://ACCOUNT/CONTAINER/PREFIX", s)
	}
}

// openSource opens the source a URL names.
func openSource(ctx context.Context, u string, logger *slog.Logger) (lakelink.Source, error) {
	ep, err := parseSource(u)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", redactURL(u), err)
	}
	switch ep.backend {
	case backendSQLite:
		return sqlite.Open(ctx, ep.path, logger)
	case backendPostgres:
		return postgres.Open(ctx, ep.path, logger)
	}
	return nil, fmt.Errorf("source %s: no backend %q", redactURL(u), ep.backend)
}

// lakeUse says what a command does with a lake.
type lakeUse int

const (
	lakeExport lakeUse = iota // run, demo: created when missing, written
	lakeRead                  // status, unlink: must exist, only read
	lakeUpdate                // resync: must exist, written
)

// openLake opens the lake a URL names for use: a lake that is not there
// yet is created for an export and an error otherwise; a lake only read is
// probed by listing, not writing.
func openLake(ctx context.Context, u string, use lakeUse) (lakelink.Lake, error) {
	ep, err := parseLake(u)
	if err != nil {
		return nil, fmt.Errorf("lake %s: %w", redactURL(u), err)
	}
	switch ep.backend {
	case backendFile:
		if use != lakeExport {
			if _, err := os.Stat(ep.path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("lake %s: no such folder", ep.path)
			}
		}
		return file.Open(ctx, ep.path)
	case backendS3:
		cfg := ep.s3
		cfg.ReadOnly = use == lakeRead
		return lakes3.Open(ctx, cfg)
	case backendAzure:
		cfg := ep.azure
		cfg.ReadOnly = use == lakeRead
		return azure.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("lake %s: no backend %q", redactURL(u), ep.backend)
}

// secretParam matches query parameter names that may carry a secret.
var secretParam = regexp.MustCompile(`(?i)pass|secret|token|key|sig|credential|auth`)

// secretKeyword matches key=value secrets in a keyword/value connection
// string (host=... password=...).
var secretKeyword = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|sslpassword)\s*=\s*('[^']*'|\S+)`)

// redactURL returns u without credentials, for logs, status and errors:
// user info is dropped, and query parameters that may hold secrets are
// replaced with "redacted".
func redactURL(u string) string {
	if urlScheme(u) == "" {
		return secretKeyword.ReplaceAllString(u, "$1=redacted")
	}
	p, err := url.Parse(u)
	if err != nil {
		// Don't echo what can't be parsed: it may hold a password.
		return urlScheme(u) + "://(unparsable URL)"
	}
	p.User = nil
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			if secretParam.MatchString(k) {
				q.Set(k, "redacted")
			}
		}
		p.RawQuery = q.Encode()
	}
	return p.String()
}
