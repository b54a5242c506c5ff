package cdm

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// ValueError says that a value can't be written in the lake's CSV dialect
// without loss. The engine turns it into a lakelink.BadValueError that also
// names the link, table, column and key.
type ValueError struct {
	Value  string // the value, quoted and shortened to about 100 bytes for display
	Reason string // why it can't be written, e.g. "invalid UTF-8"
}

// Error returns the value and the reason.
func (e *ValueError) Error() string {
	return "cdm: value " + e.Value + " can't be written exactly: " + e.Reason
}

// maxShown is how many bytes of a value an error shows.
const maxShown = 100

// quoteShort quotes s for display, cut to maxShown bytes at a rune boundary
// with its full length appended when it is longer.
func quoteShort(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// showValue renders any value for an error message.
func showValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return quoteShort(v)
	case []byte:
		return quoteShort(string(v))
	case time.Time:
		return quoteShort(v.Format(time.RFC3339Nano))
	case lakelink.BadValue:
		return showValue(v.Raw)
	case *lakelink.BadValue:
		if v == nil {
			return "NULL"
		}
		return showValue(v.Raw)
	default:
		return quoteShort(fmt.Sprint(v))
	}
}

// badValue builds the error for a value whose Go type is not the one kind k
// names. A lakelink.BadValue carries its own reason.
func badValue(k lakelink.Kind, v lakelink.Value) *ValueError {
	switch b := v.(type) {
	case lakelink.BadValue:
		return &ValueError{Value: showValue(b.Raw), Reason: b.Reason}
	case *lakelink.BadValue:
		if b != nil {
			return &ValueError{Value: showValue(b.Raw), Reason: b.Reason}
		}
	}
	if int(k) >= len(dataTypes) {
		return &ValueError{Value: showValue(v), Reason: "unknown kind " + k.String()}
	}
	return &ValueError{Value: showValue(v), Reason: fmt.Sprintf("Go type %T in a %s column", v, k)}
}

// AppendValue appends the CSV field for v, a value of a column of kind k, to
// dst, quoted or not as LAKE-FORMAT.md ("Rows (CSV)", "Values by type")
// says:
//
//   - nil (NULL): nothing, an empty unquoted field; an empty string is `""`;
//   - KindString, KindJSON: the text, quoted, inner quotes doubled, CR, LF
//     and tabs as they are;
//   - KindInt64: decimal; KindFloat64: the shortest form that round-trips
//     (strconv 'g', -1, so "-0" and "1e+308"), or NaN, Infinity, -Infinity;
//   - KindDecimal: the text as given (plain digits, never an exponent);
//   - KindBool: True or False; KindGUID: lower-case canonical, unquoted;
//   - KindBytes: standard base64 with padding, quoted;
//   - KindDateTimeOffset "2018-05-25T16:21:09.1234560+00:00" (in UTC),
//     KindDateTime "2021-06-25T16:21:12.0000000Z", KindDate "2021-06-25",
//     KindTime "16:21:12.1234560", all quoted.
//
// A value that can't be written exactly leaves dst unchanged and gives a
// *ValueError: a lakelink.BadValue (with its reason), a Go type other than
// the one the kind names, a decimal that is not [+-]digits[.digits], a GUID
// that does not parse as a UUID, a string or JSON text that is not valid
// UTF-8, a time whose year is outside 0001..9999 or that has a fraction
// finer than 100 ns (7 digits).
func AppendValue(dst []byte, k lakelink.Kind, v lakelink.Value) ([]byte, error) {
	if v == nil {
		return dst, nil
	}
	switch k {
	case lakelink.KindString, lakelink.KindJSON:
		s, ok := v.(string)
		if !ok {
			return dst, badValue(k, v)
		}
		if !utf8.ValidString(s) {
			return dst, &ValueError{Value: quoteShort(s), Reason: "invalid UTF-8"}
		}
		return AppendString(dst, s), nil
	case lakelink.KindBytes, lakelink.KindDate, lakelink.KindTime, lakelink.KindDateTime, lakelink.KindDateTimeOffset:
		// Their text never holds a quote, so it needs no doubling.
		n := len(dst)
		dst, err := appendText(append(dst, '"'), k, v)
		if err != nil {
			return dst[:n], err
		}
		return append(dst, '"'), nil
	default:
		return appendText(dst, k, v)
	}
}

// appendText appends the unquoted text of a non-string value. On error dst
// is returned unchanged.
func appendText(dst []byte, k lakelink.Kind, v lakelink.Value) ([]byte, error) {
	switch k {
	case lakelink.KindInt64:
		if i, ok := v.(int64); ok {
			return strconv.AppendInt(dst, i, 10), nil
		}
	case lakelink.KindFloat64:
		if f, ok := v.(float64); ok {
			return appendFloat(dst, f), nil
		}
	case lakelink.KindDecimal:
		if s, ok := v.(string); ok {
			if !validDecimal(s) {
				return dst, &ValueError{Value: quoteShort(s), Reason: "not a plain decimal number (sign, digits, optional point and digits)"}
			}
			return append(dst, s...), nil
		}
	case lakelink.KindBool:
		if b, ok := v.(bool); ok {
			if b {
				return append(dst, "True"...), nil
			}
			return append(dst, "False"...), nil
		}
	case lakelink.KindBytes:
		if b, ok := v.([]byte); ok {
			return base64.StdEncoding.AppendEncode(dst, b), nil
		}
	case lakelink.KindGUID:
		if s, ok := v.(string); ok {
			out, ok := appendGUID(dst, s)
			if !ok {
				return dst, &ValueError{Value: quoteShort(s), Reason: "not a UUID"}
			}
			return out, nil
		}
	case lakelink.KindDate, lakelink.KindTime, lakelink.KindDateTime, lakelink.KindDateTimeOffset:
		if t, ok := v.(time.Time); ok {
			return appendTime(dst, k, t)
		}
	}
	return dst, badValue(k, v)
}

// appendFloat appends f in its shortest round-trip form.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// validDecimal reports whether s is [+-]digits[.digits].
func validDecimal(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits := func() int {
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		s = s[i:]
		return i
	}
	if digits() == 0 {
		return false
	}
	if s == "" {
		return true
	}
	if s[0] != '.' {
		return false
	}
	s = s[1:]
	return digits() > 0 && s == ""
}

// appendGUID appends the lower-case canonical form of the UUID s, which may
// be canonical in any case, 32 hex digits, {canonical} or urn:uuid:canonical.
// It reports false, with dst unchanged, when s is none of those.
func appendGUID(dst []byte, s string) ([]byte, bool) {
	switch len(s) {
	case 36, 32:
	case 38:
		if s[0] != '{' || s[37] != '}' {
			return dst, false
		}
		s = s[1:37]
	case 45:
		if !strings.EqualFold(s[:9], "urn:uuid:") {
			return dst, false
		}
		s = s[9:]
	default:
		return dst, false
	}
	n := len(dst)
	dashed := len(s) == 36
	for i := 0; i < len(s); i++ {
		c := s[i]
		if dashed && (i == 8 || i == 13 || i == 18 || i == 23) {
			if c != '-' {
				return dst[:n], false
			}
			dst = append(dst, '-')
			continue
		}
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return dst[:n], false
		}
		dst = append(dst, c)
		if !dashed && (i == 7 || i == 11 || i == 15 || i == 19) {
			dst = append(dst, '-')
		}
	}
	return dst, true
}

// appendTime appends the unquoted text of a temporal value of kind k.
func appendTime(dst []byte, k lakelink.Kind, t time.Time) ([]byte, error) {
	u := t.UTC()
	var y, d int
	var m time.Month
	if k != lakelink.KindTime {
		if y, m, d = u.Date(); y < 1 || y > 9999 {
			return dst, &ValueError{Value: showValue(t), Reason: "year " + strconv.Itoa(y) + " outside 0001..9999"}
		}
	}
	ns := u.Nanosecond()
	if k != lakelink.KindDate && ns%100 != 0 {
		return dst, &ValueError{Value: showValue(t), Reason: "fraction of a second finer than 100 ns (7 digits)"}
	}
	// The text is put together in b and appended at once.
	var b [34]byte
	n := 0
	if k != lakelink.KindTime {
		putDigits(b[0:4], y)
		b[4] = '-'
		putDigits(b[5:7], int(m))
		b[7] = '-'
		putDigits(b[8:10], d)
		if k == lakelink.KindDate {
			return append(dst, b[:10]...), nil
		}
		b[10] = 'T'
		n = 11
	}
	h, mi, sec := u.Clock()
	putDigits(b[n:n+2], h)
	b[n+2] = ':'
	putDigits(b[n+3:n+5], mi)
	b[n+5] = ':'
	putDigits(b[n+6:n+8], sec)
	b[n+8] = '.'
	putDigits(b[n+9:n+16], ns/100)
	n += 16
	switch k {
	case lakelink.KindDateTime:
		b[n] = 'Z'
		n++
	case lakelink.KindDateTimeOffset:
		n += copy(b[n:], "+00:00")
	}
	return append(dst, b[:n]...), nil
}

// appendDigits appends the non-negative n in exactly width decimal digits.
func appendDigits(dst []byte, n, width int) []byte {
	var b [9]byte
	putDigits(b[:width], n)
	return append(dst, b[:width]...)
}

// putDigits writes the non-negative n into b in exactly len(b) decimal
// digits, two at a time.
func putDigits(b []byte, n int) {
	i := len(b)
	for ; i >= 2; i -= 2 {
		q := n / 100
		p := (n - q*100) * 2
		b[i-2], b[i-1] = digitPairs[p], digitPairs[p+1]
		n = q
	}
	if i == 1 {
		b[0] = byte('0' + n%10)
	}
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// AppendString appends s as a quoted field: inner quotes doubled, CR, LF
// and tabs written as they are. It does not check that s is valid UTF-8
// (AppendValue does).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// sinkTimeLayout is .NET's "M/d/yyyy h:mm:ss tt" in Go's notation.
const sinkTimeLayout = "1/2/2006 3:04:05 PM"

// FormatSinkTime formats t in UTC as "M/d/yyyy h:mm:ss tt", for example
// "6/28/2021 4:34:35 PM" (12-hour clock, midnight is 12 AM, noon 12 PM),
// the text of SinkCreatedOn, SinkModifiedOn and
// Athena:InitialSyncDataCompletedTime. Fractions of a second are dropped.
func FormatSinkTime(t time.Time) string {
	return t.UTC().Format(sinkTimeLayout)
}

// AppendSinkTime appends the CSV field of a SinkCreatedOn or SinkModifiedOn
// value: FormatSinkTime's text, quoted (it is a date/time value).
func AppendSinkTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, sinkTimeLayout)
	return append(dst, '"')
}

// ParseSinkTime parses FormatSinkTime's text into a UTC time (second
// precision).
func ParseSinkTime(s string) (time.Time, error) {
	t, err := time.Parse(sinkTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cdm: parse sink time %q: want M/d/yyyy h:mm:ss AM|PM", s)
	}
	return t, nil
}

// AppendID appends the Id field of a row whose key columns have the given
// kinds and values. A single-column key is written as AppendValue writes it.
// A composite key is the JSON array of its values, written as a quoted
// string field: int64 and decimal values as JSON numbers, strings, GUIDs and
// JSON texts as JSON strings, bytes as base64 strings, bools as true/false,
// doubles as numbers (NaN and infinities as the strings "NaN", "Infinity",
// "-Infinity"), times as strings in their CSV text, NULL as null. Errors are
// AppendValue's; on error dst is returned unchanged.
func AppendID(dst []byte, kinds []lakelink.Kind, key []lakelink.Value) ([]byte, error) {
	if len(kinds) != len(key) || len(key) == 0 {
		return dst, fmt.Errorf("cdm: key of %d values for %d key columns", len(key), len(kinds))
	}
	if len(key) == 1 {
		return AppendValue(dst, kinds[0], key[0])
	}
	n := len(dst)
	dst = append(dst, `"[`...)
	for i, v := range key {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		dst, err = appendJSONValue(dst, kinds[i], v)
		if err != nil {
			return dst[:n], err
		}
	}
	return append(dst, `]"`...), nil
}

// appendJSONValue appends v as a JSON value inside a quoted CSV field, so
// that every JSON quote is written doubled.
func appendJSONValue(dst []byte, k lakelink.Kind, v lakelink.Value) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	n := len(dst)
	switch k {
	case lakelink.KindString, lakelink.KindJSON:
		s, ok := v.(string)
		if !ok {
			return dst, badValue(k, v)
		}
		if !utf8.ValidString(s) {
			return dst, &ValueError{Value: quoteShort(s), Reason: "invalid UTF-8"}
		}
		return appendJSONString(dst, s), nil
	case lakelink.KindInt64:
		return appendText(dst, k, v)
	case lakelink.KindBool:
		b, ok := v.(bool)
		if !ok {
			return dst, badValue(k, v)
		}
		return strconv.AppendBool(dst, b), nil
	case lakelink.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return dst, badValue(k, v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			dst = append(dst, `""`...)
			return append(appendFloat(dst, f), `""`...), nil
		}
		return appendFloat(dst, f), nil
	case lakelink.KindDecimal:
		s, ok := v.(string)
		if !ok {
			return dst, badValue(k, v)
		}
		if !validDecimal(s) {
			return dst, &ValueError{Value: quoteShort(s), Reason: "not a plain decimal number (sign, digits, optional point and digits)"}
		}
		// A JSON number has no '+' and no leading zeros.
		if s[0] == '+' {
			s = s[1:]
		} else if s[0] == '-' {
			dst = append(dst, '-')
			s = s[1:]
		}
		for len(s) > 1 && s[0] == '0' && s[1] != '.' {
			s = s[1:]
		}
		return append(dst, s...), nil
	default:
		// GUID, bytes and times: their text needs no escaping.
		dst, err := appendText(append(dst, `""`...), k, v)
		if err != nil {
			return dst[:n], err
		}
		return append(dst, `""`...), nil
	}
}

// appendJSONString appends s as a JSON string with every quote doubled for
// the enclosing CSV field. s is valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, `""`...)
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, `\""`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, `""`...)
}
