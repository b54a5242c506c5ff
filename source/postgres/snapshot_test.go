package postgres

import (
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
)

// TestChunkedSnapshot checks that a table read by several readers in
// chunks of pages gives exactly the rows, in the order, that one reader
// gives, as of the snapshot's position: changes made while it reads are
// not in it. The table has gaps and moved rows (deletes and updates), and
// its last pages fill up while the copy runs.
//
// It is not parallel: it sets how many readers a snapshot uses, which
// the package's parallel tests only read once this one is done.
func TestChunkedSnapshot(t *testing.T) {
	src, exec, _ := newDB(t)
	ctx := context.Background()
	exec(t, "CREATE TABLE c (id int PRIMARY KEY, s text, n float8, at timestamptz)")
	exec(t, "INSERT INTO c SELECT i, repeat(md5(i::text), 6), i / 7.0, '2020-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 30000) i")
	exec(t, "DELETE FROM c WHERE id % 7 = 0")
	exec(t, "UPDATE c SET s = 'moved ' || id WHERE id % 11 = 0")
	if err := src.Track(ctx, "chunks", []string{"c"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	defer func(n int) { snapshotReaders = n }(snapshotReaders)

	snapshotReaders = 1
	one, err := src.Snapshot(ctx, "chunks", "c")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	want := readAll(t, one)
	if len(want) != 30000-30000/7 {
		t.Fatalf("one reader: %d rows, want %d", len(want), 30000-30000/7)
	}

	snapshotReaders = 3
	sn, err := src.Snapshot(ctx, "chunks", "c")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer sn.Close()
	if s := sn.(*snapshot); len(s.readers) != 3 || s.chunks < 6 {
		t.Fatalf("snapshot of %d chunks read by %d readers; want at least 6 chunks and 3 readers (is the table too small?)", s.chunks, len(s.readers))
	}
	exec(t, "INSERT INTO c SELECT i, 'new', 0, now() FROM generate_series(30001, 31000) i")
	exec(t, "DELETE FROM c WHERE id < 100")
	exec(t, "UPDATE c SET n = -1 WHERE id % 13 = 0")
	got := readAll(t, sn)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("three readers (-one reader +three readers):\n%s", diff)
	}
}

// readAll reads a snapshot to its end, mixing Next and NextBatch, and
// closes it.
func readAll(t *testing.T, sn lakelink.Snapshot) [][]lakelink.Value {
	t.Helper()
	defer sn.Close()
	var rows [][]lakelink.Value
	for i := 0; ; i++ {
		if i%2 == 0 {
			row, err := sn.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Snapshot.Next: %v", err)
			}
			rows = append(rows, row)
			continue
		}
		batch, err := sn.(*snapshot).NextBatch()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Snapshot.NextBatch: %v", err)
		}
		rows = append(rows, batch...)
	}
	if _, err := sn.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
	return rows
}
