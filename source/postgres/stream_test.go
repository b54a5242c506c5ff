package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/internal/testenv"
)

// fastStatus is a source URL parameter that makes the server's
// wal_sender_timeout, for the source's connections only, 3 s: standby
// status updates and progress commits then come every second.
const fastStatus = "options=-c%20wal_sender_timeout%3D3s"

// openWith opens a second source on the database at dsn (from newDB), with
// more URL parameters.
func openWith(t testing.TB, dsn, params string) *Source {
	t.Helper()
	if params != "" {
		dsn += "&" + params
	}
	src, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", params, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// idleLink makes a table a, tracked by the link, and a table other, not
// tracked, copies a, and starts the link's stream from the copy's
// position, on a source opened with more URL parameters.
func idleLink(t *testing.T, link, params string) (*Source, func(testing.TB, string), lakelink.Stream, lakelink.Position) {
	t.Helper()
	_, exec, dsn := newDB(t)
	src := openWith(t, dsn, params)
	exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	exec(t, "CREATE TABLE other (id int PRIMARY KEY)")
	if err := src.Track(context.Background(), link, []string{"a"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, link, "a")
	return src, exec, startStream(t, src, link, pos), pos
}

// rowCommit reads st up to the commit of the next transaction with rows,
// skipping progress commits before it.
func rowCommit(t *testing.T, st lakelink.Stream) lakelink.Position {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows := 0
	for {
		c, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Stream.Next: %v", err)
		}
		switch c.Op {
		case lakelink.OpCommit:
			if rows > 0 {
				return c.Pos
			}
		case lakelink.OpSchema:
		default:
			rows++
		}
	}
}

func TestSplitParams(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		hb      time.Duration
		err     bool
	}{
		{"postgres://u@h:5432/db", "postgres://u@h:5432/db", defaultHeartbeat, false},
		{"postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable", defaultHeartbeat, false},
		{"postgres://u@h/db?heartbeat=5s", "postgres://u@h/db", 5 * time.Second, false},
		{"postgresql://u@h/db?sslmode=disable&heartbeat=250ms&application_name=x", "postgresql://u@h/db?sslmode=disable&application_name=x", 250 * time.Millisecond, false},
		{"postgres://u@h/db?heartbeat=off&sslmode=disable", "postgres://u@h/db?sslmode=disable", 0, false},
		{"postgres://u@h/db?heartbeat=0", "postgres://u@h/db", 0, false},
		{"postgres://u:p%26w@h1:5432,h2:5433/db?heartbeat=1m", "postgres://u:p%26w@h1:5432,h2:5433/db", time.Minute, false},
		{"host=h dbname=db heartbeat=2s sslmode=disable", "host=h dbname=db sslmode=disable", 2 * time.Second, false},
		{"host=h dbname=db", "host=h dbname=db", defaultHeartbeat, false},
		{"postgres://u@h/db?heartbeat=soon", "", 0, true},
		{"postgres://u@h/db?heartbeat=-1s", "", 0, true},
	} {
		out, hb, err := splitParams(tt.in)
		if (err != nil) != tt.err || out != tt.out || hb != tt.hb {
			t.Errorf("splitParams(%q) = %q, %v, %v; want %q, %v, error %v", tt.in, out, hb, err, tt.out, tt.hb, tt.err)
		}
	}
}

func TestStatusInterval(t *testing.T) {
	for _, tt := range []struct{ timeout, want time.Duration }{
		{time.Minute, 20 * time.Second},
		{3 * time.Second, time.Second},
		{0, 10 * time.Second},
		{time.Millisecond, 10 * time.Millisecond},
	} {
		if got := statusInterval(tt.timeout); got != tt.want {
			t.Errorf("statusInterval(%v) = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}

func TestSlotLost(t *testing.T) {
	for _, tt := range []struct {
		ss   slotState
		want string // in the reason; "" for a usable slot
	}{
		{slotState{walStatus: "reserved"}, ""},
		{slotState{walStatus: "unreserved"}, ""},
		{slotState{walStatus: "lost"}, "max_slot_wal_keep_size"},
		{slotState{walStatus: "reserved", conflicting: true}, "conflicting"},
		{slotState{invalidation: "rows_removed"}, "rows_removed"},
		{slotState{walStatus: "lost", invalidation: "wal_removed"}, "wal_removed"},
	} {
		got := tt.ss.lost()
		if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%+v.lost() = %q; want %q in it", tt.ss, got, tt.want)
		}
	}
}

// TestHeartbeat checks that heartbeats keep the slot moving while only a
// table the link does not track is busy: every OpCommit is acknowledged,
// as the engine does after its commit.
func TestHeartbeat(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	// Progress commits at most every 20 s (wal_sender_timeout 60 s): the
	// slot's moves within the test come from heartbeats.
	src, exec, st, _ := idleLink(t, "hb", "heartbeat=1s&options=-c%20wal_sender_timeout%3D60s")
	ctx := context.Background()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { // the engine: acknowledge every commit
		for {
			c, err := st.Next(cctx)
			if err != nil {
				errc <- err
				return
			}
			if c.Op != lakelink.OpCommit {
				errc <- fmt.Errorf("a %v of table %q, while only an untracked table is written", c.Op, c.Table)
				return
			}
			if err := st.Ack(cctx, c.Pos); err != nil {
				errc <- err
				return
			}
		}
	}()
	moves, last := 0, slotPos(t, src, "hb")
	for i := 0; i < 80; i++ { // about 16 s of a busy database
		exec(t, fmt.Sprintf("INSERT INTO other VALUES (%d)", i))
		time.Sleep(200 * time.Millisecond)
		if p := slotPos(t, src, "hb"); p != last {
			if p < last {
				t.Fatalf("slot moved back from %d to %d", last, p)
			}
			moves, last = moves+1, p
		}
	}
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("consumer: %v", err)
	}
	beats := st.(*stream).heartbeats.Load()
	t.Logf("slot moved %d times; %d heartbeats delivered", moves, beats)
	if beats < 4 || moves < 4 {
		t.Errorf("slot moved %d times with %d heartbeats delivered over 16 s of writes to an untracked table; want at least 4 of each", moves, beats)
	}
}

// TestProgressCommit checks that an idle link gets commits without rows at
// the server's WAL position, that the slot moves only when one is
// acknowledged, and that a transaction of the link that began before such
// a position and committed after it comes after it, also after a restart
// from it.
func TestProgressCommit(t *testing.T) {
	t.Parallel()
	src, exec, st, pos := idleLink(t, "prog", "heartbeat=off&"+fastStatus)
	ctx := context.Background()

	// A transaction of the link, open across the progress commit.
	tx, err := src.pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO a VALUES (1)"); err != nil {
		t.Fatalf("insert: %v", err)
	}

	var progress lakelink.Position
	for i := 0; progress == 0; i++ {
		if i == 50 {
			t.Fatal("no progress commit within 10 s of writes to an untracked table")
		}
		exec(t, fmt.Sprintf("INSERT INTO other VALUES (%d)", i))
		nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		c, err := st.Next(nctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
		case err != nil:
			t.Fatalf("Stream.Next: %v", err)
		case c.Op != lakelink.OpCommit:
			t.Fatalf("a %v of %q while the link is idle", c.Op, c.Table)
		case c.Pos <= pos:
			t.Fatalf("progress commit at %d, not after the stream's start %d", c.Pos, pos)
		default:
			progress = c.Pos
		}
	}
	time.Sleep(1500 * time.Millisecond) // more than a status interval
	if got := slotPos(t, src, "prog"); got != pos {
		t.Fatalf("slot at %d before the progress commit %d was acknowledged; want it at %d", got, progress, pos)
	}
	if err := st.Ack(ctx, progress); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	waitSlot(t, src, "prog", "at the acknowledged progress commit", func(p lakelink.Position) bool { return p == progress })

	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	exec(t, "INSERT INTO a VALUES (2)")
	check := func(st lakelink.Stream) {
		t.Helper()
		cs, _ := changes(t, st, 2)
		for i, c := range cs {
			if c.Row[0] != int64(i+1) || c.Pos <= progress {
				t.Errorf("change %d: row %v at %d; want row %d after the progress commit %d", i, c.Row, c.Pos, i+1, progress)
			}
		}
		if end := untilCommit(t, st); end <= cs[1].Pos {
			t.Errorf("commit at %d, not after its rows at %d", end, cs[1].Pos)
		}
	}
	check(st)
	st.Close()
	// Nothing after the progress commit was acknowledged: a stream from it
	// delivers both transactions again.
	check(startStream(t, src, "prog", progress))
}

// TestStreamRefuses checks the safety at start: a stream from the copy's
// position on a fresh slot starts; one whose slot was dropped, or moved
// past the lake's position, is refused with lakelink.ErrResync.
func TestStreamRefuses(t *testing.T) {
	t.Parallel()
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	exec(t, "CREATE TABLE b (id int PRIMARY KEY)")
	exec(t, "CREATE TABLE other (id int PRIMARY KEY)")
	if err := src.Track(ctx, "safe", []string{"a", "b"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, "safe", "a")
	if got := slotPos(t, src, "safe"); got != pos {
		t.Fatalf("new slot confirmed at %d, the first snapshot at %d; want them equal", got, pos)
	}
	_, _, pos2 := read(t, src, "safe", "b")
	if pos2 < pos {
		t.Fatalf("a later snapshot at %d, before the first at %d", pos2, pos)
	}

	// A fresh link, from the copy's position: not refused.
	st, err := src.Stream(ctx, "safe", pos)
	if err != nil {
		t.Fatalf("Stream from the snapshot's position %d on the new slot: %v", pos, err)
	}
	exec(t, "INSERT INTO a VALUES (1)")
	cs, _ := changes(t, st, 1)
	if cs[0].Row[0] != int64(1) || cs[0].Pos <= pos {
		t.Fatalf("first change %v at %d; want row 1 after %d", cs[0].Row, cs[0].Pos, pos)
	}
	st.Close()

	// The slot moved past the lake's position.
	exec(t, "INSERT INTO other VALUES (1)")
	var lsn string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The closed stream's server process may hold the slot a moment.
		err := src.pool.QueryRow(ctx, "SELECT end_lsn::text FROM pg_replication_slot_advance('lakelink_safe', pg_current_wal_lsn())").Scan(&lsn)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_replication_slot_advance: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	advanced, _ := pglogrepl.ParseLSN(lsn)
	if lakelink.Position(advanced) <= pos {
		t.Fatalf("slot advanced to %s, not past %d", lsn, pos)
	}
	st, err = src.Stream(ctx, "safe", pos)
	if err == nil {
		st.Close()
	}
	for _, want := range []string{`slot "lakelink_safe"`, lsn, pglogrepl.LSN(pos).String(), "lakelink resync --lake LAKE --table a --table b"} {
		if !errors.Is(err, lakelink.ErrResync) || !strings.Contains(err.Error(), want) {
			t.Errorf("Stream(%d) with the slot advanced to %s = %v; want an ErrResync that says %q", pos, lsn, err, want)
		}
	}
	// From the slot's own position (as after an Ack): accepted.
	st, err = src.Stream(ctx, "safe", lakelink.Position(advanced))
	if err != nil {
		t.Fatalf("Stream(%d) at the slot's position: %v", advanced, err)
	}
	st.Close()

	// The slot was dropped.
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := src.pool.Exec(ctx, "SELECT pg_drop_replication_slot('lakelink_safe')")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_drop_replication_slot: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err = src.Stream(ctx, "safe", lakelink.Position(advanced))
	if err == nil {
		st.Close()
	}
	if !errors.Is(err, lakelink.ErrResync) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "--table a --table b") {
		t.Fatalf("Stream(%d) without the slot = %v; want an ErrResync that says the slot does not exist and names tables a and b", advanced, err)
	}
	// After a resync, the copies create a new slot and the stream starts.
	_, _, pos3 := read(t, src, "safe", "a")
	_, _, pos4 := read(t, src, "safe", "b")
	st = startStream(t, src, "safe", min(pos3, pos4))
	exec(t, "INSERT INTO b VALUES (2)")
	if cs, _ := changes(t, st, 1); cs[0].Row[0] != int64(2) {
		t.Fatalf("after the resync: %v; want row 2", cs[0].Row)
	}
}

// TestTerminateWalsender checks that a dropped replication connection ends
// the stream with a transient error, that Close then returns, and that a
// stream from the last acknowledged commit goes on with no change lost or
// repeated.
func TestTerminateWalsender(t *testing.T) {
	t.Parallel()
	src, exec, st, _ := idleLink(t, "term", "")
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		exec(t, fmt.Sprintf("INSERT INTO a VALUES (%d)", i))
	}
	var acked lakelink.Position
	for i := 1; i <= 5; i++ {
		end := rowCommit(t, st)
		if i == 3 {
			acked = end
			if err := st.Ack(ctx, end); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
	}
	waitSlot(t, src, "term", "at the acknowledged commit", func(p lakelink.Position) bool { return p == acked })

	var n int
	if err := src.pool.QueryRow(ctx, "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = 'lakelink_term' AND active").Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the walsender: %d terminated, %v", n, err)
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang, not a timing
	defer cancel()
	for {
		c, err := st.Next(nctx)
		if err == nil {
			if c.Op != lakelink.OpCommit {
				t.Fatalf("after the walsender was terminated: a %v %v", c.Op, c.Row)
			}
			continue // a progress commit
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("Next did not return an error within 30 s of the walsender's end")
		}
		if !errors.Is(err, lakelink.ErrTransient) {
			t.Errorf("Next after the walsender was terminated = %v; want an error marked transient", err)
		}
		t.Logf("Next: %v", err)
		break
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30 s")
	}

	exec(t, "INSERT INTO a VALUES (6)")
	exec(t, "UPDATE a SET id = 7 WHERE id = 6")
	st = startStream(t, src, "term", acked)
	cs, _ := changes(t, st, 5)
	var got []string
	for _, c := range cs {
		got = append(got, fmt.Sprintf("%v %v", c.Op, c.Row[0]))
	}
	want := []string{"insert 4", "insert 5", "insert 6", "delete 6", "insert 7"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("after the restart from %d: %s; want %s", acked, strings.Join(got, ", "), strings.Join(want, ", "))
	}
	nctx, cancel = context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		c, err := st.Next(nctx)
		if err != nil {
			break
		}
		if c.Op != lakelink.OpCommit && c.Op != lakelink.OpSchema {
			t.Errorf("after the restart: an extra %v %v", c.Op, c.Row)
		}
	}
}

// TestLargeTransaction checks that a transaction of 2,000,000 rows flows
// change by change: the stream's memory does not grow with it.
func TestLargeTransaction(t *testing.T) {
	testenv.Slow(t)
	// Not parallel: the heap measured is the test binary's.
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE big (id int PRIMARY KEY, v text)")
	if err := src.Track(ctx, "big", []string{"big"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	_, _, pos := read(t, src, "big", "big")
	const n = 2_000_000
	start := time.Now()
	exec(t, fmt.Sprintf("INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, %d) g", n))
	t.Logf("inserted %d rows in one transaction in %v", n, time.Since(start))
	start = time.Now()
	st := startStream(t, src, "big", pos)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	nctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // a hang, not a timing
	defer cancel()
	rows := 0
	for {
		c, err := st.Next(nctx)
		if err != nil {
			t.Fatalf("Next after %d rows: %v", rows, err)
		}
		if c.Op == lakelink.OpCommit && rows > 0 {
			break
		}
		if c.Op == lakelink.OpInsert {
			rows++
			if c.Row[0] != int64(rows) {
				t.Fatalf("row %d: id %v", rows, c.Row[0])
			}
			if rows%100_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}
	if rows != n {
		t.Fatalf("%d rows before the commit; want %d", rows, n)
	}
	t.Logf("streamed in %v; heap in use: %d MiB before, %d MiB at most", time.Since(start), base>>20, peak>>20)
	// The rows take more than 100 MiB held at once as Go values.
	if peak > base+64<<20 {
		t.Errorf("heap grew from %d MiB to %d MiB while streaming one transaction of %d rows; want it bounded", base>>20, peak>>20, n)
	}
}
