package lakecheck

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the lake type of a SQLite column, picked by its declared type as
// LAKE-FORMAT.md says (only the declared types these tests use).
type Kind int

// The kinds the tests use.
const (
	KString   Kind = iota // TEXT, or no declared type
	KInt                  // INTEGER
	KDouble               // REAL
	KBlob                 // BLOB
	KBool                 // BOOLEAN
	KDateTime             // DATETIME
	KDecimal              // DECIMAL / NUMERIC
)

// KindOf maps a SQLite declared type to its kind.
func KindOf(decl string) Kind {
	u := strings.ToUpper(strings.TrimSpace(decl))
	switch {
	case u == "":
		return KString
	case u == "BOOLEAN" || u == "BOOL":
		return KBool
	case strings.Contains(u, "INT"):
		return KInt
	case u == "DATETIME" || u == "TIMESTAMP":
		return KDateTime
	case strings.HasPrefix(u, "DECIMAL") || strings.HasPrefix(u, "NUMERIC"):
		return KDecimal
	case strings.Contains(u, "CHAR") || strings.Contains(u, "TEXT") || strings.Contains(u, "CLOB"):
		return KString
	case strings.Contains(u, "BLOB"):
		return KBlob
	case strings.Contains(u, "REAL") || strings.Contains(u, "FLOA") || strings.Contains(u, "DOUB"):
		return KDouble
	}
	panic("lakecheck: declared type " + decl + " not handled")
}

// DataType is the CDM dataType LAKE-FORMAT.md gives the kind.
func (k Kind) DataType() string {
	return [...]string{KString: "string", KInt: "int64", KDouble: "double", KBlob: "string", KBool: "boolean", KDateTime: "dateTime", KDecimal: "decimal"}[k]
}

// Value is a SQLite value as stored: nil, int64, float64, string or
// []byte (an empty blob is []byte{}, never nil).
type Value = any

// Encode returns the CSV field LAKE-FORMAT.md prescribes for a value of a
// column of kind k, or an error when the value does not fit the kind (bad
// input, which the lake must refuse).
func Encode(k Kind, v Value) (Field, error) {
	if v == nil {
		return Null, nil
	}
	bad := func() (Field, error) { return Null, fmt.Errorf("%T %v does not fit a %s column", v, v, k.DataType()) }
	switch k {
	case KString:
		switch x := v.(type) {
		case string:
			return Field{Text: x, Quoted: true}, nil
		case int64:
			return Field{Text: strconv.FormatInt(x, 10), Quoted: true}, nil
		case float64:
			return Field{Text: strconv.FormatFloat(x, 'g', -1, 64), Quoted: true}, nil
		}
	case KInt:
		if x, ok := v.(int64); ok {
			return Field{Text: strconv.FormatInt(x, 10)}, nil
		}
	case KDouble:
		switch x := v.(type) {
		case float64:
			return Field{Text: Double(x)}, nil
		case int64:
			return Field{Text: Double(float64(x))}, nil
		}
	case KBlob:
		if x, ok := v.([]byte); ok {
			return Field{Text: base64.StdEncoding.EncodeToString(x), Quoted: true}, nil
		}
	case KBool:
		if x, ok := v.(int64); ok && (x == 0 || x == 1) {
			if x == 1 {
				return Field{Text: "True"}, nil
			}
			return Field{Text: "False"}, nil
		}
	case KDateTime:
		if x, ok := v.(string); ok {
			t, err := ParseSQLiteTime(x)
			if err != nil {
				return Null, err
			}
			return Field{Text: DateTime(t), Quoted: true}, nil
		}
	case KDecimal:
		switch x := v.(type) {
		case int64:
			return Field{Text: strconv.FormatInt(x, 10)}, nil
		case float64:
			if x == 0 {
				return Field{Text: "0"}, nil
			}
			if !math.IsInf(x, 0) && !math.IsNaN(x) {
				return Field{Text: strconv.FormatFloat(x, 'f', -1, 64)}, nil
			}
		}
	}
	return bad()
}

// Double is the text of a double: the shortest form that round-trips
// (strconv 'g', -1: "-0", "1e+308", "5e-324"), or NaN, Infinity,
// -Infinity.
func Double(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// ParseSQLiteTime parses the datetime texts the tests store:
// "YYYY-MM-DD HH:MM:SS[.fff]" and "YYYY-MM-DDTHH:MM:SS[.fff]Z", as UTC.
func ParseSQLiteTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("datetime text %q not understood", s)
}

// DateTime is the lake text of a timestamp without time zone:
// "2021-06-25T16:21:12.0000000Z".
func DateTime(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%07dZ", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/100)
}

// CanonicalKey returns a comparable form of a composite key given as JSON
// array text (the lake's Id), so that two JSON spellings of the same values
// compare equal: numbers keep their digits, strings their value.
func CanonicalKey(jsonArray string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(jsonArray))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return "", fmt.Errorf("composite Id %q is not a JSON array: %v", jsonArray, err)
	}
	if dec.More() {
		return "", fmt.Errorf("composite Id %q: text after the JSON array", jsonArray)
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('|')
		}
		switch x := v.(type) {
		case json.Number:
			b.WriteString("n:" + x.String())
		case string:
			b.WriteString("s:" + strconv.Quote(x))
		case nil:
			b.WriteString("null")
		default:
			return "", fmt.Errorf("composite Id %q: element %d is %T", jsonArray, i, v)
		}
	}
	return b.String(), nil
}

// KeyOf returns the canonical key of source key values: for one column the
// text of its lake field, for several the form CanonicalKey gives.
func KeyOf(kinds []Kind, vals []Value) (string, error) {
	if len(vals) == 1 {
		f, err := Encode(kinds[0], vals[0])
		if err != nil {
			return "", err
		}
		return f.Text, nil
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('|')
		}
		switch x := v.(type) {
		case int64:
			b.WriteString("n:" + strconv.FormatInt(x, 10))
		case string:
			b.WriteString("s:" + strconv.Quote(x))
		case nil:
			b.WriteString("null")
		default:
			return "", fmt.Errorf("composite key value %T not handled", v)
		}
	}
	return b.String(), nil
}

// IDKey returns the canonical key of a lake Id field: the field's text for a
// single-column key, CanonicalKey of its JSON array for a composite one.
func IDKey(id Field, composite bool) (string, error) {
	if !composite {
		return id.Text, nil
	}
	if !id.Quoted {
		return "", fmt.Errorf("composite Id %s is not a quoted field", id)
	}
	return CanonicalKey(id.Text)
}
