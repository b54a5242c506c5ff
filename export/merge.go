package export

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// merger publishes one in-place table's batch: every touched partition file
// is rewritten as the old file merged with the batch, in one streaming pass
// whose memory is bounded by the batch, not the file.
//
// A row changes only when the batch's version of it is at least as new as
// the file's, so replaying changes that a crashed commit already wrote is
// harmless. On a tie the batch wins: the file's copy is then the same
// change, or an earlier change of the same transaction written by a partial
// flush (a source such as PostgreSQL gives every change of a transaction
// its commit position), and replays run to the transaction's end. In repair mode (replaying after a crash) every partition of the
// table is searched first, so that a row a crashed commit moved to another
// partition is not left behind twice.
//
// An update that left values out as unchanged (entry.keep) takes them from
// the row's record in the lake as the merge streams past it: the only copy
// of the row, or in repair mode its newest. The row is written then, into
// its target partition, which is rewritten first if it is not open yet (a
// row that moves partition by createdOn), so no value is held beyond the
// record at hand. A row that is nowhere in the lake stops the table (see
// mergeTable); its values are never written as NULL.
//
// So that a replay always finds such a row, a row leaves the lake only by
// a delete: a row that moves to a partition published after its old one
// (partitions are published in name order) keeps its old record until the
// new one is published, and a second pass over the old partition then
// drops it (see moveOut). A crash in between leaves two copies, which a
// replay in repair mode resolves (the newest wins), never none.
type merger struct {
	lake    lakelink.Lake
	t       *table
	entries map[string]*entry
	winners map[string]occurrence // repair mode: the newest version of each row
	open    map[string]*partWriter
	fields  [][]byte
	// olderHolders (repair mode) are partitions holding an outdated copy
	// of a batch row.
	olderHolders map[string]bool
	// stale (normal mode) are batch rows the lake already holds as new.
	stale map[string]bool
	// scanned are the size and row count of every partition read whole.
	scanned map[string]*PartState
	// moved are partitions that keep, until the merge has published the
	// others, the record of a row that moved out (see moveOut).
	moved map[string]bool
}

type occurrence struct {
	part    string
	version lakelink.Position
	batch   bool // the batch's change is the newest
}

type partWriter struct {
	w      io.WriteCloser
	bw     *bufio.Writer
	cancel context.CancelFunc
	size   int64
	rows   int64
	found  map[string]bool
}

func (p *partWriter) Write(b []byte) (int, error) {
	n, err := p.bw.Write(b)
	p.size += int64(n)
	return n, err
}

// mergeTable publishes tb into the table's partitions and returns the new
// size and row count of every partition it rewrote.
//
// When a row whose update left values out as unchanged is nowhere in the
// lake, mergeTable writes nothing, stops the table (its state's Error names
// the table, column and key) and returns no partitions and no error: the
// commit goes on for the other tables. In repair mode such a row is left
// out instead: as rows leave the lake only by a delete, the crashed commit
// wrote a later delete of it, which the replay reaches before it ends.
func mergeTable(ctx context.Context, lake lakelink.Lake, t *table, tb *tableBatch, repair bool) (map[string]*PartState, error) {
	m := &merger{lake: lake, t: t, entries: tb.rows, open: map[string]*partWriter{}, stale: map[string]bool{}, scanned: map[string]*PartState{}, moved: map[string]bool{}}
	defer m.abort()

	touched := map[string]bool{}
	for _, e := range tb.rows {
		if !e.del {
			touched[e.target] = true
		}
		for _, p := range e.oldParts {
			touched[p] = true
		}
	}
	all, err := m.livePartitions(ctx)
	if err != nil {
		return nil, err
	}
	if repair {
		if err := m.locate(ctx, all); err != nil {
			return nil, err
		}
		for _, o := range m.winners {
			if o.part != "" {
				touched[o.part] = true
			}
		}
		// Partitions holding an older copy of a batch row are touched too.
		for p := range m.olderHolders {
			touched[p] = true
		}
	}
	for _, p := range sortedKeys(touched) {
		if m.open[p] != nil {
			continue // rewritten early, as the target of a row with kept values (writeKept)
		}
		if err := m.rewrite(ctx, p); err != nil {
			return nil, err
		}
	}
	if !repair {
		// Rows that may have moved here from a partition nobody named:
		// search the others, and rewrite those that hold one.
		unresolved := map[string]bool{}
		for id, e := range m.entries {
			if e.unknownFrom && !m.foundAnywhere(id) {
				unresolved[id] = true
			}
		}
		if len(unresolved) > 0 {
			for _, p := range all {
				if touched[p] || m.open[p] != nil {
					continue
				}
				has, err := m.contains(ctx, p, unresolved)
				if err != nil {
					return nil, err
				}
				if has {
					if err := m.rewrite(ctx, p); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	// New rows go at the end of their partition, in source order.
	var adds, lost []*entry
	for id, e := range m.entries {
		if e.del || m.superseded(id) {
			continue
		}
		if e.keep != nil {
			if !e.written {
				lost = append(lost, e)
			}
			continue
		}
		if m.placed(id) {
			continue
		}
		adds = append(adds, e)
	}
	if len(lost) > 0 && !repair {
		sort.Slice(lost, func(i, j int) bool { return lost[i].version < lost[j].version })
		m.abort()
		t.st.Error = t.unchangedError(lost[0].keep[0], lost[0].id, "and the row is nowhere in the lake to take it from; run lakelink resync --lake LAKE --table "+t.st.Source+" to copy the table again").Error()
		return map[string]*PartState{}, nil
	}
	sort.Slice(adds, func(i, j int) bool { return adds[i].version < adds[j].version })
	for _, e := range adds {
		pw := m.open[e.target]
		if pw == nil {
			return nil, fmt.Errorf("merge %s: partition %s was not opened", t.st.Folder, e.target)
		}
		if err := m.writeRow(pw, e, nil); err != nil {
			return nil, err
		}
	}
	out := map[string]*PartState{}
	for _, p := range sortedKeys(m.open) {
		ps, err := m.publish(p)
		if err != nil {
			return nil, err
		}
		out[p] = ps
	}
	// Rows moved to a partition published after their old one: the old
	// record stayed until the new one was published (above), so that a
	// crash in between never leaves the row nowhere; now it goes.
	for _, p := range sortedKeys(m.moved) {
		if err := m.open1(ctx, p); err != nil {
			return nil, err
		}
		pw := m.open[p]
		err := m.scan(ctx, p, func(rec, id []byte, e *entry, v lakelink.Position) error {
			if e != nil && e.written && e.target != p {
				return nil
			}
			pw.rows++
			return writeRecord(pw, rec)
		})
		if err != nil {
			return nil, err
		}
		if out[p], err = m.publish(p); err != nil {
			return nil, err
		}
	}
	if repair {
		// The crashed commit may have rewritten partitions this one did
		// not touch: take their size and rows as they are now.
		for p, ps := range m.scanned {
			if out[p] == nil {
				out[p] = ps
			}
		}
	}
	return out, nil
}

// publish makes the new version of an open partition visible and returns
// its size and rows.
func (m *merger) publish(p string) (*PartState, error) {
	pw := m.open[p]
	if err := pw.bw.Flush(); err != nil {
		return nil, fmt.Errorf("merge %s: %w", cdm.PartitionPath(m.t.st.Folder, p), err)
	}
	if err := pw.w.Close(); err != nil {
		return nil, fmt.Errorf("merge %s: %w", cdm.PartitionPath(m.t.st.Folder, p), err)
	}
	pw.cancel()
	delete(m.open, p)
	return &PartState{Size: pw.size, Rows: pw.rows, Changed: true}, nil
}

// abort abandons every partition still open: none of them becomes visible.
func (m *merger) abort() {
	for p, pw := range m.open {
		pw.cancel()
		_ = pw.w.Close()
		delete(m.open, p)
	}
}

// livePartitions lists the table's live partition files in the lake,
// including any a crashed commit created after the state was written.
func (m *merger) livePartitions(ctx context.Context) ([]string, error) {
	folder := m.t.st.Folder
	objs, err := m.lake.List(ctx, folder+"/")
	if err != nil {
		return nil, fmt.Errorf("merge %s: list: %w", folder, err)
	}
	var parts []string
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Path, folder+"/")
		if strings.Contains(rest, "/") || !strings.HasSuffix(rest, ".csv") {
			continue
		}
		parts = append(parts, strings.TrimSuffix(rest, ".csv"))
	}
	return parts, nil
}

// scan reads a partition's records and calls fn with each record, its Id
// field and, for rows of the batch, its versionnumber.
func (m *merger) scan(ctx context.Context, part string, fn func(rec, id []byte, e *entry, version lakelink.Position) error) error {
	path := cdm.PartitionPath(m.t.st.Folder, part)
	r, err := m.lake.Open(ctx, path)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("merge %s: %w", path, err)
	}
	defer r.Close()
	rd := cdm.NewReader(bufio.NewReaderSize(r, 256<<10))
	vf := m.t.versionField()
	var rows int64
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			m.scanned[part] = &PartState{Size: rd.Offset(), Rows: rows, Changed: true}
			return nil
		}
		rows++
		if err != nil {
			return fmt.Errorf("merge %s: %w", path, err)
		}
		id := idField(rec)
		e := m.entries[string(id)]
		var version lakelink.Position
		if e != nil {
			m.fields = cdm.SplitFields(m.fields[:0], rec)
			if vf < len(m.fields) {
				s, _ := cdm.Field(m.fields[vf])
				v, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return fmt.Errorf("merge %s: row %s: versionnumber %q: %w", path, id, s, err)
				}
				version = lakelink.Position(v)
			}
		}
		if err := fn(rec, id, e, version); err != nil {
			return err
		}
	}
}

// locate finds, for every row of the batch, which copy is the newest: the
// batch's change or a row already in some partition.
func (m *merger) locate(ctx context.Context, parts []string) error {
	m.winners = map[string]occurrence{}
	m.olderHolders = map[string]bool{}
	for id, e := range m.entries {
		m.winners[id] = occurrence{part: e.target, version: e.version, batch: true}
	}
	for _, p := range parts {
		err := m.scan(ctx, p, func(rec, id []byte, e *entry, v lakelink.Position) error {
			if e == nil {
				return nil
			}
			w := m.winners[string(id)]
			if v > w.version {
				if !w.batch && w.part != "" {
					m.olderHolders[w.part] = true
				}
				m.winners[string(id)] = occurrence{part: p, version: v}
			} else {
				m.olderHolders[p] = true
			}
			if e.keep != nil && (!e.keepSeen || v >= e.keepFrom) {
				// The newest copy holds the values the update left out.
				e.keepPart, e.keepFrom, e.keepSeen = p, v, true
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// contains reports whether a partition holds any of the ids.
func (m *merger) contains(ctx context.Context, part string, ids map[string]bool) (bool, error) {
	found := false
	err := m.scan(ctx, part, func(rec, id []byte, e *entry, v lakelink.Position) error {
		if ids[string(id)] {
			found = true
		}
		return nil
	})
	return found, err
}

// open1 starts the new version of a partition (invisible until publish).
func (m *merger) open1(ctx context.Context, part string) error {
	path := cdm.PartitionPath(m.t.st.Folder, part)
	wctx, cancel := context.WithCancel(ctx)
	w, err := m.lake.Create(wctx, path)
	if err != nil {
		cancel()
		return fmt.Errorf("merge %s: %w", path, err)
	}
	pw := &partWriter{w: w, cancel: cancel, found: map[string]bool{}}
	pw.bw = bufio.NewWriterSize(w, 64<<10)
	m.open[part] = pw
	return nil
}

// rewrite streams a partition into its new version, applying the batch to
// the rows it holds. The new file stays open (invisible) for new rows.
func (m *merger) rewrite(ctx context.Context, part string) error {
	if err := m.open1(ctx, part); err != nil {
		return err
	}
	pw := m.open[part]
	return m.scan(ctx, part, func(rec, id []byte, e *entry, v lakelink.Position) error {
		if e == nil {
			pw.rows++
			return writeRecord(pw, rec)
		}
		pw.found[string(id)] = true
		if e.keep != nil && m.batchWins(e, v) {
			return m.writeKept(ctx, pw, part, e, rec, v)
		}
		switch m.decide(e, part, v) {
		case keepRow:
			if m.winners == nil {
				m.stale[e.id] = true
			}
			pw.rows++
			return writeRecord(pw, rec)
		case replaceRow:
			m.fields = cdm.SplitFields(m.fields[:0], rec)
			return m.writeRow(pw, e, m.fields)
		}
		if !e.del && e.target != part && m.batchWins(e, v) {
			return m.moveOut(pw, part, e, rec)
		}
		return nil // dropRow
	})
}

// batchWins reports whether the batch's change of a row is newer than its
// copy of version v in the lake (in repair mode: than every copy).
func (m *merger) batchWins(e *entry, v lakelink.Position) bool {
	if m.winners != nil {
		return m.winners[e.id].batch
	}
	return v <= e.version
}

// writeKept handles a copy of a row, found in part with version v and
// record rec, whose update left values out as unchanged: when it is the
// copy to take them from (normal mode: the only one; repair mode: the
// newest, see locate) the row is written, with those values and its
// SinkCreatedOn taken from rec, into its target partition, which is
// rewritten now if it is not open yet; any other copy is dropped. When the
// target is another partition, rec goes as moveOut says.
func (m *merger) writeKept(ctx context.Context, pw *partWriter, part string, e *entry, rec []byte, v lakelink.Position) error {
	if e.written || (m.winners != nil && (part != e.keepPart || v != e.keepFrom)) {
		return nil
	}
	e.written = true
	if e.target == part {
		m.fields = cdm.SplitFields(m.fields[:0], rec)
		return m.writeRow(pw, e, m.fields)
	}
	dst := m.open[e.target]
	if dst == nil {
		// rec stays valid: the target is read by a reader of its own.
		if err := m.rewrite(ctx, e.target); err != nil {
			return err
		}
		dst = m.open[e.target]
	}
	dst.found[e.id] = true
	m.fields = cdm.SplitFields(m.fields[:0], rec)
	if err := m.writeRow(dst, e, m.fields); err != nil {
		return err
	}
	return m.moveOut(pw, part, e, rec)
}

// moveOut handles rec, the copy in part of a row whose batch version goes
// to another partition: the copy goes at once when that partition is
// published first (publishing goes in name order), and otherwise stays
// until the second pass (see moved). Either way a crash never leaves the
// row nowhere in the lake, which a later update that leaves values out as
// unchanged would need (a replay, in repair mode, finds both copies and
// takes the newest).
func (m *merger) moveOut(pw *partWriter, part string, e *entry, rec []byte) error {
	if e.target < part {
		return nil
	}
	m.moved[part] = true
	pw.rows++
	return writeRecord(pw, rec)
}

type action int

const (
	keepRow action = iota
	replaceRow
	dropRow
)

// decide says what happens to a row of the batch found in part with
// version v.
func (m *merger) decide(e *entry, part string, v lakelink.Position) action {
	if m.winners != nil {
		w := m.winners[e.id]
		switch {
		case w.batch && !e.del && e.target == part:
			return replaceRow
		case w.batch:
			return dropRow
		case w.part == part && w.version == v:
			return keepRow
		}
		return dropRow
	}
	if v > e.version {
		return keepRow // the file is already newer than the batch: a replay
	}
	if !e.del && e.target == part {
		return replaceRow
	}
	return dropRow
}

// placed reports whether an upsert was written over its old row.
func (m *merger) placed(id string) bool {
	e := m.entries[id]
	pw := m.open[e.target]
	if m.winners != nil {
		w := m.winners[id]
		return !w.batch || (pw != nil && pw.found[id])
	}
	return pw != nil && pw.found[id]
}

// superseded reports whether the lake already holds a newer version of the
// row than the batch (a replay).
func (m *merger) superseded(id string) bool {
	if m.winners != nil {
		return !m.winners[id].batch
	}
	return m.stale[id]
}

func (m *merger) foundAnywhere(id string) bool {
	for _, pw := range m.open {
		if pw.found[id] {
			return true
		}
	}
	return false
}

// writeRow writes the batch's version of a row. old is the raw fields of
// the row's record in the lake, or nil for a row new to the lake: its
// SinkCreatedOn is kept, and so are the values e.keep names (see
// spliceRest).
func (m *merger) writeRow(pw *partWriter, e *entry, old [][]byte) error {
	rest := e.rest
	if e.keep != nil {
		rest = spliceRest(rest, e.keep, old)
	}
	buf := make([]byte, 0, len(e.id)+len(rest)+64)
	buf = append(buf, e.id...)
	buf = append(buf, ',')
	if len(old) > 1 {
		buf = append(buf, old[1]...)
	} else {
		buf = cdm.AppendString(buf, e.modified)
	}
	buf = append(buf, ',')
	buf = cdm.AppendString(buf, e.modified)
	buf = append(buf, rest...)
	e.written = true
	pw.rows++
	_, err := pw.Write(buf)
	return err
}

func writeRecord(pw *partWriter, rec []byte) error {
	if _, err := pw.Write(rec); err != nil {
		return err
	}
	if len(rec) == 0 || rec[len(rec)-1] != '\n' {
		_, err := pw.Write([]byte{'\n'})
		return err
	}
	return nil
}

// idField returns the first field of a record as written (quoted or not).
func idField(rec []byte) []byte {
	if len(rec) > 0 && rec[0] == '"' {
		for i := 1; i < len(rec); i++ {
			if rec[i] == '"' {
				if i+1 < len(rec) && rec[i+1] == '"' {
					i++
					continue
				}
				return rec[:i+1]
			}
		}
		return rec
	}
	for i, c := range rec {
		if c == ',' || c == '\n' {
			return rec[:i]
		}
	}
	return rec
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
