package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/source/postgres"
)

// pgBenchDB is the database the PostgreSQL benchmarks create, use and
// drop on the server that -pg-dsn names.
const pgBenchDB = "lakelink_bench"

// pgServer is the benchmark's database on a PostgreSQL server.
type pgServer struct {
	admin   *pgx.Conn     // on the database -pg-dsn names, to create and drop pgBenchDB
	pool    *pgxpool.Pool // on pgBenchDB
	dsn     string        // of pgBenchDB, as a URL (with any password the user gave)
	shown   string        // dsn without its password, for the output
	bin     string        // the folder of psql and pg_recvlogical
	version string
}

// openPG creates the benchmark database afresh (dropping one left by an
// earlier run, with its replication slots) and connects to it.
func openPG(ctx context.Context, dsn, bin string) (*pgServer, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("-pg-dsn: give the server as a URL, postgres://USER@HOST:PORT/DB?sslmode=disable")
	}
	if bin == "" {
		if bin, err = findPGBin(); err != nil {
			return nil, err
		}
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	pg := &pgServer{admin: admin, bin: bin}
	if err := pg.dropDB(ctx); err != nil {
		admin.Close(ctx)
		return nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgBenchDB); err != nil {
		admin.Close(ctx)
		return nil, fmt.Errorf("create database %s (the user of -pg-dsn needs CREATEDB): %w", pgBenchDB, err)
	}
	u.Path = "/" + pgBenchDB
	pg.dsn, pg.shown = u.String(), u.Redacted()
	if pg.pool, err = pgxpool.New(ctx, pg.dsn); err != nil {
		pg.Close(ctx)
		return nil, fmt.Errorf("connect to %s: %w", pg.shown, err)
	}
	if err := pg.pool.QueryRow(ctx, "SHOW server_version").Scan(&pg.version); err != nil {
		pg.Close(ctx)
		return nil, err
	}
	return pg, nil
}

// findPGBin returns the folder of psql and pg_recvlogical: $PG_TEST_BIN,
// else where psql is on PATH, else Debian's newest /usr/lib/postgresql/*/bin.
func findPGBin() (string, error) {
	if d := os.Getenv("PG_TEST_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("pg_recvlogical"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		return "", errors.New("no psql and pg_recvlogical found: give their folder with -pg-bin, set PG_TEST_BIN, or apt-get install -y postgresql-client")
	}
	sort.Strings(dirs) // good enough for one- and two-digit majors of one width
	return dirs[len(dirs)-1], nil
}

// dropDB drops the benchmark database and its replication slots. A slot
// whose stream just closed may stay active for a moment, so it retries.
func (pg *pgServer) dropDB(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := pg.admin.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", pgBenchDB)
		var n int
		if err == nil {
			err = pg.admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", pgBenchDB).Scan(&n)
		}
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drop the replication slots of database %s: %d still there (%v)", pgBenchDB, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := pg.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgBenchDB+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", pgBenchDB, err)
	}
	return nil
}

// Close drops the benchmark database unless keep, and disconnects.
func (pg *pgServer) Close(ctx context.Context, keep ...bool) error {
	if pg.pool != nil {
		pg.pool.Close()
	}
	var err error
	if len(keep) == 0 || !keep[0] {
		err = pg.dropDB(ctx)
	}
	pg.admin.Close(ctx)
	return err
}

// dropSlot drops a replication slot, waiting for its last stream to let go.
func (pg *pgServer) dropSlot(ctx context.Context, slot string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := pg.pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unlink drops a link's slot and publication, as lakelink unlink does.
func (pg *pgServer) unlink(ctx context.Context, link string) error {
	if err := pg.dropSlot(ctx, "lakelink_"+link); err != nil {
		return err
	}
	_, err := pg.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{"lakelink_" + link}.Sanitize())
	return err
}

// pgExecer is a pool, a connection or a transaction.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// createPGTable creates the benchmark table under another name: the six
// columns of the SQLite benchmark in PostgreSQL's types.
func createPGTable(ctx context.Context, q pgExecer, table string) error {
	id := pgx.Identifier{table}.Sanitize()
	if _, err := q.Exec(ctx, "DROP TABLE IF EXISTS "+id); err != nil {
		return err
	}
	_, err := q.Exec(ctx, "CREATE TABLE "+id+` (
	id        bigint PRIMARY KEY,
	name      text,
	amount    double precision,
	qty       integer,
	createdon timestamp,
	note      text
)`)
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// insertPGRows inserts rows first..first+n-1 in one statement (so in one
// transaction unless q is one), with the values of the SQLite generator:
// row i of the n gets createdon s.from + i*(s.to-s.from)/n.
func insertPGRows(ctx context.Context, q pgExecer, table string, first, n int, s span) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	step := s.to.Sub(s.from).Seconds() / float64(n)
	tag, err := q.Exec(ctx, `INSERT INTO `+pgx.Identifier{table}.Sanitize()+` (id, name, amount, qty, createdon, note)
SELECT i,
	'customer ' || i,
	(i % 100000) / 100.0 + 0.25,
	(i * 7919) % 1000,
	to_timestamp($3::bigint + floor((i - $1) * $4::float8)) AT TIME ZONE 'UTC',
	CASE WHEN i % 10 = 0 THEN 'a note, with a comma and "quotes"' ELSE 'plain note ' || (i % 97) END
FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS i`, first, n, s.from.Unix(), step)
	if err != nil {
		return 0, fmt.Errorf("insert %d rows into %s: %w", n, table, err)
	}
	return tag.RowsAffected(), nil
}

// buildPGTable creates table with rows 1..n over ten years, then vacuums
// (hint bits set, visibility map built) and checkpoints, so that neither
// reader pays for the load.
func buildPGTable(ctx context.Context, pg *pgServer, table string, n int) error {
	if err := createPGTable(ctx, pg.pool, table); err != nil {
		return err
	}
	const chunk = 500_000 // keeps each statement's memory modest
	for first := 1; first <= n; first += chunk {
		k := min(chunk, n-first+1)
		// Each chunk spreads over the ten years, like one statement would.
		if _, err := insertPGRows(ctx, pg.pool, table, first, k, tenYears); err != nil {
			return err
		}
	}
	if _, err := pg.pool.Exec(ctx, "VACUUM (FREEZE, ANALYZE) "+pgx.Identifier{table}.Sanitize()); err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	if _, err := pg.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// runTool runs one of PostgreSQL's programs with stdout to the file out,
// and returns how long it took and the bytes it wrote.
func runTool(ctx context.Context, out string, name string, args ...string) (time.Duration, int64, string, error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, "", err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	line := strings.Join(quoteArgs(cmd.Args), " ") + " > " + out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, 0, line, fmt.Errorf("%s: %v: %s", line, err, strings.TrimSpace(stderr.String()))
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, line, err
	}
	return took, fi.Size(), line, nil
}

// openPGEngine is one link of one PostgreSQL table into a file lake.
func openPGEngine(ctx context.Context, o options, pg *pgServer, link, table, lakeDir string, commitInterval time.Duration, logger *slog.Logger) (*engine, error) {
	if err := os.MkdirAll(lakeDir, 0o755); err != nil {
		return nil, err
	}
	src, err := postgres.Open(ctx, pg.dsn, logger)
	if err != nil {
		return nil, err
	}
	return newEngine(ctx, src, pg.shown, link, table, lakeDir, commitInterval, o.idleExit, logger)
}

// tableRows returns the row count a state record gives the one table of a
// benchmark link, or -1 when it can't be read.
func tableRows(state []byte, table string) int64 {
	var st export.State
	if err := json.Unmarshal(state, &st); err != nil {
		return -1
	}
	if ts := st.Tables[table]; ts != nil {
		return ts.Rows
	}
	return -1
}
