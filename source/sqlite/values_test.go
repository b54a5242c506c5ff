package sqlite

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
)

func TestColumnOf(t *testing.T) {
	tests := []struct {
		decl                     string
		kind                     lakelink.Kind
		maxLen, precision, scale int
	}{
		{"", lakelink.KindString, -1, -1, -1},
		{"INTEGER", lakelink.KindInt64, -1, -1, -1},
		{"int", lakelink.KindInt64, -1, -1, -1},
		{"BIGINT", lakelink.KindInt64, -1, -1, -1},
		{"UNSIGNED BIG INT", lakelink.KindInt64, -1, -1, -1},
		{"INT8", lakelink.KindInt64, -1, -1, -1},
		{"BOOLEAN", lakelink.KindBool, -1, -1, -1},
		{"bool", lakelink.KindBool, -1, -1, -1},
		{"DATE", lakelink.KindDate, -1, -1, -1},
		{"DATETIME", lakelink.KindDateTime, -1, -1, -1},
		{"timestamp", lakelink.KindDateTime, -1, -1, -1},
		{"TIME", lakelink.KindTime, -1, -1, -1},
		{"JSON", lakelink.KindJSON, -1, -1, -1},
		{"NUMERIC", lakelink.KindDecimal, -1, -1, -1},
		{"DECIMAL(10,5)", lakelink.KindDecimal, -1, 10, 5},
		{"decimal ( 12 , 2 )", lakelink.KindDecimal, -1, 12, 2},
		{"NUMERIC(7)", lakelink.KindDecimal, -1, 7, -1},
		{"TEXT", lakelink.KindString, -1, -1, -1},
		{"VARCHAR(20)", lakelink.KindString, 20, -1, -1},
		{"varchar(255)", lakelink.KindString, 255, -1, -1},
		{"CHAR(3)", lakelink.KindString, 3, -1, -1},
		{"NCHAR(55)", lakelink.KindString, 55, -1, -1},
		{"VARYING CHARACTER(255)", lakelink.KindString, 255, -1, -1},
		{"NATIVE CHARACTER(70)", lakelink.KindString, 70, -1, -1},
		{"CLOB", lakelink.KindString, -1, -1, -1},
		{"BLOB", lakelink.KindBytes, -1, -1, -1},
		{"REAL", lakelink.KindFloat64, -1, -1, -1},
		{"DOUBLE", lakelink.KindFloat64, -1, -1, -1},
		{"DOUBLE PRECISION", lakelink.KindFloat64, -1, -1, -1},
		{"FLOAT", lakelink.KindFloat64, -1, -1, -1},
		{"MONEY", lakelink.KindDecimal, -1, -1, -1}, // NUMERIC affinity
		{"UUID", lakelink.KindDecimal, -1, -1, -1},  // NUMERIC affinity
		{"POINT", lakelink.KindInt64, -1, -1, -1},   // contains INT, as SQLite reads it
		{"CHARINT", lakelink.KindInt64, -1, -1, -1}, // INT wins over CHAR, as in SQLite
	}
	for _, tt := range tests {
		c := columnOf("c", tt.decl)
		if c.Kind != tt.kind || c.MaxLength != tt.maxLen || c.Precision != tt.precision || c.Scale != tt.scale || c.Type != tt.decl {
			t.Errorf("columnOf(%q) = %v maxLength %d precision %d scale %d type %q; want %v %d %d %d",
				tt.decl, c.Kind, c.MaxLength, c.Precision, c.Scale, c.Type, tt.kind, tt.maxLen, tt.precision, tt.scale)
		}
	}
}

// bad stands for any BadValue in a want.
var bad = lakelink.BadValue{Reason: "any"}

func TestConvert(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	tests := []struct {
		decl string
		raw  any
		want lakelink.Value
	}{
		{"INTEGER", nil, nil},
		{"INTEGER", int64(42), int64(42)},
		{"INTEGER", int64(math.MinInt64), int64(math.MinInt64)},
		{"INTEGER", 1.5, bad},
		{"INTEGER", "abc", bad},
		{"INTEGER", []byte{1}, bad},

		{"REAL", 1.5, 1.5},
		{"REAL", int64(3), 3.0},
		{"REAL", int64(1 << 53), float64(1 << 53)},
		{"REAL", int64(1<<53 + 1), bad},
		{"REAL", int64(math.MaxInt64), bad},
		{"REAL", int64(math.MinInt64), float64(math.MinInt64)},
		{"REAL", math.Inf(-1), math.Inf(-1)},
		{"REAL", "abc", bad},

		{"TEXT", "héllo", "héllo"},
		{"TEXT", "", ""},
		{"TEXT", "\xff", bad},
		{"TEXT", int64(-7), "-7"},
		{"TEXT", 0.1, "0.1"},
		{"TEXT", 1e21, "1e+21"},
		{"TEXT", []byte("x"), bad},
		{"", "x", "x"},
		{"", int64(1), "1"},
		{"", []byte("x"), bad},

		{"BLOB", []byte{0, 1}, []byte{0, 1}},
		{"BLOB", []byte(nil), []byte{}},
		{"BLOB", "text", bad},
		{"BLOB", int64(5), bad},

		{"BOOLEAN", int64(1), true},
		{"BOOLEAN", int64(0), false},
		{"BOOLEAN", int64(2), bad},
		{"BOOLEAN", "true", bad},
		{"BOOLEAN", 1.0, bad},

		{"DECIMAL(10,2)", int64(-42), "-42"},
		{"DECIMAL(10,2)", 12.34, "12.34"},
		{"DECIMAL(10,2)", 1e21, "1000000000000000000000"},
		{"DECIMAL(10,2)", 5e-7, "0.0000005"},
		{"DECIMAL(10,2)", math.Copysign(0, -1), "0"},
		{"DECIMAL(10,2)", math.Inf(1), bad},
		{"NUMERIC", "12345678901234567890.123456789", "12345678901234567890.123456789"},
		{"NUMERIC", "-.5", "-0.5"},
		{"NUMERIC", "+7.", "7"},
		{"NUMERIC", "1e5", bad},
		{"NUMERIC", ".", bad},
		{"NUMERIC", "", bad},
		{"NUMERIC", "1.2.3", bad},
		{"NUMERIC", "abc", bad},
		{"NUMERIC", []byte("1"), bad},

		{"DATE", "2021-06-25", utc("2021-06-25T00:00:00Z")},
		{"DATE", "2021-02-30", bad},
		{"DATE", "2021-6-25", bad},
		{"DATE", "2021-06-25 10:00:00", bad},
		{"DATE", int64(20210625), bad},

		{"DATETIME", "2021-06-25 16:21:12", utc("2021-06-25T16:21:12Z")},
		{"DATETIME", "2021-06-25 16:21:12.123456789", utc("2021-06-25T16:21:12.123456789Z")},
		{"DATETIME", "2021-06-25T16:21:12.5", utc("2021-06-25T16:21:12.5Z")},
		{"DATETIME", "2021-06-25T16:21:12Z", utc("2021-06-25T16:21:12Z")},
		{"DATETIME", "2021-06-25 18:21:12+02:00", utc("2021-06-25T16:21:12Z")},
		{"DATETIME", "2021-06-25T10:21:12.25-06:00", utc("2021-06-25T16:21:12.25Z")},
		{"TIMESTAMP", int64(1624638072), utc("2021-06-25T16:21:12Z")},
		{"TIMESTAMP", "2021-06-25", bad},
		{"TIMESTAMP", "2021-06-25 16:21", bad},
		{"TIMESTAMP", "yesterday", bad},
		{"TIMESTAMP", 2459391.18, bad},

		{"TIME", "16:21:12.5", time.Date(0, 1, 1, 16, 21, 12, 5e8, time.UTC)},
		{"TIME", "25:00:00", bad},

		{"JSON", `{"a":[1,2]}`, `{"a":[1,2]}`},
		{"JSON", int64(3), "3"},
		{"JSON", `{bad`, bad},
	}
	for _, tt := range tests {
		c := columnOf("c", tt.decl)
		got := convert(&c, tt.raw)
		if b, ok := got.(lakelink.BadValue); ok {
			if tt.want != bad {
				t.Errorf("convert(%s, %#v) = %v, want %#v", tt.decl, tt.raw, b, tt.want)
			} else if b.Reason == "" || !cmp.Equal(b.Raw, tt.raw) && tt.raw != nil {
				t.Errorf("convert(%s, %#v) = %#v: want the raw value and a reason", tt.decl, tt.raw, b)
			}
			continue
		}
		if tt.want == bad || !cmp.Equal(got, tt.want) {
			t.Errorf("convert(%s, %#v) = %#v, want %#v", tt.decl, tt.raw, got, tt.want)
		}
	}
}

func TestConvertKeepsNegativeZeroFloat(t *testing.T) {
	c := columnOf("c", "REAL")
	got := convert(&c, math.Copysign(0, -1)).(float64)
	if !math.Signbit(got) {
		t.Errorf("convert(REAL, -0.0) = %v, lost the sign", got)
	}
}

// TestParseDateTimeFast checks that the fast path accepts exactly what
// time.Parse accepts, with the same result.
func TestParseDateTimeFast(t *testing.T) {
	for _, s := range []string{
		"2021-06-25 16:21:12", "2021-06-25T16:21:12", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
		"2024-02-29 12:00:00", "2023-02-29 12:00:00", "2021-13-01 00:00:00", "2021-00-10 00:00:00",
		"2021-06-31 00:00:00", "2021-06-25 24:00:00", "2021-06-25 23:60:00", "2021-06-25 23:59:60",
		"2021-06-2x 16:21:12", "2021/06/25 16:21:12", "+021-06-25 16:21:12",
	} {
		want, werr := time.Parse("2006-01-02 15:04:05", strings.Replace(s, "T", " ", 1))
		got, ok := parseDateTimeFast(s)
		if ok != (werr == nil) || (ok && !got.Equal(want)) {
			t.Errorf("parseDateTimeFast(%q) = %v, %v; time.Parse gives %v, %v", s, got, ok, want, werr)
		}
	}
}
