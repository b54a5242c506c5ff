package cdm

import (
	"bytes"
	"io"
	"math"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

// appendRow appends one lake record: Id, the sink times, the values, then
// versionnumber and IsDelete (empty unless deleted), then the added values.
func appendRow(t testing.TB, dst []byte, keyKinds []lakelink.Kind, key []lakelink.Value, sink time.Time, cols []lakelink.Column, vals []lakelink.Value, version int64, deleted bool, added []lakelink.Value) []byte {
	t.Helper()
	var err error
	if dst, err = AppendID(dst, keyKinds, key); err != nil {
		t.Fatal(err)
	}
	dst = append(dst, ',')
	dst = AppendSinkTime(dst, sink)
	dst = append(dst, ',')
	dst = AppendSinkTime(dst, sink)
	for i, v := range vals {
		dst = append(dst, ',')
		if dst, err = AppendValue(dst, cols[i].Kind, v); err != nil {
			t.Fatal(err)
		}
	}
	dst = append(dst, ',')
	dst, _ = AppendValue(dst, lakelink.KindInt64, version)
	dst = append(dst, ',')
	if deleted {
		dst, _ = AppendValue(dst, lakelink.KindBool, true)
	}
	for i, v := range added {
		dst = append(dst, ',')
		if dst, err = AppendValue(dst, cols[len(vals)+i].Kind, v); err != nil {
			t.Fatal(err)
		}
	}
	return append(dst, '\n')
}

// sampleRows is a partition of the orders table of model_test.go: the
// first 14 columns are initial, status was added later.
func sampleRows(t testing.TB) (data []byte, rows [][]lakelink.Value) {
	sink := time.Date(2021, 6, 28, 16, 34, 35, 0, time.UTC)
	created := time.Date(2021, 3, 4, 5, 6, 7, 891234000, time.UTC)
	rows = [][]lakelink.Value{
		{"6b82fed7-c82c-eb11-a813-000d3a3a75c1", "Ada \"the Countess\" Lovelace", "line one\nline two\r\n\ttabbed, with comma", int64(3), 0.1, "1234567890123456.78", "0.000001", true,
			[]byte{0xde, 0xad, 0xbe, 0xef}, created, time.Date(2021, 3, 5, 0, 0, 0, 0, time.UTC), time.Date(2021, 4, 1, 0, 0, 0, 0, time.UTC),
			time.Date(0, 1, 1, 9, 30, 0, 0, time.UTC), `{"gift": true, "tags": ["a", "b"]}`, "paid"},
		{"6b82fed7-c82c-eb11-a813-000d3a3a75c2", "", "  spaced  ", int64(math.MinInt64), math.Copysign(0, -1), "-0.50", "0", false,
			[]byte{}, created, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(0, 1, 1, 23, 59, 59, 999999900, time.UTC), `[]`, nil},
		{"6b82fed7-c82c-eb11-a813-000d3a3a75c3", nil, "😀 שלום مرحبا", int64(math.MaxInt64), math.NaN(), nil, nil, nil,
			nil, created, nil, nil, nil, nil, "new"},
		{"6b82fed7-c82c-eb11-a813-000d3a3a75c4", "x", nil, nil, math.Inf(-1), nil, nil, nil, nil, created, nil, nil, nil, nil, nil},
	}
	for i, r := range rows {
		if i == 1 {
			// Written before status was added: ragged right.
			data = appendRow(t, data, []lakelink.Kind{lakelink.KindGUID}, r[:1], sink, ordersColumns, r[:14], int64(100+i), false, nil)
			continue
		}
		data = appendRow(t, data, []lakelink.Kind{lakelink.KindGUID}, r[:1], sink, ordersColumns, r[:14], int64(100+i), i == 3, r[14:])
	}
	return data, rows
}

func TestCSVGolden(t *testing.T) {
	data, rows := sampleRows(t)
	// A composite key table as well.
	sink := time.Date(2021, 6, 28, 0, 0, 0, 0, time.UTC)
	cols := []lakelink.Column{{Name: "seq", Kind: lakelink.KindInt64}, {Name: "source", Kind: lakelink.KindString}}
	composite := appendRow(t, nil, []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}, []lakelink.Value{int64(7), `app "one"`},
		sink, cols, []lakelink.Value{int64(7), `app "one"`}, 1, false, nil)
	golden(t, "rows.csv.golden", append(bytes.Clone(data), composite...))

	// Read the partition back: records, fields and values.
	r := NewReader(bytes.NewReader(data))
	for i, want := range rows {
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		fields := SplitFields(nil, rec)
		wantFields := 3 + 14 + 2 + 1
		if i == 1 {
			wantFields-- // ragged right
		}
		if len(fields) != wantFields {
			t.Fatalf("record %d has %d fields, want %d: %q", i, len(fields), wantFields, rec)
		}
		if got, _ := DecodeValue(lakelink.KindGUID, fields[0]); got != want[0] {
			t.Errorf("record %d Id = %v, want %v", i, got, want[0])
		}
		if s, _ := Field(fields[1]); s != "6/28/2021 4:34:35 PM" {
			t.Errorf("record %d SinkCreatedOn = %q", i, s)
		}
		for c := 0; c < len(want); c++ {
			f := 3 + c
			if c >= 14 {
				f += 2 // after versionnumber and IsDelete
			}
			var got lakelink.Value
			if f < len(fields) {
				if got, err = DecodeValue(ordersColumns[c].Kind, fields[f]); err != nil {
					t.Fatalf("record %d column %s: %v", i, ordersColumns[c].Name, err)
				}
			}
			if !equalValues(got, want[c]) {
				t.Errorf("record %d column %s = %#v, want %#v", i, ordersColumns[c].Name, got, want[c])
			}
		}
		isDelete, _ := DecodeValue(lakelink.KindBool, fields[3+14+1])
		if wantDel := i == 3; (isDelete == true) != wantDel {
			t.Errorf("record %d IsDelete = %v, want %v", i, isDelete, wantDel)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(data)) {
		t.Fatalf("Offset = %d, want %d", r.Offset(), len(data))
	}
}
