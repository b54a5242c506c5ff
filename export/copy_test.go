package export

import (
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// BenchmarkEncodeCopied encodes rows of bench/'s table as the initial copy
// does (Id, partition, system columns, values), per row.
func BenchmarkEncodeCopied(b *testing.B) {
	t := newBenchTable(b)
	rows := make([][]lakelink.Value, 1024)
	for i := range rows {
		rows[i] = benchRow(i+1, "")
	}
	modified := cdm.FormatSinkTime(lakelink.Now())
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		buf, _, err = t.encodeCopied(buf[:0], rows[i%len(rows)], modified, 12345678)
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestEncodeCopiedCaches checks that what a table keeps from one row to
// the next (the position's text, the last partition) never changes a
// record or its partition: one table encodes a run of rows whose
// createdOn and position change, by year and by month, and a new table
// encodes each row on its own.
func TestEncodeCopiedCaches(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	times := []lakelink.Value{at(2020, 1, 5), at(2020, 1, 6), at(2020, 2, 1), at(2021, 2, 1), nil, at(2021, 2, 1),
		time.Date(2021, 1, 1, 0, 30, 0, 0, time.FixedZone("+1", 3600)), at(2020, 12, 31), "not a time", at(2020, 12, 31)}
	for _, partition := range []string{lakelink.PartitionYear, lakelink.PartitionMonth} {
		long := newBenchTable(t)
		long.st.Partition = partition
		for i, created := range times {
			row := benchRow(i+1, "")
			row[4] = created
			pos := lakelink.Position(100 + i/3)
			fresh := newBenchTable(t)
			fresh.st.Partition = partition
			want, wantPart, wantErr := fresh.encodeCopied(nil, row, "m", pos)
			got, gotPart, gotErr := long.encodeCopied(nil, row, "m", pos)
			if string(got) != string(want) || gotPart != wantPart || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s row %d (createdon %v): %q in %q (%v), want %q in %q (%v)", partition, i, created, got, gotPart, gotErr, want, wantPart, wantErr)
			}
		}
	}
}
