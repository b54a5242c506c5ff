package postgres

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lakelink/lakelink"
)

// decodeSlow is decode as it was before its fast paths: strconv and
// time.Parse only. TestDecodeFastPaths checks that the fast paths never
// change a result.
func decodeSlow(kind lakelink.Kind, text []byte) lakelink.Value {
	if text == nil {
		return nil
	}
	s := string(text)
	bad := func(reason string) lakelink.Value { return lakelink.BadValue{Raw: s, Reason: reason} }
	switch kind {
	case lakelink.KindInt64:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad("not an integer")
		}
		return v
	case lakelink.KindFloat64:
		// PostgreSQL prints NaN, Infinity and -Infinity, which ParseFloat
		// reads; with extra_float_digits=1 (sessionParams) it prints the
		// shortest text that reads back exactly.
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad("not a floating-point number")
		}
		return v
	case lakelink.KindDecimal:
		if !isPlainDecimal(s) {
			return bad("numeric " + s + " is not a finite decimal")
		}
		return s
	case lakelink.KindBool:
		switch s {
		case "t":
			return true
		case "f":
			return false
		}
		return bad("not a boolean")
	case lakelink.KindBytes:
		if !strings.HasPrefix(s, `\x`) {
			return bad("bytea not in hex format")
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return bad("bytea not in hex format")
		}
		return b
	case lakelink.KindDate:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return bad("date outside years 1 to 9999")
		}
		return t
	case lakelink.KindTime:
		t, err := time.Parse("15:04:05.999999999", s)
		if err != nil {
			return bad("time of day not representable") // 24:00:00
		}
		return t
	case lakelink.KindDateTime:
		t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
		if err != nil {
			return bad("timestamp outside years 1 to 9999")
		}
		return t
	case lakelink.KindDateTimeOffset:
		// The session's TimeZone is UTC, so the offset is +00; the other
		// layouts are for offsets of whole minutes or seconds.
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
		return bad("timestamp outside years 1 to 9999")
	}
	// KindString, KindGUID (PostgreSQL prints the canonical lower-case
	// form), KindJSON: the text itself.
	return s
}

// decodeInputs are texts of every kind's usual form and of the forms
// around it that the fast paths must leave to strconv and time.Parse.
func decodeInputs(r *rand.Rand) map[lakelink.Kind][]string {
	in := map[lakelink.Kind][]string{
		lakelink.KindInt64: {"0", "-0", "7", "-7", "+7", "007", "123456789012345678", "-123456789012345678",
			"1234567890123456789", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "", "-", "1a", " 1", "1_000", "0x10"},
		lakelink.KindFloat64: {"0", "-0", "1.5", "1e-300", "1e+308", "NaN", "Infinity", "-Infinity", "inf", "1e400", "", "x", "0.1"},
		lakelink.KindDecimal: {"0", "-0.5", "12.340", "NaN", "Infinity", "1e5", "", ".5", "5."},
		lakelink.KindBool:    {"t", "f", "true", "", "T"},
		lakelink.KindBytes:   {`\x`, `\x00ff`, `\xABcd`, `\x0`, `\xzz`, "", "abc"},
		lakelink.KindString:  {"", "a", "héllo", strings.Repeat("x", 10000)},
		lakelink.KindGUID:    {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		lakelink.KindJSON:    {`{"a": [1, 2]}`, "null"},
		lakelink.KindDate: {"2021-06-25", "0001-01-01", "9999-12-31", "2020-02-29", "2021-02-29", "1900-02-29", "2000-02-29",
			"2021-04-31", "2021-13-01", "2021-00-10", "2021-01-00", "0000-01-01", "10000-01-01", "0044-03-15 BC", "infinity", "-infinity",
			"2021-6-25", "2021/06/25", "2021-06-25 ", ""},
		lakelink.KindTime: {"00:00:00", "23:59:59.999999", "24:00:00", "12:00:00.5", "12:00:00.123456789", "12:00:00.1234567891",
			"12:00:00.", "12:00:60", "12:60:00", "1:00:00", "12:00", "12:00:00+00", ""},
		lakelink.KindDateTime: {"2021-06-25 16:21:12", "2021-06-25 16:21:12.123456", "2021-06-25 16:21:12.5", "0001-01-01 00:00:00",
			"9999-12-31 23:59:59.999999", "infinity", "-infinity", "10000-01-01 00:00:00", "2021-02-29 00:00:00", "2021-06-25T16:21:12",
			"2021-06-25 24:00:00", "2021-06-25 16:21:12.", "2021-06-25 16:21:12.1234567890", "2021-06-25 16:21:12 BC", "2021-06-25", ""},
		lakelink.KindDateTimeOffset: {"2021-06-25 16:21:12+00", "2021-06-25 16:21:12.123456+00", "2021-06-25 16:21:12+05:30",
			"1900-01-01 00:00:00+00:19:32", "2021-06-25 16:21:12-07", "0001-01-01 00:00:00+00", "infinity", "-infinity",
			"2021-06-25 16:21:12+0", "2021-06-25 16:21:12", "+00", "2021-02-30 00:00:00+00", "10000-01-01 00:00:00+00", ""},
	}
	// Random values in and around the usual forms.
	for i := 0; i < 2000; i++ {
		t := time.Unix(r.Int64N(400e9)-200e9, 0).UTC().Add(time.Duration(r.IntN(1e6)) * time.Microsecond)
		frac := t.Format(".000000")
		if r.IntN(3) == 0 {
			frac = strings.TrimRight(frac, "0")
			if frac == "." {
				frac = ""
			}
		}
		ts := t.Format("2006-01-02 15:04:05") + frac
		in[lakelink.KindDateTime] = append(in[lakelink.KindDateTime], ts)
		in[lakelink.KindDateTimeOffset] = append(in[lakelink.KindDateTimeOffset], ts+"+00")
		in[lakelink.KindDate] = append(in[lakelink.KindDate], t.Format("2006-01-02"),
			fmt.Sprintf("%04d-%02d-%02d", r.IntN(10001), r.IntN(14), r.IntN(33)))
		in[lakelink.KindTime] = append(in[lakelink.KindTime], t.Format("15:04:05")+frac,
			fmt.Sprintf("%02d:%02d:%02d", r.IntN(26), r.IntN(62), r.IntN(62)))
		in[lakelink.KindInt64] = append(in[lakelink.KindInt64], strconv.FormatInt(int64(r.Uint64()), 10), strconv.FormatInt(r.Int64N(1000)-500, 10))
		in[lakelink.KindFloat64] = append(in[lakelink.KindFloat64], strconv.FormatFloat(math.Float64frombits(r.Uint64()), 'g', -1, 64))
	}
	return in
}

func TestDecodeFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	opts := cmp.Options{cmpopts.EquateNaNs(), cmp.Comparer(func(a, b time.Time) bool { return a == b })}
	var a arena
	for kind, texts := range decodeInputs(r) {
		for _, text := range texts {
			want := decodeSlow(kind, []byte(text))
			for _, ar := range []*arena{nil, &a} {
				got := decodeText(kind, []byte(text), ar)
				if diff := cmp.Diff(want, got, opts); diff != "" {
					t.Errorf("decodeText(%v, %q) = %#v, want %#v (arena %v)", kind, text, got, want, ar != nil)
				}
			}
		}
	}
	if got := decodeText(lakelink.KindBytes, []byte(`\x00ff`), &a); hex.EncodeToString(got.([]byte)) != "00ff" {
		t.Errorf("bytea = %v", got)
	}
}
