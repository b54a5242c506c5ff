package cdm

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/lakelink/lakelink"
)

// ErrTornRecord marks a Reader error for input that ends inside a quoted
// field: a file cut off while it was being written.
var ErrTornRecord = errors.New("quote left open at end of input")

// Reader scans header-less records of the lake's CSV dialect (RFC 4180:
// quoted fields may hold commas, doubled quotes and raw CR and LF). Every
// record ends with "\n"; a last record without one is still returned.
//
// The dialect never puts a quote inside an unquoted field, so a newline ends
// a record exactly when the record so far holds an even number of quotes;
// the Reader relies on that to find record ends with two vectorised scans.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r     io.Reader
	buf   []byte
	start int   // the unread data is buf[start:end]
	end   int   //
	base  int64 // offset in the input of buf[0]
	err   error // sticky: the reader's error, or a torn record
}

// readerBufSize is the initial buffer size; it grows for longer records.
const readerBufSize = 64 << 10

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return newReaderSize(r, readerBufSize)
}

// newReaderSize returns a Reader whose buffer starts at size bytes (tests
// use tiny ones to exercise refills).
func newReaderSize(r io.Reader, size int) *Reader {
	return &Reader{r: r, buf: make([]byte, max(size, 1))}
}

// Reset makes the Reader read from r from its start, keeping its buffer.
func (r *Reader) Reset(rd io.Reader) {
	*r = Reader{r: rd, buf: r.buf}
}

// Next returns the next record's raw bytes, including its trailing "\n".
// The slice is valid until the next call. After the last record Next
// returns io.EOF. Input that ends inside a quoted field gives an error
// wrapping ErrTornRecord that names the byte offset of the record's start;
// a read error is returned as it is. Errors are sticky.
func (r *Reader) Next() ([]byte, error) {
	p := r.start // scanned up to here
	odd := false // an odd number of quotes in buf[start:p]
	for {
		for p < r.end {
			i := bytes.IndexByte(r.buf[p:r.end], '\n')
			if i < 0 {
				if bytes.Count(r.buf[p:r.end], quote)&1 == 1 {
					odd = !odd
				}
				p = r.end
				break
			}
			if bytes.Count(r.buf[p:p+i], quote)&1 == 1 {
				odd = !odd
			}
			p += i + 1
			if !odd {
				rec := r.buf[r.start:p]
				r.start = p
				return rec, nil
			}
		}
		if r.err != nil {
			if r.start == r.end || r.err != io.EOF {
				return nil, r.err
			}
			if odd {
				r.err = fmt.Errorf("cdm: record at byte offset %d: %w (torn file?)", r.base+int64(r.start), ErrTornRecord)
				return nil, r.err
			}
			rec := r.buf[r.start:r.end]
			r.start = r.end
			return rec, nil
		}
		// Make room: move the partial record to the front, or grow.
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:r.end])
			p -= r.start
			r.base += int64(r.start)
			r.start, r.end = 0, n
		}
		if r.end == len(r.buf) {
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
		for tries := 0; ; tries++ {
			n, err := r.r.Read(r.buf[r.end:])
			r.end += n
			if err != nil {
				r.err = err
				break
			}
			if n > 0 {
				break
			}
			if tries == 100 {
				r.err = io.ErrNoProgress
				break
			}
		}
	}
}

// Offset returns the number of input bytes consumed so far: the offset of
// the end of the last record Next returned.
func (r *Reader) Offset() int64 {
	return r.base + int64(r.start)
}

var quote = []byte{'"'}

// SplitFields splits a raw record, with or without its trailing "\n", into
// its raw fields (still quoted as written), appends them to dst and returns
// it. The record "\n" is one empty field. A quoted field that is not closed
// takes the rest of the record.
func SplitFields(dst [][]byte, rec []byte) [][]byte {
	if n := len(rec); n > 0 && rec[n-1] == '\n' {
		rec = rec[:n-1]
	}
	for {
		i := 0
		if len(rec) > 0 && rec[0] == '"' {
			// Find the closing quote: one that is not followed by another.
			i = 1
			for {
				j := bytes.IndexByte(rec[i:], '"')
				if j < 0 {
					i = len(rec)
					break
				}
				i += j + 1
				if i < len(rec) && rec[i] == '"' {
					i++
					continue
				}
				break
			}
		}
		k := bytes.IndexByte(rec[i:], ',')
		if k < 0 {
			return append(dst, rec)
		}
		dst = append(dst, rec[:i+k:i+k])
		rec = rec[i+k+1:]
	}
}

// Field decodes one raw field: null is true for an empty unquoted field;
// otherwise s is the field's text, without its quotes and with doubled
// quotes undone.
func Field(raw []byte) (s string, null bool) {
	if len(raw) == 0 {
		return "", true
	}
	if raw[0] != '"' {
		return string(raw), false
	}
	inner := unquoteEnds(raw)
	if bytes.IndexByte(inner, '"') < 0 {
		return string(inner), false
	}
	return string(undouble(make([]byte, 0, len(inner)), inner)), false
}

// AppendField is Field without allocation: it appends the field's text to
// dst.
func AppendField(dst []byte, raw []byte) (out []byte, null bool) {
	if len(raw) == 0 {
		return dst, true
	}
	if raw[0] != '"' {
		return append(dst, raw...), false
	}
	return undouble(dst, unquoteEnds(raw)), false
}

// unquoteEnds strips the quotes around a quoted raw field.
func unquoteEnds(raw []byte) []byte {
	inner := raw[1:]
	if n := len(inner); n > 0 && inner[n-1] == '"' {
		inner = inner[:n-1]
	}
	return inner
}

// undouble appends s to dst with every doubled quote written once.
func undouble(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '"')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i+1]...)
		s = s[i+1:]
		if len(s) > 0 && s[0] == '"' {
			s = s[1:]
		}
	}
}

// Layouts of the temporal kinds' text.
const (
	dateLayout     = "2006-01-02"
	timeLayout     = "15:04:05.0000000"
	dateTimeLayout = "2006-01-02T15:04:05.0000000"
	offsetLayout   = "2006-01-02T15:04:05.0000000-07:00"
)

// DecodeValue is the inverse of AppendValue for one raw field: nil for a
// NULL field, otherwise the Go type kind k names (see lakelink.Kind). Times
// are in UTC; a KindTime value is on January 1 of year 0 (as time.Parse
// gives it). It checks that the field is quoted exactly when the dialect
// quotes kind k, and that the text is what AppendValue writes.
func DecodeValue(k lakelink.Kind, raw []byte) (lakelink.Value, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	quoted := raw[0] == '"'
	s, _ := Field(raw)
	v, err := decodeText(k, quoted, s)
	if err != nil {
		return nil, fmt.Errorf("cdm: decode %s field %s: %w", k, quoteShort(string(raw)), err)
	}
	return v, nil
}

func decodeText(k lakelink.Kind, quoted bool, s string) (lakelink.Value, error) {
	switch k {
	case lakelink.KindString, lakelink.KindJSON, lakelink.KindBytes,
		lakelink.KindDate, lakelink.KindTime, lakelink.KindDateTime, lakelink.KindDateTimeOffset:
		if !quoted {
			return nil, errNotQuoted
		}
	default:
		if quoted {
			return nil, errQuoted
		}
	}
	switch k {
	case lakelink.KindString, lakelink.KindJSON:
		return s, nil
	case lakelink.KindInt64:
		return strconv.ParseInt(s, 10, 64)
	case lakelink.KindFloat64:
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	case lakelink.KindDecimal:
		if !validDecimal(s) {
			return nil, errors.New("not a plain decimal number")
		}
		return s, nil
	case lakelink.KindBool:
		switch s {
		case "True":
			return true, nil
		case "False":
			return false, nil
		}
		return nil, errors.New("not True or False")
	case lakelink.KindBytes:
		return base64.StdEncoding.DecodeString(s)
	case lakelink.KindGUID:
		b, ok := appendGUID(nil, s)
		if !ok || string(b) != s {
			return nil, errors.New("not a lower-case canonical UUID")
		}
		return s, nil
	case lakelink.KindDate:
		return time.Parse(dateLayout, s)
	case lakelink.KindTime:
		return time.Parse(timeLayout, s)
	case lakelink.KindDateTime:
		if len(s) == 0 || s[len(s)-1] != 'Z' {
			return nil, errors.New("no Z at the end")
		}
		return time.Parse(dateTimeLayout, s[:len(s)-1])
	case lakelink.KindDateTimeOffset:
		t, err := time.Parse(offsetLayout, s)
		return t.UTC(), err
	}
	return nil, errors.New("unknown kind")
}

// errNotQuoted and errQuoted say that a field's quoting does not match its
// kind.
var (
	errNotQuoted = errors.New("field of a quoted kind is not quoted")
	errQuoted    = errors.New("field of an unquoted kind is quoted")
)
