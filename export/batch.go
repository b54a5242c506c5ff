package export

import (
	"slices"
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
	// truncated (in place): the table was emptied before the changes in
	// rows; its partitions are emptied before they are merged.
	truncated bool
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
	// keep lists the record fields (by index) whose values the update left
	// out because they did not change (lakelink.Change.Unchanged) and no
	// earlier change of the row in the batch holds: rest has them empty, and
	// the merge takes them from the row's record in the lake. Nil when rest
	// is complete.
	keep []int
	// The merge's bookkeeping for keep: the record it takes the values from
	// (repair mode: the newest copy of the row, in keepPart at version
	// keepFrom, once keepSeen).
	keepPart string
	keepFrom lakelink.Position
	keepSeen bool
	// written says the merge wrote this version of the row (to target).
	written bool
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

// truncate records that every row of an in-place table is gone: the
// batch's earlier changes of the table are dropped, and the commit empties
// its partitions before merging what comes after.
func (b *batch) truncate(t *table) {
	tb := b.table(t.st.Source)
	for _, e := range tb.rows {
		b.bytes -= int64(len(e.rest)) + int64(len(e.id)) + entryOverhead
	}
	b.bytes = max(b.bytes, 0)
	tb.rows = map[string]*entry{}
	tb.truncated = true
}

func (b *batch) noteChange(pos lakelink.Position, now time.Time) {
	if b.changes == 0 {
		b.first = pos
	}
	b.last = max(b.last, pos)
	b.changes++
}

// addInPlace records an in-place change of a row. Values an update left
// out as unchanged are taken from the row's earlier change in the batch
// when there is one (see upsert), and otherwise left to the merge (keep).
func (b *batch) addInPlace(t *table, c lakelink.Change, now time.Time, modified string, scratch []byte) ([]byte, error) {
	if err := t.checkUnchanged(c); err != nil {
		return scratch, err
	}
	id, err := t.encodeID(scratch[:0], c.Row)
	if err != nil {
		return scratch, err
	}
	scratch = id
	tb := b.table(t.st.Source)
	e := tb.rows[string(id)]
	var rest []byte
	var part string
	var keep []int
	if c.Op != lakelink.OpDelete {
		if rest, part, keep, err = t.upsert(c, id, e); err != nil {
			return scratch, err
		}
	}
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
		e.del, e.rest, e.target, e.keep = true, nil, "", nil
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
		e.del, e.target, e.rest, e.keep = false, part, rest, keep
		if c.Op == lakelink.OpUpdate {
			e.unknownFrom = true
		}
		b.bytes += int64(len(rest))
	}
	b.bytes += int64(len(id)) + entryOverhead
	return scratch, nil
}

// upsert encodes the record of an insert or update after SinkModifiedOn
// and finds its partition. The values an update left out as unchanged are
// taken from prev, the row's earlier change in the batch, when there is
// one; keep lists the fields left to the merge, which takes them from the
// row's record in the lake (nil when there are none).
func (t *table) upsert(c lakelink.Change, id []byte, prev *entry) (rest []byte, part string, keep []int, err error) {
	rest, err = t.encodeRest(nil, c.Row, c.Pos, false, id)
	if err != nil {
		return nil, "", nil, err
	}
	fields := t.unchangedFields(c)
	createdKept := len(fields) > 0 && t.created >= 0 && c.Unchanged[t.created]
	switch {
	case len(fields) == 0:
	case prev != nil && prev.del:
		return nil, "", nil, t.unchangedError(fields[0], string(id), "and the row was deleted earlier in the same batch, so there is no value to keep; run lakelink resync --lake LAKE --table "+t.st.Source)
	case prev != nil:
		// The earlier change of the row holds the values, except those it
		// left to the merge itself.
		var take []int
		for _, f := range fields {
			if slices.Contains(prev.keep, f) {
				keep = append(keep, f)
			} else {
				take = append(take, f)
			}
		}
		old := append(make([][]byte, 3, 3+len(t.st.Columns)+2), cdm.SplitFields(nil, prev.rest[1:])...)
		rest = spliceRest(rest, take, old)
		if createdKept {
			part = prev.target
		}
	default:
		keep = fields
	}
	if createdKept && part == "" {
		return nil, "", nil, t.unchangedError(t.fieldOf(t.colOf(t.created)), string(id), "and without its createdOn value the row's partition is unknown; run lakelink resync --lake LAKE --table "+t.st.Source)
	}
	if part == "" {
		if part, err = t.partitionOf(c.Row, id); err != nil {
			return nil, "", nil, err
		}
	}
	return rest, part, keep, nil
}

// spliceRest returns rest (a record's fields after SinkModifiedOn, as
// encodeRest writes them) with the record fields listed in fields replaced
// by the same fields of old, the raw fields of a whole record. A field
// past old's end (a record written before its column was added) is NULL,
// as readers take it.
func spliceRest(rest []byte, fields []int, old [][]byte) []byte {
	if len(fields) == 0 {
		return rest
	}
	parts := cdm.SplitFields(nil, rest[1:]) // rest starts with ",", ends with "\n"
	size := len(rest)
	for _, f := range fields {
		if f < len(old) {
			size += len(old[f])
		}
	}
	out := make([]byte, 0, size)
	for i, p := range parts {
		if f := i + 3; slices.Contains(fields, f) {
			p = nil
			if f < len(old) {
				p = old[f]
			}
		}
		out = append(out, ',')
		out = append(out, p...)
	}
	return append(out, '\n')
}

// addAppend records an append-only change: one record at the end of its
// partition, a delete as a row with IsDelete True. With split > 0 a
// partition file that has reached split bytes is continued in its next
// overflow split.
//
// An update that left values out as unchanged stops the table: an
// append-only record must hold every value, and the last one exported is
// not at hand.
func (b *batch) addAppend(t *table, c lakelink.Change, modified string, split int64, scratch []byte) ([]byte, error) {
	if err := t.checkUnchanged(c); err != nil {
		return scratch, err
	}
	id, err := t.encodeID(scratch[:0], c.Row)
	if err != nil {
		return scratch, err
	}
	scratch = id
	if fields := t.unchangedFields(c); len(fields) > 0 {
		return scratch, t.unchangedError(fields[0], string(id), "and an append-only table has no earlier value at hand to write: set REPLICA IDENTITY FULL on the table (PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL), or export it in place, then run lakelink resync --lake LAKE --table "+t.st.Source)
	}
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
