package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, as the sqlite source uses
)

// tableName is the benchmark table's name.
const tableName = "t"

// createTable is the benchmark table: six columns of the usual kinds, with
// a createdon that lakelink partitions by.
const createTable = `CREATE TABLE t (
	id        INTEGER PRIMARY KEY,
	name      TEXT,
	amount    REAL,
	qty       INTEGER,
	createdon DATETIME,
	note      TEXT
)`

// span is a range of createdon values: rows get evenly spaced instants in
// [from, to).
type span struct{ from, to time.Time }

// tenYears spreads the initial write's rows over ten year partitions.
var tenYears = span{time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}

// oneYear puts every row of a merge benchmark in one partition, 2020.
var oneYear = span{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}

// openDB opens an application connection pool to the database at path,
// creating the file when missing.
func openDB(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// buildDB creates a WAL-mode database at path holding table t with rows
// ids 1..n, createdon spread evenly over s. The rows are generated inside
// SQLite by one INSERT ... SELECT over a recursive CTE.
func buildDB(ctx context.Context, path string, n int, s span) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("build %s: journal_mode is %q, want wal", path, mode)
	}
	if _, err := db.ExecContext(ctx, createTable); err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	if err := insertRows(ctx, db, 1, n, s); err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	// Leave the data in the main file, so neither reader pays for a large WAL.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("build %s: checkpoint: %w", path, err)
	}
	return nil
}

// insertRows inserts rows with ids first..first+n-1 in one statement. Row i
// of the n gets createdon s.from + i*(s.to-s.from)/n, so all stay in s.
func insertRows(ctx context.Context, db execer, first, n int, s span) error {
	if n <= 0 {
		return nil
	}
	step := s.to.Sub(s.from).Seconds() / float64(n)
	_, err := db.ExecContext(ctx, insertQuery, first, n, s.from.Unix(), step)
	return err
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertQuery generates rows: ?1 the first id, ?2 how many, ?3 the first
// createdon (Unix seconds), ?4 the seconds between createdons.
const insertQuery = `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?2)
INSERT INTO t (id, name, amount, qty, createdon, note)
SELECT ?1 + i,
	'customer ' || (?1 + i),
	((?1 + i) % 100000) / 100.0 + 0.25,
	((?1 + i) * 7919) % 1000,
	strftime('%Y-%m-%d %H:%M:%S', ?3 + CAST(i * ?4 AS INTEGER), 'unixepoch'),
	CASE WHEN (?1 + i) % 10 = 0 THEN 'a note, with a comma and "quotes"' ELSE 'plain note ' || ((?1 + i) % 97) END
FROM seq`

// applyChanges makes a batch of changes in one transaction: updates of
// existing rows spread evenly over ids 1..rows, and inserts of new ids from
// firstNew on, all with createdon in s, so they touch only s's partition.
func applyChanges(ctx context.Context, path string, rows, firstNew, updates, inserts int, s span) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if updates > 0 {
		every := max(rows/updates, 1)
		res, err := tx.ExecContext(ctx, `UPDATE t SET amount = amount + 1, qty = qty + 1, note = 'updated by the merge benchmark'
			WHERE id % ?1 = 0 AND id <= ?2 AND id / ?1 <= ?3`, every, rows, updates)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if n, _ := res.RowsAffected(); n != int64(updates) {
			return fmt.Errorf("update: %d rows changed, want %d", n, updates)
		}
	}
	// Inserts: the same generator as buildDB, with createdon in s.
	if err := insertRows(ctx, tx, firstNew, inserts, s); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return tx.Commit()
}
