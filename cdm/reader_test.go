package cdm

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
)

// readAll reads every record of input with a Reader whose buffer starts at
// size bytes, fed through wrap, and the offsets after each.
func readAll(t testing.TB, input string, size int, wrap func(io.Reader) io.Reader) (recs []string, offsets []int64, err error) {
	t.Helper()
	r := newReaderSize(wrap(strings.NewReader(input)), size)
	for {
		rec, err := r.Next()
		if err != nil {
			return recs, offsets, err
		}
		recs = append(recs, string(rec))
		offsets = append(offsets, r.Offset())
	}
}

func TestReader(t *testing.T) {
	recs := []string{
		"1,\"multi\nline\r\nvalue\",x\n",
		"2,\"he said \"\"hi\"\"\n\"\"bye\"\"\",\n",
		"3,\"\",\"\"\n",
		"\n",
		",,\n",
		"4,\"a,b\",\"" + strings.Repeat("long ", 5000) + "\"\n",
		"5,\"\"\"\"\n",
		"6,\"end\"", // no final newline
	}
	input := strings.Join(recs, "")
	var wantOffsets []int64
	n := int64(0)
	for _, r := range recs {
		n += int64(len(r))
		wantOffsets = append(wantOffsets, n)
	}
	wraps := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, wrap := range wraps {
		for _, size := range []int{1, 7, 64, readerBufSize} {
			got, offsets, err := readAll(t, input, size, wrap)
			if err != io.EOF {
				t.Fatalf("%s, buffer %d: Next error %v, want io.EOF", name, size, err)
			}
			if diff := cmp.Diff(recs, got); diff != "" {
				t.Fatalf("%s, buffer %d: records differ (-want +got):\n%s", name, size, diff)
			}
			if diff := cmp.Diff(wantOffsets, offsets); diff != "" {
				t.Fatalf("%s, buffer %d: offsets differ (-want +got):\n%s", name, size, diff)
			}
		}
	}
}

func TestReaderEmpty(t *testing.T) {
	r := NewReader(strings.NewReader(""))
	if rec, err := r.Next(); err != io.EOF {
		t.Fatalf("Next on empty input = %q, %v; want io.EOF", rec, err)
	}
	if r.Offset() != 0 {
		t.Fatalf("Offset = %d, want 0", r.Offset())
	}
}

func TestReaderTorn(t *testing.T) {
	tests := []struct {
		input      string
		wantRecs   int
		wantOffset string
	}{
		{"1,\"abc\n2,x\n", 0, "byte offset 0:"},
		{"1,a\n2,\"multi\nline", 1, "byte offset 4:"},
		{"1,a\n2,\"x\"\"\n", 1, "byte offset 4:"},
	}
	for _, tt := range tests {
		recs, _, err := readAll(t, tt.input, 4, iotest.OneByteReader)
		if len(recs) != tt.wantRecs || !errors.Is(err, ErrTornRecord) || !strings.Contains(err.Error(), tt.wantOffset) {
			t.Errorf("read %q: %d records, error %v; want %d records, then ErrTornRecord at %q", tt.input, len(recs), err, tt.wantRecs, tt.wantOffset)
		}
	}
	// The error is sticky.
	r := NewReader(strings.NewReader("\"open"))
	_, err1 := r.Next()
	_, err2 := r.Next()
	if !errors.Is(err1, ErrTornRecord) || err2 != err1 {
		t.Errorf("Next twice on a torn file = %v, %v; want the same ErrTornRecord", err1, err2)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("1,a\n2,\"b"), iotest.ErrReader(boom)))
	rec, err := r.Next()
	if string(rec) != "1,a\n" || err != nil {
		t.Fatalf("first Next = %q, %v; want the complete record", rec, err)
	}
	if _, err := r.Next(); err != boom {
		t.Fatalf("second Next error = %v, want %v", err, boom)
	}
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("a\n"))
	r.Next()
	r.Reset(strings.NewReader("b\nc\n"))
	rec, err := r.Next()
	if string(rec) != "b\n" || err != nil || r.Offset() != 2 {
		t.Fatalf("Next after Reset = %q, %v (offset %d); want \"b\\n\" at offset 2", rec, err, r.Offset())
	}
}

func TestSplitFields(t *testing.T) {
	tests := []struct {
		rec  string
		want []string
	}{
		{"\n", []string{""}},
		{"", []string{""}},
		{"a", []string{"a"}},
		{",\n", []string{"", ""}},
		{"1,\"\",,\"x\"\n", []string{"1", `""`, "", `"x"`}},
		{"\"a,b\",\"c\"\"d,\"\"\",e\n", []string{`"a,b"`, `"c""d,"""`, "e"}},
		{"\"multi\nline\",2", []string{"\"multi\nline\"", "2"}},
		{"\"\"\"\"", []string{`""""`}},
		{"\"open,x", []string{`"open,x`}},
		{"True,-0,NaN,6b82fed7-c82c-eb11-a813-000d3a3a75c1\n", []string{"True", "-0", "NaN", "6b82fed7-c82c-eb11-a813-000d3a3a75c1"}},
	}
	for _, tt := range tests {
		dst := [][]byte{[]byte("kept")}
		got := SplitFields(dst, []byte(tt.rec))
		var gs []string
		for _, f := range got[1:] {
			gs = append(gs, string(f))
		}
		if string(got[0]) != "kept" || !cmp.Equal(gs, tt.want) {
			t.Errorf("SplitFields(%q) = %q, want %q", tt.rec, gs, tt.want)
		}
	}
}

func TestSplitFieldsNoAliasing(t *testing.T) {
	// Appending to a returned field must not overwrite the next one.
	rec := []byte("ab,cd\n")
	fields := SplitFields(nil, rec)
	_ = append(fields[0], 'X')
	if string(fields[1]) != "cd" {
		t.Fatalf("append to field 0 changed field 1 to %q", fields[1])
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		raw      string
		want     string
		wantNull bool
	}{
		{``, ``, true},
		{`""`, ``, false},
		{`"a"`, `a`, false},
		{`""""`, `"`, false},
		{`"a""b"""`, `a"b"`, false},
		{"\"x\ny\"", "x\ny", false},
		{`42`, `42`, false},
		{`-Infinity`, `-Infinity`, false},
	}
	for _, tt := range tests {
		s, null := Field([]byte(tt.raw))
		if s != tt.want || null != tt.wantNull {
			t.Errorf("Field(%q) = %q, %v; want %q, %v", tt.raw, s, null, tt.want, tt.wantNull)
		}
		b, null := AppendField([]byte("p"), []byte(tt.raw))
		if string(b) != "p"+tt.want || null != tt.wantNull {
			t.Errorf("AppendField(%q) = %q, %v; want %q, %v", tt.raw, b, null, "p"+tt.want, tt.wantNull)
		}
	}
}

// equalValues compares decoded values: times by instant, floats by bits
// (NaN equals NaN, -0 differs from 0).
func equalValues(a, b lakelink.Value) bool {
	switch a := a.(type) {
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case float64:
		b, ok := b.(float64)
		return ok && (math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b))
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	}
	return a == b
}

func TestDecodeValueRoundTrip(t *testing.T) {
	tests := []struct {
		kind lakelink.Kind
		v    lakelink.Value
	}{
		{lakelink.KindString, nil},
		{lakelink.KindString, ""},
		{lakelink.KindString, "a\"b,\r\n\tc 😀 שלום"},
		{lakelink.KindJSON, `{"a":"b"}`},
		{lakelink.KindInt64, int64(math.MinInt64)},
		{lakelink.KindInt64, int64(math.MaxInt64)},
		{lakelink.KindFloat64, math.Copysign(0, -1)},
		{lakelink.KindFloat64, 5e-324},
		{lakelink.KindFloat64, math.MaxFloat64},
		{lakelink.KindFloat64, math.NaN()},
		{lakelink.KindFloat64, math.Inf(1)},
		{lakelink.KindFloat64, math.Inf(-1)},
		{lakelink.KindDecimal, "-0.000100"},
		{lakelink.KindBool, true},
		{lakelink.KindBool, false},
		{lakelink.KindBytes, []byte{}},
		{lakelink.KindBytes, []byte{0, 0xfe, 0xff, '"', ','}},
		{lakelink.KindGUID, "6b82fed7-c82c-eb11-a813-000d3a3a75c1"},
		{lakelink.KindDate, time.Date(2021, 6, 25, 0, 0, 0, 0, time.UTC)},
		{lakelink.KindTime, time.Date(0, 1, 1, 23, 59, 59, 999999900, time.UTC)},
		{lakelink.KindDateTime, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{lakelink.KindDateTimeOffset, time.Date(9999, 12, 31, 23, 59, 59, 123456700, time.UTC)},
	}
	for _, tt := range tests {
		field, err := AppendValue(nil, tt.kind, tt.v)
		if err != nil {
			t.Fatalf("AppendValue(%s, %#v): %v", tt.kind, tt.v, err)
		}
		got, err := DecodeValue(tt.kind, field)
		if err != nil || !equalValues(got, tt.v) {
			t.Errorf("DecodeValue(%s, %q) = %#v, %v; want %#v", tt.kind, field, got, err, tt.v)
		}
		if tm, ok := got.(time.Time); ok && tm.Location() != time.UTC {
			t.Errorf("DecodeValue(%s, %q) location %v, want UTC", tt.kind, field, tm.Location())
		}
	}
}

func TestDecodeValueErrors(t *testing.T) {
	tests := []struct {
		kind lakelink.Kind
		raw  string
	}{
		{lakelink.KindString, `abc`},                                // not quoted
		{lakelink.KindInt64, `"1"`},                                 // quoted
		{lakelink.KindInt64, `1.5`},                                 // not an integer
		{lakelink.KindBool, `true`},                                 // not True
		{lakelink.KindDecimal, `1e5`},                               // exponent
		{lakelink.KindGUID, `ABC`},                                  // not a UUID
		{lakelink.KindGUID, `6B82FED7-C82C-EB11-A813-000D3A3A75C1`}, // not lower case
		{lakelink.KindBytes, `"!!"`},                                // not base64
		{lakelink.KindDate, `"2021-6-25"`},
		{lakelink.KindTime, `"16:21:12"`}, // 7 fraction digits
		{lakelink.KindDateTime, `"2021-06-25T16:21:12.0000000"`},
		{lakelink.KindDateTime, `"2021-06-25T16:21:12.0000000+00:00"`},
		{lakelink.KindDateTimeOffset, `"2021-06-25T16:21:12.0000000Z"`},
		{lakelink.Kind(99), `1`},
	}
	for _, tt := range tests {
		if got, err := DecodeValue(tt.kind, []byte(tt.raw)); err == nil {
			t.Errorf("DecodeValue(%s, %q) = %#v, want an error", tt.kind, tt.raw, got)
		}
	}
}
