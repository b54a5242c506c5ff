package export

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// table is the engine's working view of one exported table: its state, the
// source definition its rows currently follow, and how a source row maps
// onto the lake's columns.
type table struct {
	st      *TableState
	def     lakelink.Table // the definition rows follow now
	colMap  []int          // for each st.Columns entry, the index in def.Columns, or -1
	keyIdx  []int          // indexes into def.Columns of the key columns
	created int            // index into def.Columns of createdOn, or -1
	link    string
	key     []lakelink.Value // scratch for encodeID
	// restScratch is encodeRest's, for a record of its own.
	restScratch []byte
	// The text of the last position appendSystemTail wrote, and the last
	// partition partitionOf found by createdOn with its year and month:
	// rows in a row mostly share them.
	posText   []byte
	textPos   lakelink.Position
	lastPart  string
	lastYear  int
	lastMonth time.Month
	// splits is, per partition, the number of its newest overflow split
	// (0: the partition's own file), for append-only tables.
	splits map[string]int
}

// splitOf returns the number of the newest overflow split of partition
// base (0 when it has none), from the state the first time.
func (t *table) splitOf(base string) int {
	if t.splits == nil {
		t.splits = map[string]int{}
		for name := range t.st.Partitions {
			if b, n, ok := cdm.ParseSplitName(name); ok && n > t.splits[b] {
				t.splits[b] = n
			}
		}
	}
	return t.splits[base]
}

// baseRows counts the records of partition base and its overflow splits,
// committed and in the batch.
func (t *table) baseRows(tb *tableBatch, base string) int64 {
	var rows int64
	for n := 0; n <= t.splitOf(base); n++ {
		name := cdm.SplitPartitionName(base, n)
		if ps := t.st.Partitions[name]; ps != nil {
			rows += ps.Rows
		}
		if ab := tb.appends[name]; ab != nil {
			rows += ab.rows
		}
	}
	return rows
}

// versionField is the field index of versionnumber in the table's records.
func (t *table) versionField() int { return 3 + t.st.Initial }

// fieldOf is the field index in the table's records of lake column i
// (st.Columns[i]): after Id, SinkCreatedOn and SinkModifiedOn, with
// versionnumber and IsDelete after the first st.Initial columns.
func (t *table) fieldOf(i int) int {
	if i < t.st.Initial {
		return 3 + i
	}
	return 5 + i
}

// colOf returns the lake column (index into st.Columns) of source column j
// (index into def.Columns), or -1.
func (t *table) colOf(j int) int {
	for i, k := range t.colMap {
		if k == j {
			return i
		}
	}
	return -1
}

// checkUnchanged refuses a change whose Unchanged marks break the
// contract of lakelink.Change: only an update may leave values out, never
// a key value.
func (t *table) checkUnchanged(c lakelink.Change) error {
	if c.Unchanged == nil {
		return nil
	}
	if c.Op != lakelink.OpUpdate || len(c.Unchanged) != len(c.Row) {
		return fmt.Errorf("table %q: the source marked values of a change (%s, %d marks for %d values) as unchanged; only an update may leave values out", t.st.Source, c.Op, len(c.Unchanged), len(c.Row))
	}
	for _, k := range t.keyIdx {
		if c.Unchanged[k] {
			return fmt.Errorf("table %q column %q: the source left a key value out as unchanged, so the row can't be found", t.st.Source, t.def.Columns[k].Name)
		}
	}
	return nil
}

// unchangedFields returns the record fields, in order, of the lake columns
// whose values an update left out as unchanged (c.Unchanged, checked by
// checkUnchanged), or nil.
func (t *table) unchangedFields(c lakelink.Change) []int {
	if c.Unchanged == nil {
		return nil
	}
	var fields []int
	for i, j := range t.colMap {
		if j >= 0 && j < len(c.Unchanged) && c.Unchanged[j] {
			fields = append(fields, t.fieldOf(i))
		}
	}
	return fields
}

// unchangedError says that the value of record field f of row id, which
// the source left out because the update did not change it, can't be
// kept, why, and what to do. It names the link, table, column and key.
func (t *table) unchangedError(f int, id, why string) error {
	col := "?"
	i := f - 3
	if i >= t.st.Initial {
		i = f - 5
	}
	if i >= 0 && i < len(t.st.Columns) {
		col = t.st.Columns[i].Name
	}
	link := ""
	if t.link != "" {
		link = "link " + strconv.Quote(t.link) + ": "
	}
	return fmt.Errorf("%stable %q column %q key %s: the source left the value out because the update did not change it (PostgreSQL: a TOASTed value under the default replica identity), %s; lakelink never writes such a value as NULL",
		link, t.st.Source, col, id, why)
}

// setDefinition makes rows follow def from now on: columns new to the lake
// are added at the end, columns gone from def are kept as dropped. It
// reports whether the lake's attribute list changed, and refuses a change it
// can't follow (a key change, or a column that changed its kind).
func (t *table) setDefinition(def lakelink.Table) (changed bool, err error) {
	st := t.st
	keyNames := make([]string, len(def.Key))
	for i, k := range def.Key {
		keyNames[i] = def.Columns[k].Name
	}
	if len(st.Key) > 0 && fmt.Sprint(st.Key) != fmt.Sprint(keyNames) {
		return false, fmt.Errorf("table %q: its key changed from %v to %v; run `lakelink resync --lake LAKE --table %s` to export it again", st.Source, st.Key, keyNames, st.Source)
	}
	seen := map[string]bool{}
	taken := map[string]bool{}
	for _, c := range st.Columns {
		taken[strings.ToLower(c.column().Name)] = true
	}
	for _, c := range def.Columns {
		seen[c.Name] = true
		found := false
		for i := range st.Columns {
			lc := &st.Columns[i]
			if lc.Name != c.Name {
				continue
			}
			found = true
			if lc.Kind != c.Kind {
				return false, fmt.Errorf("table %q: column %q changed type from %s (%s) to %s (%s); run `lakelink resync --lake LAKE --table %s` to export it again", st.Source, c.Name, lc.Type, lc.Kind, c.Type, c.Kind, st.Source)
			}
			if lc.Dropped {
				lc.Dropped = false
				changed = true
			}
			if lc.Type != c.Type || lc.MaxLength != c.MaxLength || lc.Precision != c.Precision || lc.Scale != c.Scale {
				attr := lc.Attr
				*lc = colState(c)
				lc.Attr = attr
				changed = true
			}
		}
		if !found {
			cs := colState(c)
			if n := lakeName(c.Name, taken); n != c.Name {
				cs.Attr = n
			}
			if err := cdm.CheckAttributeName(cs.column().Name); err != nil {
				return false, fmt.Errorf("table %q: %w", st.Source, err)
			}
			st.Columns = append(st.Columns, cs)
			changed = true
		}
	}
	for i := range st.Columns {
		if !seen[st.Columns[i].Name] && !st.Columns[i].Dropped {
			st.Columns[i].Dropped = true
			changed = true
		}
	}
	if len(st.Key) == 0 {
		st.Key = keyNames
		st.KeyKind = make([]lakelink.Kind, len(def.Key))
		for i, k := range def.Key {
			st.KeyKind[i] = def.Columns[k].Kind
		}
	}
	t.def = def
	t.colMap = make([]int, len(st.Columns))
	for i, c := range st.Columns {
		t.colMap[i] = -1
		if !c.Dropped {
			t.colMap[i] = def.ColumnIndex(c.Name)
		}
	}
	t.keyIdx = append([]int(nil), def.Key...)
	t.created = -1
	if st.CreatedOn != "" {
		t.created = def.ColumnIndex(st.CreatedOn)
	}
	return changed, nil
}

// rowError turns a cdm.ValueError into a BadValueError naming the link,
// table, column and key.
func (t *table) rowError(err error, column string, id []byte) error {
	bad := &lakelink.BadValueError{Link: t.link, Table: t.st.Source, Column: column, Key: string(id)}
	var ve *cdm.ValueError
	if errors.As(err, &ve) {
		bad.Value, bad.Reason = ve.Value, ve.Reason
	} else {
		bad.Reason = err.Error()
	}
	return bad
}

// encodeID appends the row's Id field.
func (t *table) encodeID(dst []byte, row []lakelink.Value) ([]byte, error) {
	if cap(t.key) < len(t.keyIdx) {
		t.key = make([]lakelink.Value, len(t.keyIdx))
	}
	key := t.key[:len(t.keyIdx)]
	// The row's values may not outlive it (see batchSnapshot).
	defer clear(key)
	for i, k := range t.keyIdx {
		key[i] = row[k]
		if key[i] == nil {
			return dst, t.rowError(fmt.Errorf("key column is NULL"), t.def.Columns[k].Name, []byte("NULL"))
		}
	}
	out, err := cdm.AppendID(dst, t.st.KeyKind, key)
	if err != nil {
		col := t.st.Key[0]
		return dst, t.rowError(err, col, []byte(fmt.Sprint(key...)))
	}
	return out, nil
}

// encodeRest appends everything of a record after SinkModifiedOn: the
// columns, versionnumber, IsDelete, the added columns, and the newline. A
// delete writes its columns empty. With dst nil the record gets a slice of
// its own, allocated at its size (in-place batches keep one per row).
func (t *table) encodeRest(dst []byte, row []lakelink.Value, pos lakelink.Position, isDelete bool, id []byte) ([]byte, error) {
	if dst == nil {
		rest, err := t.appendRest(t.restScratch[:0], row, pos, isDelete, id)
		t.restScratch = rest[:0]
		if err != nil {
			return nil, err
		}
		return bytes.Clone(rest), nil
	}
	return t.appendRest(dst, row, pos, isDelete, id)
}

// appendRest is encodeRest with dst not nil.
func (t *table) appendRest(dst []byte, row []lakelink.Value, pos lakelink.Position, isDelete bool, id []byte) ([]byte, error) {
	var err error
	for i, c := range t.st.Columns {
		if i == t.st.Initial {
			dst = t.appendSystemTail(dst, pos, isDelete)
		}
		dst = append(dst, ',')
		if isDelete {
			continue
		}
		j := t.colMap[i]
		if j < 0 || j >= len(row) {
			continue
		}
		dst, err = cdm.AppendValue(dst, c.Kind, row[j])
		if err != nil {
			return dst, t.rowError(err, c.Name, id)
		}
	}
	if len(t.st.Columns) == t.st.Initial {
		dst = t.appendSystemTail(dst, pos, isDelete)
	}
	return append(dst, '\n'), nil
}

func (t *table) appendSystemTail(dst []byte, pos lakelink.Position, isDelete bool) []byte {
	dst = append(dst, ',')
	if pos != t.textPos || t.posText == nil {
		t.posText, t.textPos = strconv.AppendUint(t.posText[:0], uint64(pos), 10), pos
	}
	dst = append(dst, t.posText...)
	dst = append(dst, ',')
	if isDelete {
		dst = append(dst, "True"...)
	}
	return dst
}

// partitionOf returns the partition a row goes to by its createdOn value;
// tables without createdOn use numbered partitions.
func (t *table) partitionOf(row []lakelink.Value, id []byte) (string, error) {
	if t.st.CreatedOn == "" {
		if t.st.Numbered == 0 {
			t.st.Numbered = 1
		}
		return cdm.NumberedPartition(t.st.Numbered), nil
	}
	var v lakelink.Value
	if t.created >= 0 && t.created < len(row) {
		v = row[t.created]
	}
	gran := cdm.GranularityYear
	month := t.st.Partition == lakelink.PartitionMonth
	if month {
		gran = cdm.GranularityMonth
	}
	// A time in the year (and month) of the last partition found goes to
	// it; anything else is cdm.PartitionName's to name.
	tm, isTime := v.(time.Time)
	var y int
	var m time.Month
	if isTime {
		y, m, _ = tm.UTC().Date()
		if !month {
			m = 0
		}
		if t.lastPart != "" && y == t.lastYear && m == t.lastMonth {
			return t.lastPart, nil
		}
	}
	p, err := cdm.PartitionName(gran, v)
	if err != nil {
		return "", t.rowError(err, t.st.CreatedOn, id)
	}
	if isTime {
		t.lastPart, t.lastYear, t.lastMonth = p, y, m
	}
	return p, nil
}

// partitionYear is the Athena:PartitionYear annotation of a partition (or
// of an overflow split of one).
func partitionYear(name string) string {
	if base, _, ok := cdm.ParseSplitName(name); ok {
		name = base
	}
	if len(name) == 7 && name[4] == '-' {
		return name[:4]
	}
	return name
}
