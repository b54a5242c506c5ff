package export

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/lakelink/lakelink"
)

// fakeSource is an in-memory source for unit tests of the engine above the
// source interface. Every mutation is one transaction.
type fakeSource struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	log    []fakeEntry
	pos    lakelink.Position
	acked  lakelink.Position
	notify chan struct{}
	// txnPos gives every change of a transaction its commit's position,
	// as PostgreSQL does, instead of a position of its own.
	txnPos bool
	// gates holds, by table, a channel that a copy of the table waits for
	// after its first row, so that a test can change the source while a
	// copy is under way.
	gates map[string]chan struct{}
	snaps map[string]int // copies started, by table
}

type fakeTable struct {
	def  *lakelink.Table
	rows map[string][]lakelink.Value // by key text
}

type fakeEntry struct {
	c   lakelink.Change
	def *lakelink.Table // the definition the row follows
}

func newFakeSource() *fakeSource {
	return &fakeSource{tables: map[string]*fakeTable{}, notify: make(chan struct{})}
}

func (f *fakeSource) wake() {
	close(f.notify)
	f.notify = make(chan struct{})
}

func keyText(def *lakelink.Table, row []lakelink.Value) string {
	s := ""
	for _, k := range def.Key {
		s += fmt.Sprintf("%v|", row[k])
	}
	return s
}

func (f *fakeSource) createTable(def lakelink.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := def
	f.tables[def.Name] = &fakeTable{def: &d, rows: map[string][]lakelink.Value{}}
}

// apply runs one transaction of changes (OpInsert/OpUpdate/OpDelete with
// full rows).
func (f *fakeSource) apply(changes ...lakelink.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.pos + lakelink.Position(len(changes))
	for _, c := range changes {
		t := f.tables[c.Table]
		f.pos++
		c.Pos = f.pos
		if f.txnPos {
			c.Pos = end
		}
		row := append([]lakelink.Value(nil), c.Row...)
		c.Row = row
		k := keyText(t.def, row)
		switch c.Op {
		case lakelink.OpDelete:
			c.Row = t.rows[k]
			c.OldKnown = true
			delete(t.rows, k)
		default:
			t.rows[k] = row
		}
		f.log = append(f.log, fakeEntry{c: c, def: t.def})
	}
	f.log = append(f.log, fakeEntry{c: lakelink.Change{Op: lakelink.OpCommit, Pos: f.pos}})
	f.wake()
}

// truncate empties a table in one transaction of its own, as PostgreSQL's
// TRUNCATE does.
func (f *fakeSource) truncate(table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	t.rows = map[string][]lakelink.Value{}
	f.pos++
	f.log = append(f.log, fakeEntry{c: lakelink.Change{Op: lakelink.OpTruncate, Table: table, Pos: f.pos}, def: t.def})
	f.log = append(f.log, fakeEntry{c: lakelink.Change{Op: lakelink.OpCommit, Pos: f.pos}})
	f.wake()
}

// addColumn adds a column at the end (existing rows get NULL).
func (f *fakeSource) addColumn(table string, c lakelink.Column) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	d := *t.def
	d.Columns = append(append([]lakelink.Column(nil), d.Columns...), c)
	t.def = &d
	for k, r := range t.rows {
		t.rows[k] = append(r, nil)
	}
}

// dropColumn removes a column.
func (f *fakeSource) dropColumn(table, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	d := *t.def
	i := d.ColumnIndex(name)
	d.Columns = append(append([]lakelink.Column(nil), d.Columns[:i]...), d.Columns[i+1:]...)
	var key []int
	for _, k := range t.def.Key {
		if k > i {
			k--
		}
		key = append(key, k)
	}
	d.Key = key
	t.def = &d
	for k, r := range t.rows {
		t.rows[k] = append(append([]lakelink.Value(nil), r[:i]...), r[i+1:]...)
	}
	// Announce it at once, as the SQLite source does after re-installing
	// its tracking.
	f.log = append(f.log, fakeEntry{c: lakelink.Change{Op: lakelink.OpSchema, Table: table, Pos: f.pos, Schema: &d}, def: &d})
	f.wake()
}

func (f *fakeSource) current(table string) (lakelink.Table, [][]lakelink.Value) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	var rows [][]lakelink.Value
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	return *t.def, rows
}

func (f *fakeSource) Tables(ctx context.Context) ([]lakelink.TableInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lakelink.TableInfo
	for _, t := range f.tables {
		out = append(out, lakelink.TableInfo{Table: *t.def, Linkable: len(t.def.Key) > 0, Reason: "no key"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeSource) Track(ctx context.Context, link string, tables []string) error { return nil }

func (f *fakeSource) Snapshot(ctx context.Context, link, table string) (lakelink.Snapshot, error) {
	def, rows := f.current(table)
	f.mu.Lock()
	pos := f.pos
	gate := f.gates[table]
	if f.snaps == nil {
		f.snaps = map[string]int{}
	}
	f.snaps[table]++
	f.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return keyText(&def, rows[i]) < keyText(&def, rows[j]) })
	return &fakeSnapshot{def: def, rows: rows, pos: pos, gate: gate}, nil
}

func (f *fakeSource) Stream(ctx context.Context, link string, from lakelink.Position) (lakelink.Stream, error) {
	return &fakeStream{f: f, from: from, announced: map[string]*lakelink.Table{}}, nil
}

func (f *fakeSource) Untrack(ctx context.Context, link string, tables []string) error { return nil }
func (f *fakeSource) Close() error                                                    { return nil }

type fakeSnapshot struct {
	def  lakelink.Table
	rows [][]lakelink.Value
	pos  lakelink.Position
	i    int
	gate chan struct{}
}

func (s *fakeSnapshot) Table() lakelink.Table       { return s.def }
func (s *fakeSnapshot) Position() lakelink.Position { return s.pos }
func (s *fakeSnapshot) Close() error                { return nil }
func (s *fakeSnapshot) Next() ([]lakelink.Value, error) {
	if s.i >= len(s.rows) {
		return nil, io.EOF
	}
	if s.i == 1 && s.gate != nil {
		<-s.gate
	}
	s.i++
	return s.rows[s.i-1], nil
}

type fakeStream struct {
	f         *fakeSource
	from      lakelink.Position
	i         int
	announced map[string]*lakelink.Table
	pending   []lakelink.Change
}

func (s *fakeStream) Next(ctx context.Context) (lakelink.Change, error) {
	for {
		if len(s.pending) > 0 {
			c := s.pending[0]
			s.pending = s.pending[1:]
			return c, nil
		}
		s.f.mu.Lock()
		for s.i < len(s.f.log) {
			e := s.f.log[s.i]
			s.i++
			if e.c.Op == lakelink.OpSchema {
				if e.c.Pos >= s.from {
					s.announced[e.c.Table] = e.def
					s.pending = append(s.pending, e.c)
				}
				continue
			}
			if e.c.Pos <= s.from {
				continue
			}
			if e.c.Op != lakelink.OpCommit && s.announced[e.c.Table] != e.def {
				s.announced[e.c.Table] = e.def
				s.pending = append(s.pending, lakelink.Change{Op: lakelink.OpSchema, Table: e.c.Table, Pos: e.c.Pos, Schema: e.def})
			}
			s.pending = append(s.pending, e.c)
			break
		}
		wait := s.f.notify
		s.f.mu.Unlock()
		if len(s.pending) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return lakelink.Change{}, ctx.Err()
		case <-wait:
		}
	}
}

func (s *fakeStream) Ack(ctx context.Context, pos lakelink.Position) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if pos < s.f.acked {
		return fmt.Errorf("ack went back from %d to %d", s.f.acked, pos)
	}
	s.f.acked = pos
	return nil
}

func (s *fakeStream) Close() error { return nil }
