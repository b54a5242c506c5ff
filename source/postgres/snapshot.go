package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lakelink/lakelink"
)

// snapshot is a copy of one table read in a REPEATABLE READ transaction
// that imported a replication slot's exported snapshot.
//
// Close may be called while another goroutine is in Next (the engine reads
// ahead): it cancels the query's context, which ends a Next blocked on the
// network, and then takes mu.
type snapshot struct {
	cancel context.CancelFunc // of the query's context
	mu     sync.Mutex         // held by Next and Close
	conn   *pgxpool.Conn
	tx     pgx.Tx
	rr     *pgconn.ResultReader
	tab    lakelink.Table
	cols   []col // tab's columns with their decoders
	pos    lakelink.Position
	row    []lakelink.Value
	done   bool
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
	if err := s.pool.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
       EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2)`,
		slot, ref.oid).Scan(&exists, &tracked); err != nil {
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

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	qctx, cancel := context.WithCancel(ctx)
	sn := &snapshot{cancel: cancel, conn: conn, pos: lakelink.Position(lsn)}
	defer func() {
		if err != nil {
			sn.Close()
		}
	}()
	sn.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: begin: %w", table, err)
	}
	if _, err := sn.tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+res.SnapshotName+"'"); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: import snapshot %q: %w", table, res.SnapshotName, err)
	}
	// Read the definition in the snapshot, so that it is the one the rows
	// have.
	ref, ok, err = findTable(ctx, sn.tx, table)
	if err == nil && !ok {
		err = errors.New("the table did not exist at the snapshot")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	if sn.tab, sn.cols, _, err = loadTable(ctx, sn.tx, ref); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %q: %w", table, err)
	}
	cols := make([]string, len(sn.tab.Columns))
	for i, c := range sn.tab.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	// A text-format query: every value comes as its type's text output, as
	// in pgoutput's tuples. A partitioned table's rows include its
	// partitions'.
	sn.rr = conn.Conn().PgConn().ExecParams(qctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+ref.ident(), nil, nil, nil, nil)
	sn.row = make([]lakelink.Value, len(cols))
	return sn, nil
}

func (sn *snapshot) Table() lakelink.Table       { return sn.tab }
func (sn *snapshot) Position() lakelink.Position { return sn.pos }

// Next returns the next row, or io.EOF after the last, when the copy's
// transaction has ended.
func (sn *snapshot) Next() ([]lakelink.Value, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.done {
		return nil, io.EOF
	}
	if sn.rr.NextRow() {
		vals := sn.rr.Values()
		if len(vals) != len(sn.row) {
			return nil, fmt.Errorf("postgres: snapshot %q: %d values for %d columns", sn.tab.Name, len(vals), len(sn.row))
		}
		for i, v := range vals {
			sn.row[i] = sn.cols[i].decode(v)
		}
		return sn.row, nil
	}
	_, err := sn.rr.Close()
	sn.rr = nil
	if err == nil {
		err = sn.tx.Commit(context.Background())
	}
	sn.done = true
	if err != nil {
		sn.abort()
		return nil, fmt.Errorf("postgres: snapshot %q: %w", sn.tab.Name, err)
	}
	sn.conn.Release()
	sn.conn = nil
	sn.cancel()
	return nil, io.EOF
}

// Close ends the copy; before the last row it closes the connection rather
// than read the rest.
func (sn *snapshot) Close() error {
	sn.cancel()
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.done = true
	sn.abort()
	return nil
}

// abort drops the copy's connection, if still held, without reading further.
func (sn *snapshot) abort() {
	if sn.conn == nil {
		return
	}
	if sn.rr != nil {
		// Closing the connection ends the query and the transaction.
		sn.conn.Conn().Close(context.Background())
	} else if sn.tx != nil {
		sn.tx.Rollback(context.Background())
	}
	sn.conn.Release()
	sn.conn = nil
}
