package cdm

import (
	"bytes"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

// benchRow is a typical 6-column row: key, name, amount, price, time, flag.
var (
	benchKinds = []lakelink.Kind{lakelink.KindInt64, lakelink.KindString, lakelink.KindFloat64, lakelink.KindDecimal, lakelink.KindDateTimeOffset, lakelink.KindBool}
	benchRow   = []lakelink.Value{int64(1234567), `customer "42", Zürich`, 1234.5678, "99.95", time.Date(2021, 6, 28, 16, 34, 35, 123456000, time.UTC), true}
)

func BenchmarkAppendValueRow(b *testing.B) {
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		buf = buf[:0]
		for i, v := range benchRow {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = AppendValue(buf, benchKinds[i], v); err != nil {
				b.Fatal(err)
			}
		}
		buf = append(buf, '\n')
		n = len(buf)
	}
	b.SetBytes(int64(n))
}

func BenchmarkAppendIDComposite(b *testing.B) {
	kinds := []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}
	key := []lakelink.Value{int64(1234567), "eu-west"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendID(buf[:0], kinds, key)
	}
}

// benchPartition is about 1 MiB of typical rows, one in ten with a
// multi-line quoted field.
func benchPartition(b *testing.B) []byte {
	var data []byte
	for i := 0; len(data) < 1<<20; i++ {
		row := benchRow
		if i%10 == 0 {
			row = append([]lakelink.Value(nil), benchRow...)
			row[1] = "multi\nline \"note\""
		}
		for c, v := range row {
			if c > 0 {
				data = append(data, ',')
			}
			data, _ = AppendValue(data, benchKinds[c], v)
		}
		data = append(data, '\n')
	}
	return data
}

func BenchmarkReaderNext(b *testing.B) {
	data := benchPartition(b)
	r := NewReader(bytes.NewReader(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkSplitFields(b *testing.B) {
	data := benchPartition(b)
	r := NewReader(bytes.NewReader(data))
	r.Next() // the first row has a multi-line field
	rec, _ := r.Next()
	fields := make([][]byte, 0, 16)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		fields = SplitFields(fields[:0], rec)
	}
}
