package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lakelink/lakelink"
)

// snapshot is a copy of one table read in one read transaction.
type snapshot struct {
	conn  *sql.Conn
	tx    *sql.Tx
	rows  *sql.Rows
	table lakelink.Table
	pos   lakelink.Position
	raw   []any
	ptrs  []any
	row   []lakelink.Value
	name  string
}

// Snapshot starts a consistent copy of a tracked table: one read
// transaction on a connection of its own, in which the log's sequence
// counter is the Position. A large table with a rowid is read in rowid
// ranges by several connections at once, whose read transactions all start
// while a write lock keeps the database still, so they see one state of it;
// their rows come interleaved, each range in rowid order. Every change at or
// before Position is in the copy, and none after it. ctx bounds the whole
// copy: when it is done, Next fails. The copy holds a read transaction open
// until Close, which in WAL mode keeps the WAL from being checkpointed.
func (s *Source) Snapshot(ctx context.Context, link, table string) (lakelink.Snapshot, error) {
	if err := checkLink(link); err != nil {
		return nil, fmt.Errorf("sqlite: snapshot %q: %w", table, err)
	}
	if sn, err := s.parallelSnapshot(ctx, names{link}, table); sn != nil || err != nil {
		if err != nil {
			return nil, fmt.Errorf("sqlite: snapshot %q: %w", table, err)
		}
		return sn, nil
	}
	sn, err := s.snapshot(ctx, names{link}, table, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: snapshot %q: %w", table, err)
	}
	return sn, nil
}

func (s *Source) snapshot(ctx context.Context, n names, table string, r *rowRange) (*snapshot, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	sn := &snapshot{conn: conn, name: table}
	err = retry(ctx, func() error {
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		if err := sn.start(ctx, tx, n, table, r); err != nil {
			tx.Rollback()
			return err
		}
		sn.tx = tx
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return sn, nil
}

// start reads the position and opens the rows, all in tx.
func (sn *snapshot) start(ctx context.Context, tx *sql.Tx, n names, table string, r *rowRange) error {
	// The first read pins the transaction's view of the database.
	ok, err := linkTracked(ctx, tx, n)
	if err != nil {
		return err
	}
	var id int64
	if ok {
		err = tx.QueryRowContext(ctx, `SELECT id FROM main.`+quoteIdent(n.tables())+` WHERE name = ?`, table).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			ok = false
		} else if err != nil {
			return err
		}
	}
	if !ok {
		return fmt.Errorf("link %q does not track the table: Track it first", n.link)
	}
	var pos int64
	err = tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = ?), 0)`, n.log()).Scan(&pos)
	if err != nil {
		return err
	}
	sn.pos = lakelink.Position(pos)
	d, err := describe(ctx, tx, table)
	if err != nil {
		return err
	}
	if !d.exists {
		return errors.New("no such table")
	}
	sn.table = tableOf(table, d.cols)
	// +"c" keeps the value and drops the declared type, so the driver
	// doesn't turn the text of a DATE or DATETIME column into a time.Time.
	var sel, order []string
	for _, c := range d.cols {
		sel = append(sel, "+"+quoteIdent(c.Name))
	}
	for _, k := range keyNames(d.cols) {
		order = append(order, quoteIdent(k))
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM main." + quoteIdent(table)
	if r != nil {
		q += fmt.Sprintf(" WHERE %s BETWEEN %d AND %d", r.col, r.lo, r.hi)
		order = []string{r.col}
	}
	if len(order) > 0 {
		q += " ORDER BY " + strings.Join(order, ", ")
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	sn.rows = rows
	sn.raw = make([]any, len(d.cols))
	sn.ptrs = make([]any, len(d.cols))
	for i := range sn.raw {
		sn.ptrs[i] = &sn.raw[i]
	}
	sn.row = make([]lakelink.Value, len(d.cols))
	return nil
}

func (sn *snapshot) Table() lakelink.Table       { return sn.table }
func (sn *snapshot) Position() lakelink.Position { return sn.pos }

// Next returns the next row in key order, or io.EOF after the last. The
// slice is reused by the next call.
func (sn *snapshot) Next() ([]lakelink.Value, error) {
	if sn.rows == nil {
		return nil, fmt.Errorf("sqlite: snapshot %q: closed", sn.name)
	}
	if !sn.rows.Next() {
		if err := sn.rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: snapshot %q: %w", sn.name, err)
		}
		return nil, io.EOF
	}
	if err := sn.rows.Scan(sn.ptrs...); err != nil {
		return nil, fmt.Errorf("sqlite: snapshot %q: %w", sn.name, err)
	}
	for i := range sn.raw {
		sn.row[i] = convert(&sn.table.Columns[i], sn.raw[i])
	}
	return sn.row, nil
}

// Close ends the read transaction and releases the connection.
func (sn *snapshot) Close() error {
	if sn.rows == nil {
		return nil
	}
	sn.rows.Close()
	sn.rows = nil
	sn.tx.Rollback()
	if err := sn.conn.Close(); err != nil {
		return fmt.Errorf("sqlite: snapshot %q: close: %w", sn.name, err)
	}
	return nil
}
