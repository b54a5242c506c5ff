package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestObjSecrets checks issue 5's acceptance 7 on each object lake: every
// line that lakelink writes to stdout or stderr (logs at debug level
// included) in `run --once`, a `run` stopped by SIGTERM, `status`,
// `status --json`, `tables`, and runs and statuses with a wrong account
// key, connection string or S3 secret that fail, and every object it
// writes into the lake, hold neither the Azure account key, the
// connection string, the S3 secret, nor the wrong ones, as they are or
// URL-escaped.
func TestObjSecrets(t *testing.T) { forEachKind(t, objSecrets) }

// secret is a value that must never be shown, and what it is.
type secret struct{ what, value string }

// secretCmd is one lakelink command of the secrets test.
type secretCmd struct {
	name     string
	env      []string // NAME=VALUE to set, or NAME= to unset
	args     []string
	wantFail bool
	live     bool // a run that lives until SIGTERM
}

// withEnv returns the environment with each NAME=VALUE of over applied
// (an empty VALUE unsets NAME).
func withEnv(over []string) []string {
	drop := map[string]bool{}
	var add []string
	for _, kv := range over {
		name, v, _ := strings.Cut(kv, "=")
		drop[name] = true
		if v != "" {
			add = append(add, kv)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			env = append(env, kv)
		}
	}
	return append(env, add...)
}

// runSecretCmd runs one command and returns its exit code and its stdout
// and stderr together.
func runSecretCmd(t *testing.T, c secretCmd) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lakelinkBin(t), c.args...)
	cmd.Env = withEnv(c.env)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.live {
		time.Sleep(3 * time.Second)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = -1
	}
	return code, out.Bytes()
}

func objSecrets(t *testing.T, srv objServer) {
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	mustExec(t, db, `CREATE TABLE account (id INTEGER PRIMARY KEY, createdon DATETIME, name TEXT)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
		 INSERT INTO account SELECT i, '2024-01-01 10:00:00', 'name ' || i FROM n`)
	l := newObjLake(t, srv)

	b := make([]byte, 64)
	rand.Read(b)
	wrongKey := base64.StdEncoding.EncodeToString(b)
	wrongSecret := "wrong-secret-" + hex.EncodeToString(b[:12])
	secrets := []secret{{"the S3 secret", os.Getenv("AWS_SECRET_ACCESS_KEY")}, {"the wrong S3 secret", wrongSecret}, {"the wrong account key", wrongKey}}
	var wrongEnv []string
	runArgs := []string{"--log-level", "debug", "run", "--source", sourceURL(dbPath), "--lake", l.url, "--commit-interval", "200ms"}
	status := []string{"--log-level", "debug", "status", "--lake", l.url}
	cmds := []secretCmd{
		{name: "run --once", args: append(append([]string{}, runArgs...), "--once")},
		{name: "run until SIGTERM", args: runArgs, live: true},
		{name: "status", args: status},
		{name: "status --json", args: append(append([]string{}, status...), "--json")},
		{name: "tables", args: []string{"--log-level", "debug", "tables", "--source", sourceURL(dbPath)}},
		{name: "tables --json", args: []string{"--log-level", "debug", "tables", "--source", sourceURL(dbPath), "--json"}},
	}
	switch srv.kind {
	case "s3":
		if os.Getenv("AWS_SECRET_ACCESS_KEY") == "" {
			t.Fatal("AWS_SECRET_ACCESS_KEY is not set: nothing to look for")
		}
		wrongEnv = []string{"AWS_SECRET_ACCESS_KEY=" + wrongSecret}
	case "azure":
		key, conn := os.Getenv("AZURE_STORAGE_KEY"), os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
		if key == "" || conn == "" {
			t.Fatal("AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING is not set: nothing to look for")
		}
		wrongConn := strings.ReplaceAll(conn, key, wrongKey)
		secrets = append(secrets, secret{"the account key", key}, secret{"the connection string", conn}, secret{"the wrong connection string", wrongConn})
		wrongEnv = []string{"AZURE_STORAGE_KEY=" + wrongKey, "AZURE_STORAGE_CONNECTION_STRING=" + wrongConn}
		cmds = append(cmds,
			secretCmd{name: "run --once with the connection string only", env: []string{"AZURE_STORAGE_KEY="}, args: append(append([]string{}, runArgs...), "--once")},
			secretCmd{name: "run --once with a wrong connection string only", env: []string{"AZURE_STORAGE_KEY=", "AZURE_STORAGE_CONNECTION_STRING=" + wrongConn}, args: append(append([]string{}, runArgs...), "--once"), wantFail: true},
		)
	}
	cmds = append(cmds,
		secretCmd{name: "run --once with wrong credentials", env: wrongEnv, args: append(append([]string{}, runArgs...), "--once"), wantFail: true},
		secretCmd{name: "run with wrong credentials", env: wrongEnv, args: runArgs, wantFail: true},
		secretCmd{name: "status with wrong credentials", env: wrongEnv, args: status, wantFail: true},
		secretCmd{name: "status --json with wrong credentials", env: wrongEnv, args: append(append([]string{}, status...), "--json"), wantFail: true},
	)

	// Each secret as it is and URL-escaped (a key has '+', '/' and '=').
	var needles []secret
	for _, s := range secrets {
		if len(s.value) < 8 {
			t.Fatalf("%s is too short to look for: %q", s.what, s.value)
		}
		seen := map[string]bool{}
		for _, v := range []string{s.value, url.QueryEscape(s.value), url.PathEscape(s.value)} {
			if !seen[v] {
				seen[v] = true
				needles = append(needles, secret{s.what, v})
			}
		}
	}
	// hits says where out shows a secret.
	hits := func(out []byte) []string {
		var found []string
		for _, n := range needles {
			if i := bytes.Index(out, []byte(n.value)); i >= 0 {
				found = append(found, fmt.Sprintf("line %d shows %s", 1+bytes.Count(out[:i], []byte("\n")), n.what))
			}
		}
		return found
	}
	for _, n := range needles { // the search finds what it looks for
		if len(hits([]byte("a\nb "+n.value+"\n"))) == 0 {
			t.Fatalf("self-check: %s not found in a text that holds it", n.what)
		}
	}
	find := func(where string, out []byte) {
		t.Helper()
		for _, h := range hits(out) {
			t.Errorf("%s: %s", where, h)
		}
	}
	lines := 0
	for _, c := range cmds {
		code, out := runSecretCmd(t, c)
		lines += bytes.Count(out, []byte("\n"))
		switch {
		case c.wantFail && code == 0:
			t.Errorf("%s: exit 0, want a failure; output:\n%s", c.name, out)
		case !c.wantFail && code != 0:
			t.Errorf("%s: exit %d; output:\n%s", c.name, code, out)
		case c.wantFail && len(bytes.TrimSpace(out)) == 0:
			t.Errorf("%s: failed without a word", c.name)
		}
		if c.wantFail {
			t.Logf("%s: exit %d: %s", c.name, code, shorten(strings.TrimSpace(string(out)), 400))
		}
		find(c.name, out)
	}
	// What lakelink wrote into the lake: model.json, the state, the data.
	mirror := l.mirror(t)
	objects := 0
	err := filepath.WalkDir(mirror, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		objects++
		rel, _ := filepath.Rel(mirror, path)
		find("lake object "+filepath.ToSlash(rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if objects < 3 {
		t.Errorf("the lake holds %d objects after run --once: nothing was exported", objects)
	}
	t.Logf("%d commands (%d output lines) and %d lake objects searched for %d secrets (%d forms)", len(cmds), lines, objects, len(secrets), len(needles))
}
