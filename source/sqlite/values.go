package sqlite

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// convert turns a value as SQLite stored it (int64, float64, string, []byte
// or nil: lakelink reads with expressions that keep the driver from turning
// text into time.Time) into the Go type of the column's Kind. A value that
// does not fit exactly becomes a lakelink.BadValue; nothing is guessed.
func convert(c *lakelink.Column, raw any) lakelink.Value {
	if raw == nil {
		return nil
	}
	if b, ok := raw.([]byte); ok && b == nil {
		raw = []byte{} // the driver returns an empty blob as a nil slice
	}
	bad := func() lakelink.Value {
		return lakelink.BadValue{Raw: raw, Reason: fmt.Sprintf("%s in a column declared %s", storageClass(raw), declared(c.Type))}
	}
	switch c.Kind {
	case lakelink.KindInt64:
		if v, ok := raw.(int64); ok {
			return v
		}
	case lakelink.KindFloat64:
		switch v := raw.(type) {
		case float64:
			return v
		case int64:
			if f, ok := exactFloat(v); ok {
				return f
			}
			return lakelink.BadValue{Raw: raw, Reason: fmt.Sprintf("integer %d in a column declared %s has no exact double", v, declared(c.Type))}
		}
	case lakelink.KindString:
		switch v := raw.(type) {
		case string:
			if !utf8.ValidString(v) {
				return lakelink.BadValue{Raw: raw, Reason: "text is not valid UTF-8"}
			}
			return v
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	case lakelink.KindBytes:
		if v, ok := raw.([]byte); ok {
			return v // the driver hands out a copy
		}
	case lakelink.KindBool:
		if v, ok := raw.(int64); ok && (v == 0 || v == 1) {
			return v == 1
		}
	case lakelink.KindDecimal:
		switch v := raw.(type) {
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				break
			}
			if v == 0 {
				return "0" // also -0
			}
			return strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			if d, ok := plainDecimal(v); ok {
				return d
			}
		}
	case lakelink.KindDate:
		if v, ok := raw.(string); ok && len(v) == len("2006-01-02") {
			if t, err := time.Parse("2006-01-02", v); err == nil {
				return t
			}
		}
	case lakelink.KindDateTime:
		switch v := raw.(type) {
		case int64:
			return time.Unix(v, 0).UTC()
		case string:
			if t, ok := parseDateTime(v); ok {
				return t
			}
		}
	case lakelink.KindTime:
		if v, ok := raw.(string); ok && len(v) >= len("15:04:05") && v[2] == ':' {
			if t, err := time.Parse("15:04:05.999999999", v); err == nil {
				return t
			}
		}
	case lakelink.KindJSON:
		switch v := raw.(type) {
		case string:
			if utf8.ValidString(v) && json.Valid([]byte(v)) {
				return v
			}
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				return strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
	}
	return bad()
}

// exactFloat converts i to float64 when that loses nothing.
func exactFloat(i int64) (float64, bool) {
	f := float64(i)
	if f >= 0x1p63 || f < -0x1p63 || int64(f) != i {
		return 0, false
	}
	return f, true
}

// plainDecimal accepts [+-]digits[.digits] (also "1." and ".5") and returns
// it in the form the Kind documents: no plus sign, a digit before the point,
// no trailing point.
func plainDecimal(s string) (string, bool) {
	sign, body := "", s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		if body[0] == '-' {
			sign = "-"
		}
		body = body[1:]
	}
	intPart, frac, hasPoint := strings.Cut(body, ".")
	if intPart == "" && frac == "" || !digits(intPart) || !digits(frac) {
		return "", false
	}
	if intPart == "" {
		intPart = "0"
	}
	if hasPoint && frac != "" {
		return sign + intPart + "." + frac, true
	}
	return sign + intPart, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// dateTimeLayouts are the text forms of a DATETIME or TIMESTAMP value:
// SQLite's own "YYYY-MM-DD HH:MM:SS[.fff]" and ISO 8601 with a T, each
// optionally with Z or a ±HH:MM offset. A fraction is optional in each.
var dateTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
}

// parseDateTime parses a datetime text and returns it in UTC; text without
// an offset is taken as UTC.
func parseDateTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02 15:04:05") || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' {
		return time.Time{}, false
	}
	if len(s) == 19 {
		if t, ok := parseDateTimeFast(s); ok {
			return t, true
		}
	}
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseDateTimeFast parses the commonest form, "YYYY-MM-DD HH:MM:SS" (or
// with a T), without time.Parse, which costs a tenth of an initial copy's
// time on such columns. It accepts exactly what time.Parse accepts there.
func parseDateTimeFast(s string) (time.Time, bool) {
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	if s[4] != '-' || s[7] != '-' || s[16] != ':' {
		return time.Time{}, false
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	se, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // 2021-02-30 and the like
	}
	return t, true
}

// storageClass names a stored value's SQLite storage class.
func storageClass(raw any) string {
	switch raw.(type) {
	case int64:
		return "integer"
	case float64:
		return "real"
	case string:
		return "text"
	case []byte:
		return "blob"
	}
	return fmt.Sprintf("%T", raw)
}

func declared(t string) string {
	if t == "" {
		return "with no type"
	}
	return t
}
