package main

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		url, path, err string
	}{
		{"sqlite:///srv/app.db", "/srv/app.db", ""},
		{"SQLITE:///srv/app.db", "/srv/app.db", ""},
		{"/srv/app.db", "/srv/app.db", ""},
		{"app.db", "app.db", ""},
		{"", "", "empty"},
		{"sqlite://relative/app.db", "", "sqlite:///"},
		{"ftp://host/app.db", "", `scheme "ftp" not supported`},
		{"postgres://user:pw@host/db", "postgres://user:pw@host/db", ""},
		{"postgresql://host/db?sslmode=bogus", "", "sslmode"},
	}
	for _, tt := range tests {
		ep, err := parseSource(tt.url)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseSource(%q): %v", tt.url, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseSource(%q) = %v, want an error with %q", tt.url, err, tt.err)
		case tt.err == "" && urlScheme(tt.url) == "postgres" && (ep.path != tt.path || ep.backend != backendPostgres):
			t.Errorf("parseSource(%q) = %+v, want postgres %q", tt.url, ep, tt.path)
		case tt.err == "" && urlScheme(tt.url) != "postgres" && (ep.path != tt.path || ep.backend != backendSQLite):
			t.Errorf("parseSource(%q) = %+v, want sqlite %q", tt.url, ep, tt.path)
		}
	}
}

func TestParseLake(t *testing.T) {
	tests := []struct {
		url, path, err string
	}{
		{"file:///srv/lake", "/srv/lake", ""},
		{"file://localhost/srv/lake", "/srv/lake", ""},
		{"/srv/lake/", "/srv/lake", ""},
		{"", "", "empty"},
		{"file://otherhost/srv/lake", "", "host"},
		{"ftp://host/lake", "", `scheme "ftp" not supported`},
		{"azure://account/container/prefix", "", ""},
		{"abfss://container@account.dfs.core.windows.net/p", "", "not supported yet"},
		{"s3://bucket/prefix?endpoint=http://127.0.0.1:7070", "", ""},
		{"s3://Bad_Bucket/prefix", "", "bucket"},
	}
	for _, tt := range tests {
		ep, err := parseLake(tt.url)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseLake(%q): %v", tt.url, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseLake(%q) = %v, want an error with %q", tt.url, err, tt.err)
		case tt.err == "" && strings.HasPrefix(tt.url, "s3:") && ep.backend != backendS3:
			t.Errorf("parseLake(%q) = %+v, want an S3 lake", tt.url, ep)
		case tt.err == "" && strings.HasPrefix(tt.url, "azure:") && ep.backend != backendAzure:
			t.Errorf("parseLake(%q) = %+v, want an Azure lake", tt.url, ep)
		case tt.err == "" && urlScheme(tt.url) != "s3" && urlScheme(tt.url) != "azure" && (ep.path != tt.path || ep.backend != backendFile):
			t.Errorf("parseLake(%q) = %+v, want file %q", tt.url, ep, tt.path)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sqlite:///srv/app.db", "sqlite:///srv/app.db"},
		{"/srv/app.db", "/srv/app.db"},
		{"postgres://alice:s3cret@db.example.com:5432/app?sslmode=require", "postgres://db.example.com:5432/app?sslmode=require"},
		{"postgres://alice@db/app?password=s3cret", "postgres://db/app?password=redacted"},
		{"azure://acct/container?sig=s3cret&sv=2020", "azure://acct/container?sig=redacted&sv=2020"},
		{"s3://bucket/p?endpoint=http://h:1&secret_key=s3cret", "s3://bucket/p?endpoint=http%3A%2F%2Fh%3A1&secret_key=redacted"},
		{"host=db user=alice password=s3cret dbname=app", "host=db user=alice password=redacted dbname=app"},
		{"postgres://alice:s3cret@db/%zz", "postgres://(unparsable URL)"},
	}
	for _, tt := range tests {
		got := redactURL(tt.in)
		if got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("redactURL(%q) = %q shows the password", tt.in, got)
		}
	}
}
