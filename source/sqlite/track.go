package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
)

// names are the table and trigger names lakelink uses for one link.
type names struct{ link string }

func (n names) log() string    { return "_lakelink_" + n.link + "_log" }
func (n names) tables() string { return "_lakelink_" + n.link + "_tables" }
func (n names) gens() string   { return "_lakelink_" + n.link + "_gens" }
func (n names) rows(id int64) string {
	return fmt.Sprintf("_lakelink_%s_rows_%d", n.link, id)
}

// triggerSuffixes name a table's five triggers: after insert, after update,
// before delete, before an update that changes the key, and before an
// insert that may replace a row.
var triggerSuffixes = []string{"ins", "upd", "del", "key", "rep"}

func (n names) trigger(id int64, suffix string) string {
	return fmt.Sprintf("_lakelink_%s_%d_%s", n.link, id, suffix)
}

// shadowColumn is the shadow table's column for a source column. The prefix
// keeps a source column named "seq" apart from the shadow's own seq.
func shadowColumn(name string) string { return "c_" + name }

// tracked is one row of the link's tables table.
type tracked struct {
	id   int64
	name string
	gen  int64
}

// errTrackingLost says that a tracked table no longer has its triggers.
var errTrackingLost = errors.New("its change tracking was removed (was the table dropped and recreated, or renamed?), so changes may be missing: untrack the table and link it again")

// linkTracked reports whether the link's own tables exist.
func linkTracked(ctx context.Context, q queryer, n names) (bool, error) {
	var c int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name IN (?, ?, ?)`,
		n.log(), n.tables(), n.gens()).Scan(&c)
	return c == 3, err
}

// trackedTables lists the link's tracked tables.
func trackedTables(ctx context.Context, q queryer, n names) ([]tracked, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, gen FROM main.`+quoteIdent(n.tables())+` ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ts []tracked
	for rows.Next() {
		var t tracked
		if err := rows.Scan(&t.id, &t.name, &t.gen); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// Track installs change tracking for the named tables of a link, in one
// write transaction: all of them or none. It is idempotent; on a table whose
// columns changed since it was last installed it records a new generation and
// re-installs the triggers. A table that is missing or can't be linked gives
// a *lakelink.NotLinkableError naming it.
func (s *Source) Track(ctx context.Context, link string, tables []string) error {
	if err := checkLink(link); err != nil {
		return fmt.Errorf("sqlite: track: %w", err)
	}
	n := names{link}
	var current string // the table being worked on, for the error
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, ddl := range []string{
			`CREATE TABLE IF NOT EXISTS main.` + quoteIdent(n.log()) + `(seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl INTEGER NOT NULL, op TEXT NOT NULL, gen INTEGER NOT NULL)`,
			// AUTOINCREMENT: a table id is never reused, so a log entry of an
			// untracked table can't be taken for a later table's.
			`CREATE TABLE IF NOT EXISTS main.` + quoteIdent(n.tables()) + `(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, gen INTEGER NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS main.` + quoteIdent(n.gens()) + `(tbl INTEGER, gen INTEGER, columns TEXT NOT NULL, PRIMARY KEY(tbl, gen))`,
		} {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return err
			}
		}
		// A new log counts on from the current time in microseconds, not
		// from 1: positions of a link that was unlinked and linked again
		// stay above every position of its earlier log, so a lake that
		// holds the earlier export is refused (behind the log's oldest
		// change) instead of having the new changes taken as old ones.
		if _, err := tx.ExecContext(ctx, `INSERT INTO main.sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM main.sqlite_sequence WHERE name = ?)`,
			n.log(), time.Now().UnixMicro(), n.log()); err != nil {
			return err
		}
		for _, name := range tables {
			current = name
			d, err := describe(ctx, tx, name)
			if err != nil {
				return err
			}
			if !d.exists {
				return &lakelink.NotLinkableError{Table: name, Reason: "no such table"}
			}
			if info := d.info(); !info.Linkable {
				return &lakelink.NotLinkableError{Table: name, Reason: info.Reason}
			}
			t := tracked{name: name}
			err = tx.QueryRowContext(ctx, `SELECT id, gen FROM main.`+quoteIdent(n.tables())+` WHERE name = ?`, name).Scan(&t.id, &t.gen)
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.QueryRowContext(ctx, `INSERT INTO main.`+quoteIdent(n.tables())+`(name, gen) VALUES (?, 0) RETURNING id`, name).Scan(&t.id)
				if err == nil {
					_, err = tx.ExecContext(ctx, `CREATE TABLE main.`+quoteIdent(n.rows(t.id))+`(seq INTEGER PRIMARY KEY)`)
				}
			}
			if err != nil {
				return err
			}
			if err := install(ctx, tx, n, t, d); err != nil {
				return err
			}
		}
		return nil
	})
	var nl *lakelink.NotLinkableError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nl):
		return err
	case current != "":
		return fmt.Errorf("sqlite: track %q: %w", current, err)
	default:
		return fmt.Errorf("sqlite: track link %q: %w", link, err)
	}
}

// installState is what inspect finds.
type installState int

const (
	stateCurrent installState = iota // triggers installed for the table's current columns
	stateChanged                     // the columns changed: install a new generation
	stateGone                        // the table is gone
)

// inspect compares a tracked table with its current generation.
func inspect(ctx context.Context, q queryer, n names, t tracked, d tableDesc) (installState, error) {
	if !d.exists {
		return stateGone, nil
	}
	if t.gen == 0 {
		return stateChanged, nil // never installed
	}
	args := []any{d.name}
	for _, s := range triggerSuffixes {
		args = append(args, n.trigger(t.id, s))
	}
	var count int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ? AND name IN (?`+strings.Repeat(", ?", len(triggerSuffixes)-1)+`)`, args...).Scan(&count)
	if err != nil {
		return 0, err
	}
	if count != len(triggerSuffixes) {
		return 0, errTrackingLost
	}
	cols, err := loadGen(ctx, q, n, t.id, t.gen)
	if err != nil {
		return 0, err
	}
	if !sameColumns(cols, d.cols) {
		return stateChanged, nil
	}
	// The guard compares the table's CREATE statement, which SQLite also
	// rewrites for changes that keep the columns (a renamed parent table
	// in a FOREIGN KEY clause): re-install when it is out of date.
	var current bool
	err = q.QueryRowContext(ctx, `SELECT instr(t.sql, quote(s.sql)) > 0 FROM main.sqlite_schema t, main.sqlite_schema s
		WHERE t.type = 'trigger' AND t.name = ? AND s.type = 'table' AND s.name = ?`, n.trigger(t.id, "ins"), d.name).Scan(&current)
	if err != nil {
		return 0, err
	}
	if !current {
		return stateChanged, nil
	}
	return stateCurrent, nil
}

// loadGen reads the column list of a generation.
func loadGen(ctx context.Context, q queryer, n names, id, gen int64) ([]colInfo, error) {
	var js string
	err := q.QueryRowContext(ctx, `SELECT columns FROM main.`+quoteIdent(n.gens())+` WHERE tbl = ? AND gen = ?`, id, gen).Scan(&js)
	if err != nil {
		return nil, fmt.Errorf("generation %d of table %d: %w", gen, id, err)
	}
	var cols []colInfo
	if err := json.Unmarshal([]byte(js), &cols); err != nil {
		return nil, fmt.Errorf("generation %d of table %d: %w", gen, id, err)
	}
	return cols, nil
}

// install brings a tracked table's tracking up to date inside a write
// transaction: when its columns differ from its current generation it adds
// the missing shadow columns (it never drops one: captured rows still need
// them), records a new generation, and recreates the triggers.
func install(ctx context.Context, tx *sql.Tx, n names, t tracked, d tableDesc) error {
	state, err := inspect(ctx, tx, n, t, d)
	if err != nil {
		return err
	}
	switch state {
	case stateCurrent:
		return nil
	case stateGone:
		return errors.New("no such table")
	}

	// Shadow columns, compared as SQLite compares names.
	have := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, 'main')`, n.rows(t.id))
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		have[asciiLower(c)] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, c := range d.cols {
		sc := shadowColumn(c.Name)
		if have[asciiLower(sc)] {
			continue
		}
		// No declared type: every value keeps its storage class.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE main.`+quoteIdent(n.rows(t.id))+` ADD COLUMN `+quoteIdent(sc)); err != nil {
			return err
		}
		have[asciiLower(sc)] = true
	}

	gen := t.gen + 1
	js, err := json.Marshal(d.cols)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+quoteIdent(n.gens())+`(tbl, gen, columns) VALUES (?, ?, ?)`, t.id, gen, string(js)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE main.`+quoteIdent(n.tables())+` SET gen = ? WHERE id = ?`, gen, t.id); err != nil {
		return err
	}
	// The CREATE statement the triggers' guard expects.
	var expect string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?`, d.name).Scan(&expect); err != nil {
		return err
	}
	for _, s := range triggerSuffixes {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS main.`+quoteIdent(n.trigger(t.id, s))); err != nil {
			return err
		}
	}
	for _, ddl := range triggers(n, t.id, gen, d, expect) {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

// triggers returns the CREATE TRIGGER statements for one generation of a
// table. They name no non-key column: SQLite refuses to drop a column a
// trigger names, so the row image is copied with SELECT *, whose expansion
// follows the table's columns. The guard statement fails the application's
// write when the table's CREATE statement (which ALTER TABLE rewrites) is no
// longer the one of this generation, until install runs again: an ALTER that
// keeps the column count (DROP then ADD COLUMN, RENAME COLUMN) would
// otherwise be captured under the old column names. It reads sqlite_schema,
// which costs little next to the two inserts.
func triggers(n names, id, gen int64, d tableDesc, expect string) []string {
	table := quoteIdent(d.name)
	shadowCols := []string{"seq"}
	for _, c := range d.cols {
		shadowCols = append(shadowCols, quoteIdent(shadowColumn(c.Name)))
	}
	msg := fmt.Sprintf("lakelink: table %s changed; lakelink is updating its change tracking: retry shortly", table)
	guard := fmt.Sprintf(`SELECT RAISE(ABORT, %s) WHERE (SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = %s) IS NOT %s;`,
		quoteText(msg), quoteText(d.name), quoteText(expect))

	key := keyNames(d.cols)
	// match finds the trigger's row: by rowid when the table has one and a
	// name for it that no column shadows, else by the key.
	match := func(ref string) string {
		if !d.withoutRowid {
			for _, r := range []string{"_rowid_", "rowid", "oid"} {
				shadowed := false
				for _, c := range d.cols {
					if strings.EqualFold(c.Name, r) {
						shadowed = true
					}
				}
				if !shadowed {
					return fmt.Sprintf("%s = %s.%s", r, ref, r)
				}
			}
		}
		var conds []string
		for _, k := range key {
			conds = append(conds, fmt.Sprintf("%s IS %s.%s", quoteIdent(k), ref, quoteIdent(k)))
		}
		return strings.Join(conds, " AND ")
	}
	captureWhere := func(op, where string) string {
		return fmt.Sprintf(`INSERT INTO %s(tbl, op, gen) VALUES (%d, '%s', %d); INSERT INTO %s(%s) SELECT last_insert_rowid(), * FROM %s WHERE %s;`,
			quoteIdent(n.log()), id, op, gen, quoteIdent(n.rows(id)), strings.Join(shadowCols, ", "), table, where)
	}
	capture := func(op, ref string) string { return captureWhere(op, match(ref)) }
	var byKey []string
	for _, k := range key {
		byKey = append(byKey, fmt.Sprintf("%s IS NEW.%s", quoteIdent(k), quoteIdent(k)))
	}
	newKey := strings.Join(byKey, " AND ")
	trig := func(suffix string) string { return "main." + quoteIdent(n.trigger(id, suffix)) }

	var keyCols, keyChanged []string
	for _, k := range key {
		keyCols = append(keyCols, quoteIdent(k))
		keyChanged = append(keyChanged, fmt.Sprintf("OLD.%s IS NOT NEW.%s", quoteIdent(k), quoteIdent(k)))
	}
	return []string{
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN %s %s END", trig("ins"), table, guard, capture("I", "NEW")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s BEGIN %s %s END", trig("upd"), table, guard, capture("U", "NEW")),
		fmt.Sprintf("CREATE TRIGGER %s BEFORE DELETE ON %s BEGIN %s %s END", trig("del"), table, guard, capture("D", "OLD")),
		// A key change: the old key is deleted first, then the update
		// trigger captures the row under its new key.
		fmt.Sprintf("CREATE TRIGGER %s BEFORE UPDATE OF %s ON %s WHEN %s BEGIN %s %s END",
			trig("key"), strings.Join(keyCols, ", "), table, strings.Join(keyChanged, " OR "), guard, capture("D", "OLD")),
		// INSERT OR REPLACE deletes the row with the same key without a
		// delete trigger: keep its image ('R'); the stream turns it into a
		// delete when the insert follows (an OR IGNORE that changed nothing
		// has none, and an insert that fails rolls the image back).
		fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT ON %s WHEN EXISTS (SELECT 1 FROM %s WHERE %s) BEGIN %s %s END",
			trig("rep"), table, table, newKey, guard, captureWhere("R", newKey)),
	}
}

// Untrack removes the link's change tracking from the named tables, or
// from every table of the link and the link's own tables when tables is nil.
// Untracking a table that isn't tracked does nothing. Changes already logged
// for an untracked table stay in the log until acknowledged; streams skip
// them.
func (s *Source) Untrack(ctx context.Context, link string, tables []string) error {
	if err := checkLink(link); err != nil {
		return fmt.Errorf("sqlite: untrack: %w", err)
	}
	n := names{link}
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok, err := linkTracked(ctx, tx, n)
		if err != nil || !ok {
			return err
		}
		all, err := trackedTables(ctx, tx, n)
		if err != nil {
			return err
		}
		for _, t := range all {
			if tables != nil && !slices.Contains(tables, t.name) {
				continue
			}
			stmts := []string{}
			for _, s := range triggerSuffixes {
				stmts = append(stmts, `DROP TRIGGER IF EXISTS main.`+quoteIdent(n.trigger(t.id, s)))
			}
			stmts = append(stmts,
				`DROP TABLE IF EXISTS main.`+quoteIdent(n.rows(t.id)),
				fmt.Sprintf(`DELETE FROM main.%s WHERE tbl = %d`, quoteIdent(n.gens()), t.id),
				fmt.Sprintf(`DELETE FROM main.%s WHERE id = %d`, quoteIdent(n.tables()), t.id))
			for _, q := range stmts {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("table %q: %w", t.name, err)
				}
			}
		}
		if tables == nil {
			for _, t := range []string{n.log(), n.tables(), n.gens()} {
				if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS main.`+quoteIdent(t)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: untrack link %q: %w", link, err)
	}
	return nil
}
