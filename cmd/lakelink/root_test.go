package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the command line and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
		hint string // the --help to try
	}{
		{"no command", nil, "no command given", "'lakelink --help'"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "'lakelink --help'"},
		{"unknown flag", []string{"run", "--bogus"}, "unknown flag: --bogus", "'lakelink run --help'"},
		{"unknown global flag value", []string{"--log-level", "loud", "status", "--lake", "/x"}, `--log-level "loud"`, "'lakelink status --help'"},
		{"bad log format", []string{"--log-format", "xml", "tables", "--source", "a.db"}, `--log-format "xml"`, "--help"},
		{"run without source and lake", []string{"run"}, "--source and --lake are required", "'lakelink run --help'"},
		{"run without lake", []string{"run", "--source", "a.db"}, "--lake is required", "'lakelink run --help'"},
		{"run without source", []string{"run", "--lake", "/tmp/x"}, "--source is required", "'lakelink run --help'"},
		{"run bad source scheme", []string{"run", "--source", "ftp://h/a.db", "--lake", "/tmp/x"}, `scheme "ftp" not supported`, "--help"},
		{"run bad postgres url", []string{"run", "--source", "postgres://u:secret@h/db?sslmode=bogus", "--lake", "/tmp/x"}, "sslmode", "--help"},
		{"run abfs not yet", []string{"run", "--source", "a.db", "--lake", "abfs://acct/container"}, "not supported yet", "--help"},
		{"run abfss not yet", []string{"run", "--source", "a.db", "--lake", "abfss://c@a.dfs.core.windows.net/"}, "not supported yet", "--help"},
		{"run relative sqlite URL", []string{"run", "--source", "sqlite://a.db", "--lake", "/tmp/x"}, "sqlite:///", "--help"},
		{"run bad mode", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--mode", "upsert"}, `--mode "upsert"`, "--help"},
		{"run bad partition", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--partition", "week"}, `--partition "week"`, "--help"},
		{"run bad duration", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--commit-interval", "soon"}, "invalid argument", "--help"},
		{"run zero interval", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--commit-interval", "0s"}, "must be positive", "--help"},
		{"run bad retention", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--snapshot-retention", "0"}, "at least 1", "--help"},
		{"run bad link", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--link", "My-Link"}, `--link "My-Link"`, "--help"},
		{"run table twice", []string{"run", "--source", "a.db", "--lake", "/tmp/x", "--table", "a", "--table", "a"}, "given twice", "--help"},
		{"run config and source", []string{"run", "--config", "x.yaml", "--source", "a.db"}, "--source can't be used with --config", "--help"},
		{"run missing config", []string{"run", "--config", "/nonexistent/lakelink.yaml"}, "no such file", "--help"},
		{"run positional", []string{"run", "a.db"}, `unexpected argument "a.db"`, "--help"},
		{"tables without source", []string{"tables"}, "--source is required", "'lakelink tables --help'"},
		{"status without lake", []string{"status"}, "--lake is required", "'lakelink status --help'"},
		{"status bad lake", []string{"status", "--lake", "ftp://x/y"}, `scheme "ftp" not supported`, "--help"},
		{"demo bad duration", []string{"demo", "--duration", "-1s"}, "must be positive", "'lakelink demo --help'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Fatalf("lakelink %q: exit code %d, want %d; stderr:\n%s", tt.args, code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("lakelink %q: stderr %q does not mention %q", tt.args, stderr, tt.want)
			}
			if !strings.Contains(stderr, tt.hint) {
				t.Errorf("lakelink %q: stderr %q does not suggest %q", tt.args, stderr, tt.hint)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("lakelink %q: stderr %q shows a password", tt.args, stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"run", "--help"}, {"tables", "--help"}, {"status", "--help"}, {"demo", "--help"}, {"help", "run"}} {
		code, stdout, stderr := runCLI(t, cmd...)
		if code != exitOK {
			t.Errorf("lakelink %q: exit code %d, want 0; stderr:\n%s", cmd, code, stderr)
		}
		if !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "lakelink ") {
			t.Errorf("lakelink %q: help has no example:\n%s", cmd, stdout)
		}
	}
}

func TestFailureExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing database", []string{"tables", "--source", dir + "/missing.db"}, "missing.db"},
		{"status of no lake", []string{"status", "--lake", dir + "/nolake"}, "no such folder"},
		{"status of empty lake", []string{"status", "--lake", dir}, "no lakelink export"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitFailure {
				t.Fatalf("lakelink %q: exit code %d, want %d; stderr:\n%s", tt.args, code, exitFailure, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("lakelink %q: stderr %q does not mention %q", tt.args, stderr, tt.want)
			}
			if strings.Contains(stderr, "--help") {
				t.Errorf("lakelink %q: a failure that is not a usage error suggests --help: %q", tt.args, stderr)
			}
		})
	}
}
