package tests

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lakelink/lakelink/internal/testenv"
)

// TestPGOnceWaitsForBacklog: `run --once` exports every change committed
// before it started, even when PostgreSQL takes longer than the idle exit
// to decode the backlog (one 300,000-row transaction sends nothing until
// it is decoded whole).
func TestPGOnceWaitsForBacklog(t *testing.T) {
	db, conn, dir, lake := pgSetup(t, "once", "CREATE TABLE big (id int8 PRIMARY KEY, createdon timestamptz NOT NULL, n int8)",
		"INSERT INTO big SELECT g, now(), g FROM generate_series(1, 10) g")
	args := []string{"--source", db.sourceURL(), "--lake", lakeURL(lake), "--table", "big"}
	mustRunOnce(t, dir, args...)
	const rows = 300000
	start := time.Now()
	mustPGExec(t, conn, "INSERT INTO big SELECT g, now(), g FROM generate_series(11, 300000) g")
	t.Logf("one transaction of %d rows committed in %s", rows-10, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	mustRunOnce(t, dir, args...)
	st := tryReadState(lake)
	if st == nil || st.Tables["big"] == nil {
		t.Fatal("no export state for big")
	}
	t.Logf("run --once took %s", time.Since(start).Round(time.Millisecond))
	if got := st.Tables["big"].Rows; got != rows {
		t.Errorf("after run --once the lake holds %d rows of big, want %d: it exited before the backlog was decoded", got, rows)
	}
}

// pgSetup skips under -short, makes a database of its own for the test
// (lakelink_<what>_<random>) and runs stmts in it, and gives a work folder
// and a lake folder in it. The lakelink binary is built.
func pgSetup(t *testing.T, what string, stmts ...string) (db *pgDB, conn *pgx.Conn, dir, lake string) {
	t.Helper()
	testenv.Slow(t)
	db = newPGDB(t, testenv.Need(t, "PG_TEST_DSN"), what)
	lakelinkBin(t)
	conn = mustPGConnect(t, db.dsn)
	mustPGExec(t, conn, stmts...)
	dir = t.TempDir()
	return db, conn, dir, filepath.Join(dir, "lake")
}
