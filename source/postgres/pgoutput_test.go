package postgres

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pglogrepl"
)

// tupleBytes builds a pgoutput TupleData: nil is NULL, "\x00u" an
// unchanged TOASTed value, anything else a text value.
func tupleBytes(cols ...*string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(cols)))
	for _, c := range cols {
		switch {
		case c == nil:
			b = append(b, 'n')
		case *c == "\x00u":
			b = append(b, 'u')
		default:
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(*c)))
			b = append(b, *c...)
		}
	}
	return b
}

func str(s string) *string { return &s }

func rowMsg(op byte, rel uint32, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{op}, rel)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestRowMessageParse(t *testing.T) {
	tup := tupleBytes(str("1"), nil, str(""), str("\x00u"), str("a\tb"))
	key := tupleBytes(str("1"), nil, nil, nil, nil)
	want := []tupleCol{{colText, []byte("1")}, {kind: colNull}, {colText, []byte{}}, {kind: colUnchanged}, {colText, []byte("a\tb")}}
	wantKey := []tupleCol{{colText, []byte("1")}, {kind: colNull}, {kind: colNull}, {kind: colNull}, {kind: colNull}}
	for _, tt := range []struct {
		name      string
		msg       []byte
		oldKind   byte
		old, new_ []tupleCol
		err       string
	}{
		{name: "insert", msg: rowMsg('I', 7, []byte{'N'}, tup), new_: want},
		{name: "update", msg: rowMsg('U', 7, []byte{'N'}, tup), new_: want},
		{name: "update with key", msg: rowMsg('U', 7, []byte{'K'}, key, []byte{'N'}, tup), oldKind: 'K', old: wantKey, new_: want},
		{name: "update with old row", msg: rowMsg('U', 7, []byte{'O'}, tup, []byte{'N'}, tup), oldKind: 'O', old: want, new_: want},
		{name: "delete", msg: rowMsg('D', 7, []byte{'K'}, key), oldKind: 'K', old: wantKey},
		{name: "delete full", msg: rowMsg('D', 7, []byte{'O'}, tup), oldKind: 'O', old: want},
		{name: "insert without N", msg: rowMsg('I', 7, []byte{'K'}, tup), err: "want 'N'"},
		{name: "update without N", msg: rowMsg('U', 7, []byte{'K'}, key, []byte{'X'}, tup), err: "want 'K', 'O' or 'N'"},
		{name: "delete without old", msg: rowMsg('D', 7, []byte{'N'}, tup), err: "want 'K' or 'O'"},
		{name: "cut short", msg: rowMsg('I', 7, []byte{'N'}, tup[:len(tup)-1]), err: "cut short"},
		{name: "cut in the header", msg: []byte{'I', 0, 0}, err: "cut short"},
		{name: "negative length", msg: rowMsg('I', 7, []byte{'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff}), err: "cut short"},
		{name: "trailing bytes", msg: rowMsg('I', 7, []byte{'N'}, tup, []byte{0}), err: "past its end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m rowMessage
			err := m.parse(tt.msg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parse = %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if m.op != tt.msg[0] || m.rel != 7 || m.oldKind != tt.oldKind {
				t.Errorf("parse: op %q rel %d oldKind %q, want %q 7 %q", m.op, m.rel, m.oldKind, tt.msg[0], tt.oldKind)
			}
			opt := cmp.AllowUnexported(tupleCol{})
			if diff := cmp.Diff(tt.old, m.old, opt); diff != "" && (len(tt.old) > 0 || len(m.old) > 0) {
				t.Errorf("old tuple (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.new_, m.new, opt); diff != "" && (len(tt.new_) > 0 || len(m.new) > 0) {
				t.Errorf("new tuple (-want +got):\n%s", diff)
			}
			// pglogrepl reads the same message the same way.
			pm, err := pglogrepl.Parse(tt.msg)
			if err != nil {
				t.Fatalf("pglogrepl.Parse: %v", err)
			}
			var newT, oldT *pglogrepl.TupleData
			switch pm := pm.(type) {
			case *pglogrepl.InsertMessage:
				newT = pm.Tuple
			case *pglogrepl.UpdateMessage:
				newT, oldT = pm.NewTuple, pm.OldTuple
			case *pglogrepl.DeleteMessage:
				oldT = pm.OldTuple
			}
			same := func(what string, p *pglogrepl.TupleData, cols []tupleCol) {
				if p == nil {
					if len(cols) > 0 {
						t.Errorf("%s: pglogrepl has none, parse has %d columns", what, len(cols))
					}
					return
				}
				if len(p.Columns) != len(cols) {
					t.Fatalf("%s: pglogrepl has %d columns, parse %d", what, len(p.Columns), len(cols))
				}
				for i, c := range p.Columns {
					if c.DataType != cols[i].kind || string(c.Data) != string(cols[i].data) || (c.Data == nil) != (cols[i].data == nil) {
						t.Errorf("%s column %d: pglogrepl %q %q, parse %q %q", what, i, c.DataType, c.Data, cols[i].kind, cols[i].data)
					}
				}
			}
			same("new", newT, m.new)
			same("old", oldT, m.old)
		})
	}
}

// TestRowMessageReuse checks that a parse does not keep columns of the
// message before.
func TestRowMessageReuse(t *testing.T) {
	var m rowMessage
	if err := m.parse(rowMsg('U', 1, []byte{'O'}, tupleBytes(str("1"), str("2")), []byte{'N'}, tupleBytes(str("1"), str("3")))); err != nil {
		t.Fatal(err)
	}
	if err := m.parse(rowMsg('I', 2, []byte{'N'}, tupleBytes(str("9")))); err != nil {
		t.Fatal(err)
	}
	if m.op != 'I' || m.rel != 2 || m.oldKind != 0 || len(m.old) != 0 || len(m.new) != 1 || string(m.new[0].data) != "9" {
		t.Errorf("second parse: %+v", m)
	}
}
