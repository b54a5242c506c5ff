package cdm

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

func FuzzCSVRoundTrip(f *testing.F) {
	f.Add("", []byte{}, int64(0), 0.0, int64(0))
	f.Add("a\"b,\r\n\tc", []byte{0, '"', ','}, int64(-1), -0.5, int64(1624900475123456700))
	f.Add("\"\"\n\"", []byte("\n"), int64(1)<<62, 1e308, int64(-6213559680)*1e9)
	f.Add("\xff\xfe", []byte(nil), int64(-1)<<63, 5e-324, int64(1))
	f.Fuzz(func(t *testing.T, s string, b []byte, i int64, fl float64, nanos int64) {
		when := time.Unix(0, nanos).Truncate(100)
		kinds := []lakelink.Kind{lakelink.KindString, lakelink.KindInt64, lakelink.KindFloat64, lakelink.KindBytes, lakelink.KindDateTimeOffset, lakelink.KindTime, lakelink.KindString}
		vals := []lakelink.Value{s, i, fl, b, when, when, nil}

		// The raw string goes through AppendString whatever its bytes.
		rec := AppendString(nil, s)
		for k, v := range vals {
			rec = append(rec, ',')
			before := len(rec)
			var err error
			rec, err = AppendValue(rec, kinds[k], v)
			var ve *ValueError
			switch {
			case err == nil:
			case errors.As(err, &ve) && len(rec) == before:
				vals[k] = nil // written as NULL
			default:
				t.Fatalf("AppendValue(%s, %#v) = %q, %v", kinds[k], v, rec[before:], err)
			}
		}
		rec = append(rec, ',')
		idKinds := []lakelink.Kind{lakelink.KindInt64, lakelink.KindString}
		rec, idErr := AppendID(rec, idKinds, []lakelink.Value{i, s})
		rec = append(rec, '\n')

		// Three copies, the last without its newline, read in tiny pieces.
		input := bytes.Repeat(rec, 3)
		input = input[:len(input)-1]
		r := newReaderSize(iotest.HalfReader(bytes.NewReader(input)), 8)
		for n := 0; n < 3; n++ {
			got, err := r.Next()
			want := rec
			if n == 2 {
				want = rec[:len(rec)-1]
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("record %d = %q, %v; want %q", n, got, err, want)
			}
		}
		if _, err := r.Next(); err.Error() != "EOF" || r.Offset() != int64(len(input)) {
			t.Fatalf("after the last record: %v at offset %d", err, r.Offset())
		}

		fields := SplitFields(nil, rec)
		if len(fields) != 1+len(vals)+1 {
			t.Fatalf("SplitFields(%q) gave %d fields, want %d", rec, len(fields), 1+len(vals)+1)
		}
		if got, null := Field(fields[0]); got != s || null {
			t.Fatalf("Field(AppendString(%q)) = %q, %v", s, got, null)
		}
		for k, want := range vals {
			got, err := DecodeValue(kinds[k], fields[1+k])
			if kinds[k] == lakelink.KindTime && want != nil {
				// Only the clock survives.
				u := want.(time.Time).UTC()
				want = time.Date(0, 1, 1, u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), time.UTC)
			}
			if err != nil || !equalValues(got, want) {
				t.Fatalf("DecodeValue(%s, %q) = %#v, %v; want %#v", kinds[k], fields[1+k], got, err, want)
			}
		}
		if idErr == nil {
			text, null := Field(fields[len(fields)-1])
			var id []json.RawMessage
			if null || json.Unmarshal([]byte(text), &id) != nil || len(id) != 2 {
				t.Fatalf("composite Id %q is not a JSON array of 2", text)
			}
			var gotS string
			if string(id[0]) != strconv.FormatInt(i, 10) || json.Unmarshal(id[1], &gotS) != nil || gotS != s {
				t.Fatalf("composite Id %q, want [%d, %q]", text, i, s)
			}
		} else if utf8.ValidString(s) {
			t.Fatalf("AppendID(%d, %q): %v", i, s, idErr)
		}
	})
}

func FuzzTableFolder(f *testing.F) {
	for _, s := range []string{"orders", "Sales.Orders", "..", "a/b", `a\b`, " x", "a.b.c", "model.json", "OptionsetMetadata", "İstanbul", "\u212a", "x\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := TableFolder(name)
		if err != nil {
			if !strings.Contains(err.Error(), quoteShort(name)) {
				t.Fatalf("TableFolder(%q) error %q does not name the table", name, err)
			}
			return
		}
		first, _ := utf8.DecodeRuneInString(got)
		last, _ := utf8.DecodeLastRuneInString(got)
		switch {
		case got == "", !utf8.ValidString(got), utf8.RuneCountInString(got) > 256:
			t.Fatalf("TableFolder(%q) = %q: empty, invalid or too long", name, got)
		case strings.ContainsAny(got, `/\."`), strings.Contains(got, ".."):
			t.Fatalf("TableFolder(%q) = %q: has a forbidden character", name, got)
		case strings.IndexFunc(got, unicode.IsControl) >= 0:
			t.Fatalf("TableFolder(%q) = %q: has a control character", name, got)
		case unicode.IsSpace(first), unicode.IsSpace(last):
			t.Fatalf("TableFolder(%q) = %q: white space at an end", name, got)
		case strings.EqualFold(got, SystemFolder), strings.EqualFold(got, OptionsetFolder), strings.EqualFold(got, ModelPath):
			t.Fatalf("TableFolder(%q) = %q: a system name", name, got)
		}
		// The folder's files stay inside it.
		p := PartitionPath(got, "2021")
		if path.Clean(p) != p || !strings.HasPrefix(p, got+"/") || path.IsAbs(p) {
			t.Fatalf("PartitionPath(%q, 2021) = %q escapes the folder", got, p)
		}
	})
}

func FuzzPartitionPath(f *testing.F) {
	f.Add("2021", int64(1624900475))
	f.Add("2021_001", int64(0))
	f.Add("1", int64(1)<<40)
	f.Fuzz(func(t *testing.T, partition string, sec int64) {
		if partition == "" || strings.Contains(partition, "/") || sec < 0 {
			return
		}
		p := SnapshotPath("orders", partition, time.Unix(sec, 0))
		got, at, ok := ParseSnapshotPath("orders", p)
		if !ok || got != partition || at.Unix() != sec {
			t.Fatalf("ParseSnapshotPath(%q) = %q, %v, %v; want %q, %d", p, got, at.Unix(), ok, partition, sec)
		}
	})
}
