package postgres

import (
	"encoding/binary"
	"fmt"
)

// Row changes are most of a stream, so their pgoutput messages (Insert,
// Update, Delete) are parsed here, into slices that point into the message
// and are reused from one message to the next, rather than by pglogrepl,
// which allocates every column of every tuple. The other messages go to
// pglogrepl.

// tupleCol is one column of a pgoutput tuple: its kind ('n' NULL, 'u' an
// unchanged TOASTed value, 't' text, 'b' binary) and, for 't' and 'b', its
// bytes, which point into the message.
type tupleCol struct {
	kind byte
	data []byte
}

// The kinds of a tupleCol.
const (
	colNull      = 'n'
	colUnchanged = 'u'
	colText      = 't'
	colBinary    = 'b'
)

// rowMessage is a parsed Insert ('I'), Update ('U') or Delete ('D')
// message of protocol version 1.
type rowMessage struct {
	op  byte
	rel uint32 // the relation's OID
	// oldKind says what old holds: 'K' the key's columns (the others
	// NULL), 'O' the whole old row (REPLICA IDENTITY FULL), or 0: no old
	// tuple (an insert, or an update that kept its key).
	oldKind  byte
	old, new []tupleCol // new is empty for a delete
}

// isRowMessage reports whether a pgoutput message is one parseRow reads.
func isRowMessage(msg []byte) bool {
	return len(msg) > 0 && (msg[0] == 'I' || msg[0] == 'U' || msg[0] == 'D')
}

// parse reads msg into m, reusing m's slices: what it holds is valid until
// the next parse or until msg's buffer is reused.
func (m *rowMessage) parse(msg []byte) error {
	p := msgParser{b: msg}
	m.op = p.byte()
	m.rel = p.uint32()
	m.oldKind = 0
	m.old, m.new = m.old[:0], m.new[:0]
	kind := p.byte()
	if p.short {
		return fmt.Errorf("pgoutput: %q message of %d bytes cut short", m.op, len(msg))
	}
	switch m.op {
	case 'I':
		if kind != 'N' {
			return fmt.Errorf("pgoutput: insert: tuple marked %q, want 'N'", kind)
		}
		m.new = p.tuple(m.new)
	case 'U':
		if kind == 'K' || kind == 'O' {
			m.oldKind = kind
			m.old = p.tuple(m.old)
			kind = p.byte()
		}
		if kind != 'N' {
			return fmt.Errorf("pgoutput: update: tuple marked %q, want 'K', 'O' or 'N'", kind)
		}
		m.new = p.tuple(m.new)
	case 'D':
		if kind != 'K' && kind != 'O' {
			return fmt.Errorf("pgoutput: delete: tuple marked %q, want 'K' or 'O'", kind)
		}
		m.oldKind = kind
		m.old = p.tuple(m.old)
	default:
		return fmt.Errorf("pgoutput: message %q is not a row change", m.op)
	}
	if p.short {
		return fmt.Errorf("pgoutput: %q message of %d bytes cut short", m.op, len(msg))
	}
	if len(p.b) != 0 {
		return fmt.Errorf("pgoutput: %q message has %d bytes past its end", m.op, len(p.b))
	}
	return nil
}

// msgParser reads a message from its start; past the end it reads zeros
// and sets short.
type msgParser struct {
	b     []byte
	short bool
}

func (p *msgParser) take(n int) []byte {
	if n < 0 || len(p.b) < n {
		p.short, p.b = true, nil
		return nil
	}
	b := p.b[:n:n]
	p.b = p.b[n:]
	return b
}

func (p *msgParser) byte() byte {
	if b := p.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (p *msgParser) uint32() uint32 {
	if b := p.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// tuple appends a TupleData's columns to cols.
func (p *msgParser) tuple(cols []tupleCol) []tupleCol {
	b := p.take(2)
	if b == nil {
		return cols
	}
	n := int(binary.BigEndian.Uint16(b))
	for i := 0; i < n && !p.short; i++ {
		c := tupleCol{kind: p.byte()}
		if c.kind == colText || c.kind == colBinary {
			c.data = p.take(int(int32(p.uint32())))
			if c.data == nil && !p.short {
				c.data = []byte{} // an empty value, not NULL
			}
		}
		cols = append(cols, c)
	}
	return cols
}
