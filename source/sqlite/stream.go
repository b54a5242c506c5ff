package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
)

const (
	// rangeRows and rangeBytes bound one read of the log: at most this many
	// changes, and the range ends after the change that passes this many
	// bytes of values.
	rangeRows  = 5000
	rangeBytes = 8 << 20
	// pollInterval is how often a quiet stream looks for new changes.
	pollInterval = 20 * time.Millisecond
)

// genKey names one generation of one tracked table.
type genKey struct{ tbl, gen int64 }

// generation is a table's definition in one generation.
type generation struct {
	table lakelink.Table
}

// stream reads a link's change log on a connection of its own.
type stream struct {
	src  *Source
	n    names
	conn *sql.Conn
	last int64 // the seq of the last change read into buf

	buf  []lakelink.Change
	next int // index of the next change of buf to return

	gens      map[genKey]*generation
	announced map[int64]int64 // tbl → the generation last announced with OpSchema
	schemaVer int64           // PRAGMA schema_version when tracking was last checked
	gone      map[string]bool // tables found dropped, warned about once
	// reinstalled are tables whose tracking was re-installed after a schema
	// change: once the log is drained, their new definition is announced
	// even if no row follows, so that the lake's metadata follows at once.
	reinstalled map[string]bool

	// Close cancels closing, which ends a Next that is running, then waits
	// for busy before it releases the connection.
	closing context.Context
	close   context.CancelFunc
	busy    sync.Mutex
}

// errClosed is what Next returns after Close.
var errClosed = errors.New("stream closed")

// Stream starts the link's change stream after position from. It fails when
// from is ahead of the log (a database restored from an older copy) or when
// changes after from were already acknowledged and trimmed (or belong to an
// earlier log of the link: a new log counts on from the time it was made).
// From 0, nothing exported yet, it starts at the log's oldest change.
//
// Next and Ack may be called from different goroutines. Close ends a Next
// that is running (it returns an error) and waits for it.
func (s *Source) Stream(ctx context.Context, link string, from lakelink.Position) (lakelink.Stream, error) {
	if err := checkLink(link); err != nil {
		return nil, fmt.Errorf("sqlite: stream: %w", err)
	}
	n := names{link}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stream link %q: %w", link, err)
	}
	err = s.read(ctx, conn, func(tx *sql.Tx) error {
		ok, err := linkTracked(ctx, tx, n)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("the link tracks no table: Track it first")
		}
		// The log holds exactly the changes after the last Ack: seq grows
		// by one per change (AUTOINCREMENT, rolled back with its
		// transaction) and only Ack deletes, from the bottom.
		var counter int64
		var oldest sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = ?), 0), (SELECT min(seq) FROM main.`+quoteIdent(n.log())+`)`,
			n.log()).Scan(&counter, &oldest)
		if err != nil {
			return err
		}
		if uint64(from) > uint64(counter) {
			return fmt.Errorf("position %d is ahead of the source's last change %d (was the database restored from an older copy, or the link unlinked and linked again?): run lakelink resync --lake LAKE --table NAME for every table of the link: %w", from, counter, lakelink.ErrResync)
		}
		first := counter + 1
		if oldest.Valid {
			first = oldest.Int64
		}
		if from > 0 && int64(from)+1 < first {
			return fmt.Errorf("position %d is behind the oldest change the source still holds (%d): the changes between were acknowledged and trimmed: run lakelink resync --lake LAKE --table NAME for every table of the link: %w", from, first, lakelink.ErrResync)
		}
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlite: stream link %q from %d: %w", link, from, err)
	}
	closing, close := context.WithCancel(context.Background())
	return &stream{
		src: s, n: n, conn: conn, last: int64(from),
		closing: closing, close: close,
		gens:      map[genKey]*generation{},
		announced: map[int64]int64{},
		schemaVer: -1,
		gone:      map[string]bool{},
	}, nil
}

// Next returns the next change. When the log has nothing new it polls
// PRAGMA data_version every 20 ms, and re-installs tracking on tables whose
// columns changed when PRAGMA schema_version moves.
func (st *stream) Next(outer context.Context) (lakelink.Change, error) {
	st.busy.Lock()
	defer st.busy.Unlock()
	if st.conn == nil {
		return lakelink.Change{}, st.fail(outer, errClosed)
	}
	// Reads run to completion whatever the caller's deadline: a read cut
	// short by a canceled context can leave the connection inside its
	// transaction. Only Close ends them; the caller's ctx ends the wait.
	work := st.closing
	ctx, cancel := context.WithCancel(outer)
	defer cancel()
	defer context.AfterFunc(st.closing, cancel)()
	for {
		if st.next < len(st.buf) {
			c := st.buf[st.next]
			st.buf[st.next] = lakelink.Change{}
			st.next++
			return c, nil
		}
		if err := ctx.Err(); err != nil {
			return lakelink.Change{}, st.fail(outer, err)
		}
		if err := st.checkSchema(work); err != nil {
			return lakelink.Change{}, st.fail(outer, err)
		}
		dv, err := st.pragma(work, "data_version")
		if err != nil {
			return lakelink.Change{}, st.fail(outer, err)
		}
		st.buf, st.next = st.buf[:0], 0
		if err := st.readInto(work, st.fill); err != nil {
			return lakelink.Change{}, st.fail(outer, err)
		}
		if len(st.buf) > 0 {
			continue
		}
		if len(st.reinstalled) > 0 {
			if err := st.readInto(work, st.announce); err != nil {
				return lakelink.Change{}, st.fail(outer, err)
			}
			if len(st.buf) > 0 {
				continue
			}
		}
		if err := st.wait(ctx, dv); err != nil {
			return lakelink.Change{}, st.fail(outer, err)
		}
	}
}

// readInto runs fn in a read transaction that fills st.buf. When it fails,
// the stream is left as it was before: nothing buffered, the same last
// position, and every table to be announced again.
func (st *stream) readInto(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	last := st.last
	err := st.src.read(ctx, st.conn, func(tx *sql.Tx) error {
		st.buf, st.last = st.buf[:0], last
		return fn(ctx, tx)
	})
	if err != nil {
		st.buf, st.last = st.buf[:0], last
		clear(st.announced)
	}
	return err
}

// fail returns the caller's ctx error when it is done, errClosed after
// Close, else err with context.
func (st *stream) fail(outer context.Context, err error) error {
	if outer.Err() != nil {
		return outer.Err()
	}
	if st.closing.Err() != nil {
		err = errClosed
	}
	return fmt.Errorf("sqlite: stream link %q: %w", st.n.link, err)
}

func (st *stream) pragma(ctx context.Context, name string) (int64, error) {
	var v int64
	err := retry(ctx, func() error {
		return st.conn.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	})
	return v, err
}

// wait returns when another connection committed since data_version was
// dv, when the schema changed, or when ctx is done.
func (st *stream) wait(ctx context.Context, dv int64) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		v, err := st.pragma(st.closing, "data_version")
		if err != nil {
			return err
		}
		if v != dv {
			return nil
		}
		sv, err := st.pragma(st.closing, "schema_version")
		if err != nil {
			return err
		}
		if sv != st.schemaVer {
			return nil
		}
	}
}

// checkSchema re-installs tracking on each tracked table whose columns no
// longer match its generation, when the schema changed since the last check.
func (st *stream) checkSchema(ctx context.Context) error {
	sv, err := st.pragma(ctx, "schema_version")
	if err != nil || sv == st.schemaVer {
		return err
	}
	// Find the tables to re-install in one read transaction, so that each
	// is compared with the schema as of one instant.
	var changed []tracked
	err = st.src.read(ctx, st.conn, func(tx *sql.Tx) error {
		changed = changed[:0]
		ts, err := trackedTables(ctx, tx, st.n)
		if err != nil {
			return err
		}
		for _, t := range ts {
			d, err := describe(ctx, tx, t.name)
			if err != nil {
				return err
			}
			state, err := inspect(ctx, tx, st.n, t, d)
			if err != nil {
				return fmt.Errorf("table %q: %w", t.name, err)
			}
			switch state {
			case stateGone:
				if !st.gone[t.name] {
					st.gone[t.name] = true
					st.src.logger.Warn("tracked table is gone; its remaining changes are still delivered", "link", st.n.link, "table", t.name)
				}
			case stateChanged:
				changed = append(changed, t)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range changed {
		err = st.src.write(ctx, func(tx *sql.Tx) error {
			// Read again under the write lock: another stream or Track
			// may have got here first.
			cur := tracked{name: t.name}
			err := tx.QueryRowContext(ctx, `SELECT id, gen FROM main.`+quoteIdent(st.n.tables())+` WHERE name = ?`, t.name).Scan(&cur.id, &cur.gen)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // untracked meanwhile
			}
			if err != nil {
				return err
			}
			d, err := describe(ctx, tx, t.name)
			if err != nil {
				return err
			}
			if !d.exists {
				return nil
			}
			return install(ctx, tx, st.n, cur, d)
		})
		if err != nil {
			return fmt.Errorf("re-install tracking on %q: %w", t.name, err)
		}
		st.src.logger.Info("table changed; change tracking re-installed", "link", st.n.link, "table", t.name)
		if st.reinstalled == nil {
			st.reinstalled = map[string]bool{}
		}
		st.reinstalled[t.name] = true
	}
	st.schemaVer = sv
	return nil
}

// logEntry is one row of the log.
type logEntry struct {
	seq, tbl, gen int64
	op            string
}

// cursor reads one table's shadow rows for a range of the log, in seq order.
type cursor struct {
	rows    *sql.Rows
	cols    map[string]int // lower-case shadow column name → index
	raw     []any
	ptrs    []any
	seq     int64 // seq of the current row; 0 before the first
	done    bool
	mapping map[int64][]int // gen → shadow column index of each column of that generation
}

// fill reads the next range of the log into st.buf, in one read
// transaction: the log entries, then each table's row images, merged by
// seq. It ends the range with an OpCommit.
func (st *stream) fill(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, tbl, op, gen FROM main.`+quoteIdent(st.n.log())+` WHERE seq > ? ORDER BY seq LIMIT ?`, st.last, rangeRows)
	if err != nil {
		return err
	}
	var entries []logEntry
	for rows.Next() {
		var e logEntry
		if err := rows.Scan(&e.seq, &e.tbl, &e.op, &e.gen); err != nil {
			rows.Close()
			return err
		}
		entries = append(entries, e)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	// A replaced row's image ('R') is only meaningful with the insert that
	// follows it; don't end a full range between the two.
	if len(entries) == rangeRows {
		for len(entries) > 1 && entries[len(entries)-1].op == "R" {
			entries = entries[:len(entries)-1]
		}
	}
	if len(entries) == 0 {
		return nil
	}

	// The tracked tables as of this transaction; an entry of a table
	// untracked since is skipped.
	ts, err := trackedTables(ctx, tx, st.n)
	if err != nil {
		return err
	}
	tableName := map[int64]string{}
	for _, t := range ts {
		tableName[t.id] = t.name
	}
	first, last := map[int64]int64{}, map[int64]int64{}
	for _, e := range entries {
		if _, ok := first[e.tbl]; !ok {
			first[e.tbl] = e.seq
		}
		last[e.tbl] = e.seq
	}
	cursors := map[int64]*cursor{}
	defer func() {
		for _, c := range cursors {
			c.rows.Close()
		}
	}()
	for tbl := range first {
		if _, ok := tableName[tbl]; !ok {
			continue
		}
		rows, err := tx.QueryContext(ctx, `SELECT * FROM main.`+quoteIdent(st.n.rows(tbl))+` WHERE seq BETWEEN ? AND ? ORDER BY seq`, first[tbl], last[tbl])
		if err != nil {
			return fmt.Errorf("table %q: %w", tableName[tbl], err)
		}
		names, err := rows.Columns()
		if err != nil {
			rows.Close()
			return err
		}
		c := &cursor{rows: rows, cols: map[string]int{}, raw: make([]any, len(names)), ptrs: make([]any, len(names)), mapping: map[int64][]int{}}
		for i, name := range names {
			c.cols[asciiLower(name)] = i
			c.ptrs[i] = &c.raw[i]
		}
		cursors[tbl] = c
	}

	size := 0
	end := entries[len(entries)-1].seq
	replaced := map[int64]*lakelink.Change{} // tbl → the row an INSERT OR REPLACE may have replaced
	for _, e := range entries {
		c := cursors[e.tbl]
		if c == nil {
			continue // untracked
		}
		name := tableName[e.tbl]
		for !c.done && c.seq < e.seq {
			if !c.rows.Next() {
				if err := c.rows.Err(); err != nil {
					return fmt.Errorf("table %q: %w", name, err)
				}
				c.done = true
				break
			}
			if err := c.rows.Scan(c.ptrs...); err != nil {
				return fmt.Errorf("table %q: %w", name, err)
			}
			seq, ok := c.raw[0].(int64)
			if !ok {
				return fmt.Errorf("table %q: shadow row with seq %v", name, c.raw[0])
			}
			c.seq = seq
		}
		if c.seq != e.seq {
			return fmt.Errorf("table %q: change %d has no row image", name, e.seq)
		}
		g, err := st.generation(ctx, tx, e.tbl, e.gen, name)
		if err != nil {
			return err
		}
		if gen, ok := st.announced[e.tbl]; !ok || gen != e.gen {
			schema := g.table
			schema.Columns = append([]lakelink.Column(nil), g.table.Columns...)
			schema.Key = append([]int(nil), g.table.Key...)
			st.buf = append(st.buf, lakelink.Change{Op: lakelink.OpSchema, Table: name, Pos: lakelink.Position(e.seq), Schema: &schema})
			st.announced[e.tbl] = e.gen
		}
		m, ok := c.mapping[e.gen]
		if !ok {
			m = make([]int, len(g.table.Columns))
			for i, col := range g.table.Columns {
				j, ok := c.cols[asciiLower(shadowColumn(col.Name))]
				if !ok {
					return fmt.Errorf("table %q: no shadow column for %q", name, col.Name)
				}
				m[i] = j
			}
			c.mapping[e.gen] = m
		}
		row := make([]lakelink.Value, len(m))
		for i, j := range m {
			row[i] = convert(&g.table.Columns[i], c.raw[j])
			size += valueSize(c.raw[j])
		}
		ch := lakelink.Change{Table: name, Pos: lakelink.Position(e.seq), Row: row}
		old := replaced[e.tbl]
		delete(replaced, e.tbl)
		switch e.op {
		case "R":
			// The image of a row with the key an INSERT is about to write:
			// if that insert follows, it replaced the row (INSERT OR
			// REPLACE), which SQLite deletes without a delete trigger.
			ch.Op, ch.OldKnown = lakelink.OpDelete, true
			replaced[e.tbl] = &ch
			continue
		case "I":
			ch.Op = lakelink.OpInsert
			if old != nil && sameKey(g.table.Key, old.Row, row) {
				st.buf = append(st.buf, *old)
			}
		case "U":
			ch.Op = lakelink.OpUpdate
		case "D":
			ch.Op, ch.OldKnown = lakelink.OpDelete, true
		default:
			return fmt.Errorf("table %q: change %d has unknown op %q", name, e.seq, e.op)
		}
		st.buf = append(st.buf, ch)
		if size >= rangeBytes && len(replaced) == 0 {
			end = e.seq
			break
		}
	}
	st.buf = append(st.buf, lakelink.Change{Op: lakelink.OpCommit, Pos: lakelink.Position(end)})
	st.last = end
	return nil
}

// announce delivers an OpSchema at the current position for every re-installed table whose new generation the stream has not
// announced yet. It runs only when the log is drained, so no row of an
// older generation can follow.
func (st *stream) announce(ctx context.Context, tx *sql.Tx) error {
	ts, err := trackedTables(ctx, tx, st.n)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if !st.reinstalled[t.name] {
			continue
		}
		if gen, ok := st.announced[t.id]; ok && gen == t.gen {
			continue
		}
		g, err := st.generation(ctx, tx, t.id, t.gen, t.name)
		if err != nil {
			return err
		}
		schema := g.table
		schema.Columns = append([]lakelink.Column(nil), g.table.Columns...)
		schema.Key = append([]int(nil), g.table.Key...)
		st.buf = append(st.buf, lakelink.Change{Op: lakelink.OpSchema, Table: t.name, Pos: lakelink.Position(st.last), Schema: &schema})
		st.announced[t.id] = t.gen
	}
	st.reinstalled = nil
	return nil
}

// sameKey reports whether two rows of a table have the same key.
func sameKey(key []int, a, b []lakelink.Value) bool {
	for _, k := range key {
		if k >= len(a) || k >= len(b) || fmt.Sprintf("%#v", a[k]) != fmt.Sprintf("%#v", b[k]) {
			return false
		}
	}
	return true
}

// generation returns a table's definition in one generation.
func (st *stream) generation(ctx context.Context, tx *sql.Tx, tbl, gen int64, name string) (*generation, error) {
	k := genKey{tbl, gen}
	if g, ok := st.gens[k]; ok {
		return g, nil
	}
	cols, err := loadGen(ctx, tx, st.n, tbl, gen)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", name, err)
	}
	g := &generation{table: tableOf(name, cols)}
	st.gens[k] = g
	return g, nil
}

func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	}
	return 8
}

// Ack deletes the log entries up to and including pos, and their row
// images, in one write transaction.
func (st *stream) Ack(ctx context.Context, pos lakelink.Position) error {
	err := st.src.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+quoteIdent(st.n.log())+` WHERE seq <= ?`, int64(pos)); err != nil {
			return err
		}
		ts, err := trackedTables(ctx, tx, st.n)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+quoteIdent(st.n.rows(t.id))+` WHERE seq <= ?`, int64(pos)); err != nil {
				return fmt.Errorf("table %q: %w", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: ack link %q at %d: %w", st.n.link, pos, err)
	}
	return nil
}

// Close releases the stream's connection.
func (st *stream) Close() error {
	st.close()
	st.busy.Lock()
	defer st.busy.Unlock()
	if st.conn == nil {
		return nil
	}
	err := st.conn.Close()
	st.conn = nil
	if err != nil {
		return fmt.Errorf("sqlite: stream link %q: close: %w", st.n.link, err)
	}
	return nil
}
