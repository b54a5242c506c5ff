package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/source/postgres"
	"github.com/lakelink/lakelink/source/sourcetest"
	"github.com/lakelink/lakelink/tests/lakecheck"
)

// The status document's slot, from what the source reports (the status
// formatting tests live here beside the command that added the slot).
func TestSlotStatusDoc(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	commit := now.Add(-2500 * time.Millisecond)
	live := postgres.SlotStatus{Slot: "lakelink_default", Exists: true, Publication: true, Active: true, ActivePID: 4242,
		WALStatus: "reserved", Confirmed: 0x16B3748, Current: 0x1_00000010, RetainedBytes: 4096, LagBytes: 100, SafeWALBytes: -1}
	caught := live
	caught.LagBytes = 0
	missing := postgres.SlotStatus{Slot: "lakelink_default", Current: 0x16B3748}
	tests := []struct {
		name       string
		s          postgres.SlotStatus
		err        error
		lastCommit time.Time
		want       slotJSON
		lagSeconds float64 // -1: null
	}{
		{"lagging", live, nil, commit, slotJSON{Name: "lakelink_default", Exists: true, Publication: true, Active: true, ActivePID: 4242,
			WALStatus: "reserved", ConfirmedLSN: "0/16B3748", ConfirmedPosition: 0x16B3748, CurrentLSN: "1/10",
			RetainedBytes: 4096, LagBytes: 100, SafeWALBytes: -1}, 2.5},
		{"caught up", caught, nil, commit, slotJSON{Name: "lakelink_default", Exists: true, Publication: true, Active: true, ActivePID: 4242,
			WALStatus: "reserved", ConfirmedLSN: "0/16B3748", ConfirmedPosition: 0x16B3748, CurrentLSN: "1/10",
			RetainedBytes: 4096, SafeWALBytes: -1}, 0},
		{"lagging, no commit yet", live, nil, time.Time{}, slotJSON{Name: "lakelink_default", Exists: true, Publication: true, Active: true, ActivePID: 4242,
			WALStatus: "reserved", ConfirmedLSN: "0/16B3748", ConfirmedPosition: 0x16B3748, CurrentLSN: "1/10",
			RetainedBytes: 4096, LagBytes: 100, SafeWALBytes: -1}, -1},
		{"missing", missing, nil, commit, slotJSON{Name: "lakelink_default", CurrentLSN: "0/16B3748"}, -1},
		{"source down", postgres.SlotStatus{}, errors.New("postgres: connect to postgres://u@h:5432/db: refused"), commit,
			slotJSON{Error: "postgres: connect to postgres://u@h:5432/db: refused"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slotStatus(tt.s, tt.err, tt.lastCommit, now)
			lag := -1.0
			if got.LagSeconds != nil {
				lag = *got.LagSeconds
			}
			got.LagSeconds = nil
			if *got != tt.want || lag != tt.lagSeconds {
				t.Errorf("slotStatus = %+v, lag %v s\nwant      %+v, lag %v s", *got, lag, tt.want, tt.lagSeconds)
			}
		})
	}
}

// printStatus shows the slot in the header: what matters first (missing,
// lost, in use), then the numbers.
func TestPrintSlot(t *testing.T) {
	two := 2.0
	tests := []struct {
		name string
		slot *slotJSON
		want []string
		not  []string
	}{
		{"none asked", nil, nil, []string{"slot", "lag"}},
		{"active", &slotJSON{Name: "lakelink_x", Exists: true, Publication: true, Active: true, ActivePID: 77, WALStatus: "reserved",
			ConfirmedLSN: "0/16B3748", ConfirmedPosition: 23803720, RetainedBytes: 16 << 20, LagBytes: 1536, LagSeconds: &two, SafeWALBytes: -1},
			[]string{"slot      lakelink_x, active (server process 77), wal_status reserved, publication lakelink_x",
				"confirmed 0/16B3748 (position 23803720)", "lag       1.5 KiB, 2.0 s", "retained  16.0 MiB of WAL; no limit (max_slot_wal_keep_size = -1)"},
			[]string{"LOST"}},
		{"lost", &slotJSON{Name: "lakelink_x", Exists: true, Publication: true, WALStatus: "lost", Lost: true, LostReason: "it is lost (wal_status lost)", SafeWALBytes: 0},
			[]string{"inactive", "LOST: it is lost (wal_status lost); the link can't resume", "copied again", "retained  0 B of WAL; 0 B more before the slot is lost"}, nil},
		{"limited", &slotJSON{Name: "lakelink_x", Exists: true, WALStatus: "extended", SafeWALBytes: 3 << 30},
			[]string{"no publication", "3.0 GiB more before the slot is lost"}, nil},
		{"missing", &slotJSON{Name: "lakelink_x"}, []string{"slot      lakelink_x does not exist (no publication)"}, []string{"lag", "retained"}},
		{"error", &slotJSON{Error: "connection refused"}, []string{"slot      unknown: connection refused"}, []string{"lag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printStatus(&b, statusJSON{Link: "x", Slot: tt.slot}); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("status does not show %q:\n%s", w, b.String())
				}
			}
			for _, w := range tt.not {
				if strings.Contains(b.String(), w) {
					t.Errorf("status shows %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestShowBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {16 << 20, "16.0 MiB"}, {5 << 40, "5.0 TiB"}, {5 << 50, "5120.0 TiB"}} {
		if got := showBytes(tt.n); got != tt.want {
			t.Errorf("showBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestUnlinkUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"unlink"}, "--source and --lake are required"},
		{[]string{"unlink", "--source", "a.db"}, "--lake is required"},
		{[]string{"unlink", "--lake", "/tmp/x"}, "--source is required"},
		{[]string{"unlink", "--source", "ftp://h/a", "--lake", "/tmp/x"}, `scheme "ftp" not supported`},
		{[]string{"unlink", "--source", "a.db", "--lake", "/tmp/x", "--link", "Bad-Name"}, `--link "Bad-Name"`},
		{[]string{"unlink", "--source", "a.db", "--lake", "/tmp/x", "extra"}, `unexpected argument "extra"`},
		{[]string{"status", "--lake", "/tmp/x", "--source", "sqlite:///tmp/a.db"}, "only a PostgreSQL source"},
		{[]string{"status", "--lake", "/tmp/x", "--source", "postgres://u:pw-in-url@h/db?sslmode=bogus"}, "sslmode"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help") {
			t.Errorf("%q: exit code %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
		if strings.Contains(stderr, "pw-in-url") {
			t.Errorf("%q: stderr shows the password: %q", tt.args, stderr)
		}
	}
}

// lakeFiles returns every file of a lake folder with its content, but
// lakelink's own state (which unlink may change).
func lakeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(filepath.ToSlash(rel), "Microsoft.Athena.TrickleFeedService/lakelink/") {
			return nil
		}
		data, err := os.ReadFile(path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatalf("list lake %s: %v", dir, err)
	}
	return files
}

// checkReadable checks that model.json is valid and names files that are
// there, and that the lake is byte for byte what it was.
func checkReadable(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	m, _ := lakecheck.ReadModel(t, dir)
	n := 0
	for _, e := range m.Entities {
		for _, p := range e.Partitions {
			path, err := lakecheck.LocationPath(p.Location)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("model.json names %s of %s, which is not there: %v", p.Location, e.Name, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Errorf("model.json names no partition")
	}
	after := lakeFiles(t, dir)
	for name, data := range before {
		if after[name] != data {
			t.Errorf("unlink changed or removed the lake's %s", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("unlink added %s to the lake", name)
		}
	}
}

// SQLite: unlink drops the link's triggers and change-log tables; the
// application writes on; the lake stays as it was.
func TestUnlinkSQLite(t *testing.T) {
	dbPath := makeDB(t)
	lakeDir := filepath.Join(t.TempDir(), "lake")
	if code, _, stderr := runCLI(t, "run", "--source", dbPath, "--lake", lakeDir, "--table", "item", "--link", "crm", "--once"); code != exitOK {
		t.Fatalf("run --once: exit code %d\n%s", code, stderr)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tracking := func() (triggers, tables int) {
		t.Helper()
		if err := db.QueryRow(`SELECT count(*) FILTER (WHERE type = 'trigger'), count(*) FILTER (WHERE type = 'table')
			FROM sqlite_schema WHERE name LIKE '\_lakelink\_crm\_%' ESCAPE '\'`).Scan(&triggers, &tables); err != nil {
			t.Fatal(err)
		}
		return triggers, tables
	}
	if tr, tb := tracking(); tr == 0 || tb == 0 {
		t.Fatalf("after run: %d triggers and %d tables of link crm; the test needs some", tr, tb)
	}
	before := lakeFiles(t, lakeDir)

	// Another link's name is refused, and nothing is dropped.
	code, _, stderr := runCLI(t, "unlink", "--source", dbPath, "--lake", lakeDir, "--link", "other")
	if code != exitFailure || !strings.Contains(stderr, `holds the export of link "crm"`) {
		t.Errorf("unlink --link other: exit code %d, stderr %q; want 1 naming link crm", code, stderr)
	}
	if tr, _ := tracking(); tr == 0 {
		t.Fatalf("unlink --link other dropped link crm's triggers")
	}

	// Without --link, the lake's link.
	code, stdout, stderr := runCLI(t, "unlink", "--source", "sqlite://"+dbPath, "--lake", lakeDir)
	if code != exitOK || !strings.Contains(stdout, "link crm: removed the change-tracking triggers") {
		t.Fatalf("unlink: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if tr, tb := tracking(); tr != 0 || tb != 0 {
		t.Errorf("after unlink: %d triggers and %d tables of link crm are left", tr, tb)
	}
	for _, q := range []string{
		`INSERT INTO item VALUES (10, 'after', 1, '2024-01-01 00:00:00')`,
		`UPDATE item SET name = 'changed' WHERE id = 1`,
		`DELETE FROM item WHERE id = 2`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Errorf("the application can't write after unlink: %s: %v", q, err)
		}
	}
	checkReadable(t, lakeDir, before)

	// Unlinking again finds nothing to drop and still succeeds.
	if code, _, stderr := runCLI(t, "unlink", "--source", dbPath, "--lake", lakeDir); code != exitOK {
		t.Errorf("second unlink: exit code %d\n%s", code, stderr)
	}
	// A lake without an export: the link is --link's, or "default".
	code, stdout, stderr = runCLI(t, "unlink", "--source", dbPath, "--lake", t.TempDir())
	if code != exitOK || !strings.Contains(stdout, `holds no lakelink export; unlinking link "default"`) {
		t.Errorf("unlink with an empty lake: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// pgDatabase creates a database of its own on the server at PG_TEST_DSN and
// returns its URL with a password in it (the test server trusts loopback,
// so it is ignored, but lakelink must never show it) and a connection to it.
func pgDatabase(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	dsn := testenv.Need(t, "PG_TEST_DSN")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	name := sourcetest.Name("lakelink_unlink")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close(ctx)
		// A slot keeps its database from being dropped; a stopped stream's
		// server process may hold it for a moment.
		for range 200 {
			if _, err := admin.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", name); err != nil {
				t.Errorf("drop the slots of %s: %v", name, err)
			}
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", name).Scan(&n); err != nil || n == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PG_TEST_DSN: %v", err)
	}
	u.Path = "/" + name
	u.User = url.UserPassword(u.User.Username(), pgSecret)
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return u.String(), conn
}

// pgSecret is the password in the test's source URLs.
const pgSecret = "s3cret-Pw"

// noSecret fails the test when lakelink's output shows the password.
func noSecret(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		if strings.Contains(o, pgSecret) {
			t.Errorf("%s shows the password:\n%s", what, o)
		}
	}
}

// PostgreSQL: status shows the slot; unlink refuses while lakelink streams
// from it, then drops slot and publication and leaves the lake readable;
// resync of every table links the same lake again.
func TestUnlinkPostgres(t *testing.T) {
	testenv.Slow(t)
	ctx := context.Background()
	src, db := pgDatabase(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE item (id int PRIMARY KEY, name text, createdon timestamp)`)
	exec(`INSERT INTO item SELECT g, 'n' || g, timestamp '2021-01-01' + g * interval '40 days' FROM generate_series(1, 30) g`)
	link := sourcetest.Name("u")
	slot := "lakelink_" + link
	lakeDir := filepath.Join(t.TempDir(), "lake")
	runArgs := []string{"run", "--source", src, "--lake", lakeDir, "--link", link, "--table", "item"}
	code, stdout, stderr := runCLI(t, append(runArgs, "--once")...)
	noSecret(t, "run --once", stdout, stderr)
	if code != exitOK {
		t.Fatalf("run --once: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	exec(`INSERT INTO item VALUES (100, 'unconfirmed', '2024-05-06')`) // WAL the slot has not confirmed

	code, stdout, stderr = runCLI(t, "status", "--lake", lakeDir, "--source", src, "--json")
	noSecret(t, "status --json", stdout, stderr)
	var doc statusJSON
	if code != exitOK || json.Unmarshal([]byte(stdout), &doc) != nil || doc.Slot == nil {
		t.Fatalf("status --source --json: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	s := doc.Slot
	if s.Name != slot || !s.Exists || !s.Publication || s.Active || s.Lost || s.Error != "" || s.ConfirmedPosition == 0 ||
		s.ConfirmedPosition > doc.Position || s.LagBytes <= 0 || s.RetainedBytes < s.LagBytes || s.LagSeconds == nil || *s.LagSeconds < 0 {
		t.Errorf("status --json slot = %+v (lake position %d); want %s there, inactive, confirmed at or before the lake's position, lagging", *s, doc.Position, slot)
	}
	code, stdout, _ = runCLI(t, "status", "--lake", lakeDir, "--source", src)
	if code != exitOK || !strings.Contains(stdout, "slot      "+slot+", inactive") || !strings.Contains(stdout, "retained  ") {
		t.Errorf("status --source: exit code %d:\n%s", code, stdout)
	}

	// A lake exported from another cluster is refused, and nothing is
	// dropped.
	statePath := filepath.Join(lakeDir, "Microsoft.Athena.TrickleFeedService", "lakelink", "state.json")
	state, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(state, &fields); err != nil || fields["sourceId"] == nil {
		t.Fatalf("state.json records no sourceId (%v):\n%s", err, state)
	}
	fields["sourceId"] = "42"
	other, _ := json.Marshal(fields)
	if err := os.WriteFile(statePath, other, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "unlink", "--source", src, "--lake", lakeDir)
	if code != exitFailure || !strings.Contains(stderr, "another database instance") || !strings.Contains(stderr, "nothing dropped") {
		t.Errorf("unlink of another cluster's lake: exit code %d, stderr %q; want 1 saying so", code, stderr)
	}
	if err := os.WriteFile(statePath, state, 0o644); err != nil {
		t.Fatal(err)
	}

	// While lakelink streams from the slot, unlink refuses and drops nothing.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var runLog bytes.Buffer
	go func() { done <- run(runCtx, runArgs, io.Discard, &runLog) }()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
	}()
	active := func() bool {
		var a bool
		err := db.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&a)
		return err == nil && a
	}
	for deadline := time.Now().Add(30 * time.Second); !active(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("slot %s not active 30 s after run started; its log:\n%s", slot, runLog.String())
		}
	}
	code, stdout, stderr = runCLI(t, "unlink", "--source", src, "--lake", lakeDir)
	noSecret(t, "unlink", stdout, stderr)
	if code != exitFailure || !strings.Contains(stderr, "in use by a running lakelink") || !strings.Contains(stderr, "nothing was dropped") {
		t.Errorf("unlink while running: exit code %d, stderr %q; want 1 saying the slot is in use", code, stderr)
	}
	exists := func(q string) bool {
		t.Helper()
		var ok bool
		if err := db.QueryRow(ctx, "SELECT EXISTS ("+q+")", slot).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	const slotQ, pubQ = "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", "SELECT 1 FROM pg_publication WHERE pubname = $1"
	if !exists(slotQ) || !exists(pubQ) {
		t.Fatalf("unlink while running dropped the slot or the publication")
	}
	stop()
	stopped = true
	if code := <-done; code != exitOK {
		t.Errorf("run: exit code %d after cancel; log:\n%s", code, runLog.String())
	}

	before := lakeFiles(t, lakeDir)
	code, stdout, stderr = runCLI(t, "unlink", "--source", src, "--lake", lakeDir)
	noSecret(t, "unlink", stdout, stderr)
	if code != exitOK || !strings.Contains(stdout, "dropped replication slot "+slot+" and dropped publication "+slot) {
		t.Fatalf("unlink: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if exists(slotQ) || exists(pubQ) {
		t.Errorf("after unlink: slot there %v, publication there %v; want both gone", exists(slotQ), exists(pubQ))
	}
	checkReadable(t, lakeDir, before)
	code, stdout, _ = runCLI(t, "status", "--lake", lakeDir, "--source", src)
	if code != exitOK || !strings.Contains(stdout, "slot      "+slot+" does not exist (no publication)") {
		t.Errorf("status after unlink: exit code %d:\n%s", code, stdout)
	}
	code, stdout, stderr = runCLI(t, "unlink", "--source", src, "--lake", lakeDir)
	if code != exitOK || !strings.Contains(stdout, "already gone") {
		t.Errorf("second unlink: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// The same lake can't resume (the changes since the unlink were never
	// recorded) until every table is marked for a fresh copy.
	exec(`INSERT INTO item VALUES (101, 'while unlinked', '2024-05-07')`)
	if code, stdout, stderr := runCLI(t, append(runArgs, "--once")...); code == exitOK {
		t.Errorf("run --once after unlink resumed silently:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "resync", "--lake", lakeDir, "--table", "item"); code != exitOK {
		t.Fatalf("resync: exit code %d\n%s", code, stderr)
	}
	if code, stdout, stderr := runCLI(t, append(runArgs, "--once")...); code != exitOK {
		t.Fatalf("run --once after resync: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "status", "--lake", lakeDir, "--json")
	doc = statusJSON{}
	if code != exitOK || json.Unmarshal([]byte(stdout), &doc) != nil || len(doc.Tables) != 1 || doc.Tables[0].Rows != 32 {
		t.Errorf("status after resync and run: exit code %d, want 32 rows:\n%s", code, stdout)
	}
	if !exists(slotQ) {
		t.Errorf("run after resync made no slot %s", slot)
	}
}

// status with an unreachable PostgreSQL source still shows the lake, says
// why the slot is unknown, exits 1, and never shows the password.
func TestStatusSourceDown(t *testing.T) {
	dbPath := makeDB(t)
	lakeDir := filepath.Join(t.TempDir(), "lake")
	if code, _, stderr := runCLI(t, "run", "--source", dbPath, "--lake", lakeDir, "--table", "item", "--once"); code != exitOK {
		t.Fatalf("run --once: exit code %d\n%s", code, stderr)
	}
	src := "postgres://lakelink:" + pgSecret + "@127.0.0.1:1/app?sslmode=disable&connect_timeout=5"
	for _, asJSON := range []bool{false, true} {
		args := []string{"status", "--lake", lakeDir, "--source", src}
		if asJSON {
			args = append(args, "--json")
		}
		code, stdout, stderr := runCLI(t, args...)
		noSecret(t, "status", stdout, stderr)
		if code != exitFailure || !strings.Contains(stdout, "item") || !strings.Contains(stderr, "127.0.0.1") {
			t.Errorf("%q: exit code %d\nstdout:\n%s\nstderr:\n%s\nwant 1, the lake's tables, and the error naming the server", args, code, stdout, stderr)
		}
		if asJSON {
			var doc statusJSON
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Slot == nil || doc.Slot.Error == "" {
				t.Errorf("status --json with the source down: slot %+v, %v; want an error", doc.Slot, err)
			}
		} else if !strings.Contains(stdout, "slot      unknown: ") {
			t.Errorf("status with the source down does not say the slot is unknown:\n%s", stdout)
		}
	}
}
