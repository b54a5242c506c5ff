package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// The stream decodes ahead of Next and hands changes over in batches of
// up to changeBatch changes or changeBatchBytes bytes of pgoutput messages,
// at most changeBatches of them queued: however large a transaction is, no
// more than that of it is held in memory. A batch is handed over when it is
// full, and before the stream waits for the server, so a change is never
// held back while the stream has nothing else to do.
const (
	changeBatch      = 256
	changeBatchBytes = 1 << 20
	changeBatches    = 8
)

// stream is a link's change stream: one replication connection, read by one
// goroutine (run) that decodes pgoutput messages into changes, answers
// keepalives and sends standby status updates. Only run uses the
// connection.
type stream struct {
	s          *Source
	link, slot string
	conn       *pgconn.PgConn
	from       pglogrepl.LSN
	interval   time.Duration // between standby status updates, and at least between progress commits
	heartbeat  time.Duration // at least between heartbeats; 0: none

	changes chan []lakelink.Change // batches, handed from run to Next
	spent   chan []lakelink.Change // batches Next handed out, for run to fill again
	cur     []lakelink.Change      // owned by Next: the rest of the batch it is handing out
	curBuf  []lakelink.Change      // owned by Next: all of that batch
	ackc    chan struct{}          // an Ack to send
	acked   atomic.Uint64          // the flush position to report
	cancel  context.CancelFunc
	dead    chan struct{} // closed when run has returned
	err     error         // why run returned; read after dead is closed

	beats      sync.WaitGroup // heartbeat goroutines
	beating    atomic.Bool    // a heartbeat is being written
	beatFailed atomic.Bool    // a heartbeat failed (logged once)
	heartbeats atomic.Int64   // heartbeat transactions delivered, for tests

	// Owned by run (pending also by Next, once dead is closed).
	pending      []lakelink.Change // the batch being filled
	pendingBytes int               // bytes of the messages of pending's changes
	msgBytes     int               // bytes of the message being handled
	tick         *time.Ticker      // standby status updates while flush waits for Next
	vals         []lakelink.Value  // backs the rows of changes being decoded
	arena        arena             // holds their values
	msg          rowMessage        // the row change being decoded
	rels         map[uint32]*relation
	inTx, skip   bool
	txBeat       bool // the transaction holds the link's heartbeat
	txRows       int
	txPos        lakelink.Position // the position of the transaction's row changes
	delivered    pglogrepl.LSN     // the position of the last OpCommit handed to Next
	lastCommit   time.Time         // when the last transaction was handed to Next
	lastProgress time.Time         // when the last progress commit was handed to Next
	lastBeat     time.Time         // when the last heartbeat was started
}

// relation is a table as pgoutput's last Relation message described it.
type relation struct {
	msg       *pglogrepl.RelationMessage
	tab       *lakelink.Table
	cols      []col // tab's columns with their decoders
	announced bool  // the stream delivered tab as an OpSchema
}

// Stream starts the link's change stream after position from, on the
// link's slot, with pgoutput protocol 1 and messages 'true'. from must be
// 0, a Snapshot's Position or a position an OpCommit carried.
//
// From 0 (the lake holds nothing of the link yet) the stream starts at the
// slot's confirmed flush position, creating the slot if there is none or
// replacing it if it is lost. From any other position, Stream refuses, with
// an error that wraps lakelink.ErrResync and names the tables to copy
// again, when the slot is missing, lost (invalidated), or confirmed past
// from: PostgreSQL no longer has every change after from. Only one stream
// of a link can run at a time; Stream waits up to 10 s for a closed
// stream's server process to let go of the slot.
//
// Ack records the position and the stream's goroutine sends it to
// PostgreSQL within about pollInterval; standby status updates repeat it at
// a third of the server's wal_sender_timeout, and at once when the server
// asks. The slot never moves past what was acknowledged. To keep an idle
// link from holding back WAL, the stream delivers progress commits (see
// the package comment) and writes heartbeats.
//
// Next returns an error when the replication connection fails; a lost
// connection (a dropped connection, a server restart) is marked
// lakelink.ErrTransient. Close never waits for the server for more than a
// few seconds.
func (s *Source) Stream(ctx context.Context, link string, from lakelink.Position) (lakelink.Stream, error) {
	slot, err := name(link)
	if err != nil {
		return nil, err
	}
	var pub bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", slot).Scan(&pub); err != nil {
		return nil, fmt.Errorf("postgres: stream %q: %w", link, transient(err))
	}
	if !pub {
		return nil, fmt.Errorf("postgres: stream %q: publication %q does not exist: track the link's tables first", link, slot)
	}
	var timeoutMS int64
	if err := s.pool.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'").Scan(&timeoutMS); err != nil {
		return nil, fmt.Errorf("postgres: stream %q: read wal_sender_timeout: %w", link, transient(err))
	}
	interval := statusInterval(time.Duration(timeoutMS) * time.Millisecond)

	conn, start, err := s.startReplication(ctx, link, slot, pglogrepl.LSN(from))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	st := &stream{
		s: s, link: link, slot: slot, conn: conn, from: start, interval: interval, heartbeat: s.heartbeat,
		changes: make(chan []lakelink.Change, changeBatches), spent: make(chan []lakelink.Change, changeBatches+2), ackc: make(chan struct{}, 1),
		cancel: cancel, dead: make(chan struct{}), rels: map[uint32]*relation{},
		delivered: start, lastCommit: now,
	}
	st.acked.Store(uint64(start))
	go func() {
		defer close(st.dead)
		st.err = st.run(sctx)
		// A last status update reports the last Ack; then the connection
		// ends. Neither waits long for a server that is gone.
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		st.sendStatus(cctx)
		conn.Close(cctx)
	}()
	s.logger.Info("stream started", "link", link, "position", lakelink.Position(start).String(), "lsn", start.String(),
		"status_interval", interval, "heartbeat", s.heartbeat)
	return st, nil
}

// statusInterval is the time between standby status updates for a server
// with the given wal_sender_timeout: a third of it, so that two updates
// can be late before the server gives up on the connection, or 10 s when
// the timeout is disabled (0).
func statusInterval(walSenderTimeout time.Duration) time.Duration {
	if walSenderTimeout <= 0 {
		return 10 * time.Second
	}
	return max(walSenderTimeout/3, 10*time.Millisecond)
}

// startReplication checks the link's slot against from, creates it if
// from is 0 and there is none, and starts replication on a new connection.
// It returns the position the stream starts after.
func (s *Source) startReplication(ctx context.Context, link, slot string, from pglogrepl.LSN) (*pgconn.PgConn, pglogrepl.LSN, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := pgconn.ConnectConfig(ctx, s.replCfg)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: stream %q: replication connection: %w", link, transient(err))
		}
		start, err := s.checkSlot(ctx, conn, link, slot, from)
		if err != nil {
			conn.Close(context.Background())
			return nil, 0, err
		}
		err = pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names '" + slot + "'", "messages 'true'"},
		})
		if err == nil {
			return conn, start, nil
		}
		conn.Close(context.Background())
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" {
			if time.Now().Before(deadline) {
				// The slot is still held by the server process of a
				// stream that just closed.
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return nil, 0, ctx.Err()
				}
			}
			return nil, 0, fmt.Errorf("postgres: stream %q: slot %q is in use by another process (another lakelink running this link?): %w", link, slot, transient(err))
		}
		return nil, 0, fmt.Errorf("postgres: start replication on slot %q: %w", slot, transient(err))
	}
}

// slotState is what pg_replication_slots says about a slot.
type slotState struct {
	confirmed    pglogrepl.LSN
	database     string // the slot's
	current      string // the one the source is connected to
	plugin       string
	walStatus    string // reserved, extended, unreserved, lost
	conflicting  bool   // PostgreSQL 16 and later: invalidated by a conflict
	invalidation string // PostgreSQL 17 and later: why it was invalidated
	active       bool
}

// lost says why the slot can't stream any more, or "".
func (ss slotState) lost() string {
	switch {
	case ss.invalidation != "":
		return fmt.Sprintf("it was invalidated (invalidation_reason %s)", ss.invalidation)
	case ss.walStatus == "lost":
		return "it is lost (wal_status lost): PostgreSQL removed WAL the slot still needed, because it kept more than max_slot_wal_keep_size while lakelink was behind or stopped"
	case ss.conflicting:
		return "it was invalidated (conflicting): a conflict with recovery or wal_level made PostgreSQL give it up"
	}
	return ""
}

// readSlot reads the slot's row of pg_replication_slots; ok is false when
// there is no such slot. The row is read as JSON, so that columns of newer
// versions (conflicting, invalidation_reason) are read where they exist.
func readSlot(ctx context.Context, q querier, slot string) (ss slotState, ok bool, err error) {
	var raw []byte
	err = q.QueryRow(ctx, "SELECT to_jsonb(s)::text, current_database() FROM pg_replication_slots s WHERE slot_name = $1", slot).Scan(&raw, &ss.current)
	if errors.Is(err, pgx.ErrNoRows) {
		return ss, false, nil
	}
	if err != nil {
		return ss, false, err
	}
	var row struct {
		Confirmed    *string `json:"confirmed_flush_lsn"`
		Database     *string `json:"database"`
		Plugin       *string `json:"plugin"`
		WALStatus    *string `json:"wal_status"`
		Conflicting  *bool   `json:"conflicting"`
		Invalidation *string `json:"invalidation_reason"`
		Active       bool    `json:"active"`
	}
	if err := json.Unmarshal(raw, &row); err != nil {
		return ss, false, fmt.Errorf("read slot %q: %w", slot, err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ss = slotState{current: ss.current, database: str(row.Database), plugin: str(row.Plugin), walStatus: str(row.WALStatus),
		invalidation: str(row.Invalidation), conflicting: row.Conflicting != nil && *row.Conflicting, active: row.Active}
	if c := str(row.Confirmed); c != "" {
		if ss.confirmed, err = pglogrepl.ParseLSN(c); err != nil {
			return ss, false, fmt.Errorf("slot %q: confirmed_flush_lsn %q: %w", slot, c, err)
		}
	}
	return ss, true, nil
}

// checkSlot decides where the stream starts (see Stream): from when the
// slot holds every change after it, the slot's confirmed position when
// from is 0. conn is the replication connection the slot is created on
// when from is 0 and there is none.
func (s *Source) checkSlot(ctx context.Context, conn *pgconn.PgConn, link, slot string, from pglogrepl.LSN) (pglogrepl.LSN, error) {
	ss, ok, err := readSlot(ctx, s.pool, slot)
	if err != nil {
		return 0, fmt.Errorf("postgres: stream %q: find slot %q: %w", link, slot, transient(err))
	}
	if ok && ss.lost() != "" {
		if from != 0 {
			return 0, s.resyncError(ctx, link, fmt.Sprintf("replication slot %q can't stream any more: %s; the changes after the lake's position %s are gone",
				slot, ss.lost(), lsnText(from)), "; raise max_slot_wal_keep_size (or keep lakelink running) so that it does not happen again")
		}
		// Nothing of the link is in the lake yet: a new slot loses nothing.
		if err := dropSlot(ctx, s.pool, slot); err != nil {
			return 0, fmt.Errorf("postgres: stream %q: drop lost slot %q: %w", link, slot, err)
		}
		s.logger.Warn("lost replication slot replaced", "link", link, "slot", slot, "why", ss.lost())
		ok = false
	}
	if !ok {
		if from != 0 {
			// A new slot would start now, silently skipping the changes
			// between from and now.
			return 0, s.resyncError(ctx, link, fmt.Sprintf("replication slot %q does not exist, so the changes after the lake's position %s are gone (was the slot dropped, or the database restored, upgraded or failed over?)",
				slot, lsnText(from)), "")
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil {
			return 0, fmt.Errorf("postgres: create slot %q: %w", slot, err)
		}
		lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return 0, fmt.Errorf("postgres: slot %q: consistent point %q: %w", slot, res.ConsistentPoint, err)
		}
		s.logger.Info("replication slot created", "link", link, "slot", slot, "position", lakelink.Position(lsn).String())
		return lsn, nil
	}
	if ss.plugin != "pgoutput" || ss.database != ss.current {
		return 0, fmt.Errorf("postgres: stream %q: slot %q is not lakelink's slot for database %q (it is for database %q, plugin %q): drop it, or name the link differently", link, slot, ss.current, ss.database, ss.plugin)
	}
	if from == 0 {
		return ss.confirmed, nil
	}
	if ss.confirmed > from {
		return 0, s.resyncError(ctx, link, fmt.Sprintf("replication slot %q is confirmed up to %s, past the lake's position %s: PostgreSQL was told the changes between them are exported, but the lake does not hold them (was the slot advanced by hand, or used by another program or another lake?)",
			slot, lsnText(ss.confirmed), lsnText(from)), "")
	}
	return from, nil
}

// resyncError says that the link can't resume (what), which tables to copy
// again and how; it wraps lakelink.ErrResync.
func (s *Source) resyncError(ctx context.Context, link, what, hint string) error {
	flags := " --table NAME (for every table of the link)"
	if names, err := s.published(ctx, link); err == nil && len(names) > 0 {
		flags = " --table " + strings.Join(names, " --table ")
	}
	return fmt.Errorf("postgres: link %q: %s; copy the link's tables again with lakelink resync --lake LAKE%s, then run the link (it creates a new slot if needed)%s: %w",
		link, what, flags, hint, lakelink.ErrResync)
}

// published lists the lakelink names of the tables in the link's
// publication.
func (s *Source) published(ctx context.Context, link string) ([]string, error) {
	pub, err := name(link)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", pub)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var r tableRef
		if err := rows.Scan(&r.schema, &r.table); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, r.Name())
	}
	return names, rows.Err()
}

// dropSlot drops a replication slot, if it exists.
func dropSlot(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, slot string) error {
	_, err := q.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
	return err
}

// lsnText shows an LSN in PostgreSQL's form with the lake's decimal
// position.
func lsnText(lsn pglogrepl.LSN) string {
	return fmt.Sprintf("%s (position %d)", lsn, uint64(lsn))
}

// transient marks an error of the connection to PostgreSQL (the server
// went away, restarted or dropped the connection) as worth retrying.
// Other errors are returned as they are.
func transient(err error) error {
	if err == nil || errors.Is(err, lakelink.ErrTransient) || !connectionLost(err) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, lakelink.ErrTransient)
}

// connectionLost reports whether err says the connection failed or the
// server went away rather than refused something.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57: operator intervention (shutdown,
		// pg_terminate_backend); 53: insufficient resources (too many
		// connections).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "53")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// Anything else pgconn returns is about the connection: a network
	// error, an EOF, a closed connection, a failed connect.
	return true
}

// Next returns the next change. It is not safe for concurrent use.
func (st *stream) Next(ctx context.Context) (lakelink.Change, error) {
	for len(st.cur) == 0 {
		if st.curBuf != nil {
			// Every change of the batch was handed out (as a copy).
			select {
			case st.spent <- st.curBuf[:0]:
			default:
			}
			st.curBuf = nil
		}
		select {
		case st.cur = <-st.changes:
			st.curBuf = st.cur
			continue
		case <-ctx.Done():
			return lakelink.Change{}, ctx.Err()
		case <-st.dead:
		}
		// run has returned: what it decoded still comes first.
		select {
		case st.cur = <-st.changes:
			continue
		default:
		}
		if st.cur, st.pending = st.pending, nil; len(st.cur) == 0 {
			return lakelink.Change{}, st.err
		}
	}
	c := st.cur[0]
	st.cur[0] = lakelink.Change{}
	st.cur = st.cur[1:]
	return c, nil
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
	st.beats.Wait()
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
		return fmt.Errorf("postgres: stream %q: send status: %w", st.link, transient(err))
	}
	return nil
}

// run reads the replication connection until ctx is done or it fails.
func (st *stream) run(ctx context.Context) error {
	next := time.Now().Add(st.interval)
	var deadline time.Time // of the connection's reads, see below
	st.tick = time.NewTicker(st.interval)
	defer st.tick.Stop()
	for {
		select {
		case <-st.ackc:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
		default:
		}
		now := time.Now()
		if now.After(next) {
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
			next = now.Add(st.interval)
		}
		var msg pgproto3.BackendMessage
		var err error
		if st.conn.Frontend().ReadBufferLen() > 0 {
			// The next message is (at least partly) read already. It is
			// read without a context to watch, which costs more than
			// the rest of a small message; a read deadline instead
			// bounds the wait for the rest of it (a timeout leaves the
			// message to the next read).
			if deadline.Sub(now) < pollInterval {
				deadline = now.Add(2 * pollInterval)
				if err := st.conn.Conn().SetReadDeadline(deadline); err != nil {
					return fmt.Errorf("postgres: stream %q: replication connection lost: %w", st.link, transient(err))
				}
			}
			msg, err = st.conn.ReceiveMessage(context.Background())
		} else {
			// The stream is about to wait for the server: what it
			// decoded goes to Next first.
			if err := st.flush(ctx); err != nil {
				return err
			}
			if !deadline.IsZero() {
				// The context bounds this wait, and a deadline left
				// behind would end every later one at once.
				deadline = time.Time{}
				if err := st.conn.Conn().SetReadDeadline(deadline); err != nil {
					return fmt.Errorf("postgres: stream %q: replication connection lost: %w", st.link, transient(err))
				}
			}
			rctx, cancel := context.WithTimeout(ctx, min(pollInterval, st.interval))
			msg, err = st.conn.ReceiveMessage(rctx)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("postgres: stream %q closed", st.link)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("postgres: stream %q: replication connection lost: %w", st.link, transient(err))
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
				if ka.ReplyRequested {
					if err := st.sendStatus(ctx); err != nil {
						return err
					}
					next = time.Now().Add(st.interval)
				}
				if err := st.keepalive(ctx, ka.ServerWALEnd, ka.ReplyRequested); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: stream %q: %w", st.link, err)
				}
				st.msgBytes = len(msg.Data)
				if err := st.handle(ctx, xld); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres: stream %q: %w", st.link, transient(pgconn.ErrorResponseToPgError(msg)))
		case *pgproto3.CopyDone:
			// The server ends replication when it shuts down.
			return fmt.Errorf("postgres: stream %q: the server ended replication (shutting down?): %w", st.link, lakelink.ErrTransient)
		}
	}
}

// keepalive acts on a keepalive saying that the server has decoded the WAL
// up to walEnd: every record before walEnd is decoded, and every
// transaction of the link that committed there was sent before the
// keepalive. When walEnd is past the last delivered commit and no
// transaction is open, the link's tables were idle while WAL moved:
//
//   - when everything delivered is acknowledged, and no progress commit
//     was delivered in the last status interval or the server asks for a
//     reply (urgent), a progress commit (an OpCommit at walEnd, without
//     rows) lets the lake's state, then the slot, move to walEnd. A
//     server shutting down asks, and waits until the slot is confirmed up
//     to its last WAL record before it stops;
//   - when no transaction was delivered in the last heartbeat interval, a
//     heartbeat is written (see beat), which comes back as a transaction.
func (st *stream) keepalive(ctx context.Context, walEnd pglogrepl.LSN, urgent bool) error {
	if st.inTx || walEnd <= st.delivered {
		return nil
	}
	now := time.Now()
	if st.heartbeat > 0 && now.Sub(st.lastCommit) >= st.heartbeat && now.Sub(st.lastBeat) >= st.heartbeat && st.beating.CompareAndSwap(false, true) {
		st.lastBeat = now
		st.beats.Add(1)
		go st.beat(ctx)
	}
	if pglogrepl.LSN(st.acked.Load()) < st.delivered || (!urgent && !st.lastProgress.IsZero() && now.Sub(st.lastProgress) < st.interval) {
		return nil
	}
	st.lastProgress, st.delivered = now, walEnd
	return st.emit(ctx, lakelink.Change{Op: lakelink.OpCommit, Pos: lakelink.Position(walEnd)})
}

// emit adds a change to the batch for Next, and hands the batch over when
// it is full.
func (st *stream) emit(ctx context.Context, c lakelink.Change) error {
	if st.pending == nil {
		select {
		case st.pending = <-st.spent:
		default:
			st.pending = make([]lakelink.Change, 0, changeBatch)
		}
	}
	st.pending = append(st.pending, c)
	st.pendingBytes += st.msgBytes
	if len(st.pending) >= changeBatch || st.pendingBytes >= changeBatchBytes {
		return st.flush(ctx)
	}
	return nil
}

// flush hands the batch being filled to Next, keeping the connection alive
// while Next is behind.
func (st *stream) flush(ctx context.Context) error {
	if len(st.pending) == 0 {
		return nil
	}
	st.tick.Reset(st.interval)
	for {
		select {
		case st.changes <- st.pending:
			st.pending, st.pendingBytes = nil, 0
			return nil
		case <-ctx.Done():
			return fmt.Errorf("postgres: stream %q closed", st.link)
		case <-st.ackc:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
		case <-st.tick.C:
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
		}
	}
}

// handle decodes one pgoutput message.
func (st *stream) handle(ctx context.Context, xld pglogrepl.XLogData) error {
	if isRowMessage(xld.WALData) {
		if err := st.msg.parse(xld.WALData); err != nil {
			return fmt.Errorf("postgres: stream %q: %w", st.link, err)
		}
		return st.rowChange(ctx, &st.msg)
	}
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
		st.inTx, st.skip, st.txRows, st.txBeat = true, m.FinalLSN < st.from, 0, false
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
		if st.skip || (st.txRows == 0 && !st.txBeat) {
			return nil
		}
		if st.txRows == 0 {
			st.heartbeats.Add(1)
		}
		st.delivered, st.lastCommit = m.TransactionEndLSN, time.Now()
		return st.emit(ctx, lakelink.Change{Op: lakelink.OpCommit, Pos: lakelink.Position(m.TransactionEndLSN)})
	case *pglogrepl.LogicalDecodingMessage:
		// The link's heartbeat (see beat): its transaction is delivered
		// as an OpCommit without rows. Other messages carry nothing to
		// export.
		if m.Transactional && st.inTx && m.Prefix == st.slot {
			st.txBeat = true
		}
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
	// Origin and Type messages carry nothing to export.
	return nil
}

// rowChange decodes an insert, update or delete.
func (st *stream) rowChange(ctx context.Context, m *rowMessage) error {
	rel, err := st.rel(ctx, m.rel)
	if err != nil || st.skip {
		return err
	}
	pos := st.txPos
	switch m.op {
	case 'I':
		row, _, err := st.row(rel, m.new, nil, false)
		if err != nil {
			return err
		}
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpInsert, Pos: pos, Row: row})
	case 'U':
		var old []tupleCol
		if m.oldKind == 'O' {
			old = m.old
		}
		if m.oldKind != 0 && keyChanged(rel.tab.Key, m.old, m.new) {
			// A new key is a new row: the old one is deleted. The insert
			// must carry every value: an unchanged TOASTed one it can
			// only take from a full old row.
			row, _, err := st.row(rel, m.new, old, false)
			if err != nil {
				return err
			}
			oldRow, _, err := st.row(rel, m.old, nil, false)
			if err != nil {
				return err
			}
			del := lakelink.Change{Op: lakelink.OpDelete, Pos: pos, Row: oldRow, OldKnown: old != nil}
			if err := st.emitRow(ctx, rel, del); err != nil {
				return err
			}
			return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpInsert, Pos: pos, Row: row})
		}
		row, unchanged, err := st.row(rel, m.new, old, true)
		if err != nil {
			return err
		}
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpUpdate, Pos: pos, Row: row, Unchanged: unchanged})
	default: // 'D'
		row, _, err := st.row(rel, m.old, nil, false)
		if err != nil {
			return err
		}
		return st.emitRow(ctx, rel, lakelink.Change{Op: lakelink.OpDelete, Pos: pos, Row: row, OldKnown: m.oldKind == 'O'})
	}
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

// row decodes a tuple. An unchanged TOASTed value (pgoutput's 'u') is
// taken from old (the old row under REPLICA IDENTITY FULL) when it has it.
// Otherwise, when mark is true (an update that keeps its key), a non-key
// column's value is left nil and marked in unchanged (see
// lakelink.Change.Unchanged; unchanged is nil when nothing is marked);
// anywhere else (a key column, the insert of an update that changed the
// key) it is a BadValue naming the fix, REPLICA IDENTITY FULL.
func (st *stream) row(rel *relation, t, old []tupleCol, mark bool) (row []lakelink.Value, unchanged []bool, err error) {
	if len(t) != len(rel.tab.Columns) {
		return nil, nil, fmt.Errorf("postgres: stream %q: table %q: tuple does not match its %d columns", st.link, rel.tab.Name, len(rel.tab.Columns))
	}
	n := len(t)
	if len(st.vals) < n {
		st.vals = make([]lakelink.Value, max(n, 4096))
	}
	row, st.vals = st.vals[:n:n], st.vals[n:]
	for i, c := range t {
		dec := &rel.cols[i]
		switch c.kind {
		case colNull:
		case colText:
			row[i] = dec.decode(c.data, &st.arena)
		case colUnchanged:
			switch {
			case old != nil && i < len(old) && old[i].kind == colText:
				row[i] = dec.decode(old[i].data, &st.arena)
			case mark && !slices.Contains(rel.tab.Key, i):
				if unchanged == nil {
					unchanged = make([]bool, len(t))
				}
				unchanged[i] = true
			default:
				row[i] = lakelink.BadValue{Reason: "an unchanged TOASTed value is not in the stream here (a key column, or an UPDATE that changed the row's key); run ALTER TABLE " + rel.ident() + " REPLICA IDENTITY FULL so that it is"}
			}
		default:
			return nil, nil, fmt.Errorf("postgres: stream %q: table %q column %q: tuple data type %q not supported", st.link, rel.tab.Name, rel.tab.Columns[i].Name, c.kind)
		}
	}
	return row, unchanged, nil
}

func (r *relation) ident() string {
	return tableRef{schema: r.msg.Namespace, table: r.msg.RelationName}.ident()
}

// keyChanged reports whether a key column's text differs between the old
// and the new tuple. An unchanged TOASTed key column did not change.
func keyChanged(key []int, old, new []tupleCol) bool {
	for _, k := range key {
		if k >= len(old) || k >= len(new) {
			return true
		}
		o, n := old[k], new[k]
		if n.kind == colUnchanged {
			continue
		}
		if o.kind != n.kind || !bytes.Equal(o.data, n.data) {
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
