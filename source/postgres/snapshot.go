package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lakelink/lakelink"
)

// snapshot is a copy of one table read by one or more readers (see
// reader), each in a REPEATABLE READ transaction of its own that imported
// the same exported snapshot of a replication slot, so that they all see
// the same rows.
//
// A large plain table is read in ranges of pages (chunks, by ctid), which
// the readers take in turn: reader i reads chunks i, i+n, i+2n... and
// decodes their rows, while the snapshot hands the chunks out in page
// order, as one sequential scan would give them. Each reader runs ahead by
// at most its channel's batches, so memory does not grow with the table.
//
// Close may be called while another goroutine is in Next: it cancels the
// readers' context, which ends their queries and a Next waiting for them,
// and then takes mu. Canceling Snapshot's context does the same.
type snapshot struct {
	cancel  context.CancelFunc // of the readers' context
	mu      sync.Mutex         // held by Next, NextBatch and Close
	tab     lakelink.Table
	pos     lakelink.Position
	readers []*reader
	chunks  int                // chunks, handed out in order; chunk k is read by readers[k%len(readers)]
	next    int                // the chunk being handed out
	rows    [][]lakelink.Value // the rest of the batch Next hands out
	free    chan *batchMem     // batches' memory to use again
	lent    *batchMem          // of the batch NextBatch handed out last
	done    bool
	err     error // why the copy ended early, returned by every later call
}

// Snapshot starts a consistent copy of a tracked table.
//
// When the link's slot does not exist yet, Snapshot creates it with an
// exported snapshot and copies the table in that snapshot: the copy then
// holds every transaction that committed before the slot's consistent
// point and none after it, and the slot streams exactly those after it.
// A lost (invalidated) slot is dropped and created anew in this way. When
// the slot exists, Snapshot creates a temporary slot of its own,
// likewise with an exported snapshot, and uses its consistent point: that is
// exact for the same reason, without reading pg_current_wal_lsn() (which
// can't be matched exactly with a snapshot: a transaction can write its
// commit record before it becomes visible). The temporary slot is dropped
// when its connection closes, right after the copy imported its snapshot.
//
// The copy's transaction stays open until the last row was read or Close,
// holding back vacuum of the rows it sees.
func (s *Source) Snapshot(ctx context.Context, link, table string) (_ lakelink.Snapshot, err error) {
	slot, err := name(link)
	if err != nil {
		return nil, err
	}
	ref, ok, err := findTable(ctx, s.pool, table)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	if !ok {
		return nil, &lakelink.NotLinkableError{Table: table, Reason: "there is no such table"}
	}
	var exists, tracked bool
	var estimate int64 // the table's size in pages, now
	if err := s.pool.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
       EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2),
       pg_relation_size($2) / current_setting('block_size')::bigint`,
		slot, ref.oid).Scan(&exists, &tracked, &estimate); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: find slot %q: %w", table, slot, err)
	}
	if !tracked {
		// Its changes would never reach the stream.
		return nil, fmt.Errorf("postgres: snapshot %q: the table is not in publication %q: track it first", table, slot)
	}
	if exists {
		// A lost slot can't stream again. The copy is being made again
		// (a resync), so it is replaced by a new slot, whose consistent
		// point is the copy's Position. A table of the link that is not
		// copied again stays behind the new slot, and Stream refuses to
		// start until it is.
		ss, ok, err := readSlot(ctx, s.pool, slot)
		if err != nil {
			return nil, fmt.Errorf("postgres: snapshot %q: find slot %q: %w", table, slot, err)
		}
		if ok && ss.lost() != "" {
			if err := dropSlot(ctx, s.pool, slot); err != nil {
				return nil, fmt.Errorf("postgres: snapshot %q: drop lost slot %q: %w", table, slot, err)
			}
			s.logger.Warn("lost replication slot replaced", "link", link, "slot", slot, "why", ss.lost())
		}
		exists = ok && ss.lost() == ""
	}

	// A large table is read by several connections: they connect while
	// the slot is made.
	dialed := s.dialReaders(ctx, readersFor(estimate)-1)
	defer func() { go dialed.close() }()

	rc, err := pgconn.ConnectConfig(ctx, s.replCfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: replication connection: %w", table, err)
	}
	// The exported snapshot lives as long as the replication connection
	// stays idle; it is closed once the copy has imported it.
	defer rc.Close(context.Background())
	var res pglogrepl.CreateReplicationSlotResult
	if !exists {
		res, err = pglogrepl.CreateReplicationSlot(ctx, rc, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT"})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42710" { // created meanwhile
			exists = true
		} else if err != nil {
			return nil, fmt.Errorf("postgres: create slot %q: %w", slot, err)
		} else {
			s.logger.Info("replication slot created", "link", link, "slot", slot, "position", res.ConsistentPoint)
		}
	}
	if exists {
		b := make([]byte, 4)
		rand.Read(b)
		tmp := slot + "_s" + hex.EncodeToString(b)
		res, err = pglogrepl.CreateReplicationSlot(ctx, rc, tmp, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "EXPORT_SNAPSHOT"})
		if err != nil {
			return nil, fmt.Errorf("postgres: create temporary slot %q: %w", tmp, err)
		}
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return nil, fmt.Errorf("postgres: slot %q: consistent point %q: %w", slot, res.ConsistentPoint, err)
	}

	sn := &snapshot{pos: lakelink.Position(lsn)}
	rctx, cancel := context.WithCancel(ctx)
	sn.cancel = cancel
	defer func() {
		if err != nil {
			sn.Close()
		}
	}()
	first, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	r0 := &reader{pooled: first, conn: first.Conn()}
	sn.readers = []*reader{r0}
	if err := r0.begin(ctx, res.SnapshotName); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	// Read the definition in the snapshot, so that it is the one the rows
	// have.
	ref, ok, err = findTable(ctx, r0.conn, table)
	if err == nil && !ok {
		err = errors.New("the table did not exist at the snapshot")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	var cols []col
	if sn.tab, cols, _, err = loadTable(ctx, r0.conn, ref); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	names := make([]string, len(sn.tab.Columns))
	for i, c := range sn.tab.Columns {
		names[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	// A text-format query: every value comes as its type's text output, as
	// in pgoutput's tuples. A partitioned table's rows include its
	// partitions'.
	query := "SELECT " + strings.Join(names, ", ") + " FROM " + ref.ident()
	pages, err := chunkable(ctx, r0.conn, ref)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	if n := readersFor(pages); n > 1 {
		// The other readers import the snapshot too, before Snapshot
		// returns and the exporting connection closes. One that can't
		// (no connection left on the server) is done without.
		sn.readers = append(sn.readers, dialed.begin(ctx, n-1, res.SnapshotName)...)
	}
	sn.chunks = 1
	if len(sn.readers) > 1 {
		// The last chunk has no end: it reaches whatever pages the
		// table has, whatever its size when it was measured.
		sn.chunks = int((pages + chunkPages - 1) / chunkPages)
	}
	sn.free = make(chan *batchMem, len(sn.readers)*(readerBatches+1))
	for i, r := range sn.readers {
		r.out = make(chan rowBatch, readerBatches)
		r.done = make(chan struct{})
		go r.run(rctx, sn.tab.Name, cols, query, i, len(sn.readers), sn.chunks, sn.free)
	}
	return sn, nil
}

// snapshotReaders is how many readers (connections) read a large table.
// A reader takes about a core of lakelink's to decode what its server
// process sends, and encoding the rows takes another: on two cores shared
// with PostgreSQL, one reader is fastest.
var snapshotReaders = max(1, min(runtime.GOMAXPROCS(0)/2, 4))

// chunkPages is how many pages (of 8 KiB, usually) a chunk of a table read
// by several readers holds. A reader keeps up to readerBatches batches of
// batchRows rows or batchBytes bytes of text, which holds a chunk of
// ordinary rows: it reads its next chunk while the others' are handed out.
const (
	chunkPages    = 64
	readerBatches = 32
	batchRows     = 256
	batchBytes    = 128 << 10
)

// chunkable returns the table's size in pages when it can be read in
// chunks by ctid range: a plain table without inheritance children, on
// PostgreSQL 14 or later (TID range scans); otherwise 0.
func chunkable(ctx context.Context, q querier, ref tableRef) (int64, error) {
	var ok bool
	var pages int64
	err := q.QueryRow(ctx, `
SELECT c.relkind = 'r' AND NOT c.relhassubclass AND current_setting('server_version_num')::int >= 140000,
       pg_relation_size(c.oid) / current_setting('block_size')::bigint
FROM pg_class c WHERE c.oid = $1`, ref.oid).Scan(&ok, &pages)
	if err != nil || !ok {
		return 0, err
	}
	return pages, nil
}

// readersFor returns how many readers read a table of the given size in
// pages: one, unless it has at least two chunks.
func readersFor(pages int64) int {
	if pages < 2*chunkPages {
		return 1
	}
	return int(min(int64(snapshotReaders), (pages+chunkPages-1)/chunkPages))
}

// dialing is connections being opened for the readers of a snapshot.
type dialing struct {
	conns chan *pgx.Conn // each one opened, or nil for one that failed
	n     int            // connections asked for
	got   []*pgx.Conn    // received from conns
}

// dialReaders starts opening n connections for the readers of a snapshot.
func (s *Source) dialReaders(ctx context.Context, n int) *dialing {
	d := &dialing{conns: make(chan *pgx.Conn, max(n, 0)), n: max(n, 0)}
	cfg := s.pool.Config().ConnConfig
	for range d.n {
		go func() {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				conn = nil
			}
			d.conns <- conn
		}()
	}
	return d
}

// wait receives every connection, opened or not.
func (d *dialing) wait() {
	for len(d.got) < d.n {
		d.got = append(d.got, <-d.conns)
	}
}

// begin returns up to n readers on the connections opened, each in a
// transaction that imported the exported snapshot; the connections it
// does not use, or that fail, stay for close.
func (d *dialing) begin(ctx context.Context, n int, snapshotName string) []*reader {
	d.wait()
	var rs []*reader
	for i, conn := range d.got {
		if conn != nil && len(rs) < n {
			rs = append(rs, &reader{conn: conn})
			d.got[i] = nil
		}
	}
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.begin(ctx, snapshotName) })
	}
	wg.Wait()
	began := rs[:0]
	for i, r := range rs {
		if errs[i] == nil {
			began = append(began, r)
		} else {
			r.conn.Close(context.Background())
		}
	}
	return began
}

// close closes the connections no reader took.
func (d *dialing) close() {
	d.wait()
	for _, conn := range d.got {
		if conn != nil {
			conn.Close(context.Background())
		}
	}
}

// reader is one connection of a snapshot, in a transaction that imported
// the exported snapshot. Its goroutine (run) reads its chunks' rows,
// decodes them and sends them on out, in batches, each chunk's last batch
// marked; it closes out when it is done. Only run uses the connection once
// it started.
type reader struct {
	pooled *pgxpool.Conn // the pool's connection, or nil: conn is the reader's own
	conn   *pgx.Conn
	out    chan rowBatch
	done   chan struct{} // closed when run has returned
	clean  bool          // run ended the transaction after the last row
}

// rowBatch is rows of a chunk, or the error that ended the copy.
type rowBatch struct {
	rows [][]lakelink.Value
	mem  *batchMem // of rows; nil when there are none
	last bool      // the chunk's last batch
	err  error
}

// begin starts the reader's transaction in the exported snapshot, in one
// round trip. A chunk must then be read by a TID range scan, never a full
// scan.
func (r *reader) begin(ctx context.Context, snapshotName string) error {
	_, err := r.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '"+snapshotName+"'; SET LOCAL enable_tidscan = on")
	if err != nil {
		return fmt.Errorf("begin in snapshot %q: %w", snapshotName, err)
	}
	return nil
}

// run reads chunks i, i+n, ... of the chunks, then ends the transaction.
func (r *reader) run(ctx context.Context, table string, cols []col, query string, i, n, chunks int, free chan *batchMem) {
	defer close(r.done)
	defer close(r.out)
	send := func(b rowBatch) bool {
		select {
		case r.out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for k := i; k < chunks; k += n {
		q := query
		if chunks > 1 {
			q += fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid", int64(k)*chunkPages)
			if k < chunks-1 {
				q += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", int64(k+1)*chunkPages)
			}
		}
		rr := r.conn.PgConn().ExecParams(ctx, q, nil, nil, nil, nil)
		var b rowBatch
		size := 0
		for rr.NextRow() {
			row := rr.Values()
			if len(row) != len(cols) {
				rr.Close()
				send(rowBatch{err: fmt.Errorf("postgres: snapshot %q: %d values for %d columns", table, len(row), len(cols))})
				return
			}
			if b.mem == nil {
				b.mem = newBatchMem(free, len(cols))
			}
			dst := b.mem.row()
			for j, v := range row {
				dst[j] = cols[j].decode(v, &b.mem.arena)
				size += len(v)
			}
			b.rows = append(b.mem.rows, dst)
			b.mem.rows = b.rows
			if len(b.rows) == batchRows || size >= batchBytes {
				if !send(b) {
					rr.Close()
					return
				}
				b, size = rowBatch{}, 0
			}
		}
		if _, err := rr.Close(); err != nil {
			send(rowBatch{err: fmt.Errorf("postgres: snapshot %q: %w", table, err)})
			return
		}
		b.last = true
		if !send(b) {
			return
		}
	}
	if _, err := r.conn.Exec(ctx, "COMMIT"); err != nil {
		send(rowBatch{err: fmt.Errorf("postgres: snapshot %q: %w", table, err)})
		return
	}
	r.clean = true
}

// batchMem is the memory of a batch of rows: the rows, the slices of their
// values, and the arena of the values. A batch handed out by NextBatch
// goes back to its snapshot's free list at the next call, to be used
// again; one handed out by Next never does (its rows may be kept).
type batchMem struct {
	rows  [][]lakelink.Value
	vals  []lakelink.Value // room for the values of batchRows rows
	used  int              // values of vals in rows
	cols  int
	arena arena
}

// newBatchMem returns an empty batchMem for rows of cols columns, one of
// free when there is one.
func newBatchMem(free chan *batchMem, cols int) *batchMem {
	select {
	case m := <-free:
		return m
	default:
	}
	return &batchMem{rows: make([][]lakelink.Value, 0, batchRows), vals: make([]lakelink.Value, batchRows*cols), cols: cols, arena: arena{recycle: true}}
}

// row returns the values of a new row; a batch has at most batchRows.
func (m *batchMem) row() []lakelink.Value {
	row := m.vals[m.used : m.used+m.cols : m.used+m.cols]
	m.used += m.cols
	return row
}

// recycle empties m and puts it on the free list, if there is room.
func (m *batchMem) recycle(free chan *batchMem) {
	m.rows, m.used = m.rows[:0], 0
	m.arena.reset()
	select {
	case free <- m:
	default:
	}
}

// close releases the reader's connection; one that did not end its
// transaction cleanly is closed rather than reused. run must have
// returned, or never started.
func (r *reader) close() {
	if !r.clean {
		// Closing the connection ends the query and the transaction.
		r.conn.Close(context.Background())
	}
	if r.pooled != nil {
		r.pooled.Release()
	} else if r.clean {
		r.conn.Close(context.Background())
	}
}

func (sn *snapshot) Table() lakelink.Table       { return sn.tab }
func (sn *snapshot) Position() lakelink.Position { return sn.pos }

// Next returns the next row, or io.EOF after the last, when every reader's
// transaction has ended. The row is not reused.
func (sn *snapshot) Next() ([]lakelink.Value, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.giveBack()
	for len(sn.rows) == 0 {
		b, err := sn.nextBatch()
		if err != nil {
			return nil, err
		}
		sn.rows = b.rows // its memory is never used again
	}
	row := sn.rows[0]
	sn.rows = sn.rows[1:]
	return row, nil
}

// NextBatch returns the next rows, at least one, or io.EOF after the last.
// The rows, and the values in them, are valid until the next call of
// NextBatch, Next or Close, which reuse their memory. Calls may mix with
// Next.
func (sn *snapshot) NextBatch() ([][]lakelink.Value, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.giveBack()
	if rows := sn.rows; len(rows) > 0 {
		sn.rows = nil
		return rows, nil
	}
	b, err := sn.nextBatch()
	if err != nil {
		return nil, err
	}
	sn.lent = b.mem
	return b.rows, nil
}

// giveBack puts the memory of the batch NextBatch handed out last on the
// free list.
func (sn *snapshot) giveBack() {
	if sn.lent != nil {
		sn.lent.recycle(sn.free)
		sn.lent = nil
	}
}

// nextBatch receives the next batch that has rows.
func (sn *snapshot) nextBatch() (rowBatch, error) {
	for !sn.done {
		if sn.next == sn.chunks {
			sn.finish()
			break
		}
		b, ok := <-sn.readers[sn.next%len(sn.readers)].out
		switch {
		case !ok:
			// Closed meanwhile: the readers' context was canceled.
			sn.err = fmt.Errorf("postgres: snapshot %q: closed", sn.tab.Name)
			sn.finish()
		case b.err != nil:
			sn.err = b.err
			sn.finish()
		default:
			if b.last {
				sn.next++
			}
			if len(b.rows) > 0 {
				return b, nil
			}
		}
	}
	if sn.err != nil {
		return rowBatch{}, sn.err
	}
	return rowBatch{}, io.EOF
}

// finish stops the readers and releases their connections.
func (sn *snapshot) finish() {
	if sn.done {
		return
	}
	sn.done = true
	sn.cancel()
	for _, r := range sn.readers {
		if r.done != nil {
			<-r.done
		}
		r.close()
	}
	sn.readers = nil
}

// Close ends the copy; before the last row it closes the readers'
// connections rather than read the rest.
func (sn *snapshot) Close() error {
	sn.cancel()
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.finish()
	sn.lent, sn.rows = nil, nil
	return nil
}
