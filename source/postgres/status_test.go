package postgres

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lakelink/lakelink"
)

// SystemID is the cluster's identifier: a decimal number, the same from
// every database of the cluster, and the one the replication protocol's
// IDENTIFY_SYSTEM reports.
func TestSystemID(t *testing.T) {
	ctx := context.Background()
	a, _, dsn := newDB(t)
	b, _, _ := newDB(t)
	id, err := a.SystemID(ctx)
	if err != nil {
		t.Fatalf("SystemID: %v", err)
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil || id == "0" {
		t.Errorf("SystemID = %q, want a non-zero decimal number", id)
	}
	if other, err := b.SystemID(ctx); err != nil || other != id {
		t.Errorf("SystemID of another database of the cluster = %q, %v; want %q", other, err, id)
	}
	conn, err := pgconn.Connect(ctx, dsn+"&replication=database")
	if err != nil {
		t.Fatalf("replication connection: %v", err)
	}
	defer conn.Close(ctx)
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		t.Fatalf("IDENTIFY_SYSTEM: %v", err)
	}
	if sys.SystemID != id {
		t.Errorf("SystemID = %q, IDENTIFY_SYSTEM says %q", id, sys.SystemID)
	}
}

// waitStatus polls SlotStatus until ok accepts it.
func waitStatus(t *testing.T, src *Source, link, what string, ok func(SlotStatus) bool) SlotStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := src.SlotStatus(context.Background(), link)
		if err != nil {
			t.Fatalf("SlotStatus: %v", err)
		}
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot of link %s: not %s within 20 s: %+v", link, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SlotStatus follows the slot through its life: missing, active while a
// stream runs (and then impossible to drop), inactive with WAL piling up
// behind its confirmed position, and gone after Untrack.
func TestSlotStatus(t *testing.T) {
	ctx := context.Background()
	src, exec, _ := newDB(t)
	const link = "status"
	exec(t, `CREATE TABLE item (id int PRIMARY KEY, note text)`)
	if err := src.Track(ctx, link, []string{"item"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	s, err := src.SlotStatus(ctx, link)
	if err != nil {
		t.Fatalf("SlotStatus: %v", err)
	}
	if s.Slot != "lakelink_"+link || s.Exists || !s.Publication || s.Active || s.Confirmed != 0 || s.Current == 0 || s.LagBytes != 0 || s.RetainedBytes != 0 {
		t.Errorf("SlotStatus before the slot exists = %+v; want slot lakelink_%s missing, its publication there, the current position known", s, link)
	}

	st, err := src.Stream(ctx, link, 0)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	s = waitStatus(t, src, link, "active", func(s SlotStatus) bool { return s.Active })
	var pid int32
	if err := src.pool.QueryRow(ctx, "SELECT pid FROM pg_stat_replication WHERE application_name = 'lakelink' AND pid = $1", s.ActivePID).Scan(&pid); err != nil {
		t.Errorf("SlotStatus.ActivePID %d is no replication connection of lakelink: %v", s.ActivePID, err)
	}
	if !s.Exists || s.Confirmed == 0 || s.Lost || (s.WALStatus != "reserved" && s.WALStatus != "extended") {
		t.Errorf("SlotStatus of a streaming slot = %+v; want it to exist with a confirmed position and wal_status reserved", s)
	}
	// A running stream's slot can't be dropped, and InUse recognizes why.
	err = src.Untrack(ctx, link, nil)
	if err == nil || !InUse(err) {
		t.Errorf("Untrack while streaming: %v; want an error InUse recognizes", err)
	}
	if InUse(context.Canceled) {
		t.Errorf("InUse(context.Canceled) = true")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before := waitStatus(t, src, link, "inactive", func(s SlotStatus) bool { return !s.Active })

	// About 2 MB of WAL nobody confirms: the lag and the retained WAL grow
	// by at least that much; the confirmed position stays.
	var start, end string
	if err := src.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&start); err != nil {
		t.Fatal(err)
	}
	exec(t, `INSERT INTO item SELECT g, repeat('x', 200) FROM generate_series(1, 10000) g`)
	if err := src.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&end); err != nil {
		t.Fatal(err)
	}
	startLSN, _ := pglogrepl.ParseLSN(start)
	endLSN, _ := pglogrepl.ParseLSN(end)
	written := int64(endLSN - startLSN)
	after, err := src.SlotStatus(ctx, link)
	if err != nil {
		t.Fatalf("SlotStatus: %v", err)
	}
	if written < 1<<20 {
		t.Fatalf("the inserts wrote only %d bytes of WAL", written)
	}
	if after.Confirmed != before.Confirmed || after.Active {
		t.Errorf("SlotStatus after writes to a stopped link = %+v; want confirmed %s as before, inactive", after, before.Confirmed)
	}
	if after.LagBytes < before.LagBytes+written || after.RetainedBytes < after.LagBytes {
		t.Errorf("SlotStatus after %d bytes of WAL: lag %d (was %d), retained %d; want the lag grown by at least that, retained at least the lag",
			written, after.LagBytes, before.LagBytes, after.RetainedBytes)
	}
	if got := int64(after.Current) - int64(after.Confirmed); after.LagBytes != got {
		t.Errorf("SlotStatus: lag %d bytes, but current %s - confirmed %s = %d", after.LagBytes, after.Current, after.Confirmed, got)
	}
	if after.Current < lakelink.Position(endLSN) {
		t.Errorf("SlotStatus: current position %s is before %s", pglogrepl.LSN(after.Current), endLSN)
	}
	var keep int64
	if err := src.pool.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'").Scan(&keep); err != nil {
		t.Fatal(err)
	}
	if keep == -1 && after.SafeWALBytes != -1 || keep != -1 && after.SafeWALBytes < 0 {
		t.Errorf("SlotStatus.SafeWALBytes = %d with max_slot_wal_keep_size = %d", after.SafeWALBytes, keep)
	}

	if err := src.Untrack(ctx, link, nil); err != nil {
		t.Fatalf("Untrack: %v", err)
	}
	s, err = src.SlotStatus(ctx, link)
	if err != nil || s.Exists || s.Publication || s.LagBytes != 0 || s.Confirmed != 0 {
		t.Errorf("SlotStatus after Untrack = %+v, %v; want neither slot nor publication", s, err)
	}
	if _, err := src.SlotStatus(ctx, "Bad-Name"); err == nil {
		t.Errorf("SlotStatus of link Bad-Name: no error")
	}
}
