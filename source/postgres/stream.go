package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/lakelink/lakelink"
)

// pollInterval bounds how long the stream's goroutine waits for a message
// before it looks for an Ack to send.
const pollInterval = 100 * time.Millisecond

// stream is a link's change stream: one replication connection, read by one
// goroutine (run) that decodes pgoutput messages into changes, answers
// keepalives and sends standby status updates. Only run uses the
// connection.
type stream struct {
	s          *Source
	link, slot string
	conn       *pgconn.PgConn
	from       pglogrepl.LSN
	interval   time.Duration // between standby status updates

	changes chan lakelink.Change
	ackc    chan struct{} // an Ack to send
	acked   atomic.Uint64 // the flush position to report
	cancel  context.CancelFunc
	dead    chan struct{} // closed when run has returned
	err     error         // why run returned; read after dead is closed

	// Owned by run.
	rels       map[uint32]*relation
	inTx, skip bool
	txRows     int
	txPos      lakelink.Position // the position of the transaction's row changes
	delivered  pglogrepl.LSN     // end of the last transaction handed to Next
}

// relation is a table as pgoutput's last Relation message described it.
type relation struct {
	msg       *pglogrepl.RelationMessage
	tab       *lakelink.Table
	cols      []col // tab's columns with their decoders
	announced bool  // the stream delivered tab as an OpSchema
}

// Stream starts the link's change stream after position from: on the
// link's slot (created now if no Snapshot created it), from max(from, the
// slot's confirmed flush position), with pgoutput protocol 1 and messages
// 'true'. from must be 0, a Snapshot's Position or a position an OpCommit
// carried. When from is not 0 and the slot is missing or lost, Stream
// fails: the changes after from are gone. Only one stream of a link can run
// at a time; Stream waits up to 10 s for a closed stream's server process to
// let go of the slot.
//
// Ack records the position and the stream's goroutine sends it to
// PostgreSQL within about pollInterval, and again at Close. When every
// delivered transaction is acknowledged and the server reports (in a
// keepalive) that it has read the WAL further without anything for the
// link, that position is reported, so an idle link does not hold back WAL.
func (s *Source) Stream(ctx context.Context, link string, from lakelink.Position) (lakelink.Stream, error) {
	slot, err := name(link)
	if err != nil {
		return nil, err
	}
	var pub bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", slot).Scan(&pub); err != nil {
		return nil, fmt.Errorf("postgres: stream %q: %w", link, err)
	}
	if !pub {
		return nil, fmt.Errorf("postgres: stream %q: publication %q does not exist: track the link's tables first", link, slot)
	}
	var timeoutMS int64
	if err := s.pool.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'").Scan(&timeoutMS); err != nil {
		return nil, fmt.Errorf("postgres: stream %q: %w", link, err)
	}
	interval := time.Duration(timeoutMS) * time.Millisecond / 3
	if interval <= 0 || interval > 10*time.Second {
		interval = 10 * time.Second
	}

	conn, confirmed, err := s.startReplication(ctx, slot, pglogrepl.LSN(from))
	if err != nil {
		return nil, err
	}
	start := max(pglogrepl.LSN(from), confirmed)
	if pglogrepl.LSN(from) < confirmed && from != 0 {
		s.logger.Info("stream starts at the slot's confirmed position, past the one asked for", "link", link, "position", from.String(), "slot_position", lakelink.Position(confirmed).String())
	}
	sctx, cancel := context.WithCancel(context.Background())
	st := &stream{
		s: s, link: link, slot: slot, conn: conn, from: start, interval: interval,
		changes: make(chan lakelink.Change, 256), ackc: make(chan struct{}, 1),
		cancel: cancel, dead: make(chan struct{}), rels: map[uint32]*relation{},
		delivered: start,
	}
	st.acked.Store(uint64(start))
	go func() {
		defer close(st.dead)
		st.err = st.run(sctx)
		// A last status update reports the last Ack; then the connection
		// ends.
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		st.sendStatus(cctx)
		conn.Close(cctx)
	}()
	s.logger.Info("stream started", "link", link, "position", lakelink.Position(start).String())
	return st, nil
}

// startReplication creates the slot if it does not exist and starts
// replication on a new connection. It returns the slot's confirmed flush
// position.
func (s *Source) startReplication(ctx context.Context, slot string, from pglogrepl.LSN) (*pgconn.PgConn, pglogrepl.LSN, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := pgconn.ConnectConfig(ctx, s.replCfg)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: replication connection: %w", err)
		}
		var confirmed, walStatus string
		err = s.pool.QueryRow(ctx, "SELECT COALESCE(confirmed_flush_lsn::text, ''), COALESCE(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed, &walStatus)
		if errors.Is(err, pgx.ErrNoRows) && from != 0 {
			// The changes after from are gone with the slot: a new slot
			// would start later and silently skip them.
			conn.Close(context.Background())
			return nil, 0, fmt.Errorf("postgres: slot %q does not exist, so the changes after position %d are lost (was it dropped, or the database restored or upgraded?): the link's tables must be copied again", slot, uint64(from))
		}
		if walStatus == "lost" {
			conn.Close(context.Background())
			return nil, 0, fmt.Errorf("postgres: slot %q is lost: PostgreSQL removed WAL it still needed (max_slot_wal_keep_size): the link's tables must be copied again", slot)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			res, cerr := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "NOEXPORT_SNAPSHOT"})
			if cerr != nil {
				conn.Close(context.Background())
				return nil, 0, fmt.Errorf("postgres: create slot %q: %w", slot, cerr)
			}
			s.logger.Info("replication slot created", "slot", slot, "position", res.ConsistentPoint)
			confirmed, err = res.ConsistentPoint, nil
		}
		if err != nil {
			conn.Close(context.Background())
			return nil, 0, fmt.Errorf("postgres: find slot %q: %w", slot, err)
		}
		var lsn pglogrepl.LSN
		if confirmed != "" {
			if lsn, err = pglogrepl.ParseLSN(confirmed); err != nil {
				conn.Close(context.Background())
				return nil, 0, fmt.Errorf("postgres: slot %q: %w", slot, err)
			}
		}
		err = pglogrepl.StartReplication(ctx, conn, slot, from, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names '" + slot + "'", "messages 'true'"},
		})
		if err == nil {
			return conn, lsn, nil
		}
		conn.Close(context.Background())
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" && time.Now().Before(deadline) {
			// The slot is still held by the server process of a stream
			// that just closed.
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		return nil, 0, fmt.Errorf("postgres: start replication on slot %q: %w", slot, err)
	}
}

// Next returns the next change.
func (st *stream) Next(ctx context.Context) (lakelink.Change, error) {
	select {
	case c := <-st.changes:
		return c, nil
	case <-ctx.Done():
		return lakelink.Change{}, ctx.Err()
	case <-st.dead:
		select {
		case c := <-st.changes:
			return c, nil
		default:
		}
		return lakelink.Change{}, st.err
	}
}

// Ack records that every change up to pos is durably in the lake; the
// stream's goroutine reports it to PostgreSQL within about pollInterval.
func (st *stream) Ack(ctx context.Context, pos lakelink.Position) error {
	for {
		old := st.acked.Load()
		if uint64(pos) <= old || st.acked.CompareAndSwap(old, uint64(pos)) {
			break
		}
	}
	select {
	case st.ackc <- struct{}{}:
	default:
	}
	select {
	case <-st.dead:
		return st.err
	default:
		return nil
	}
}

// Close ends the stream, after reporting the last Ack.
func (st *stream) Close() error {
	st.cancel()
	<-st.dead
	return nil
}

func (st *stream) sendStatus(ctx context.Context) error {
	pos := pglogrepl.LSN(st.acked.Load())
	// Write, flush and apply are all the acknowledged position: pglogrepl
	// would replace a zero flush position with the write position, and the
	// slot must never move past what the lake holds.
	err := pglogrepl.SendStandbyStatusUpdate(ctx, st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos, ClientTime: time.Now(),
	})
	if err != nil {
		return fmt.Errorf("postgres: stream %q: send status: %w", st.link, err)
	}
	return nil
}

// run reads the replication connection until ctx is done or it fails.
func (st *stream) run(ctx context.Context) error {
	next := time.Now().Add(st.interval)
	for {
		select {
		case <-st.ackc:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
		default:
		}
		if time.Now().After(next) {
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
			next = time.Now().Add(st.interval)
		}
		rctx, cancel := context.WithTimeout(ctx, pollInterval)
		msg, err := st.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("postgres: stream %q closed", st.link)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("postgres: stream %q: %w", st.link, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: stream %q: keepalive: %w", st.link, err)
				}
				// Nothing in flight: every transaction handed out is
				// acknowledged, and none is half read. The server has
				// decoded up to ServerWALEnd and had nothing more for the
				// link, so that position may be reported.
				if !st.inTx && pglogrepl.LSN(st.acked.Load()) >= st.delivered && ka.ServerWALEnd > st.delivered {
					st.delivered = ka.ServerWALEnd
					st.Ack(ctx, lakelink.Position(ka.ServerWALEnd))
				}
				if ka.ReplyRequested {
					if err := st.sendStatus(ctx); err != nil {
						return err
					}
					next = time.Now().Add(st.interval)
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: stream %q: %w", st.link, err)
				}
				if err := st.handle(ctx, xld); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres: stream %q: %w", st.link, pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return fmt.Errorf("postgres: stream %q: the server ended replication", st.link)
		}
	}
}

// emit hands a change to Next, keeping the connection alive meanwhile.
func (st *stream) emit(ctx context.Context, c lakelink.Change) error {
	t := time.NewTimer(st.interval)
	defer t.Stop()
	for {
		select {
		case st.changes <- c:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("postgres: stream %q closed", st.link)
		case <-st.ackc:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
		case <-t.C:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
			t.Reset(st.interval)
		}
	}
}

// handle decodes one pgoutput message.
func (st *stream) handle(ctx context.Context, xld pglogrepl.XLogData) error {
	m, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return fmt.Errorf("postgres: stream %q: %w", st.link, err)
	}
	pos := st.txPos
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		return st.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		// A transaction whose commit record starts before from was
		// delivered before from (from is a transaction's end).
		st.inTx, st.skip, st.txRows = true, m.FinalLSN < st.from, 0
		// A row change's position is its transaction's commit LSN plus
		// one, not the LSN of its own WAL record: a transaction that
		// commits after a snapshot's position (so is not in the copy) can
		// have written records before it, and those rows must still come
		// after the copy's rows. The commit record of a transaction not in
		// the copy starts at or after the copy's position, and the commit
		// record ends (the position OpCommit carries and Ack is given)
		// after commit LSN + 1, before the next transaction's commit.
		st.txPos = lakelink.Position(m.FinalLSN + 1)
	case *pglogrepl.CommitMessage:
		st.inTx = false
		if st.skip || st.txRows == 0 {
			return nil
		}
		st.delivered = m.TransactionEndLSN
		return st.emit(ctx, lakelink.Change{Op: lakelink.OpCommit, Pos: lakelink.Position(m.TransactionEndLSN)})
	case *pglogrepl.InsertMessage:
		rel, err := st.rel(ctx, m.RelationID)
		if err != nil || st.skip {
			return err
		}
		row, err := st.row(rel, m.Tuple, nil)
		if err != nil {
			return err
		}
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpInsert, Pos: pos, Row: row})
	case *pglogrepl.UpdateMessage:
		rel, err := st.rel(ctx, m.RelationID)
		if err != nil || st.skip {
			return err
		}
		var old *pglogrepl.TupleData
		if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
			old = m.OldTuple
		}
		row, err := st.row(rel, m.NewTuple, old)
		if err != nil {
			return err
		}
		if m.OldTuple != nil && keyChanged(rel.tab.Key, m.OldTuple, m.NewTuple) {
			// A new key is a new row: the old one is deleted.
			oldRow, err := st.row(rel, m.OldTuple, nil)
			if err != nil {
				return err
			}
			del := lakelink.Change{Op: lakelink.OpDelete, Pos: pos, Row: oldRow, OldKnown: old != nil}
			if err := st.emitRow(ctx, rel, del); err != nil {
				return err
			}
			return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpInsert, Pos: pos, Row: row})
		}
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpUpdate, Pos: pos, Row: row})
	case *pglogrepl.DeleteMessage:
		rel, err := st.rel(ctx, m.RelationID)
		if err != nil || st.skip {
			return err
		}
		row, err := st.row(rel, m.OldTuple, nil)
		if err != nil {
			return err
		}
		full := m.OldTupleType == pglogrepl.DeleteMessageTupleTypeOld
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpDelete, Pos: pos, Row: row, OldKnown: full})
	case *pglogrepl.TruncateMessage:
		if st.skip {
			return nil
		}
		var names []string
		for _, id := range m.RelationIDs {
			if r := st.rels[id]; r != nil {
				names = append(names, r.tab.Name)
			}
		}
		return fmt.Errorf("postgres: stream %q: TRUNCATE of %v at %d can't be streamed yet: resync the table", st.link, names, pos)
	}
	// Origin, Type and logical decoding messages carry nothing to export.
	return nil
}

// emitRow delivers a row change, after the table's definition when the
// stream has not delivered it yet.
func (st *stream) emitRow(ctx context.Context, rel *relation, c lakelink.Change) error {
	if !rel.announced {
		tab := *rel.tab
		if err := st.emit(ctx, lakelink.Change{Op: lakelink.OpSchema, Table: tab.Name, Pos: c.Pos, Schema: &tab}); err != nil {
			return err
		}
		rel.announced = true
	}
	st.txRows++
	c.Table = rel.tab.Name
	return st.emit(ctx, c)
}

func (st *stream) rel(ctx context.Context, id uint32) (*relation, error) {
	r := st.rels[id]
	if r == nil {
		return nil, fmt.Errorf("postgres: stream %q: row of relation %d before its Relation message", st.link, id)
	}
	return r, nil
}

// row decodes a tuple. An unchanged TOASTed value is taken from old (the
// old row under REPLICA IDENTITY FULL) when it has it.
func (st *stream) row(rel *relation, t, old *pglogrepl.TupleData) ([]lakelink.Value, error) {
	if t == nil || len(t.Columns) != len(rel.tab.Columns) {
		return nil, fmt.Errorf("postgres: stream %q: table %q: tuple does not match its %d columns", st.link, rel.tab.Name, len(rel.tab.Columns))
	}
	row := make([]lakelink.Value, len(t.Columns))
	for i, c := range t.Columns {
		dec := &rel.cols[i]
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeText:
			row[i] = dec.decode(c.Data)
		case pglogrepl.TupleDataTypeToast:
			if old != nil && i < len(old.Columns) && old.Columns[i].DataType == pglogrepl.TupleDataTypeText {
				row[i] = dec.decode(old.Columns[i].Data)
			} else {
				row[i] = lakelink.BadValue{Reason: "an unchanged TOASTed value is not in the stream; run ALTER TABLE " + rel.ident() + " REPLICA IDENTITY FULL so that it is"}
			}
		default:
			return nil, fmt.Errorf("postgres: stream %q: table %q column %q: tuple data type %q not supported", st.link, rel.tab.Name, rel.tab.Columns[i].Name, c.DataType)
		}
	}
	return row, nil
}

func (r *relation) ident() string {
	return tableRef{schema: r.msg.Namespace, table: r.msg.RelationName}.ident()
}

// keyChanged reports whether a key column's text differs between the old
// and the new tuple. An unchanged TOASTed key column did not change.
func keyChanged(key []int, old, new *pglogrepl.TupleData) bool {
	for _, k := range key {
		if k >= len(old.Columns) || k >= len(new.Columns) {
			return true
		}
		o, n := old.Columns[k], new.Columns[k]
		if n.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		if o.DataType != n.DataType || !bytes.Equal(o.Data, n.Data) {
			return true
		}
	}
	return false
}

// relation records a Relation message: the table's columns from now on.
// The table's definition is delivered again before its next row only when
// it differs from the one delivered.
func (st *stream) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	ref := tableRef{oid: m.RelationID, schema: m.Namespace, table: m.RelationName}
	tab := &lakelink.Table{Name: ref.Name()}
	var cols []col
	var composites [][2]uint32 // per column: see compositeSQL
	oids := make([]uint32, len(m.Columns))
	mods := make([]int32, len(m.Columns))
	for i, c := range m.Columns {
		oids[i], mods[i] = c.DataType, c.TypeModifier
	}
	// The spelling of each type and an enum's labels come from the catalog
	// now; the Relation message gives the type's OID and modifier.
	rows, err := st.s.pool.Query(ctx, `
SELECT format_type(m.oid, m.typmod),
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = m.oid ORDER BY e.enumsortorder),
       `+compositeSQL+`
FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS m(oid, typmod, ord) JOIN pg_type t ON t.oid = m.oid
ORDER BY m.ord`, oids, mods)
	if err != nil {
		return fmt.Errorf("postgres: stream %q: table %q: %w", st.link, tab.Name, err)
	}
	i := 0
	for rows.Next() {
		var typeName string
		var options []string
		var elem, relid, erelid uint32
		if err := rows.Scan(&typeName, &options, &elem, &relid, &erelid); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: stream %q: table %q: %w", st.link, tab.Name, err)
		}
		if len(options) == 0 {
			options = nil
		}
		c := m.Columns[i]
		cols = append(cols, column(c.Name, c.DataType, c.TypeModifier, typeName, options, elem))
		composites = append(composites, [2]uint32{relid, erelid})
		i++
	}
	if err := rows.Err(); err != nil || i != len(m.Columns) {
		return fmt.Errorf("postgres: stream %q: table %q: read column types: %v", st.link, tab.Name, err)
	}
	for i, r := range composites {
		if err := addFields(ctx, st.s.pool, &cols[i], r[0], r[1], 0); err != nil {
			return fmt.Errorf("postgres: stream %q: table %q: %w", st.link, tab.Name, err)
		}
		tab.Columns = append(tab.Columns, cols[i].Column)
	}
	// The key: the primary key's columns, in key order, when the table has
	// one; otherwise the replica identity's columns.
	var pk []string
	krows, err := st.s.pool.Query(ctx, `
SELECT a.attname FROM pg_index i CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, m.RelationID)
	if err != nil {
		return fmt.Errorf("postgres: stream %q: table %q: read key: %w", st.link, tab.Name, err)
	}
	for krows.Next() {
		var n string
		if err := krows.Scan(&n); err != nil {
			krows.Close()
			return fmt.Errorf("postgres: stream %q: table %q: read key: %w", st.link, tab.Name, err)
		}
		pk = append(pk, n)
	}
	if err := krows.Err(); err != nil {
		return fmt.Errorf("postgres: stream %q: table %q: read key: %w", st.link, tab.Name, err)
	}
	for _, n := range pk {
		if k := tab.ColumnIndex(n); k >= 0 {
			tab.Key = append(tab.Key, k)
		}
	}
	if len(tab.Key) != len(pk) || len(pk) == 0 {
		tab.Key = nil
		for i, c := range m.Columns {
			if c.Flags&1 != 0 {
				tab.Key = append(tab.Key, i)
			}
		}
	}
	r := &relation{msg: m, tab: tab, cols: cols}
	if prev := st.rels[m.RelationID]; prev != nil && prev.announced && sameTable(prev.tab, tab) {
		r.announced = true
	}
	st.rels[m.RelationID] = r
	return nil
}

func sameTable(a, b *lakelink.Table) bool {
	if a.Name != b.Name || len(a.Columns) != len(b.Columns) || len(a.Key) != len(b.Key) {
		return false
	}
	for i := range a.Columns {
		x, y := a.Columns[i], b.Columns[i]
		if x.Name != y.Name || x.Type != y.Type || x.Kind != y.Kind || len(x.Options) != len(y.Options) {
			return false
		}
		for j := range x.Options {
			if x.Options[j] != y.Options[j] {
				return false
			}
		}
	}
	for i := range a.Key {
		if a.Key[i] != b.Key[i] {
			return false
		}
	}
	return true
}
