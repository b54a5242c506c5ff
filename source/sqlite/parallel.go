package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/lakelink/lakelink"
)

// parallelMinRows is the rowid span below which a table is read by one
// connection: splitting a small table costs more than it saves.
const parallelMinRows = 100_000

// rowRange is one part of a table read in parallel: rows whose rowid
// (under the name col) is within lo..hi.
type rowRange struct {
	col    string
	lo, hi int64
}

// multiSnapshot reads a table's rowid ranges in parallel, one snapshot per
// range, all pinned to the same state of the database. Reading a row
// through database/sql and the pure-Go SQLite costs far more than encoding
// it, so this is what lets the initial write use more than one core.
type multiSnapshot struct {
	parts  []*snapshot
	out    chan rowBatch
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cur    rowBatch
	name   string
	closed bool
}

type rowBatch struct {
	rows [][]lakelink.Value
	err  error
}

// parallelSnapshot returns nil, nil when the table is better read by one
// connection (no rowid, small, or one core).
func (s *Source) parallelSnapshot(ctx context.Context, n names, table string) (lakelink.Snapshot, error) {
	workers := min(runtime.NumCPU(), 4)
	if workers < 2 {
		return nil, nil
	}
	// Hold the write lock while every part starts its read transaction:
	// no commit can come between them.
	w, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := retry(ctx, func() error { _, err := w.ExecContext(ctx, "BEGIN IMMEDIATE"); return err }); err != nil {
		return nil, err
	}
	defer w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	d, err := describe(ctx, w, table)
	if err != nil || !d.exists || d.withoutRowid {
		return nil, err
	}
	col, ok := rowidName(d)
	if !ok {
		return nil, nil
	}
	var lo, hi sql.NullInt64
	if err := w.QueryRowContext(ctx, fmt.Sprintf("SELECT min(%s), max(%s) FROM main.%s", col, col, quoteIdent(table))).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if !lo.Valid || hi.Int64-lo.Int64 < parallelMinRows {
		return nil, nil
	}
	ms := &multiSnapshot{name: table}
	step := (hi.Int64 - lo.Int64) / int64(workers)
	for i := 0; i < workers; i++ {
		r := &rowRange{col: col, lo: lo.Int64 + int64(i)*step, hi: lo.Int64 + int64(i+1)*step - 1}
		if i == workers-1 {
			r.hi = hi.Int64
		}
		sn, err := s.snapshot(ctx, n, table, r)
		if err != nil {
			for _, p := range ms.parts {
				p.Close()
			}
			return nil, err
		}
		ms.parts = append(ms.parts, sn)
	}
	for _, p := range ms.parts[1:] {
		if p.pos != ms.parts[0].pos {
			for _, p := range ms.parts {
				p.Close()
			}
			return nil, fmt.Errorf("parallel read saw positions %d and %d: the write lock did not hold", ms.parts[0].pos, p.pos)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	ms.cancel = cancel
	ms.out = make(chan rowBatch, 2*workers)
	for _, p := range ms.parts {
		ms.wg.Add(1)
		go ms.read(rctx, p)
	}
	go func() { ms.wg.Wait(); close(ms.out) }()
	return ms, nil
}

// rowidName is a name by which the table's rowid can be selected: the
// first of _rowid_, rowid, oid that no column shadows.
func rowidName(d tableDesc) (string, bool) {
	for _, r := range []string{"_rowid_", "rowid", "oid"} {
		shadowed := false
		for _, c := range d.cols {
			if asciiLower(c.Name) == r {
				shadowed = true
			}
		}
		if !shadowed {
			return r, true
		}
	}
	return "", false
}

func (ms *multiSnapshot) read(ctx context.Context, p *snapshot) {
	defer ms.wg.Done()
	const size = 512
	for {
		b := rowBatch{rows: make([][]lakelink.Value, 0, size)}
		for len(b.rows) < size {
			row, err := p.Next()
			if err != nil {
				if err != io.EOF {
					b.err = err
				}
				break
			}
			b.rows = append(b.rows, append([]lakelink.Value(nil), row...))
		}
		if len(b.rows) == 0 && b.err == nil {
			return
		}
		select {
		case ms.out <- b:
		case <-ctx.Done():
			return
		}
		if b.err != nil || len(b.rows) < size {
			return
		}
	}
}

func (ms *multiSnapshot) Table() lakelink.Table       { return ms.parts[0].table }
func (ms *multiSnapshot) Position() lakelink.Position { return ms.parts[0].pos }

// Next returns the next row of any range, or io.EOF after the last.
func (ms *multiSnapshot) Next() ([]lakelink.Value, error) {
	if ms.closed {
		return nil, fmt.Errorf("sqlite: snapshot %q: closed", ms.name)
	}
	for len(ms.cur.rows) == 0 {
		b, ok := <-ms.out
		if !ok {
			return nil, io.EOF
		}
		if b.err != nil {
			return nil, b.err
		}
		ms.cur = b
	}
	row := ms.cur.rows[0]
	ms.cur.rows = ms.cur.rows[1:]
	return row, nil
}

// Close stops the readers and ends every range's read transaction.
func (ms *multiSnapshot) Close() error {
	if ms.closed {
		return nil
	}
	ms.closed = true
	ms.cancel()
	ms.wg.Wait()
	var first error
	for _, p := range ms.parts {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
