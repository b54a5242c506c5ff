package postgres

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lakelink/lakelink"
)

// moneyOID is the OID of type money.
const moneyOID = 790

// col is a column with what decoding its values needs beyond its Kind.
type col struct {
	lakelink.Column
	money bool // money: $1,234.56 (lc_monetary C) read as a decimal
	elem  *col // an array's element column: the value becomes a JSON array
	// fields are a composite type's fields: the value becomes a JSON
	// object. Set by addFields.
	fields []col
}

// column describes a column from its name and its type as PostgreSQL gives
// it: the type's OID and modifier (as in pg_attribute and in pgoutput's
// Relation message), format_type's spelling, an enum's labels and, for an
// array, its element type's OID (else 0). The catalog (for a snapshot) and
// the stream's Relation messages both go through it, so a column reads the
// same either way.
func column(name string, oid uint32, typmod int32, typeName string, options []string, elemOID uint32) col {
	c := col{Column: lakelink.Column{Name: name, Kind: lakelink.KindString, Type: typeName, MaxLength: -1, Precision: -1, Scale: -1, Options: options}}
	if elemOID != 0 {
		// Arrays are JSON, as the lake format says; the elements keep the
		// column's modifier (varchar(5)[]).
		e := column("", elemOID, typmod, "", nil, 0)
		c.Kind, c.elem = lakelink.KindJSON, &e
		return c
	}
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		c.Kind = lakelink.KindInt64
	case pgtype.Float4OID, pgtype.Float8OID:
		c.Kind = lakelink.KindFloat64
	case pgtype.NumericOID:
		c.Kind = lakelink.KindDecimal
		if typmod >= 4 {
			m := typmod - 4
			c.Precision = int(m>>16) & 0xffff
			// The scale is an 11-bit signed field: PostgreSQL 15 allows
			// -1000..1000 (numeric(5,-2) rounds to hundreds).
			c.Scale = int((m&0x7ff)^0x400) - 0x400
		}
	case moneyOID:
		c.Kind, c.Scale, c.money = lakelink.KindDecimal, 2, true
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID:
		if typmod >= 4 {
			c.MaxLength = int(typmod - 4)
		}
	case pgtype.BoolOID:
		c.Kind = lakelink.KindBool
	case pgtype.ByteaOID:
		c.Kind = lakelink.KindBytes
	case pgtype.UUIDOID:
		c.Kind = lakelink.KindGUID
	case pgtype.TimestamptzOID:
		c.Kind = lakelink.KindDateTimeOffset
	case pgtype.TimestampOID:
		c.Kind = lakelink.KindDateTime
	case pgtype.DateOID:
		c.Kind = lakelink.KindDate
	case pgtype.TimeOID:
		c.Kind = lakelink.KindTime
	case pgtype.JSONOID, pgtype.JSONBOID:
		c.Kind = lakelink.KindJSON
	}
	return c
}

// decode turns a value of the column in PostgreSQL's text format into the
// Go value its Kind names; see decodeText. The copy and the stream both
// decode with it, into a (which may be nil; see arena).
func (c *col) decode(text []byte, a *arena) lakelink.Value {
	switch {
	case text == nil:
		return nil
	case c.elem != nil:
		return arrayJSON(c.elem, string(text))
	case c.fields != nil:
		return recordJSON(c.fields, string(text))
	case c.money:
		s := strings.ReplaceAll(strings.Replace(string(text), "$", "", 1), ",", "")
		if !isPlainDecimal(s) {
			return lakelink.BadValue{Raw: string(text), Reason: "money not in the form $1,234.56"}
		}
		return s
	}
	return decodeText(c.Kind, text, a)
}

// arrayJSON turns an array's text ({1,2}, {{"a b",NULL}}, [0:1]={1,2}) into
// JSON text: numbers and booleans as JSON's, json elements as they are,
// NULL as null, anything else as a string of the element's value.
func arrayJSON(elem *col, s string) lakelink.Value {
	bad := lakelink.BadValue{Raw: s, Reason: "array text not understood"}
	if i := strings.Index(s, "="); i >= 0 && strings.HasPrefix(s, "[") {
		s = s[i+1:] // dimension decoration of a lower bound other than 1
	}
	var b strings.Builder
	var badElem *lakelink.BadValue
	i := 0
	var value func() bool
	value = func() bool {
		if i >= len(s) {
			return false
		}
		if s[i] == '{' {
			i++
			b.WriteByte('[')
			for first := true; ; first = false {
				if i < len(s) && s[i] == '}' && first {
					i++
					b.WriteByte(']')
					return true
				}
				if !first {
					b.WriteByte(',')
				}
				if !value() || i >= len(s) {
					return false
				}
				switch s[i] {
				case ',':
					i++
				case '}':
					i++
					b.WriteByte(']')
					return true
				default:
					return false
				}
			}
		}
		var text []byte
		quoted := s[i] == '"'
		if quoted {
			text = []byte{} // "" is the empty string, not NULL
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				text = append(text, s[i])
				i++
			}
			if i >= len(s) {
				return false
			}
			i++
		} else {
			j := i
			for i < len(s) && s[i] != ',' && s[i] != '}' {
				i++
			}
			text = []byte(strings.TrimSpace(s[j:i]))
			if strings.EqualFold(string(text), "NULL") {
				b.WriteString("null")
				return true
			}
		}
		out, bv := jsonOf(elem, text)
		if bv != nil {
			badElem = bv
			return false
		}
		b.WriteString(out)
		return true
	}
	if !value() || i != len(s) {
		if badElem != nil {
			return lakelink.BadValue{Raw: s, Reason: "an element: " + badElem.Reason}
		}
		return bad
	}
	return b.String()
}

// decode turns a value in PostgreSQL's text format into the Go value its
// column's Kind names. The copy (a text-format query) and the stream
// (pgoutput's text tuples) both decode with it, under the same session
// settings (sessionParams), so a value reads the same either way. A text the
// Kind can't hold exactly (numeric NaN, a timestamp at infinity, a year
// past 9999) becomes a lakelink.BadValue.
func decode(kind lakelink.Kind, text []byte) lakelink.Value {
	return decodeText(kind, text, nil)
}

// decodeText is decode with the values held by a (nil: each its own
// allocation). The usual forms of integers and times are read by hand;
// anything else goes to strconv and time.Parse, which decide, so the fast
// paths never change a result (TestDecodeFastPaths).
func decodeText(kind lakelink.Kind, text []byte, a *arena) lakelink.Value {
	if text == nil {
		return nil
	}
	// tmp is the text for a parser that keeps no reference to it.
	tmp := unsafe.String(unsafe.SliceData(text), len(text))
	bad := func(reason string) lakelink.Value { return lakelink.BadValue{Raw: string(text), Reason: reason} }
	switch kind {
	case lakelink.KindInt64:
		if v, ok := parseInt(text); ok {
			return a.int64(v)
		}
		v, err := strconv.ParseInt(tmp, 10, 64)
		if err != nil {
			return bad("not an integer")
		}
		return a.int64(v)
	case lakelink.KindFloat64:
		// PostgreSQL prints NaN, Infinity and -Infinity, which ParseFloat
		// reads; with extra_float_digits=1 (sessionParams) it prints the
		// shortest text that reads back exactly.
		v, err := strconv.ParseFloat(tmp, 64)
		if err != nil {
			return bad("not a floating-point number")
		}
		return a.float64(v)
	case lakelink.KindDecimal:
		if !isPlainDecimal(tmp) {
			return bad("numeric " + string(text) + " is not a finite decimal")
		}
		return a.text(text)
	case lakelink.KindBool:
		switch tmp {
		case "t":
			return true
		case "f":
			return false
		}
		return bad("not a boolean")
	case lakelink.KindBytes:
		if !strings.HasPrefix(tmp, `\x`) {
			return bad("bytea not in hex format")
		}
		b := make([]byte, hex.DecodedLen(len(text)-2))
		if _, err := hex.Decode(b, text[2:]); err != nil {
			return bad("bytea not in hex format")
		}
		return b
	case lakelink.KindDate:
		if t, ok := parseDate(text); ok {
			return a.time(t)
		}
		t, err := time.Parse("2006-01-02", tmp)
		if err != nil {
			return bad("date outside years 1 to 9999")
		}
		return t
	case lakelink.KindTime:
		if t, ok := parseClock(text, 0, 1, 1); ok {
			return a.time(t)
		}
		t, err := time.Parse("15:04:05.999999999", tmp)
		if err != nil {
			return bad("time of day not representable") // 24:00:00
		}
		return t
	case lakelink.KindDateTime:
		if t, ok := parseTimestamp(text); ok {
			return a.time(t)
		}
		t, err := time.Parse("2006-01-02 15:04:05.999999999", tmp)
		if err != nil {
			return bad("timestamp outside years 1 to 9999")
		}
		return t
	case lakelink.KindDateTimeOffset:
		// The session's TimeZone is UTC, so the offset is +00; the other
		// layouts are for offsets of whole minutes or seconds.
		if n := len(text) - 3; n > 0 && tmp[n:] == "+00" {
			if t, ok := parseTimestamp(text[:n]); ok {
				return a.time(t)
			}
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
			if t, err := time.Parse(layout, tmp); err == nil {
				return t.UTC()
			}
		}
		return bad("timestamp outside years 1 to 9999")
	}
	// KindString, KindGUID (PostgreSQL prints the canonical lower-case
	// form), KindJSON: the text itself.
	return a.text(text)
}

// parseInt reads an optional minus sign and 1 to 18 digits, which can't
// overflow; ok is false for anything else.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// digits reads b, all decimal digits, as a number; -1 when it is not.
func digits(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// parseDate reads YYYY-MM-DD of a real day in years 1 to 9999; ok is false
// for anything else (time.Parse then decides).
func parseDate(b []byte) (time.Time, bool) {
	y, m, d, ok := parseYMD(b)
	if !ok || len(b) != 10 {
		return time.Time{}, false
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), true
}

// parseYMD reads the YYYY-MM-DD at the start of b.
func parseYMD(b []byte) (y int, m time.Month, d int, ok bool) {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	y, mm, d := digits(b[:4]), digits(b[5:7]), digits(b[8:10])
	if y < 1 || mm < 1 || mm > 12 || d < 1 || d > daysIn(time.Month(mm), y) {
		return 0, 0, 0, false
	}
	return y, time.Month(mm), d, true
}

// parseTimestamp reads YYYY-MM-DD HH:MM:SS with an optional fraction of 1
// to 9 digits, as parseDate and parseClock do.
func parseTimestamp(b []byte) (time.Time, bool) {
	y, m, d, ok := parseYMD(b)
	if !ok || len(b) < 19 || b[10] != ' ' {
		return time.Time{}, false
	}
	return parseClock(b[11:], y, m, d)
}

// parseClock reads HH:MM:SS with an optional fraction of 1 to 9 digits, a
// time of day before 24:00:00, as a time on the given day in UTC; ok is
// false for anything else.
func parseClock(b []byte, y int, m time.Month, d int) (time.Time, bool) {
	if len(b) < 8 || b[2] != ':' || b[5] != ':' {
		return time.Time{}, false
	}
	h, mi, s := digits(b[:2]), digits(b[3:5]), digits(b[6:8])
	if h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
		return time.Time{}, false
	}
	ns := 0
	if frac := b[8:]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		if ns = digits(frac[1:]); ns < 0 {
			return time.Time{}, false
		}
		for i := len(frac); i <= 9; i++ {
			ns *= 10
		}
	}
	return time.Date(y, m, d, h, mi, s, ns, time.UTC), true
}

// daysIn is the number of days of month m of year y.
func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// jsonOf turns the text of an array element or a composite field into
// JSON: numbers and booleans as JSON's, json, arrays and composites as
// the JSON they are, anything else as a string of the value.
func jsonOf(c *col, text []byte) (string, *lakelink.BadValue) {
	v := c.decode(text, nil)
	var out []byte
	switch v := v.(type) {
	case lakelink.BadValue:
		return "", &v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out, _ = json.Marshal(string(text))
		} else {
			out = []byte(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case string:
		if c.Kind == lakelink.KindDecimal || c.Kind == lakelink.KindJSON {
			return v, nil
		}
		out, _ = json.Marshal(v)
	case time.Time:
		out, _ = json.Marshal(string(text))
	default: // int64, bool, []byte (base64)
		out, _ = json.Marshal(v)
	}
	return string(out), nil
}

// recordJSON turns a composite value's text ((1,"a b",) with an empty
// field for NULL) into a JSON object keyed by the fields' names.
func recordJSON(fields []col, s string) lakelink.Value {
	bad := lakelink.BadValue{Raw: s, Reason: "composite text not understood"}
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return bad
	}
	var b strings.Builder
	b.WriteByte('{')
	i := 1
	for f := range fields {
		if f > 0 {
			if i >= len(s) || s[i] != ',' {
				return bad
			}
			i++
			b.WriteByte(',')
		}
		name, _ := json.Marshal(fields[f].Name)
		b.Write(name)
		b.WriteByte(':')
		var text []byte
		null := true
		for i < len(s)-1 && s[i] != ',' {
			null = false
			if s[i] != '"' {
				text = append(text, s[i])
				i++
				continue
			}
			// A quoted part: "" is a quote, \ the next byte as is.
			for i++; i < len(s)-1; i++ {
				if s[i] == '\\' && i+1 < len(s)-1 {
					i++
				} else if s[i] == '"' {
					if s[i+1] != '"' {
						break
					}
					i++
				}
				text = append(text, s[i])
			}
			if i >= len(s)-1 {
				return bad
			}
			i++ // the closing quote
		}
		if null {
			b.WriteString("null")
			continue
		}
		out, bv := jsonOf(&fields[f], text)
		if bv != nil {
			return lakelink.BadValue{Raw: s, Reason: "field " + fields[f].Name + ": " + bv.Reason}
		}
		b.WriteString(out)
	}
	if i != len(s)-1 {
		return bad
	}
	b.WriteByte('}')
	return b.String()
}

// isPlainDecimal reports whether s is an optional minus sign, digits and
// an optional point with digits: what PostgreSQL prints for a finite
// numeric. NaN, Infinity and -Infinity are not.
func isPlainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	digits, point := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}
