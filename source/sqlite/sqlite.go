// Package sqlite is the lakelink source for an embedded SQLite database,
// read with modernc.org/sqlite (pure Go, no cgo).
//
// # Change tracking
//
// SQLite has no change feed, so lakelink installs triggers. For a link L it
// keeps, in the application's own database:
//
//	_lakelink_L_log     (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl, op, gen)  one row per row change
//	_lakelink_L_tables  (id, name, gen)         the tracked tables and their current generation
//	_lakelink_L_gens    (tbl, gen, columns)     the column list of every generation of a table
//	_lakelink_L_rows_N  (seq, "c_<column>"...)  the row image of every change of table N
//
// A change's position is its seq. AFTER INSERT and AFTER UPDATE triggers log
// the change and copy the new row with SELECT *, a BEFORE DELETE trigger logs
// a delete and copies the old row, and a BEFORE UPDATE trigger that fires
// only when the primary key changes logs a delete of the old key first. The
// triggers never name a non-key column, because SQLite refuses ALTER TABLE
// DROP COLUMN of a column that a trigger names. The shadow tables declare no
// column types, so every value keeps its exact storage class.
//
// # Schema changes
//
// After ALTER TABLE on a tracked table (ADD, DROP or RENAME COLUMN), the
// application's writes to that table fail until lakelink re-installs its
// tracking: a running Stream does so within about 100 ms (it watches PRAGMA
// schema_version), and Track does so when a link starts. The error is
// "table _lakelink_..._rows_N has X columns but Y values were supplied" (or
// "X values for Y columns") when the column count changed; when it did not
// (DROP then ADD COLUMN, RENAME COLUMN), each trigger's first statement, which
// compares the table's CREATE statement in sqlite_schema with the one it was
// installed for, fails the write with "lakelink: table ... changed". So
// nothing is ever captured under the wrong columns. Each re-install records
// a new generation; the stream announces it with an OpSchema before the
// first row that needs it.
//
// A count mismatch fails when SQLite compiles the statement, before it checks
// whether another connection changed the schema. So the connection that ran
// the ALTER (or one that already failed this way) keeps failing after the
// re-install until it runs any statement that reads the database, such as a
// SELECT from the table; an application that retries the write should read
// in between.
//
// # Concurrency
//
// The database should be in WAL mode (PRAGMA journal_mode=WAL; `lakelink
// demo` creates its database that way): that is what lets the application
// keep writing while lakelink reads a snapshot or the change log. In
// rollback-journal mode every lakelink read blocks the application's writers
// (they wait for busy_timeout, then fail). Open does not change the journal
// mode, which is the application's choice; it logs a warning when it isn't
// WAL. A long snapshot in WAL mode keeps the WAL from being checkpointed
// until it ends. lakelink opens its own connections with busy_timeout set and
// retries busy errors.
//
// # Limits
//
//   - A row that INSERT OR REPLACE deletes because of a UNIQUE constraint
//     other than the primary key is deleted without a trace (SQLite fires no
//     delete trigger for it unless the application sets PRAGMA
//     recursive_triggers=ON). Replacing a row by its primary key is captured
//     as a delete of the old row (a BEFORE INSERT trigger keeps its image)
//     followed by an insert of the new one.
//   - A tracked table that is dropped and recreated (the usual way to change
//     a column's type in SQLite) loses its triggers: Track and the stream
//     then report that its tracking was removed and changes may be missing,
//     and the table must be untracked and linked again. A renamed table is
//     treated the same way.
//   - Rows are grouped into transactions by how the log was read, not by the
//     application's transactions: a range ends at a quiet point of the log or
//     after 5,000 changes.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeoutMS is the busy_timeout of lakelink's own connections.
const busyTimeoutMS = 5000

// Source is a SQLite database file opened as a lakelink source.
type Source struct {
	path   string
	logger *slog.Logger
	// db is a pool of lakelink's own connections. Its DSN sets
	// _txlock=immediate: BeginTx starts BEGIN IMMEDIATE (write transactions
	// take the write lock up front, so they never fail half-way on a lock
	// upgrade), and BeginTx with ReadOnly starts a plain deferred BEGIN.
	db *sql.DB
}

var _ lakelink.Source = (*Source)(nil)

// Open opens the SQLite database file at path (it must exist) as a lakelink
// source. It sets busy_timeout on its own connections and does not change the
// database's journal mode: WAL mode is what lets the application keep
// writing while lakelink reads (`lakelink demo` creates its database in WAL
// mode); in any other mode Open logs a warning.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("sqlite: open %q: is a directory, want a database file", path)
	}
	// A SQLite URI: the path percent-encoded, mode=rw so that SQLite never
	// creates a missing file.
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() +
		fmt.Sprintf("?mode=rw&_pragma=busy_timeout(%d)&_txlock=immediate", busyTimeoutMS)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	db.SetMaxIdleConns(4)
	s := &Source{path: abs, logger: logger.With("source", "sqlite", "path", abs), db: db}

	// Probe: a file that isn't a database fails here, not at the first link.
	var mode string
	err = retry(ctx, func() error {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return err
		}
		return db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.logger.Warn("database is not in WAL mode: the application's writes wait while lakelink reads; set PRAGMA journal_mode=WAL",
			"journal_mode", mode)
	}
	return s, nil
}

// ParseURL accepts "sqlite:///ABS/PATH.db" or a plain path and returns the
// file path.
func ParseURL(u string) (string, error) {
	if u == "" {
		return "", errors.New("sqlite: empty database path")
	}
	if !strings.HasPrefix(strings.ToLower(u), "sqlite:") {
		if i := strings.Index(u, "://"); i > 0 {
			return "", fmt.Errorf("sqlite: url %q: scheme %q is not sqlite (want sqlite:///ABSOLUTE/PATH.db or a path)", u, u[:i])
		}
		return u, nil // a plain path
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("sqlite: url %q: %w", u, err)
	}
	if p.Opaque != "" || p.Host != "" || !strings.HasPrefix(p.Path, "/") {
		return "", fmt.Errorf("sqlite: url %q: want sqlite:///ABSOLUTE/PATH.db (three slashes, an absolute path)", u)
	}
	if p.RawQuery != "" || p.Fragment != "" {
		return "", fmt.Errorf("sqlite: url %q: no query or fragment allowed", u)
	}
	return p.Path, nil
}

// Close releases the source's connections.
func (s *Source) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Tables lists every table of the main database except SQLite's own and
// lakelink's, with whether it can be linked. A table can be linked when it
// has a PRIMARY KEY and is an ordinary table.
func (s *Source) Tables(ctx context.Context) ([]lakelink.TableInfo, error) {
	var infos []lakelink.TableInfo
	err := s.read(ctx, nil, func(tx *sql.Tx) error {
		infos = infos[:0]
		rows, err := tx.QueryContext(ctx, `SELECT name FROM main.sqlite_schema
			WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_lakelink\_%' ESCAPE '\'
			ORDER BY name`)
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			names = append(names, n)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, n := range names {
			d, err := describe(ctx, tx, n)
			if err != nil {
				return err
			}
			if !d.exists {
				continue
			}
			infos = append(infos, d.info())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tables: %w", err)
	}
	return infos, nil
}

// linkRE is what a link name may be: it becomes part of table names.
var linkRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func checkLink(link string) error {
	if !linkRE.MatchString(link) {
		return fmt.Errorf("link name %q: use 1 to 64 of a-z, 0-9 and _", link)
	}
	return nil
}

// queryer is what *sql.Tx, *sql.Conn and *sql.DB have in common.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// write runs fn in a BEGIN IMMEDIATE transaction, retrying busy errors.
func (s *Source) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return retry(ctx, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// read runs fn in a read transaction on conn (or a pooled connection when
// conn is nil), retrying busy errors. The transaction's first read pins its
// snapshot of the database.
func (s *Source) read(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	return retry(ctx, func() error {
		var tx *sql.Tx
		var err error
		if conn != nil {
			tx, err = conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		} else {
			tx, err = s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		}
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	})
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code() & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// transientError marks an error that is worth retrying later.
type transientError struct{ err error }

func (e transientError) Error() string        { return e.err.Error() }
func (e transientError) Unwrap() error        { return e.err }
func (e transientError) Is(target error) bool { return target == lakelink.ErrTransient }

// retry runs fn until it succeeds, fails with an error other than busy, or
// about 30 s of busy errors have passed (each attempt already waits up to
// busy_timeout). A final busy error is marked lakelink.ErrTransient.
func retry(ctx context.Context, fn func() error) error {
	const giveUp = 30 * time.Second
	start := time.Now()
	wait := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		if time.Since(start) > giveUp {
			return transientError{err}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteText quotes a SQL string literal.
func quoteText(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// asciiLower folds ASCII letters only, as SQLite compares identifiers.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
