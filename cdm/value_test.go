package cdm

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

func TestAppendValue(t *testing.T) {
	big := strings.Repeat("x\"y,\n", 1<<20/5)
	plus2 := time.FixedZone("+02", 2*3600)
	tests := []struct {
		name string
		kind lakelink.Kind
		v    lakelink.Value
		want string
	}{
		{"null string", lakelink.KindString, nil, ``},
		{"null int", lakelink.KindInt64, nil, ``},
		{"empty string", lakelink.KindString, "", `""`},
		{"plain string", lakelink.KindString, "abc", `"abc"`},
		{"quotes", lakelink.KindString, `a"b""c`, `"a""b""""c"`},
		{"comma", lakelink.KindString, "a,b", `"a,b"`},
		{"CR LF tab", lakelink.KindString, "a\r\nb\tc\n", "\"a\r\nb\tc\n\""},
		{"spaces kept", lakelink.KindString, "  x  ", `"  x  "`},
		{"emoji", lakelink.KindString, "👩‍🚀 ok", `"👩‍🚀 ok"`},
		{"RTL", lakelink.KindString, "שלום עולם, مرحبا", `"שלום עולם, مرحبا"`},
		{"1 MiB", lakelink.KindString, big, `"` + strings.ReplaceAll(big, `"`, `""`) + `"`},
		{"int zero", lakelink.KindInt64, int64(0), `0`},
		{"int negative", lakelink.KindInt64, int64(-42), `-42`},
		{"int64 min", lakelink.KindInt64, int64(math.MinInt64), `-9223372036854775808`},
		{"int64 max", lakelink.KindInt64, int64(math.MaxInt64), `9223372036854775807`},
		{"double", lakelink.KindFloat64, 0.1, `0.1`},
		{"double integral", lakelink.KindFloat64, 3.0, `3`},
		{"double -0", lakelink.KindFloat64, math.Copysign(0, -1), `-0`},
		{"double 1e308", lakelink.KindFloat64, 1e308, `1e+308`},
		{"double max", lakelink.KindFloat64, math.MaxFloat64, `1.7976931348623157e+308`},
		{"double smallest", lakelink.KindFloat64, 5e-324, `5e-324`},
		{"double NaN", lakelink.KindFloat64, math.NaN(), `NaN`},
		{"double +Inf", lakelink.KindFloat64, math.Inf(1), `Infinity`},
		{"double -Inf", lakelink.KindFloat64, math.Inf(-1), `-Infinity`},
		{"decimal", lakelink.KindDecimal, "-12.50", `-12.50`},
		{"decimal integer", lakelink.KindDecimal, "0", `0`},
		{"decimal plus", lakelink.KindDecimal, "+1.0", `+1.0`},
		{"decimal long", lakelink.KindDecimal, "123456789012345678901234567890.123456789012345678", `123456789012345678901234567890.123456789012345678`},
		{"true", lakelink.KindBool, true, `True`},
		{"false", lakelink.KindBool, false, `False`},
		{"bytes", lakelink.KindBytes, []byte{0, 1, 2, 0xff}, `"AAEC/w=="`},
		{"bytes empty", lakelink.KindBytes, []byte{}, `""`},
		{"bytes nil slice is empty, not NULL", lakelink.KindBytes, []byte(nil), `""`},
		{"guid", lakelink.KindGUID, "6b82fed7-c82c-eb11-a813-000d3a3a75c1", `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"guid upper", lakelink.KindGUID, "6B82FED7-C82C-EB11-A813-000D3A3A75C1", `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"guid braces", lakelink.KindGUID, "{6B82FED7-C82C-EB11-A813-000D3A3A75C1}", `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"guid urn", lakelink.KindGUID, "urn:uuid:6b82fed7-c82c-eb11-a813-000d3a3a75c1", `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"guid hex", lakelink.KindGUID, "6B82FED7C82CEB11A813000D3A3A75C1", `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"dateTimeOffset", lakelink.KindDateTimeOffset, time.Date(2018, 5, 25, 18, 21, 9, 123456000, plus2), `"2018-05-25T16:21:09.1234560+00:00"`},
		{"dateTimeOffset 100ns", lakelink.KindDateTimeOffset, time.Date(2018, 5, 25, 16, 21, 9, 999999900, time.UTC), `"2018-05-25T16:21:09.9999999+00:00"`},
		{"dateTime", lakelink.KindDateTime, time.Date(2021, 6, 25, 16, 21, 12, 0, time.UTC), `"2021-06-25T16:21:12.0000000Z"`},
		{"dateTime min", lakelink.KindDateTime, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), `"0001-01-01T00:00:00.0000000Z"`},
		{"dateTime max", lakelink.KindDateTime, time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC), `"9999-12-31T23:59:59.9999999Z"`},
		{"date", lakelink.KindDate, time.Date(2021, 6, 25, 0, 0, 0, 0, time.UTC), `"2021-06-25"`},
		{"time", lakelink.KindTime, time.Date(0, 1, 1, 16, 21, 12, 123456000, time.UTC), `"16:21:12.1234560"`},
		{"time midnight", lakelink.KindTime, time.Time{}, `"00:00:00.0000000"`},
		{"json", lakelink.KindJSON, `{"a":[1,"b"]}`, `"{""a"":[1,""b""]}"`},
		{"json empty", lakelink.KindJSON, ``, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix,")
			got, err := AppendValue(dst, tt.kind, tt.v)
			if err != nil {
				t.Fatalf("AppendValue(%s, %.40q) error: %v", tt.kind, tt.v, err)
			}
			if s := string(got); s != "prefix,"+tt.want {
				t.Fatalf("AppendValue(%s, %.40q) = %.80q, want %.80q", tt.kind, tt.v, s[len("prefix,"):], tt.want)
			}
		})
	}
}

func TestAppendValueErrors(t *testing.T) {
	tests := []struct {
		name       string
		kind       lakelink.Kind
		v          lakelink.Value
		wantValue  string
		wantReason string // a substring
	}{
		{"bad value", lakelink.KindInt64, lakelink.BadValue{Raw: "abc", Reason: "text in an INTEGER column"}, `"abc"`, "text in an INTEGER column"},
		{"bad value pointer", lakelink.KindString, &lakelink.BadValue{Raw: []byte{1}, Reason: "blob in a TEXT column"}, `"\x01"`, "blob in a TEXT column"},
		{"string for int64", lakelink.KindInt64, "42", `"42"`, "Go type string in a int64 column"},
		{"int for int64", lakelink.KindInt64, 42, `"42"`, "Go type int in a int64 column"},
		{"float32 for double", lakelink.KindFloat64, float32(1.5), `"1.5"`, "Go type float32"},
		{"int64 for string", lakelink.KindString, int64(1), `"1"`, "Go type int64 in a string column"},
		{"string for bytes", lakelink.KindBytes, "AA==", `"AA=="`, "Go type string"},
		{"string for time", lakelink.KindDateTime, "2021-01-01", `"2021-01-01"`, "Go type string"},
		{"float for decimal", lakelink.KindDecimal, 1.5, `"1.5"`, "Go type float64"},
		{"decimal exponent", lakelink.KindDecimal, "1e5", `"1e5"`, "not a plain decimal"},
		{"decimal NaN", lakelink.KindDecimal, "NaN", `"NaN"`, "not a plain decimal"},
		{"decimal empty", lakelink.KindDecimal, "", `""`, "not a plain decimal"},
		{"decimal trailing point", lakelink.KindDecimal, "1.", `"1."`, "not a plain decimal"},
		{"decimal leading point", lakelink.KindDecimal, ".5", `".5"`, "not a plain decimal"},
		{"decimal space", lakelink.KindDecimal, " 1", `" 1"`, "not a plain decimal"},
		{"decimal sign only", lakelink.KindDecimal, "-", `"-"`, "not a plain decimal"},
		{"decimal comma", lakelink.KindDecimal, "1,5", `"1,5"`, "not a plain decimal"},
		{"guid short", lakelink.KindGUID, "6b82fed7-c82c-eb11-a813-000d3a3a75c", `"6b82fed7-c82c-eb11-a813-000d3a3a75c"`, "not a UUID"},
		{"guid not hex", lakelink.KindGUID, "6b82fed7-c82c-eb11-a813-000d3a3a75cg", `"6b82fed7-c82c-eb11-a813-000d3a3a75cg"`, "not a UUID"},
		{"guid dash misplaced", lakelink.KindGUID, "6b82fed7c-82c-eb11-a813-000d3a3a75c1", `"6b82fed7c-82c-eb11-a813-000d3a3a75c1"`, "not a UUID"},
		{"guid empty", lakelink.KindGUID, "", `""`, "not a UUID"},
		{"invalid UTF-8 string", lakelink.KindString, "a\xffb", `"a\xffb"`, "invalid UTF-8"},
		{"invalid UTF-8 JSON", lakelink.KindJSON, "\"\xc3\"", `"\"\xc3\""`, "invalid UTF-8"},
		{"year 0", lakelink.KindDateTime, time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), `"0000-12-31T00:00:00Z"`, "year 0 outside 0001..9999"},
		{"year 10000", lakelink.KindDate, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"10000-01-01T00:00:00Z"`, "year 10000"},
		{"year 10000 after UTC", lakelink.KindDateTimeOffset, time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("-2", -7200)), `"9999-12-31T23:00:00-02:00"`, "year 10000"},
		{"nanoseconds", lakelink.KindDateTimeOffset, time.Date(2021, 1, 1, 0, 0, 0, 1, time.UTC), `"2021-01-01T00:00:00.000000001Z"`, "finer than 100 ns"},
		{"nanoseconds time", lakelink.KindTime, time.Date(0, 1, 1, 0, 0, 0, 150, time.UTC), `"0000-01-01T00:00:00.00000015Z"`, "finer than 100 ns"},
		{"unknown kind", lakelink.Kind(99), "x", `"x"`, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix,")
			got, err := AppendValue(dst, tt.kind, tt.v)
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("AppendValue(%s, %#v) = %q, %v; want a *ValueError", tt.kind, tt.v, got, err)
			}
			if string(got) != "prefix," {
				t.Errorf("AppendValue(%s, %#v) changed dst to %q on error", tt.kind, tt.v, got)
			}
			if ve.Value != tt.wantValue || !strings.Contains(ve.Reason, tt.wantReason) {
				t.Errorf("AppendValue(%s, %#v) error = {Value: %s, Reason: %q}, want {Value: %s, Reason: ~%q}", tt.kind, tt.v, ve.Value, ve.Reason, tt.wantValue, tt.wantReason)
			}
			if !strings.Contains(err.Error(), ve.Value) || !strings.Contains(err.Error(), ve.Reason) {
				t.Errorf("Error() = %q does not show value and reason", err)
			}
		})
	}
}

func TestValueErrorShortens(t *testing.T) {
	long := strings.Repeat("é", 600) + "\xff" // 1201 bytes, invalid at the end
	_, err := AppendValue(nil, lakelink.KindString, long)
	var ve *ValueError
	if !errors.As(err, &ve) {
		t.Fatalf("AppendValue(long invalid) error = %v, want a *ValueError", err)
	}
	if !strings.HasSuffix(ve.Value, "…(1201 bytes)") || len(ve.Value) > 130 {
		t.Fatalf("ValueError.Value = %q (%d bytes), want about 100 bytes ending in …(1201 bytes)", ve.Value, len(ve.Value))
	}
	if !strings.HasPrefix(ve.Value, `"éé`) || strings.Contains(ve.Value, `\x`) {
		t.Fatalf("ValueError.Value = %q, want the prefix cut at a rune boundary", ve.Value)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{`"`, `""""`},
		{`""`, `""""""`},
		{"a\nb", "\"a\nb\""},
		{"x,y", `"x,y"`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatSinkTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2021, 6, 28, 16, 34, 35, 0, time.UTC), "6/28/2021 4:34:35 PM"},
		{time.Date(2021, 6, 28, 0, 0, 0, 0, time.UTC), "6/28/2021 12:00:00 AM"},
		{time.Date(2021, 6, 28, 12, 0, 0, 0, time.UTC), "6/28/2021 12:00:00 PM"},
		{time.Date(2021, 12, 1, 9, 5, 7, 999999999, time.UTC), "12/1/2021 9:05:07 AM"},
		{time.Date(2021, 1, 1, 1, 0, 0, 0, time.FixedZone("+2", 7200)), "12/31/2020 11:00:00 PM"},
	}
	for _, tt := range tests {
		got := FormatSinkTime(tt.t)
		if got != tt.want {
			t.Errorf("FormatSinkTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
		if field := string(AppendSinkTime(nil, tt.t)); field != `"`+tt.want+`"` {
			t.Errorf("AppendSinkTime(%v) = %q, want %q", tt.t, field, `"`+tt.want+`"`)
		}
		back, err := ParseSinkTime(got)
		if want := tt.t.UTC().Truncate(time.Second); err != nil || !back.Equal(want) || back.Location() != time.UTC {
			t.Errorf("ParseSinkTime(%q) = %v, %v; want %v", got, back, err, want)
		}
	}
	for _, bad := range []string{"", "2021-06-28T16:34:35Z", "6/28/2021 16:34:35", "13/1/2021 1:00:00 AM"} {
		if got, err := ParseSinkTime(bad); err == nil {
			t.Errorf("ParseSinkTime(%q) = %v, want an error", bad, got)
		}
	}
}

func TestAppendID(t *testing.T) {
	tests := []struct {
		name  string
		kinds []lakelink.Kind
		key   []lakelink.Value
		want  string
	}{
		{"int64", []lakelink.Kind{lakelink.KindInt64}, []lakelink.Value{int64(42)}, `42`},
		{"guid", []lakelink.Kind{lakelink.KindGUID}, []lakelink.Value{"6B82FED7-C82C-EB11-A813-000D3A3A75C1"}, `6b82fed7-c82c-eb11-a813-000d3a3a75c1`},
		{"string", []lakelink.Kind{lakelink.KindString}, []lakelink.Value{`a"b`}, `"a""b"`},
		{"int and string", []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}, []lakelink.Value{int64(1), `a"b`}, `"[1,""a\""b""]"`},
		{"null in composite", []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}, []lakelink.Value{nil, "x"}, `"[null,""x""]"`},
		{"decimal normalised", []lakelink.Kind{lakelink.KindDecimal, lakelink.KindDecimal, lakelink.KindDecimal}, []lakelink.Value{"+007.50", "-00", "0.1"}, `"[7.50,-0,0.1]"`},
		{"bool and double", []lakelink.Kind{lakelink.KindBool, lakelink.KindFloat64, lakelink.KindFloat64}, []lakelink.Value{true, math.NaN(), 1e21}, `"[true,""NaN"",1e+21]"`},
		{"date and bytes", []lakelink.Kind{lakelink.KindDate, lakelink.KindBytes}, []lakelink.Value{time.Date(2021, 6, 25, 0, 0, 0, 0, time.UTC), []byte("hi")}, `"[""2021-06-25"",""aGk=""]"`},
		{"control characters", []lakelink.Kind{lakelink.KindString, lakelink.KindString}, []lakelink.Value{"a\nb\\c\x01", "é"}, `"[""a\nb\\c\u0001"",""é""]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendID(nil, tt.kinds, tt.key)
			if err != nil || string(got) != tt.want {
				t.Fatalf("AppendID(%v, %#v) = %s, %v; want %s", tt.kinds, tt.key, got, err, tt.want)
			}
		})
	}
}

// A composite Id read back with Field is a JSON array of the key's values.
func TestAppendIDIsJSON(t *testing.T) {
	kinds := []lakelink.Kind{lakelink.KindString, lakelink.KindInt64, lakelink.KindGUID, lakelink.KindDateTimeOffset, lakelink.KindFloat64, lakelink.KindJSON}
	key := []lakelink.Value{"q\"uo,te\r\n\t😀", int64(math.MinInt64), "6b82fed7-c82c-eb11-a813-000d3a3a75c1",
		time.Date(2018, 5, 25, 16, 21, 9, 123456700, time.UTC), -0.5, `{"k": 1}`}
	rec, err := AppendID(nil, kinds, key)
	if err != nil {
		t.Fatal(err)
	}
	fields := SplitFields(nil, rec)
	if len(fields) != 1 {
		t.Fatalf("SplitFields(%q) gave %d fields, want 1", rec, len(fields))
	}
	text, _ := Field(fields[0])
	var got []any
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	if err := d.Decode(&got); err != nil {
		t.Fatalf("Id %q is not a JSON array: %v", text, err)
	}
	want := []any{key[0], json.Number("-9223372036854775808"), key[2], "2018-05-25T16:21:09.1234567+00:00", json.Number("-0.5"), `{"k": 1}`}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Id element %d = %#v, want %#v", i, got[i], want[i])
		}
	}
}

func TestAppendIDErrors(t *testing.T) {
	tests := []struct {
		name  string
		kinds []lakelink.Kind
		key   []lakelink.Value
	}{
		{"no key", nil, nil},
		{"length mismatch", []lakelink.Kind{lakelink.KindInt64}, []lakelink.Value{int64(1), int64(2)}},
		{"bad single", []lakelink.Kind{lakelink.KindInt64}, []lakelink.Value{lakelink.BadValue{Raw: "x", Reason: "r"}}},
		{"bad in composite", []lakelink.Kind{lakelink.KindInt64, lakelink.KindInt64}, []lakelink.Value{int64(1), "2"}},
		{"bad decimal in composite", []lakelink.Kind{lakelink.KindInt64, lakelink.KindDecimal}, []lakelink.Value{int64(1), "1e3"}},
		{"bad guid in composite", []lakelink.Kind{lakelink.KindInt64, lakelink.KindGUID}, []lakelink.Value{int64(1), "nope"}},
		{"invalid UTF-8 in composite", []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}, []lakelink.Value{int64(1), "\xff"}},
	}
	for _, tt := range tests {
		got, err := AppendID([]byte("p"), tt.kinds, tt.key)
		if err == nil || string(got) != "p" {
			t.Errorf("%s: AppendID = %q, %v; want dst unchanged and an error", tt.name, got, err)
		}
	}
}
