package export

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// BenchmarkMergeTable merges one batch of 10,000 changes (half updates of
// rows spread over the file, half inserts) into a single partition of
// 100,000 and of 1,000,000 rows, calling mergeTable directly. The old
// partition is read from a local file and the new one is counted and
// discarded, so the figures are the merge's own CPU and memory, without a
// lake's fsync. Besides ns/op and B/op it reports peak-heap-B, the highest
// HeapInuse sampled every 10 ms while merging: it should not grow with the
// partition. bench/ (go run ./bench) runs it with -benchmem.
func BenchmarkMergeTable(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("partition=%d", n), func(b *testing.B) { benchMerge(b, n, 10_000) })
	}
}

func benchMerge(b *testing.B, rows, changes int) {
	t := newBenchTable(b)
	path := filepath.Join(b.TempDir(), "2020.csv")
	size := writeBenchPartition(b, t, rows, path)
	lake := &benchLake{part: cdm.PartitionPath(t.st.Folder, "2020"), file: path, size: size}
	tb, inserts := benchBatch(b, t, rows, changes)

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		parts, err := mergeTable(ctx, lake, t, tb, false)
		if err != nil {
			b.Fatal(err)
		}
		if p := parts["2020"]; p == nil || p.Rows != int64(rows+inserts) {
			b.Fatalf("mergeTable rewrote %v, want 2020 with %d rows", parts, rows+inserts)
		}
	}
	close(stop)
	<-done
	b.ReportMetric(float64(peak.Load()), "peak-heap-B")
}

// benchDef is the benchmark table of bench/: six columns of the usual kinds.
func benchDef() lakelink.Table {
	col := func(name string, k lakelink.Kind, typ string) lakelink.Column {
		return lakelink.Column{Name: name, Kind: k, Type: typ, MaxLength: -1, Precision: -1, Scale: -1}
	}
	return lakelink.Table{Name: "t", Key: []int{0}, Columns: []lakelink.Column{
		col("id", lakelink.KindInt64, "INTEGER"),
		col("name", lakelink.KindString, "TEXT"),
		col("amount", lakelink.KindFloat64, "REAL"),
		col("qty", lakelink.KindInt64, "INTEGER"),
		col("createdon", lakelink.KindDateTime, "DATETIME"),
		col("note", lakelink.KindString, "TEXT"),
	}}
}

func newBenchTable(tb testing.TB) *table {
	tb.Helper()
	ts := &TableState{
		Source: "t", Folder: "t", Mode: lakelink.ModeInPlace, Partition: lakelink.PartitionYear, CreatedOn: "createdon",
		InitialSync: SyncCompleted, Partitions: map[string]*PartState{},
	}
	t := &table{st: ts, created: -1, link: "bench"}
	if _, err := t.setDefinition(benchDef()); err != nil {
		tb.Fatal(err)
	}
	ts.Initial = len(ts.Columns)
	return t
}

// benchRow is row id of the table; every createdon falls in 2020.
func benchRow(id int, note string) []lakelink.Value {
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id%1_000_000) * 31 * time.Second)
	if note == "" {
		note = "plain note " + strconv.Itoa(id%97)
		if id%10 == 0 {
			note = `a note, with a comma and "quotes"`
		}
	}
	return []lakelink.Value{int64(id), "customer " + strconv.Itoa(id), float64(id%100000)/100 + 0.25, int64(id * 7919 % 1000), created, note}
}

// writeBenchPartition writes rows 1..n as the initial copy would, at
// position 1, and returns the file's size.
func writeBenchPartition(tb testing.TB, t *table, n int, path string) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 256<<10)
	modified := cdm.FormatSinkTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	var buf []byte
	var size int64
	for id := 1; id <= n; id++ {
		row := benchRow(id, "")
		if buf, err = t.encodeID(buf[:0], row); err != nil {
			tb.Fatal(err)
		}
		idLen := len(buf)
		buf = append(buf, ',')
		buf = cdm.AppendString(buf, modified)
		buf = append(buf, ',')
		buf = cdm.AppendString(buf, modified)
		if buf, err = t.encodeRest(buf, row, 1, false, buf[:idLen]); err != nil {
			tb.Fatal(err)
		}
		m, _ := w.Write(buf)
		size += int64(m)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return size
}

// benchBatch builds a batch of changes: updates of rows spread evenly over
// 1..n and inserts of new ids after n. It returns the batch and how many
// inserts it holds.
func benchBatch(tb testing.TB, t *table, n, changes int) (*tableBatch, int) {
	tb.Helper()
	updates := min(changes/2, n)
	inserts := changes - updates
	every := max(n/max(updates, 1), 1)
	b := newBatch()
	now := time.Now().UTC()
	modified := cdm.FormatSinkTime(now)
	var scratch []byte
	var err error
	pos := lakelink.Position(1)
	add := func(op lakelink.Op, row []lakelink.Value) {
		pos++
		c := lakelink.Change{Op: op, Table: "t", Pos: pos, Row: row}
		if scratch, err = b.addInPlace(t, c, now, modified, scratch); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 1; i <= updates; i++ {
		add(lakelink.OpUpdate, benchRow(i*every, "updated by the merge benchmark"))
	}
	for i := 1; i <= inserts; i++ {
		add(lakelink.OpInsert, benchRow(n+i, ""))
	}
	return b.tables["t"], inserts
}

// benchLake holds one partition in a local file; what is written to it is
// counted and discarded.
type benchLake struct {
	part string // the partition's lake path
	file string // its local file
	size int64
}

func (l *benchLake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	return &countWriter{}, nil
}

func (l *benchLake) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if path != l.part {
		return nil, fmt.Errorf("open %s: %w", path, lakelink.ErrNotExist)
	}
	return os.Open(l.file)
}

func (l *benchLake) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	if path != l.part {
		return lakelink.ObjectInfo{}, fmt.Errorf("stat %s: %w", path, lakelink.ErrNotExist)
	}
	return lakelink.ObjectInfo{Path: path, Size: l.size}, nil
}

func (l *benchLake) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	return []lakelink.ObjectInfo{{Path: l.part, Size: l.size}}, nil
}

func (l *benchLake) Delete(ctx context.Context, path string) error { return nil }
func (l *benchLake) URL(path string) string                        { return "file:///bench/" + path }
func (l *benchLake) String() string                                { return "bench lake" }
func (l *benchLake) Close() error                                  { return nil }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
func (w *countWriter) Close() error                { return nil }
