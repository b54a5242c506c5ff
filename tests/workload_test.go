package tests

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakelink/lakelink/tests/lakecheck"
)

// col is one column of a test table.
type col struct {
	name string
	decl string
	gen  func(g *gen) any // a fresh value (nil for NULL)
}

// tableDef is a test table: its columns, key and createdOn column.
type tableDef struct {
	name      string
	cols      []col
	key       []string // key columns, in key order
	createdOn string   // "" for none
	month     bool     // partitioned by month
	newKey    func(g *gen) []any
	record    bool // keep every change (for append-only comparisons)
}

func (td *tableDef) kinds() []lakecheck.Kind {
	ks := make([]lakecheck.Kind, len(td.cols))
	for i, c := range td.cols {
		ks[i] = lakecheck.KindOf(c.decl)
	}
	return ks
}

func (td *tableDef) colIndex(name string) int {
	for i, c := range td.cols {
		if c.name == name {
			return i
		}
	}
	panic("no column " + name)
}

func (td *tableDef) keyIdx() []int {
	idx := make([]int, len(td.key))
	for i, k := range td.key {
		idx[i] = td.colIndex(k)
	}
	return idx
}

// folder is the table's folder and entity name in the lake.
func (td *tableDef) folder() string { return strings.ToLower(td.name) }

func qi(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// ddl returns the table's CREATE TABLE statement.
func (td *tableDef) ddl() string {
	var parts []string
	for _, c := range td.cols {
		parts = append(parts, strings.TrimSpace(qi(c.name)+" "+c.decl))
	}
	keys := make([]string, len(td.key))
	for i, k := range td.key {
		keys[i] = qi(k)
	}
	parts = append(parts, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	return "CREATE TABLE " + qi(td.name) + " (" + strings.Join(parts, ", ") + ")"
}

// selectList is "typeof(c), +c, ..." for every column: the unary plus keeps
// the driver from turning DATETIME text into time.Time.
func (td *tableDef) selectList() string {
	var s []string
	for _, c := range td.cols {
		s = append(s, "typeof("+qi(c.name)+"), +"+qi(c.name))
	}
	return strings.Join(s, ", ")
}

func (td *tableDef) keyWhere() string {
	var s []string
	for _, k := range td.key {
		s = append(s, qi(k)+" = ?")
	}
	return strings.Join(s, " AND ")
}

// scanRow scans a selectList row into stored values.
func (td *tableDef) scanRow(sc interface{ Scan(...any) error }) ([]any, error) {
	types := make([]string, len(td.cols))
	vals := make([]any, len(td.cols))
	dest := make([]any, 0, 2*len(td.cols))
	for i := range td.cols {
		dest = append(dest, &types[i], &vals[i])
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	for i, ty := range types {
		switch ty {
		case "null":
			vals[i] = nil
		case "blob":
			b, _ := vals[i].([]byte)
			vals[i] = append([]byte{}, b...)
		case "text":
			switch x := vals[i].(type) {
			case []byte:
				vals[i] = string(x)
			case string:
			default:
				return nil, fmt.Errorf("column %s: text scanned as %T", td.cols[i].name, x)
			}
		case "integer":
			if _, ok := vals[i].(int64); !ok {
				return nil, fmt.Errorf("column %s: integer scanned as %T", td.cols[i].name, vals[i])
			}
		case "real":
			if _, ok := vals[i].(float64); !ok {
				return nil, fmt.Errorf("column %s: real scanned as %T", td.cols[i].name, vals[i])
			}
		}
	}
	return vals, nil
}

// keyOf returns the canonical key of a row.
func (td *tableDef) keyOf(row []any) string {
	ks := td.kinds()
	var kk []lakecheck.Kind
	var kv []any
	for _, i := range td.keyIdx() {
		kk = append(kk, ks[i])
		kv = append(kv, row[i])
	}
	k, err := lakecheck.KeyOf(kk, kv)
	if err != nil {
		panic(err)
	}
	return k
}

// readSource reads every row of the table straight from SQLite, by
// canonical key.
func readSource(t testing.TB, db *sql.DB, td *tableDef) map[string][]any {
	t.Helper()
	rows, err := db.Query("SELECT " + td.selectList() + " FROM " + qi(td.name))
	if err != nil {
		t.Fatalf("read %s: %v", td.name, err)
	}
	defer rows.Close()
	out := map[string][]any{}
	for rows.Next() {
		row, err := td.scanRow(rows)
		if err != nil {
			t.Fatalf("read %s: %v", td.name, err)
		}
		out[td.keyOf(row)] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", td.name, err)
	}
	return out
}

// gen makes adversarial values.
type gen struct {
	r       *rand.Rand
	big     string // a 1 MiB text
	bigLeft int    // how many more times the 1 MiB text may be used
	counter int64
}

func newGen(seed int64) *gen {
	g := &gen{r: rand.New(rand.NewSource(seed)), bigLeft: 4}
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString(g.randText(64))
	}
	g.big = b.String()[:1<<20]
	for !isRuneBoundary(g.big) {
		g.big = g.big[:len(g.big)-1]
	}
	return g
}

func isRuneBoundary(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s
}

var textPool = []string{
	"", " ", "  leading", "trailing  ", " both ", "a,b,c", `say "hi"`, `"`, `""`, `","`, "line1\nline2", "cr\ronly",
	"crlf\r\nend", "\n", "\r\n", "\ttab\tbed\t", "emoji 😀🎉 👩‍👩‍👧‍👦", "مرحبا بالعالم", "שלום עולם", "\u202Eevil\u202C right-to-left",
	"mixed עברית, English \"quoted\"\nand a newline", "NULL", "null", `\N`, `back\slash\`, "日本語テキスト", "=1+1", "ünïcødé Ω≈ç√",
	"\u2028line separator\u2029", "'single' quotes", ",", ",,", "\"\n\",\"",
}

var runePool = []rune("abcXYZ019 ,\"\r\n\t'éü😀שع\\;")

// randText is a random text of up to n runes from an adversarial alphabet.
func (g *gen) randText(n int) string {
	k := g.r.Intn(n + 1)
	var b strings.Builder
	for i := 0; i < k; i++ {
		b.WriteRune(runePool[g.r.Intn(len(runePool))])
	}
	return b.String()
}

func (g *gen) text() any {
	switch x := g.r.Intn(100); {
	case x < 8:
		return nil
	case x < 50:
		return textPool[g.r.Intn(len(textPool))]
	case x < 51 && g.bigLeft > 0:
		g.bigLeft--
		return g.big
	default:
		return g.randText(40)
	}
}

var intPool = []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1, 1<<53 + 1, -(1<<53 + 1), 42, 1 << 31, -1 << 31}

func (g *gen) integer() any {
	switch x := g.r.Intn(100); {
	case x < 8:
		return nil
	case x < 40:
		return intPool[g.r.Intn(len(intPool))]
	case x < 70:
		return g.r.Int63() - g.r.Int63()
	default:
		return int64(g.r.Intn(2000) - 1000)
	}
}

var floatPool = []float64{math.Copysign(0, -1), 0, 1e308, -1e308, 5e-324, -5e-324, math.MaxFloat64, math.SmallestNonzeroFloat64,
	0.1, 1.0 / 3, 2.5, 1e-7, 123456789.125, 3, -7, math.Inf(1), math.Inf(-1), 1e21, 1e20, 9007199254740993, 2.2250738585072014e-308}

func (g *gen) real() any {
	switch x := g.r.Intn(100); {
	case x < 8:
		return nil
	case x < 40:
		return floatPool[g.r.Intn(len(floatPool))]
	case x < 60:
		for {
			f := math.Float64frombits(g.r.Uint64())
			if !math.IsNaN(f) {
				return f
			}
		}
	default:
		return g.r.NormFloat64() * math.Pow(10, float64(g.r.Intn(20)-10))
	}
}

func (g *gen) blob() any {
	switch x := g.r.Intn(100); {
	case x < 8:
		return nil
	case x < 15:
		return []byte{}
	case x < 16:
		b := make([]byte, 70<<10)
		g.r.Read(b)
		return b
	default:
		b := make([]byte, 1+g.r.Intn(48))
		g.r.Read(b)
		return b
	}
}

func (g *gen) boolean() any {
	switch g.r.Intn(10) {
	case 0:
		return nil
	case 1, 2, 3, 4:
		return int64(0)
	default:
		return int64(1)
	}
}

func (g *gen) decimal() any {
	switch g.r.Intn(10) {
	case 0:
		return nil
	case 1, 2, 3:
		return g.r.Int63() - g.r.Int63()
	default:
		return float64(g.r.Intn(2000000)-1000000) / 8
	}
}

var timePool = []string{"2020-12-31 23:59:59.999", "2021-01-01 00:00:00", "2024-02-29 12:00:00", "1999-12-31 23:59:59", "2021-06-25T16:21:12Z", "2021-06-30 23:59:59.9999999"}

// datetime is a createdOn text across years 1999..2026, sometimes NULL.
func (g *gen) datetime() any {
	switch x := g.r.Intn(100); {
	case x < 7:
		return nil
	case x < 15:
		return timePool[g.r.Intn(len(timePool))]
	}
	t := time.Date(1999+g.r.Intn(28), time.Month(1+g.r.Intn(12)), 1+g.r.Intn(28), g.r.Intn(24), g.r.Intn(60), g.r.Intn(60), 0, time.UTC)
	switch g.r.Intn(3) {
	case 0:
		return t.Format("2006-01-02 15:04:05")
	case 1:
		return t.Add(time.Duration(g.r.Intn(1000)) * time.Millisecond).Format("2006-01-02 15:04:05.000")
	default:
		return t.Format("2006-01-02T15:04:05Z")
	}
}

// untyped is a value for a column with no declared type: integers,
// floats (-0.0 survives there, unlike in a REAL column) and text.
func (g *gen) untyped() any {
	switch g.r.Intn(6) {
	case 0:
		return nil
	case 1:
		return []float64{math.Copysign(0, -1), 1e308, 5e-324, 0.5, -2.25e-300}[g.r.Intn(5)]
	case 2:
		return intPool[g.r.Intn(len(intPool))]
	default:
		return g.text()
	}
}

func (g *gen) next() int64 { g.counter++; return g.counter }

// change is one row change the workload made, in commit order.
type change struct {
	del bool
	key string
	row []any // the row as stored after the change; for a delete, the old row
}

// tableLive is the workload's view of a table's current rows.
type tableLive struct {
	keys  []string
	index map[string]int
	rows  map[string][]any // only when the table is recorded
	keyOf map[string][]any // key values by canonical key
	log   []change
}

func (l *tableLive) add(key string, keyVals []any) {
	if _, ok := l.index[key]; ok {
		return
	}
	l.index[key] = len(l.keys)
	l.keys = append(l.keys, key)
	l.keyOf[key] = keyVals
}

func (l *tableLive) remove(key string) {
	i, ok := l.index[key]
	if !ok {
		return
	}
	last := l.keys[len(l.keys)-1]
	l.keys[i] = last
	l.index[last] = i
	l.keys = l.keys[:len(l.keys)-1]
	delete(l.index, key)
	delete(l.keyOf, key)
}

// workload makes random changes through one connection and records them.
type workload struct {
	db      *sql.DB
	g       *gen
	tables  []*tableDef
	live    map[string]*tableLive
	changes int // row changes committed (key changes count twice)
	busy    int // transactions retried
	shared  atomic.Int64
}

// changesSafe returns the changes committed so far; it may be called while
// the workload runs in another goroutine.
func (w *workload) changesSafe() int64 { return w.shared.Load() }

func newWorkload(db *sql.DB, g *gen, tables ...*tableDef) *workload {
	w := &workload{db: db, g: g, tables: tables, live: map[string]*tableLive{}}
	for _, td := range tables {
		w.live[td.name] = &tableLive{index: map[string]int{}, rows: map[string][]any{}, keyOf: map[string][]any{}}
	}
	return w
}

// undo is how to take back one in-memory effect of a rolled-back
// transaction.
type undo func()

// tx runs one transaction of n random changes on the given tables (all of
// the workload's tables when nil). On a failed commit the transaction is
// rolled back and its effects forgotten, and the error returned.
func (w *workload) tx(ctx context.Context, n int, only []*tableDef, insertOnly bool) error {
	tables := only
	if tables == nil {
		tables = w.tables
	}
	sqlTx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var undos []undo
	logLens := map[string]int{}
	for _, td := range w.tables {
		logLens[td.name] = len(w.live[td.name].log)
	}
	made := 0
	rollback := func(err error) error {
		_ = sqlTx.Rollback()
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
		for name, n := range logLens {
			w.live[name].log = w.live[name].log[:n]
		}
		return err
	}
	for i := 0; i < n; i++ {
		td := tables[w.g.r.Intn(len(tables))]
		k, u, err := w.op(sqlTx, td, insertOnly)
		if err != nil {
			return rollback(fmt.Errorf("table %s: %w", td.name, err))
		}
		undos = append(undos, u...)
		made += k
	}
	if err := sqlTx.Commit(); err != nil {
		return rollback(err)
	}
	w.changes += made
	w.shared.Store(int64(w.changes))
	return nil
}

// op makes one random change to td and returns how many row changes it
// made.
func (w *workload) op(tx *sql.Tx, td *tableDef, insertOnly bool) (int, []undo, error) {
	l := w.live[td.name]
	g := w.g
	x := g.r.Intn(100)
	if insertOnly || len(l.keys) < 20 {
		x = 0
	}
	switch {
	case x < 45: // insert
		row := make([]any, len(td.cols))
		for i, c := range td.cols {
			if c.gen != nil {
				row[i] = c.gen(g)
			}
		}
		kv := td.newKey(g)
		for j, ki := range td.keyIdx() {
			row[ki] = kv[j]
		}
		return w.insert(tx, td, row, "INSERT")
	case x < 75: // update some non-key columns
		key := l.keys[g.r.Intn(len(l.keys))]
		var sets []string
		var args []any
		isKey := map[string]bool{}
		for _, k := range td.key {
			isKey[k] = true
		}
		for _, c := range td.cols {
			if !isKey[c.name] && (g.r.Intn(2) == 0 || len(sets) == 0) {
				sets = append(sets, qi(c.name)+" = ?")
				args = append(args, c.gen(g))
			}
		}
		args = append(args, l.keyOf[key]...)
		if _, err := tx.Exec("UPDATE "+qi(td.name)+" SET "+strings.Join(sets, ", ")+" WHERE "+td.keyWhere(), args...); err != nil {
			return 0, nil, err
		}
		return w.recordUpsert(tx, td, l.keyOf[key])
	case x < 90: // delete
		key := l.keys[g.r.Intn(len(l.keys))]
		return w.delete(tx, td, key)
	case x < 94: // change the key: a delete of the old key, then the new row
		key := l.keys[g.r.Intn(len(l.keys))]
		kv := td.newKey(g)
		old := append([]any(nil), l.keyOf[key]...)
		var sets []string
		for _, k := range td.key {
			sets = append(sets, qi(k)+" = ?")
		}
		n1, u1 := w.noteDelete(td, key)
		if _, err := tx.Exec("UPDATE "+qi(td.name)+" SET "+strings.Join(sets, ", ")+" WHERE "+td.keyWhere(), append(kv, old...)...); err != nil {
			return 0, u1, err
		}
		n2, u2, err := w.recordUpsert(tx, td, kv)
		return n1 + n2, append(u1, u2...), err
	default: // replace a row by its key (INSERT OR REPLACE): a delete, then the new row
		key := l.keys[g.r.Intn(len(l.keys))]
		row := make([]any, len(td.cols))
		for i, c := range td.cols {
			if c.gen != nil {
				row[i] = c.gen(g)
			}
		}
		for j, ki := range td.keyIdx() {
			row[ki] = l.keyOf[key][j]
		}
		// SQLite deletes the old row and inserts the new one; lakelink
		// exports exactly that: a delete, then an insert.
		n1, u1 := w.noteDelete(td, key)
		n2, u2, err := w.insert(tx, td, row, "INSERT OR REPLACE")
		return n1 + n2, append(u1, u2...), err
	}
}

func (w *workload) insert(tx *sql.Tx, td *tableDef, row []any, verb string) (int, []undo, error) {
	names := make([]string, len(td.cols))
	marks := make([]string, len(td.cols))
	for i, c := range td.cols {
		names[i], marks[i] = qi(c.name), "?"
	}
	if _, err := tx.Exec(verb+" INTO "+qi(td.name)+" ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(marks, ", ")+")", row...); err != nil {
		return 0, nil, err
	}
	var kv []any
	for _, ki := range td.keyIdx() {
		kv = append(kv, row[ki])
	}
	return w.recordUpsert(tx, td, kv)
}

// recordUpsert reads the row back as stored and records it.
func (w *workload) recordUpsert(tx *sql.Tx, td *tableDef, keyVals []any) (int, []undo, error) {
	l := w.live[td.name]
	row, err := td.scanRow(tx.QueryRow("SELECT "+td.selectList()+" FROM "+qi(td.name)+" WHERE "+td.keyWhere(), keyVals...))
	if err != nil {
		return 0, nil, fmt.Errorf("read back: %w", err)
	}
	key := td.keyOf(row)
	_, existed := l.index[key]
	oldRow := l.rows[key]
	l.add(key, keyVals)
	if td.record {
		l.rows[key] = row
		l.log = append(l.log, change{key: key, row: row})
	}
	return 1, []undo{func() {
		if existed {
			l.rows[key] = oldRow
			return
		}
		l.remove(key)
		delete(l.rows, key)
	}}, nil
}

func (w *workload) delete(tx *sql.Tx, td *tableDef, key string) (int, []undo, error) {
	l := w.live[td.name]
	kv := l.keyOf[key]
	if _, err := tx.Exec("DELETE FROM "+qi(td.name)+" WHERE "+td.keyWhere(), kv...); err != nil {
		return 0, nil, err
	}
	n, u := w.noteDelete(td, key)
	return n, u, nil
}

func (w *workload) noteDelete(td *tableDef, key string) (int, []undo) {
	l := w.live[td.name]
	kv := l.keyOf[key]
	oldRow := l.rows[key]
	if td.record {
		l.log = append(l.log, change{del: true, key: key, row: oldRow})
		delete(l.rows, key)
	}
	l.remove(key)
	return 1, []undo{func() {
		l.add(key, kv)
		if td.record {
			l.rows[key] = oldRow
		}
	}}
}

// runTx runs transactions of 1..maxN changes, retrying ones that failed on
// a busy database, until the workload has made target changes or ctx ends.
func (w *workload) run(ctx context.Context, target, maxN int, pause time.Duration) error {
	for w.changes < target && ctx.Err() == nil {
		if err := w.tx(ctx, 1+w.g.r.Intn(maxN), nil, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isBusy(err) {
				w.busy++
				continue
			}
			return err
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// background runs the workload (w.run without a target) in a goroutine
// until the returned stop is called; stop waits for it and returns its
// error. Cleanup stops it too. w must not be used meanwhile but through
// changesSafe.
func (w *workload) background(t testing.TB, ctx context.Context, maxN int, pause time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = w.run(ctx, 1<<62, maxN, pause)
	}()
	var once sync.Once
	stop = func() error {
		once.Do(func() { cancel(); wg.Wait() })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func isBusy(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked") || strings.Contains(s, "(5)") || strings.Contains(s, "(517)")
}

// intKey makes unique integer keys, some at the int64 limits.
func intKey(g *gen) []any {
	switch g.r.Intn(400) {
	case 0:
		return []any{int64(math.MinInt64) + g.next()}
	case 1:
		return []any{int64(math.MaxInt64) - g.next()}
	}
	return []any{g.next()}
}

var keyTexts = []string{"plain", "with,comma", `with "quote"`, "new\nline", "emoji😀", "שלום", " space ", "", `back\slash`, "tab\t", "\u2028"}

// textKey makes unique adversarial text keys.
func textKey(g *gen) []any {
	return []any{keyTexts[g.r.Intn(len(keyTexts))] + "#" + strconv.FormatInt(g.next(), 10)}
}

// regionSeqKey makes composite (text, integer) keys.
func regionSeqKey(g *gen) []any {
	return []any{keyTexts[g.r.Intn(len(keyTexts))], g.next()}
}

func genText(g *gen) any     { return g.text() }
func genInt(g *gen) any      { return g.integer() }
func genReal(g *gen) any     { return g.real() }
func genBlob(g *gen) any     { return g.blob() }
func genBool(g *gen) any     { return g.boolean() }
func genDecimal(g *gen) any  { return g.decimal() }
func genDateTime(g *gen) any { return g.datetime() }
func genUntyped(g *gen) any  { return g.untyped() }
