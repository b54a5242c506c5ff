package tests

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink/tests/lakecheck"
)

// problems collects one-line differences and reports the first few.
type problems struct {
	t    testing.TB
	what string
	list []string
	n    int
}

func (p *problems) add(format string, args ...any) {
	p.n++
	if len(p.list) < 12 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// report fails the test with the differences found, if any.
func (p *problems) report() {
	p.t.Helper()
	for _, s := range p.list {
		p.t.Errorf("%s: %s", p.what, s)
	}
	if p.n > len(p.list) {
		p.t.Errorf("%s: … and %d more differences", p.what, p.n-len(p.list))
	}
}

var sinkTimeRE = regexp.MustCompile(`^(1[0-2]|[1-9])/([1-9]|[12][0-9]|3[01])/[0-9]{4} (1[0-2]|[1-9]):[0-5][0-9]:[0-5][0-9] (AM|PM)$`)

// lakeTable is an entity of model.json with the mapping of the test
// table's columns to its attributes.
type lakeTable struct {
	td    *tableDef
	e     *lakecheck.Entity
	attrs []string // attribute of each td column
	kinds []lakecheck.Kind
}

// openLakeTable reads model.json and checks the entity's attributes: Id,
// SinkCreatedOn, SinkModifiedOn, the columns in source order (a name that
// collides with a system attribute gets underscores), versionnumber,
// IsDelete, each with its data type.
func openLakeTable(t testing.TB, lake string, td *tableDef, writeMode, granularity string) *lakeTable {
	t.Helper()
	m, _ := lakecheck.ReadModel(t, lake)
	e := m.Entity(td.folder())
	if e == nil {
		t.Fatalf("%s: model.json has no entity %q", lake, td.folder())
	}
	lt := &lakeTable{td: td, e: e, kinds: td.kinds()}
	names := e.AttributeNames()
	if len(names) != len(td.cols)+5 {
		t.Fatalf("entity %s: attributes %v, want %d", e.Name, names, len(td.cols)+5)
	}
	want := []string{"Id", "SinkCreatedOn", "SinkModifiedOn"}
	system := map[string]bool{"id": true, "sinkcreatedon": true, "sinkmodifiedon": true, "versionnumber": true, "isdelete": true}
	for i, c := range td.cols {
		name := c.name
		for system[strings.ToLower(name)] {
			name += "_"
		}
		want = append(want, name)
		lt.attrs = append(lt.attrs, name)
		if got := e.Attributes[3+i].DataType; got != lt.kinds[i].DataType() {
			t.Errorf("entity %s attribute %s: dataType %q, want %q", e.Name, name, got, lt.kinds[i].DataType())
		}
	}
	want = append(want, "versionnumber", "IsDelete")
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("entity %s: attributes %q, want %q", e.Name, names, want)
	}
	if got := e.Annotation("lakelink:WriteMode"); got != writeMode {
		t.Errorf("entity %s: lakelink:WriteMode %q, want %q", e.Name, got, writeMode)
	}
	if got := e.Annotation("Athena:PartitionGranularity"); got != granularity {
		t.Errorf("entity %s: Athena:PartitionGranularity %q, want %q", e.Name, got, granularity)
	}
	if got := e.Annotation("Athena:InitialSyncState"); got != "Completed" {
		t.Errorf("entity %s: Athena:InitialSyncState %q, want Completed", e.Name, got)
	}
	return lt
}

// expectedPartition is the partition a row belongs to by its createdOn.
func (lt *lakeTable) expectedPartition(row []any) (string, error) {
	td := lt.td
	if td.createdOn == "" {
		return "", nil
	}
	v := row[td.colIndex(td.createdOn)]
	if v == nil {
		return "1900", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("createdOn %v is not text", v)
	}
	tm, err := lakecheck.ParseSQLiteTime(s)
	if err != nil {
		return "", err
	}
	if td.month {
		return tm.Format("2006-01"), nil
	}
	return tm.Format("2006"), nil
}

// checkCommon checks what every record holds regardless of mode: the sink
// times' format and order, a numeric versionnumber, and the Id matching the
// key columns. It returns the record's canonical key and version.
func (lt *lakeTable) checkCommon(p *problems, r lakecheck.Record, since time.Time) (string, uint64) {
	id := r.Get("Id")
	key, err := lakecheck.IDKey(id, len(lt.td.key) > 1)
	if err != nil {
		p.add("%s: %v", r.File, err)
		return "", 0
	}
	var sink [2]time.Time
	for i, a := range []string{"SinkCreatedOn", "SinkModifiedOn"} {
		f := r.Get(a)
		if !f.Quoted || !sinkTimeRE.MatchString(f.Text) {
			p.add("key %s %s: %s is not a quoted M/d/yyyy h:mm:ss AM|PM", shorten(key, 40), a, f)
			continue
		}
		tm, err := time.Parse("1/2/2006 3:04:05 PM", f.Text)
		if err != nil || tm.Before(since.Add(-2*time.Second).Truncate(time.Second)) || tm.After(time.Now().Add(2*time.Second)) {
			p.add("key %s %s: %s not between the test's start and now", shorten(key, 40), a, f)
		}
		sink[i] = tm
	}
	if sink[1].Before(sink[0]) {
		p.add("key %s: SinkModifiedOn %v before SinkCreatedOn %v", shorten(key, 40), sink[1], sink[0])
	}
	vf := r.Get("versionnumber")
	v, err := strconv.ParseUint(vf.Text, 10, 64)
	if err != nil || vf.Quoted {
		p.add("key %s: versionnumber %s is not an unquoted integer", shorten(key, 40), vf)
	}
	return key, v
}

// compareRow compares a record's column fields with a source row.
func (lt *lakeTable) compareRow(p *problems, key string, r lakecheck.Record, row []any, orNull bool) {
	for i, a := range lt.attrs {
		want, err := lakecheck.Encode(lt.kinds[i], row[i])
		if err != nil {
			p.add("key %s attr %s: source value can't be encoded: %v", shorten(key, 40), a, err)
			continue
		}
		got := r.Get(a)
		if got != want && !(orNull && got.Null()) {
			p.add("key %s attr %s: got %s, want %s", shorten(key, 40), a, got, want)
		}
	}
	if len(lt.td.key) == 1 {
		ki := lt.td.keyIdx()[0]
		want, _ := lakecheck.Encode(lt.kinds[ki], row[ki])
		if got := r.Get("Id"); got != want {
			p.add("key %s: Id %s, want %s", shorten(key, 40), got, want)
		}
	}
}

// checkInPlace checks G1 for an in-place table: the lake's live rows are
// exactly the source's rows, each in the partition of its createdOn, and
// the Snapshot files model.json names hold the same rows.
func checkInPlace(t testing.TB, lake string, td *tableDef, src map[string][]any, since time.Time) {
	t.Helper()
	lt := openLakeTable(t, lake, td, "InPlaceUpdate", granularityOf(td))
	p := &problems{t: t, what: fmt.Sprintf("%s (in place, %s)", td.name, lake)}
	common := func(r lakecheck.Record) string { key, _ := lt.checkCommon(p, r, since); return key }
	recs := checkLiveRows(t, p, lake, td.name, lt.e, src, common, func(key string, r lakecheck.Record, row []any) {
		lt.compareRow(p, key, r, row, false)
		if part, err := lt.expectedPartition(row); err != nil {
			p.add("key %s: %v", shorten(key, 40), err)
		} else if part != "" && r.File != part+".csv" {
			p.add("key %s: in %s, want partition %s", shorten(key, 40), r.File, part)
		}
	})
	p.report()
	checkSnapshotMatchesLive(t, lt, recs)
	t.Logf("%s in place (%s): %d rows match the source", td.name, lake, len(recs))
}

// checkAppendOnly checks G1 for an append-only table: its records are the
// initial copy (versionnumber at or before the copy's position) of the
// table as it stood after some prefix of the changes, followed, in
// versionnumber order, by exactly the rest of the changes: none missing,
// none twice.
func checkAppendOnly(t testing.TB, lake string, td *tableDef, changes []change, since time.Time) {
	t.Helper()
	lt := openLakeTable(t, lake, td, "AppendOnly", granularityOf(td))
	p := &problems{t: t, what: fmt.Sprintf("%s (append only, %s)", td.name, lake)}
	copied, streamed, recs := splitAppendOnly(t, lake, td.name, lt.e, func(r lakecheck.Record) (string, uint64) { return lt.checkCommon(p, r, since) })
	for i := 1; i < len(streamed); i++ {
		if streamed[i].v == streamed[i-1].v {
			p.add("versionnumber %d used by two records (keys %s and %s)", streamed[i].v, shorten(streamed[i-1].key, 30), shorten(streamed[i].key, 30))
		}
	}
	k := len(changes) - len(streamed)
	if k < 0 {
		p.add("the lake holds %d change records after the copy, the workload made only %d changes", len(streamed), len(changes))
		p.report()
		t.FailNow()
	}
	// The copy: the table after changes[:k].
	state := map[string][]any{}
	for _, c := range changes[:k] {
		if c.del {
			delete(state, c.key)
		} else {
			state[c.key] = c.row
		}
	}
	seen := map[string]bool{}
	for _, c := range copied {
		if seen[c.key] {
			p.add("copy: key %s twice", shorten(c.key, 40))
			continue
		}
		seen[c.key] = true
		if f := c.r.Get("IsDelete"); !f.Null() {
			p.add("copy: key %s: IsDelete %s", shorten(c.key, 40), f)
		}
		row, ok := state[c.key]
		if !ok {
			p.add("copy: key %s in the lake's copy but not in the table after the first %d of %d changes", shorten(c.key, 40), k, len(changes))
			continue
		}
		lt.compareRow(p, c.key, c.r, row, false)
	}
	for key := range state {
		if !seen[key] {
			p.add("copy: key %s missing (table after the first %d of %d changes; %d change records after the copy)", shorten(key, 40), k, len(changes), len(streamed))
		}
	}
	for i, s := range streamed {
		c := changes[k+i]
		if s.key != c.key {
			p.add("change %d of %d (versionnumber %d): key %s, want %s", k+i+1, len(changes), s.v, shorten(s.key, 40), shorten(c.key, 40))
			continue
		}
		del := s.r.Get("IsDelete")
		switch {
		case c.del && (del.Text != "True" || del.Quoted):
			p.add("change %d key %s: IsDelete %s, want True (a delete)", k+i+1, shorten(c.key, 40), del)
		case !c.del && !del.Null():
			p.add("change %d key %s: IsDelete %s, want NULL", k+i+1, shorten(c.key, 40), del)
		}
		if c.row != nil {
			// A delete's columns may be empty or the old values.
			lt.compareRow(p, c.key, s.r, c.row, c.del)
		}
		if !c.del {
			if part, err := lt.expectedPartition(c.row); err == nil && part != "" && s.r.File != part+".csv" {
				p.add("change %d key %s: in %s, want partition %s", k+i+1, shorten(c.key, 40), s.r.File, part)
			}
		}
		if td.createdOn == "" && !regexp.MustCompile(`^[1-9][0-9]*\.csv$`).MatchString(s.r.File) {
			p.add("change %d key %s: in %s, want a numbered partition", k+i+1, shorten(c.key, 40), s.r.File)
		}
	}
	p.report()
	checkSnapshotMatchesLive(t, lt, recs)
	t.Logf("%s append only (%s): %d copied rows + %d change records match the workload's %d changes", td.name, lake, len(copied), len(streamed), len(changes))
}

func granularityOf(td *tableDef) string {
	switch {
	case td.createdOn == "":
		return "None"
	case td.month:
		return "Month"
	}
	return "Year"
}

// checkSnapshotMatchesLive checks that the Snapshot files model.json names
// hold exactly the live files' records (after --once, which snapshots).
func checkSnapshotMatchesLive(t testing.TB, lt *lakeTable, live []lakecheck.Record) {
	t.Helper()
	snap, err := lakecheck.ReadSnapshot(lt.e)
	if err != nil {
		t.Errorf("%s: snapshot: %v", lt.e.Name, err)
		return
	}
	count := func(recs []lakecheck.Record) map[string]int {
		m := map[string]int{}
		names := lt.e.AttributeNames()
		for _, r := range recs {
			var b strings.Builder
			for _, a := range names {
				f := r.Get(a)
				b.WriteString(strconv.FormatBool(f.Quoted) + ":" + f.Text)
				b.WriteByte(0)
			}
			m[b.String()]++
		}
		return m
	}
	a, b := count(live), count(snap)
	diff := 0
	for k, n := range a {
		if b[k] != n {
			diff++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff++
		}
	}
	if diff > 0 || len(live) != len(snap) {
		t.Errorf("%s: the Snapshot files model.json names hold %d records, the live files %d; %d differ", lt.e.Name, len(snap), len(live), diff)
	}
}

// appendRecord is one record of an append-only table.
type appendRecord struct {
	key string
	v   uint64 // versionnumber
	r   lakecheck.Record
}

// splitAppendOnly reads the live records of an append-only table and
// splits them into those of the initial copy (versionnumber at or before
// the copy's position) and the streamed ones, sorted by versionnumber.
// common checks a record's system fields and returns its key ("" to skip
// it) and versionnumber. all is every record read.
func splitAppendOnly(t testing.TB, lake, table string, e *lakecheck.Entity, common func(lakecheck.Record) (string, uint64)) (copied, streamed []appendRecord, all []lakecheck.Record) {
	t.Helper()
	ts := readState(t, lake).Tables[table]
	if ts == nil {
		t.Fatalf("%s: lake state has no table %q", lake, table)
	}
	all, err := lakecheck.ReadLive(lake, e)
	if err != nil {
		t.Fatalf("%s append only: %v", table, err)
	}
	for _, r := range all {
		key, v := common(r)
		if key == "" {
			continue
		}
		if v <= uint64(ts.CopyPosition) {
			copied = append(copied, appendRecord{key, v, r})
		} else {
			streamed = append(streamed, appendRecord{key, v, r})
		}
	}
	sort.SliceStable(streamed, func(i, j int) bool { return streamed[i].v < streamed[j].v })
	return copied, streamed, all
}

// checkLiveRows is what checkInPlace and pgCheckInPlace share: it reads an
// in-place table's live records and reports, through p, a record whose
// system fields common rejects (it returns "" for them), a key held twice,
// IsDelete set, a key in the lake but not in src, and a key of src missing
// from the lake; every other record goes to check with its source row. It
// returns the records read.
func checkLiveRows[R any](t testing.TB, p *problems, lake, table string, e *lakecheck.Entity, src map[string]R, common func(lakecheck.Record) string, check func(key string, r lakecheck.Record, row R)) []lakecheck.Record {
	t.Helper()
	recs, err := lakecheck.ReadLive(lake, e)
	if err != nil {
		t.Fatalf("%s in place: %v", table, err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		key := common(r)
		if key == "" {
			continue
		}
		if seen[key] {
			p.add("key %s: more than one live row", shorten(key, 40))
			continue
		}
		seen[key] = true
		if f := r.Get("IsDelete"); !f.Null() {
			p.add("key %s: IsDelete %s in an in-place table", shorten(key, 40), f)
		}
		row, ok := src[key]
		if !ok {
			p.add("key %s: in the lake (%s) but not in the source", shorten(key, 40), r.File)
			continue
		}
		check(key, r, row)
	}
	for key := range src {
		if !seen[key] {
			p.add("key %s: in the source but not in the lake", shorten(key, 40))
		}
	}
	return recs
}
