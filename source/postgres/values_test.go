package postgres

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lakelink/lakelink"
)

func TestDecode(t *testing.T) {
	bad := func(raw string) lakelink.Value { return lakelink.BadValue{Raw: raw} }
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	for _, tt := range []struct {
		kind lakelink.Kind
		text string
		want lakelink.Value
	}{
		{lakelink.KindInt64, "-9223372036854775808", int64(math.MinInt64)},
		{lakelink.KindFloat64, "NaN", math.NaN()},
		{lakelink.KindFloat64, "Infinity", math.Inf(1)},
		{lakelink.KindFloat64, "-Infinity", math.Inf(-1)},
		{lakelink.KindFloat64, "1e-300", 1e-300},
		{lakelink.KindDecimal, "-0.000000000000000000001", "-0.000000000000000000001"},
		{lakelink.KindDecimal, "NaN", bad("NaN")},
		{lakelink.KindDecimal, "Infinity", bad("Infinity")},
		{lakelink.KindBool, "t", true},
		{lakelink.KindBytes, `\x`, []byte{}},
		{lakelink.KindBytes, `\xdeadbeef`, []byte{0xde, 0xad, 0xbe, 0xef}},
		{lakelink.KindDate, "infinity", bad("infinity")},
		{lakelink.KindDate, "0044-03-15 BC", bad("0044-03-15 BC")},
		{lakelink.KindTime, "24:00:00", bad("24:00:00")},
		{lakelink.KindDateTime, "2021-06-25 16:21:12.123456", utc(2021, 6, 25, 16, 21, 12, 123456000)},
		{lakelink.KindDateTimeOffset, "2021-06-25 16:21:12+00", utc(2021, 6, 25, 16, 21, 12, 0)},
		{lakelink.KindDateTimeOffset, "2021-06-25 16:21:12+05:30", utc(2021, 6, 25, 10, 51, 12, 0)},
		{lakelink.KindDateTimeOffset, "1900-01-01 00:00:00+00:19:32", utc(1899, 12, 31, 23, 40, 28, 0)},
		{lakelink.KindDateTimeOffset, "-infinity", bad("-infinity")},
		{lakelink.KindString, "", ""},
	} {
		got := decode(tt.kind, []byte(tt.text))
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateNaNs(), cmpopts.IgnoreFields(lakelink.BadValue{}, "Reason")); diff != "" {
			t.Errorf("decode(%v, %q) = %#v, want %#v", tt.kind, tt.text, got, tt.want)
		}
	}
	if got := decode(lakelink.KindString, nil); got != nil {
		t.Errorf("decode(NULL) = %#v, want nil", got)
	}
}

func TestColumn(t *testing.T) {
	for _, tt := range []struct {
		oid    uint32
		typmod int32
		want   lakelink.Column
	}{
		{pgtype.NumericOID, -1, lakelink.Column{Kind: lakelink.KindDecimal, MaxLength: -1, Precision: -1, Scale: -1}},
		{pgtype.NumericOID, 10<<16 | 2 + 4, lakelink.Column{Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 10, Scale: 2}},
		{pgtype.NumericOID, 5<<16 | 0x7fe + 4, lakelink.Column{Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 5, Scale: -2}}, // numeric(5,-2)
		{pgtype.NumericOID, 1000<<16 | 1000 + 4, lakelink.Column{Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 1000, Scale: 1000}},
		{pgtype.VarcharOID, 20 + 4, lakelink.Column{Kind: lakelink.KindString, MaxLength: 20, Precision: -1, Scale: -1}},
		{pgtype.VarcharOID, -1, lakelink.Column{Kind: lakelink.KindString, MaxLength: -1, Precision: -1, Scale: -1}},
		{pgtype.InetOID, -1, lakelink.Column{Kind: lakelink.KindString, MaxLength: -1, Precision: -1, Scale: -1}},
	} {
		got := column("", tt.oid, tt.typmod, "", nil, 0).Column
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("column(%d, %d) (-want +got):\n%s", tt.oid, tt.typmod, diff)
		}
	}
}

func TestParseURLHidesPassword(t *testing.T) {
	_, err := ParseURL("postgres://u:s3cret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ParseURL(bad port) = %v; want an error without the password", err)
	}
	if got, err := ParseURL("postgres://u@127.0.0.1:5432/db?sslmode=disable"); err != nil || got == "" {
		t.Errorf("ParseURL = %q, %v; want the URL", got, err)
	}
}

func TestArrayJSON(t *testing.T) {
	ints := column("", pgtype.Int4ArrayOID, -1, "integer[]", nil, pgtype.Int4OID)
	texts := column("", pgtype.TextArrayOID, -1, "text[]", nil, pgtype.TextOID)
	floats := column("", pgtype.Float8ArrayOID, -1, "double precision[]", nil, pgtype.Float8OID)
	nums := column("", pgtype.NumericArrayOID, -1, "numeric[]", nil, pgtype.NumericOID)
	bools := column("", pgtype.BoolArrayOID, -1, "boolean[]", nil, pgtype.BoolOID)
	for _, tt := range []struct {
		c    col
		text string
		want lakelink.Value
	}{
		{ints, "{}", "[]"},
		{ints, "{{1,2},{NULL,-4}}", "[[1,2],[null,-4]]"},
		{ints, "[0:1]={7,8}", "[7,8]"},
		{texts, `{"a,b","q\"uote","back\\slash",NULL,"NULL",plain}`, `["a,b","q\"uote","back\\slash",null,"NULL","plain"]`},
		{texts, `{"{}"}`, `["{}"]`},
		{texts, `{"a b",NULL,""}`, `["a b",null,""]`}, // "" is the empty string, not NULL
		{floats, "{1.5,NaN,-Infinity}", `[1.5,"NaN","-Infinity"]`},
		{nums, "{1.50,NaN}", lakelink.BadValue{Raw: "{1.50,NaN}"}},
		{bools, "{t,f}", "[true,false]"},
		{ints, "{1,2", lakelink.BadValue{Raw: "{1,2"}},
	} {
		got := tt.c.decode([]byte(tt.text), nil)
		if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(lakelink.BadValue{}, "Reason")); diff != "" {
			t.Errorf("decode(%s, %q) = %#v, want %#v", tt.c.Type, tt.text, got, tt.want)
		}
	}
}
