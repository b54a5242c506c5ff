package lakecheck

import (
	"math"
	"reflect"
	"testing"
)

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]Field
	}{
		{"1,,\"\"\n", [][]Field{{{Text: "1"}, Null, {Quoted: true}}}},
		{"\"a,b\",\"x\"\"y\"\n\"l1\r\nl2\",\n", [][]Field{{{Text: "a,b", Quoted: true}, {Text: `x"y`, Quoted: true}}, {{Text: "l1\r\nl2", Quoted: true}, Null}}},
		{"", nil},
	} {
		got, err := ParseCSV([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCSV(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1,2", "\"a\"x\n", "a\"b\n", "\"open\n", "a\rb\n", "1,"} {
		if got, err := ParseCSV([]byte(bad)); err == nil {
			t.Errorf("ParseCSV(%q) = %v, want an error", bad, got)
		}
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		v    Value
		want Field
	}{
		{KInt, int64(math.MinInt64), Field{Text: "-9223372036854775808"}},
		{KDouble, math.Copysign(0, -1), Field{Text: "-0"}},
		{KDouble, 1e308, Field{Text: "1e+308"}},
		{KDouble, 5e-324, Field{Text: "5e-324"}},
		{KDouble, math.Inf(-1), Field{Text: "-Infinity"}},
		{KString, "", Field{Quoted: true}},
		{KBlob, []byte{0xff, 0}, Field{Text: "/wA=", Quoted: true}},
		{KBool, int64(1), Field{Text: "True"}},
		{KDateTime, "2021-06-25 16:21:12", Field{Text: "2021-06-25T16:21:12.0000000Z", Quoted: true}},
		{KDateTime, "2021-06-25 16:21:12.123", Field{Text: "2021-06-25T16:21:12.1230000Z", Quoted: true}},
		{KDecimal, 12.5, Field{Text: "12.5"}},
		{KDecimal, 1e20, Field{Text: "100000000000000000000"}},
	} {
		got, err := Encode(tc.k, tc.v)
		if err != nil || got != tc.want {
			t.Errorf("Encode(%v, %#v) = %v, %v, want %v", tc.k, tc.v, got, err, tc.want)
		}
	}
	if _, err := Encode(KInt, "abc"); err == nil {
		t.Errorf("Encode(KInt, \"abc\") gave no error")
	}
}
