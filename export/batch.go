package export

import (
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// batch is what a commit publishes: the changes received since the last
// commit, already encoded as lake records.
type batch struct {
	tables  map[string]*tableBatch // by source table name
	bytes   int64
	changes int
	start   time.Time         // when the first change arrived
	end     lakelink.Position // the position of the last transaction end seen
	// first is the position of the first change in the batch, last the
	// largest position of any change in it.
	first, last lakelink.Position
}

// tableBatch holds one table's share of a batch.
type tableBatch struct {
	// in place: the final change per row, by Id field.
	rows map[string]*entry
	// append only: records to append, by partition, in source order.
	appends map[string]*appendBuf
	meta    bool // the table's attributes changed
}

// entry is the last change of one row in a batch (in place).
type entry struct {
	id       string
	del      bool
	target   string   // the partition an upsert goes to
	oldParts []string // partitions the row is known to have been in
	version  lakelink.Position
	rest     []byte // the record after SinkModifiedOn (upserts)
	modified string // SinkModifiedOn
	// unknownFrom says the row may be in a partition nobody named: an update
	// (the old createdOn is not known) or a delete without its old row.
	unknownFrom bool
}

type appendBuf struct {
	data    []byte // records not yet written
	rows    int64  // records of the batch, written or not
	flushed int64  // bytes already appended past the committed size (appendRecords)
}

// entryOverhead is what an in-place entry costs in memory besides its id
// and record: the struct, its map slot and the strings' headers.
const entryOverhead = 192

func newBatch() *batch { return &batch{tables: map[string]*tableBatch{}} }

func (b *batch) table(name string) *tableBatch {
	tb := b.tables[name]
	if tb == nil {
		tb = &tableBatch{rows: map[string]*entry{}, appends: map[string]*appendBuf{}}
		b.tables[name] = tb
	}
	return tb
}

func (b *batch) noteChange(pos lakelink.Position, now time.Time) {
	if b.changes == 0 {
		b.first = pos
	}
	b.last = max(b.last, pos)
	b.changes++
}

// addInPlace records an in-place change of a row.
func (b *batch) addInPlace(t *table, c lakelink.Change, now time.Time, modified string, scratch []byte) ([]byte, error) {
	id, err := t.encodeID(scratch[:0], c.Row)
	if err != nil {
		return scratch, err
	}
	scratch = id
	tb := b.table(t.st.Source)
	e := tb.rows[string(id)]
	if e == nil {
		e = &entry{id: string(id)}
		tb.rows[e.id] = e
	} else {
		b.bytes -= int64(len(e.rest))
		if !e.del && e.target != "" {
			e.oldParts = appendOnce(e.oldParts, e.target)
		}
	}
	e.version = c.Pos
	e.modified = modified
	switch c.Op {
	case lakelink.OpDelete:
		e.del, e.rest, e.target = true, nil, ""
		if c.OldKnown {
			p, err := t.partitionOf(c.Row, id)
			if err != nil {
				return scratch, err
			}
			e.oldParts = appendOnce(e.oldParts, p)
		} else {
			e.unknownFrom = true
		}
	default:
		p, err := t.partitionOf(c.Row, id)
		if err != nil {
			return scratch, err
		}
		rest, err := t.encodeRest(nil, c.Row, c.Pos, false, id)
		if err != nil {
			return scratch, err
		}
		e.del, e.target, e.rest = false, p, rest
		if c.Op == lakelink.OpUpdate {
			e.unknownFrom = true
		}
		b.bytes += int64(len(rest))
	}
	b.bytes += int64(len(id)) + entryOverhead
	return scratch, nil
}

// addAppend records an append-only change: one record at the end of its
// partition, a delete as a row with IsDelete True. With split > 0 a
// partition file that has reached split bytes is continued in its next
// overflow split.
func (b *batch) addAppend(t *table, c lakelink.Change, modified string, split int64, scratch []byte) ([]byte, error) {
	id, err := t.encodeID(scratch[:0], c.Row)
	if err != nil {
		return scratch, err
	}
	scratch = id
	var base string
	if c.Op == lakelink.OpDelete && !c.OldKnown && t.st.CreatedOn != "" {
		// Without the old row its createdOn is unknown: the delete row goes
		// where rows without createdOn go.
		base, err = t.partitionOf(make([]lakelink.Value, len(c.Row)), id)
	} else {
		base, err = t.partitionOf(c.Row, id)
	}
	if err != nil {
		return scratch, err
	}
	tb := b.table(t.st.Source)
	part := b.appendTarget(t, tb, base, split)
	ab := tb.appends[part]
	if ab == nil {
		ab = &appendBuf{}
		tb.appends[part] = ab
	}
	n := len(ab.data)
	ab.data = append(ab.data, id...)
	ab.data = append(ab.data, ',')
	ab.data = cdm.AppendString(ab.data, modified)
	ab.data = append(ab.data, ',')
	ab.data = cdm.AppendString(ab.data, modified)
	ab.data, err = t.encodeRest(ab.data, c.Row, c.Pos, c.Op == lakelink.OpDelete, id)
	if err != nil {
		ab.data = ab.data[:n]
		return scratch, err
	}
	ab.rows++
	b.bytes += int64(len(ab.data) - n)
	if t.st.CreatedOn == "" {
		// Numbered partitions take a new number every RowsPerNumberedPartition records.
		if t.baseRows(tb, base) >= cdm.RowsPerNumberedPartition {
			t.st.Numbered++
		}
	}
	return scratch, nil
}

// appendTarget returns the file of partition base that new records go
// to: base itself, or its newest overflow split, or a new split when that
// one holds split bytes (committed and in the batch).
func (b *batch) appendTarget(t *table, tb *tableBatch, base string, split int64) string {
	if split <= 0 {
		return base
	}
	n := t.splitOf(base)
	for {
		name := cdm.SplitPartitionName(base, n)
		size := int64(0)
		if ps := t.st.Partitions[name]; ps != nil {
			size = ps.Size
		}
		if ab := tb.appends[name]; ab != nil {
			size += ab.flushed + int64(len(ab.data))
		}
		if size < split {
			return name
		}
		n++
		t.splits[base] = n
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
