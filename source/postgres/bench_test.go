package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lakelink/lakelink"
)

// benchCols are the columns of bench/'s PostgreSQL table, with the text of
// one of its rows.
func benchCols() ([]col, [][]byte) {
	cols := []col{
		column("id", pgtype.Int8OID, -1, "bigint", nil, 0),
		column("name", pgtype.TextOID, -1, "text", nil, 0),
		column("amount", pgtype.Float8OID, -1, "double precision", nil, 0),
		column("qty", pgtype.Int4OID, -1, "integer", nil, 0),
		column("createdon", pgtype.TimestampOID, -1, "timestamp without time zone", nil, 0),
		column("note", pgtype.TextOID, -1, "text", nil, 0),
	}
	text := [][]byte{[]byte("123456"), []byte("customer 123456"), []byte("234.81"), []byte("617"),
		[]byte("2019-03-04 05:06:07"), []byte(`a note, with a comma and "quotes"`)}
	return cols, text
}

// BenchmarkDecodeRow decodes one row of bench/'s table from its text, as
// both the copy and the stream do.
func BenchmarkDecodeRow(b *testing.B) {
	cols, text := benchCols()
	row := make([]lakelink.Value, len(cols))
	var a arena
	b.ReportAllocs()
	for b.Loop() {
		for i := range cols {
			row[i] = cols[i].decode(text[i], &a)
		}
	}
}
