package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lakelink/lakelink"
)

var _ lakelink.Identified = (*Source)(nil)

// SystemID returns the cluster's system identifier (pg_control_system()), a
// number initdb chose at random: it is the same on every database of the
// cluster and on its physical replicas, and differs for another cluster,
// including one restored from a logical dump. Positions (LSNs) of one
// cluster mean nothing in another.
func (s *Source) SystemID(ctx context.Context) (string, error) {
	var id string
	if err := s.pool.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&id); err != nil {
		return "", fmt.Errorf("postgres: read system_identifier: %w", err)
	}
	return id, nil
}

// SlotStatus is what the server says about a link's replication slot and
// publication: how far the slot has confirmed, and what it costs.
type SlotStatus struct {
	Slot        string // the slot's (and the publication's) name, lakelink_<link>
	Exists      bool   // the slot exists; when false, the fields below are zero
	Publication bool   // the publication exists
	Active      bool   // a replication connection (a running lakelink) streams from it
	ActivePID   int32  // that connection's server process, or 0
	// WALStatus is pg_replication_slots.wal_status: "reserved" or
	// "extended" (fine), "unreserved" (past max_slot_wal_keep_size: about
	// to be lost) or "lost" (the WAL it needs is gone; the link can't
	// resume and its tables must be copied again).
	WALStatus string
	// Lost is true when the slot can't stream any more: wal_status lost,
	// or invalidated (PostgreSQL 16 and later: conflicting, or an
	// invalidation_reason). LostReason says why, as Stream does when it
	// refuses to resume.
	Lost       bool
	LostReason string
	// Confirmed is the slot's confirmed_flush_lsn: every change up to it is
	// in the lake, and the server may forget it.
	Confirmed lakelink.Position
	Current   lakelink.Position // the server's current WAL position
	// RetainedBytes is the WAL the slot keeps on the server's disk
	// (current - restart_lsn).
	RetainedBytes int64
	// LagBytes is the WAL not yet confirmed (current - confirmed_flush_lsn),
	// much of which may be other tables' changes or none at all.
	LagBytes int64
	// SafeWALBytes is how much more WAL can be written before the slot is
	// lost (safe_wal_size), -1 when nothing limits it
	// (max_slot_wal_keep_size = -1, the default), 0 once it is lost.
	SafeWALBytes int64
}

// slotStatusSQL reads a slot's row, the server's WAL position (on a
// standby, the last replayed one) and whether the publication exists; the
// slot's columns are NULL when it does not exist.
const slotStatusSQL = `
WITH cur AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END AS lsn)
SELECT s.slot_name IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
       COALESCE(s.active, false), COALESCE(s.active_pid, 0),
       COALESCE(s.wal_status, ''),
       COALESCE(s.confirmed_flush_lsn::text, ''),
       cur.lsn::text,
       COALESCE(GREATEST(pg_wal_lsn_diff(cur.lsn, s.restart_lsn), 0)::bigint, 0),
       COALESCE(GREATEST(pg_wal_lsn_diff(cur.lsn, s.confirmed_flush_lsn), 0)::bigint, 0),
       CASE WHEN s.wal_status = 'lost' THEN 0 ELSE COALESCE(s.safe_wal_size, -1) END
FROM cur LEFT JOIN pg_replication_slots s ON s.slot_name = $1`

// SlotStatus reports the link's slot: whether it exists and is active, its
// confirmed position, the WAL it retains and its lag in bytes, and its
// wal_status. A missing slot is not an error: Exists is false. It reads
// pg_replication_slots, which every user can, and changes nothing.
func (s *Source) SlotStatus(ctx context.Context, link string) (SlotStatus, error) {
	slot, err := name(link)
	if err != nil {
		return SlotStatus{}, err
	}
	st := SlotStatus{Slot: slot}
	var confirmed, current string
	if err := s.pool.QueryRow(ctx, slotStatusSQL, slot).Scan(&st.Exists, &st.Publication, &st.Active, &st.ActivePID,
		&st.WALStatus, &confirmed, &current, &st.RetainedBytes, &st.LagBytes, &st.SafeWALBytes); err != nil {
		return SlotStatus{}, fmt.Errorf("postgres: status of slot %q: %w", slot, err)
	}
	if st.Exists {
		ss, ok, err := readSlot(ctx, s.pool, slot)
		if err != nil {
			return SlotStatus{}, fmt.Errorf("postgres: status of slot %q: %w", slot, err)
		}
		if ok {
			st.LostReason = ss.lost()
			st.Lost = st.LostReason != ""
		}
	}
	for _, p := range []struct {
		text string
		pos  *lakelink.Position
	}{{confirmed, &st.Confirmed}, {current, &st.Current}} {
		if p.text == "" {
			continue
		}
		lsn, err := pglogrepl.ParseLSN(p.text)
		if err != nil {
			return SlotStatus{}, fmt.Errorf("postgres: status of slot %q: %w", slot, err)
		}
		*p.pos = lakelink.Position(lsn)
	}
	if !st.Exists {
		st.SafeWALBytes = 0
	}
	return st, nil
}

// InUse reports whether err says that a link's slot is in use: PostgreSQL
// refused to drop or start it (object_in_use, 55006) because a replication
// connection, normally a running lakelink, streams from it.
func InUse(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55006"
}
