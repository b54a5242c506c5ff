package tests

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/tests/lakecheck"
)

// This file holds the PostgreSQL side of the end-to-end tests: a database
// per test, tables of PostgreSQL types, a writer that makes seeded random
// changes through its own connection and records them, and G1 checks that
// compare the lake (read with lakecheck) with the source's rows or with the
// recorded changes. Values travel as PostgreSQL's own text form (every
// column is read as col::text with TimeZone UTC); pgExpect turns that text
// into the CSV field LAKE-FORMAT.md prescribes.

// pgKind is the PostgreSQL type of a test column, as far as the expected
// lake text depends on it.
type pgKind int

const (
	pgInt8        pgKind = iota // int8: bare digits
	pgNumeric                   // numeric, numeric(p,s): bare, PostgreSQL's digits
	pgText                      // text: quoted
	pgTimestamptz               // timestamptz: quoted 2021-06-25T16:21:12.1234560+00:00
	pgBytea                     // bytea: quoted base64
	pgJSONB                     // jsonb: quoted, as PostgreSQL prints it
	pgIntArray                  // int[] (one dimension): quoted JSON array
)

// dataType is the CDM dataType of the kind.
func (k pgKind) dataType() string {
	return [...]string{pgInt8: "int64", pgNumeric: "decimal", pgText: "string", pgTimestamptz: "dateTimeOffset", pgBytea: "string", pgJSONB: "json", pgIntArray: "json"}[k]
}

// pgCol is a column of a PostgreSQL test table; gen makes a value as
// PostgreSQL input text, or nil for NULL.
type pgCol struct {
	name string
	typ  string // SQL type
	kind pgKind
	gen  func(g *gen) any
}

// pgTable is a PostgreSQL test table with a one-column primary key (the
// first column).
type pgTable struct {
	name      string
	cols      []pgCol
	createdOn string // "" for none
	newKey    func(g *gen) string
	record    bool // the writer logs every change (for append-only checks)
}

func (td *pgTable) ddl() string {
	parts := make([]string, len(td.cols))
	for i, c := range td.cols {
		parts[i] = qi(c.name) + " " + c.typ
	}
	return "CREATE TABLE " + qi(td.name) + " (" + strings.Join(parts, ", ") + ", PRIMARY KEY (" + qi(td.cols[0].name) + "))"
}

// textList is "c1::text, c2::text, ...".
func (td *pgTable) textList() string {
	s := make([]string, len(td.cols))
	for i, c := range td.cols {
		s[i] = qi(c.name) + "::text"
	}
	return strings.Join(s, ", ")
}

func (td *pgTable) colIndex(name string) int {
	for i, c := range td.cols {
		if c.name == name {
			return i
		}
	}
	panic("no column " + name)
}

// pgRow is a row as PostgreSQL prints it: nil or string per column.
type pgRow []any

// scanText scans a row of textList into a pgRow.
func scanText(rows interface{ Scan(...any) error }, n int) (pgRow, error) {
	vals := make([]*string, n)
	dest := make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	row := make(pgRow, n)
	for i, v := range vals {
		if v != nil {
			row[i] = *v
		}
	}
	return row, nil
}

// pgExpect is the CSV field LAKE-FORMAT.md prescribes for a value given as
// PostgreSQL's text (TimeZone UTC, bytea_output hex).
func pgExpect(k pgKind, v any) (lakecheck.Field, error) {
	if v == nil {
		return lakecheck.Null, nil
	}
	s := v.(string)
	switch k {
	case pgInt8, pgNumeric:
		return lakecheck.Field{Text: s}, nil
	case pgText, pgJSONB:
		return lakecheck.Field{Text: s, Quoted: true}, nil
	case pgBytea:
		if !strings.HasPrefix(s, `\x`) {
			return lakecheck.Null, fmt.Errorf("bytea text %q is not hex", shorten(s, 40))
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return lakecheck.Null, fmt.Errorf("bytea text %q: %v", shorten(s, 40), err)
		}
		return lakecheck.Field{Text: base64.StdEncoding.EncodeToString(b), Quoted: true}, nil
	case pgIntArray:
		// {1,NULL,-3} is [1,null,-3]; {} is [].
		inner, ok := strings.CutPrefix(s, "{")
		if inner, ok = strings.CutSuffix(inner, "}"); !ok {
			return lakecheck.Null, fmt.Errorf("int[] text %q is not one dimension", s)
		}
		var elems []string
		if inner != "" {
			elems = strings.Split(inner, ",")
		}
		for i, e := range elems {
			if e == "NULL" {
				elems[i] = "null"
			}
		}
		return lakecheck.Field{Text: "[" + strings.Join(elems, ",") + "]", Quoted: true}, nil
	case pgTimestamptz:
		tm, err := parsePGTimestamptz(s)
		if err != nil {
			return lakecheck.Null, err
		}
		return lakecheck.Field{Text: fmt.Sprintf("%s.%07d+00:00", tm.Format("2006-01-02T15:04:05"), tm.Nanosecond()/100), Quoted: true}, nil
	}
	return lakecheck.Null, fmt.Errorf("kind %d not handled", k)
}

// parsePGTimestamptz parses timestamptz text printed with TimeZone UTC
// ("2021-06-25 16:21:12.123456+00").
func parsePGTimestamptz(s string) (time.Time, error) {
	tm, err := time.Parse("2006-01-02 15:04:05.999999-07", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamptz text %q: %v", s, err)
	}
	return tm.UTC(), nil
}

// Value generators: PostgreSQL input text. Values stay small, so that no
// row is TOASTed (an UPDATE leaving a TOASTed value unchanged under the
// default replica identity is another test's subject).

func pgGenInt8(g *gen) any {
	if v := g.integer(); v != nil {
		return strconv.FormatInt(v.(int64), 10)
	}
	return nil
}

func randDigits(g *gen, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.Intn(10))
	}
	return strings.TrimLeft(string(b), "0")
}

// pgGenNumeric makes numeric(20,4) values: up to 16 integer and 4 fraction
// digits.
func pgGenNumeric(g *gen) any {
	if g.r.Intn(10) == 0 {
		return nil
	}
	s := randDigits(g, 1+g.r.Intn(16))
	if s == "" {
		s = "0"
	}
	if g.r.Intn(2) == 0 {
		s += "." + randDigits(g, 1+g.r.Intn(4)) + "0"
	}
	if g.r.Intn(3) == 0 {
		s = "-" + s
	}
	return s
}

// pgGenBigNumeric makes unconstrained numeric values of up to 60 digits,
// with tiny and huge magnitudes and trailing zeros that must be kept.
func pgGenBigNumeric(g *gen) any {
	switch g.r.Intn(10) {
	case 0:
		return nil
	case 1:
		return []string{"0", "0.000", "-0.0000000000000000000000000001", "1e30", "123456789012345678901234567890.12345678901234567890", "1.50"}[g.r.Intn(6)]
	}
	s := randDigits(g, 1+g.r.Intn(40))
	if s == "" {
		s = "0"
	}
	if g.r.Intn(2) == 0 {
		s += "." + strings.Repeat("0", g.r.Intn(3)) + randDigits(g, g.r.Intn(20)) + strings.Repeat("0", g.r.Intn(3))
	}
	if g.r.Intn(3) == 0 {
		s = "-" + s
	}
	return s
}

// pgGenText makes adversarial small texts: quotes, commas, CR/LF, tabs,
// unicode, the empty string (never NULL by accident: NULL is its own case).
func pgGenText(g *gen) any {
	switch x := g.r.Intn(100); {
	case x < 10:
		return nil
	case x < 55:
		return textPool[g.r.Intn(len(textPool))]
	default:
		return g.randText(40)
	}
}

// pgGenTimestamptz makes instants from 1999 to 2026 with microseconds,
// written in several time zones.
func pgGenTimestamptz(g *gen) any {
	if g.r.Intn(12) == 0 {
		return nil
	}
	tm := time.Date(1999+g.r.Intn(28), time.Month(1+g.r.Intn(12)), 1+g.r.Intn(28), g.r.Intn(24), g.r.Intn(60), g.r.Intn(60), g.r.Intn(1000000)*1000, time.UTC)
	if g.r.Intn(4) == 0 {
		tm = tm.Truncate(time.Second)
	}
	offsets := []int{0, 5*3600 + 1800, -8 * 3600, 14 * 3600, -(9*3600 + 30*60), 3600}
	zone := time.FixedZone("", offsets[g.r.Intn(len(offsets))])
	return tm.In(zone).Format("2006-01-02 15:04:05.999999-07:00")
}

func pgGenBytea(g *gen) any {
	switch x := g.r.Intn(100); {
	case x < 8:
		return nil
	case x < 15:
		return `\x`
	default:
		b := make([]byte, 1+g.r.Intn(64))
		g.r.Read(b)
		return `\x` + hex.EncodeToString(b)
	}
}

// pgGenJSONB makes nested JSON documents with unicode, quotes and
// newlines in strings, numbers, booleans, nulls and empty containers.
func pgGenJSONB(g *gen) any {
	if g.r.Intn(10) == 0 {
		return nil
	}
	b, err := json.Marshal(randJSON(g, 3))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func randJSON(g *gen, depth int) any {
	x := g.r.Intn(8)
	if depth == 0 {
		x = g.r.Intn(4)
	}
	switch x {
	case 0:
		return nil
	case 1:
		return g.r.Intn(2) == 0
	case 2:
		return []any{1.5, -7, 1e20, 0.1, 42}[g.r.Intn(5)]
	case 3:
		if g.r.Intn(2) == 0 {
			return textPool[g.r.Intn(len(textPool))]
		}
		return g.randText(12)
	case 4, 5:
		a := []any{}
		for i := g.r.Intn(4); i > 0; i-- {
			a = append(a, randJSON(g, depth-1))
		}
		return a
	default:
		m := map[string]any{}
		for i := g.r.Intn(4); i > 0; i-- {
			m[[]string{"a", "ü", "k\"q", "new\nline", "😀", ""}[g.r.Intn(6)]] = randJSON(g, depth-1)
		}
		return m
	}
}

// pgIntKey makes unique int8 keys, some at the int64 limits.
func pgIntKey(g *gen) string {
	switch g.r.Intn(300) {
	case 0:
		return strconv.FormatInt(math.MinInt64+g.next(), 10)
	case 1:
		return strconv.FormatInt(math.MaxInt64-g.next(), 10)
	}
	return strconv.FormatInt(g.next(), 10)
}

// pgTextKey makes unique adversarial text keys.
func pgTextKey(g *gen) string {
	return keyTexts[g.r.Intn(len(keyTexts))] + "#" + strconv.FormatInt(g.next(), 10)
}

// pgOrders is an in-place table by default: a createdon column (year
// partitions), and every type of the test. Its key column "id" becomes
// attribute "id_".
func pgOrders(name string) *pgTable {
	return &pgTable{
		name: name,
		cols: []pgCol{
			{"id", "int8", pgInt8, nil}, {"createdon", "timestamptz", pgTimestamptz, pgGenTimestamptz},
			{"qty", "int8", pgInt8, pgGenInt8}, {"amount", "numeric(20,4)", pgNumeric, pgGenNumeric},
			{"exact", "numeric", pgNumeric, pgGenBigNumeric}, {"note", "text", pgText, pgGenText},
			{"photo", "bytea", pgBytea, pgGenBytea}, {"doc", "jsonb", pgJSONB, pgGenJSONB},
		},
		createdOn: "createdon", newKey: pgIntKey, record: true,
	}
}

// pgLedger is an append-only table by default: no createdon column, a text
// key.
func pgLedger(name string) *pgTable {
	return &pgTable{
		name: name,
		cols: []pgCol{
			{"k", "text", pgText, nil}, {"n", "int8", pgInt8, pgGenInt8}, {"memo", "text", pgText, pgGenText},
			{"raw", "bytea", pgBytea, pgGenBytea}, {"doc", "jsonb", pgJSONB, pgGenJSONB},
			{"amt", "numeric", pgNumeric, pgGenBigNumeric}, {"at", "timestamptz", pgTimestamptz, pgGenTimestamptz},
		},
		newKey: pgTextKey, record: true,
	}
}

// pgDB is a database of its own for one test.
type pgDB struct {
	name  string
	dsn   string // of the test's database
	admin string // of the server's postgres database
}

// randHex is n random bytes as hex.
func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// withDatabase returns dsn with its database replaced.
func withDatabase(t testing.TB, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PG_TEST_DSN: %v", err)
	}
	u.Path = "/" + db
	return u.String()
}

// newPGDB creates the database lakelink_<what>_<random> on the server of
// adminDSN. Cleanup ends its connections, drops its replication slots and
// drops it.
func newPGDB(t testing.TB, adminDSN, what string) *pgDB {
	t.Helper()
	name := "lakelink_" + what + "_" + randHex(4)
	ctx := ctxTimeout(t, 30*time.Second)
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("connect to %s: %v", adminDSN, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+qi(name)); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	db := &pgDB{name: name, dsn: withDatabase(t, adminDSN, name), admin: adminDSN}
	t.Cleanup(func() { db.drop(t) })
	return db
}

// drop removes the database and every slot in it.
func (db *pgDB) drop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		t.Logf("drop database %s: %v", db.name, err)
		return
	}
	defer conn.Close(ctx)
	// Walsenders first (a slot in use can't be dropped), then the slots,
	// then the database.
	stmts := []string{
		"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL",
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active",
	}
	for _, s := range stmts {
		for try := 0; try < 50; try++ {
			_, err = conn.Exec(ctx, s, db.name)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Logf("drop database %s: %s: %v", db.name, s, err)
		}
	}
	var left int
	_ = conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db.name).Scan(&left)
	if left > 0 {
		t.Errorf("drop database %s: %d replication slots left", db.name, left)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+qi(db.name)+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", db.name, err)
	}
}

// pgConnect opens a connection with TimeZone UTC, so timestamptz text is
// in UTC.
func pgConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["bytea_output"] = "hex"
	cfg.RuntimeParams["DateStyle"] = "ISO, MDY"
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// mustPGConnect connects or fails the test; cleanup closes the connection.
func mustPGConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgConnect(ctxTimeout(t, 30*time.Second), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// mustPGExec runs statements or fails the test.
func mustPGExec(t testing.TB, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	ctx := ctxTimeout(t, 2*time.Minute)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", shorten(s, 80), err)
		}
	}
}

// pgSourceURL is the URL lakelink takes for the test's database.
func (db *pgDB) sourceURL() string { return db.dsn }

// pgReadSource reads every row of a table by key (its first column's text).
func pgReadSource(t testing.TB, conn *pgx.Conn, td *pgTable) map[string]pgRow {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	rows, err := conn.Query(ctx, "SELECT "+td.textList()+" FROM "+qi(td.name))
	if err != nil {
		t.Fatalf("read %s: %v", td.name, err)
	}
	defer rows.Close()
	out := map[string]pgRow{}
	for rows.Next() {
		row, err := scanText(rows, len(td.cols))
		if err != nil {
			t.Fatalf("read %s: %v", td.name, err)
		}
		out[row[0].(string)] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", td.name, err)
	}
	return out
}

// pgChange is one row change the writer made, in commit order.
type pgChange struct {
	tx  int64 // the writer's transaction id
	del bool
	key string
	row pgRow // the row as stored; for a delete the old row
}

// pgLive is the writer's view of a table.
type pgLive struct {
	keys  []string
	index map[string]int
	rows  map[string]pgRow // when recorded
	log   []pgChange
}

func (l *pgLive) add(key string) {
	if _, ok := l.index[key]; ok {
		return
	}
	l.index[key] = len(l.keys)
	l.keys = append(l.keys, key)
}

func (l *pgLive) remove(key string) {
	i, ok := l.index[key]
	if !ok {
		return
	}
	last := l.keys[len(l.keys)-1]
	l.keys[i] = last
	l.index[last] = i
	l.keys = l.keys[:len(l.keys)-1]
	delete(l.index, key)
}

// pgWriter makes seeded random transactions through its own connection:
// inserts, updates, deletes and key updates, each transaction also
// inserting its id into writer_txlog (which no link exports), so that a
// commit whose outcome a lost connection hid can be looked up. It
// reconnects and retries after connection loss and server restarts.
type pgWriter struct {
	dsn    string
	conn   *pgx.Conn
	g      *gen
	tables []*pgTable
	live   map[string]*pgLive
	txID   int64
	// Counters, readable while the writer runs.
	changes   atomic.Int64 // row changes committed (a key update counts two)
	txs       atomic.Int64
	reconnect atomic.Int64 // reconnections after a failure
	ambiguous atomic.Int64 // commits whose outcome was looked up
}

// pgTxLog is the writer's transaction log table.
const pgTxLog = "CREATE TABLE writer_txlog (id int8 PRIMARY KEY)"

func newPGWriter(t testing.TB, dsn string, g *gen, tables ...*pgTable) *pgWriter {
	t.Helper()
	w := &pgWriter{dsn: dsn, g: g, tables: tables, live: map[string]*pgLive{}}
	for _, td := range tables {
		w.live[td.name] = &pgLive{index: map[string]int{}, rows: map[string]pgRow{}}
	}
	conn, err := pgConnect(ctxTimeout(t, 30*time.Second), dsn)
	if err != nil {
		t.Fatalf("writer: connect: %v", err)
	}
	w.conn = conn
	t.Cleanup(func() {
		if w.conn != nil {
			w.conn.Close(context.Background())
		}
	})
	return w
}

// retryable reports whether err is the connection's or the server's
// (lost connection, shutdown, restart), not the writer's own mistake.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := pe.Code
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "57") || strings.HasPrefix(c, "53") || c == "40001" || c == "40P01"
	}
	return true // network errors, closed connections, timeouts
}

// tx runs one transaction of n random changes on the given tables (all
// when nil). It returns nil when the transaction committed or was
// abandoned cleanly (its effects forgotten) after a retryable failure; any
// other error is the writer's own and fails the test.
func (w *pgWriter) tx(ctx context.Context, n int, only []*pgTable, insertOnly bool) error {
	tables := only
	if tables == nil {
		tables = w.tables
	}
	if w.conn == nil || w.conn.IsClosed() {
		if err := w.connect(ctx); err != nil {
			return err
		}
	}
	w.txID++
	id := w.txID
	var undos []func()
	logLens := map[string]int{}
	for name, l := range w.live {
		logLens[name] = len(l.log)
	}
	forget := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
		for name, n := range logLens {
			w.live[name].log = w.live[name].log[:n]
		}
	}
	fail := func(err error) error {
		forget()
		if w.conn != nil {
			w.conn.Close(context.Background())
			w.conn = nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		return w.connect(ctx)
	}
	sqlTx, err := w.conn.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	if _, err := sqlTx.Exec(ctx, "INSERT INTO writer_txlog (id) VALUES ($1)", id); err != nil {
		return fail(err)
	}
	made := 0
	for i := 0; i < n; i++ {
		td := tables[w.g.r.Intn(len(tables))]
		k, u, err := w.op(ctx, sqlTx, td, id, insertOnly)
		undos = append(undos, u...)
		if err != nil {
			return fail(fmt.Errorf("table %s: %w", td.name, err))
		}
		made += k
	}
	// The commit and the look-up of its outcome do not end with ctx: a
	// writer being stopped must still know what it committed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := sqlTx.Commit(cctx); err != nil {
		// Did it commit? Only the log can say.
		if w.conn != nil {
			w.conn.Close(context.Background())
			w.conn = nil
		}
		if cerr := w.connect(cctx); cerr != nil {
			forget()
			return cerr
		}
		w.ambiguous.Add(1)
		var committed bool
		if lerr := w.conn.QueryRow(cctx, "SELECT EXISTS (SELECT 1 FROM writer_txlog WHERE id = $1)", id).Scan(&committed); lerr != nil {
			forget()
			return fmt.Errorf("writer: look up transaction %d after a failed commit (%v): %w", id, err, lerr)
		}
		if !committed {
			forget()
			return nil
		}
	}
	w.changes.Add(int64(made))
	w.txs.Add(1)
	return nil
}

// connect (re)connects, retrying for up to two minutes.
func (w *pgWriter) connect(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := pgConnect(ctx, w.dsn)
		if err == nil {
			w.conn = conn
			w.reconnect.Add(1)
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("writer: reconnect: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// op makes one random change to td and returns how many row changes it
// made and how to forget them.
func (w *pgWriter) op(ctx context.Context, tx pgx.Tx, td *pgTable, id int64, insertOnly bool) (int, []func(), error) {
	l := w.live[td.name]
	g := w.g
	x := g.r.Intn(100)
	if insertOnly || len(l.keys) < 20 {
		x = 0
	}
	key := ""
	if len(l.keys) > 0 {
		key = l.keys[g.r.Intn(len(l.keys))]
	}
	keyCol := qi(td.cols[0].name)
	switch {
	case x < 45: // insert
		names := make([]string, len(td.cols))
		marks := make([]string, len(td.cols))
		args := make([]any, len(td.cols))
		for i, c := range td.cols {
			names[i], marks[i] = qi(c.name), fmt.Sprintf("$%d::text::%s", i+1, c.typ)
			if c.gen != nil {
				args[i] = c.gen(g)
			}
		}
		args[0] = td.newKey(g)
		row, err := scanText(tx.QueryRow(ctx, "INSERT INTO "+qi(td.name)+" ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(marks, ", ")+") RETURNING "+td.textList(), args...), len(td.cols))
		if err != nil {
			return 0, nil, err
		}
		return 1, w.noteUpsert(td, id, row), nil
	case x < 75: // update some non-key columns
		var sets []string
		var args []any
		for i, c := range td.cols[1:] {
			if g.r.Intn(2) == 0 || (len(sets) == 0 && i == len(td.cols)-2) {
				args = append(args, c.gen(g))
				sets = append(sets, fmt.Sprintf("%s = $%d::text::%s", qi(c.name), len(args), c.typ))
			}
		}
		args = append(args, key)
		row, err := scanText(tx.QueryRow(ctx, "UPDATE "+qi(td.name)+" SET "+strings.Join(sets, ", ")+fmt.Sprintf(" WHERE %s = $%d::text::%s RETURNING ", keyCol, len(args), td.cols[0].typ)+td.textList(), args...), len(td.cols))
		if err != nil {
			return 0, nil, err
		}
		return 1, w.noteUpsert(td, id, row), nil
	case x < 90: // delete
		row, err := scanText(tx.QueryRow(ctx, "DELETE FROM "+qi(td.name)+" WHERE "+keyCol+" = $1::text::"+td.cols[0].typ+" RETURNING "+td.textList(), key), len(td.cols))
		if err != nil {
			return 0, nil, err
		}
		return 1, w.noteDelete(td, id, key, row), nil
	default: // change the key: a delete of the old key, then the new row
		newKey := td.newKey(g)
		row, err := scanText(tx.QueryRow(ctx, "UPDATE "+qi(td.name)+" SET "+keyCol+" = $1::text::"+td.cols[0].typ+" WHERE "+keyCol+" = $2::text::"+td.cols[0].typ+" RETURNING "+td.textList(), newKey, key), len(td.cols))
		if err != nil {
			return 0, nil, err
		}
		u := w.noteDelete(td, id, key, l.rows[key])
		return 2, append(u, w.noteUpsert(td, id, row)...), nil
	}
}

func (w *pgWriter) noteUpsert(td *pgTable, id int64, row pgRow) []func() {
	l := w.live[td.name]
	key := row[0].(string)
	_, existed := l.index[key]
	old := l.rows[key]
	l.add(key)
	if td.record {
		l.rows[key] = row
		l.log = append(l.log, pgChange{tx: id, key: key, row: row})
	}
	return []func(){func() {
		if existed {
			l.rows[key] = old
			return
		}
		l.remove(key)
		delete(l.rows, key)
	}}
}

func (w *pgWriter) noteDelete(td *pgTable, id int64, key string, old pgRow) []func() {
	l := w.live[td.name]
	if td.record {
		l.log = append(l.log, pgChange{tx: id, del: true, key: key, row: old})
		delete(l.rows, key)
	}
	l.remove(key)
	return []func(){func() {
		l.add(key)
		if td.record {
			l.rows[key] = old
		}
	}}
}

// run makes transactions of 1..maxN changes until ctx ends.
func (w *pgWriter) run(ctx context.Context, maxN int, pause time.Duration) error {
	for ctx.Err() == nil {
		if err := w.tx(ctx, 1+w.g.r.Intn(maxN), nil, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
	return nil
}

// background runs the writer in a goroutine until the returned stop is
// called; stop waits for it and returns its error. Cleanup stops it too.
func (w *pgWriter) background(t testing.TB, maxN int, pause time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = w.run(ctx, maxN, pause)
	}()
	var once sync.Once
	stop = func() error {
		once.Do(func() { cancel(); wg.Wait() })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// lsnText parses PostgreSQL's X/Y text of an LSN.
func lsnText(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q: no /", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: not hexadecimal", s)
	}
	return h<<32 | l, nil
}

// pgSlot reads a replication slot: its confirmed flush LSN and whether a
// walsender uses it; ok is false when there is no such slot.
func pgSlot(ctx context.Context, conn *pgx.Conn, slot string) (lsn uint64, active, ok bool, err error) {
	var s *string
	err = conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s, &active)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, false, nil
	}
	if err != nil || s == nil {
		return 0, active, err == nil, err
	}
	lsn, err = lsnText(*s)
	return lsn, active, true, err
}

// pgWaitSlotIdle waits until no walsender uses the slot (a killed
// lakelink's server process has noticed), and returns its confirmed flush
// LSN then, or ok false when there is no slot.
func pgWaitSlotIdle(t testing.TB, conn *pgx.Conn, slot string) (uint64, bool) {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	for {
		lsn, active, ok, err := pgSlot(ctx, conn, slot)
		if err != nil {
			t.Fatalf("read slot %s: %v", slot, err)
		}
		if !ok || !active {
			return lsn, ok
		}
		if ctx.Err() != nil {
			t.Fatalf("slot %s still active 30 s after lakelink was killed", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lakeCommitted is how far the lake's state says the source is exported,
// as the slot may know it: the state's Position, or, when the tables'
// copies reach further, the oldest position a completed copy holds (every
// change up to it is in the lake). Tables whose copy has not completed
// need nothing before their (future) copy. ok is false when no table's copy
// has completed and nothing was committed.
func lakeCommitted(st *export.State) (pos uint64, ok bool) {
	if st == nil {
		return 0, false
	}
	pos, ok = uint64(st.Position), st.Position > 0
	var oldest uint64
	have := false
	for _, ts := range st.Tables {
		if ts.InitialSync != export.SyncCompleted {
			continue
		}
		if p := uint64(ts.CopyPosition); !have || p < oldest {
			oldest, have = p, true
		}
	}
	if have && oldest > pos {
		pos, ok = oldest, true
	}
	return pos, ok || have
}

// pgLakeTable is an entity of model.json with its test table.
type pgLakeTable struct {
	td    *pgTable
	e     *lakecheck.Entity
	attrs []string // the attribute of each column
}

// openPGLakeTable reads model.json and checks the entity's attributes (Id,
// SinkCreatedOn, SinkModifiedOn, the columns with their data types,
// versionnumber, IsDelete) and annotations.
func openPGLakeTable(t testing.TB, lake string, td *pgTable, writeMode string) *pgLakeTable {
	t.Helper()
	m, _ := lakecheck.ReadModel(t, lake)
	e := m.Entity(strings.ToLower(td.name))
	if e == nil {
		t.Fatalf("%s: model.json has no entity %q", lake, strings.ToLower(td.name))
	}
	lt := &pgLakeTable{td: td, e: e}
	want := []string{"Id", "SinkCreatedOn", "SinkModifiedOn"}
	system := map[string]bool{"id": true, "sinkcreatedon": true, "sinkmodifiedon": true, "versionnumber": true, "isdelete": true}
	for _, c := range td.cols {
		name := c.name
		for system[strings.ToLower(name)] {
			name += "_"
		}
		want = append(want, name)
		lt.attrs = append(lt.attrs, name)
	}
	want = append(want, "versionnumber", "IsDelete")
	if got := e.AttributeNames(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entity %s: attributes %q, want %q", e.Name, got, want)
	}
	for i, c := range td.cols {
		if got := e.Attributes[3+i].DataType; got != c.kind.dataType() {
			t.Errorf("entity %s attribute %s (%s): dataType %q, want %q", e.Name, lt.attrs[i], c.typ, got, c.kind.dataType())
		}
	}
	gran := "None"
	if td.createdOn != "" {
		gran = "Year"
	}
	for name, want := range map[string]string{"lakelink:WriteMode": writeMode, "Athena:PartitionGranularity": gran, "Athena:InitialSyncState": "Completed"} {
		if got := e.Annotation(name); got != want {
			t.Errorf("entity %s: %s %q, want %q", e.Name, name, got, want)
		}
	}
	return lt
}

// partition is the partition file a row belongs in ("" for numbered).
func (lt *pgLakeTable) partition(row pgRow) string {
	if lt.td.createdOn == "" {
		return ""
	}
	v := row[lt.td.colIndex(lt.td.createdOn)]
	if v == nil {
		return "1900.csv"
	}
	tm, err := parsePGTimestamptz(v.(string))
	if err != nil {
		return "?" + err.Error()
	}
	return tm.Format("2006") + ".csv"
}

var numberedFileRE = regexp.MustCompile(`^[1-9][0-9]*\.csv$`)

// common checks what every record holds: the sink times' format and
// order, an unquoted integer versionnumber, the Id. It returns the key and
// the version.
func (lt *pgLakeTable) common(p *problems, r lakecheck.Record, since time.Time) (string, uint64) {
	id := r.Get("Id")
	key := id.Text
	if id.Null() {
		p.add("%s: a record with a NULL Id", r.File)
		return "", 0
	}
	if wantQuoted := lt.td.cols[0].kind == pgText; id.Quoted != wantQuoted {
		p.add("key %s: Id %s, quoted %v, want quoted %v", shorten(key, 40), id, id.Quoted, wantQuoted)
	}
	var sink [2]time.Time
	for i, a := range []string{"SinkCreatedOn", "SinkModifiedOn"} {
		f := r.Get(a)
		tm, err := time.Parse("1/2/2006 3:04:05 PM", f.Text)
		if !f.Quoted || !sinkTimeRE.MatchString(f.Text) || err != nil {
			p.add("key %s %s: %s is not a quoted M/d/yyyy h:mm:ss AM|PM", shorten(key, 40), a, f)
			continue
		}
		if tm.Before(since.Add(-2*time.Second).Truncate(time.Second)) || tm.After(time.Now().Add(2*time.Second)) {
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

// diff returns how a record's column fields differ from a row ("" when
// they match); with orNull a NULL field matches anything: a delete's
// columns may be empty (its key is in Id), as in the SQLite tests.
func (lt *pgLakeTable) diff(r lakecheck.Record, row pgRow, orNull bool) string {
	var out []string
	for i, a := range lt.attrs {
		want, err := pgExpect(lt.td.cols[i].kind, row[i])
		if err != nil {
			out = append(out, fmt.Sprintf("attr %s: %v", a, err))
			continue
		}
		if got := r.Get(a); got != want && !(orNull && got.Null()) {
			out = append(out, fmt.Sprintf("attr %s: got %s, want %s", a, got, want))
		}
	}
	return strings.Join(out, "; ")
}

// pgCheckInPlace checks G1 for an in-place table: the live files hold
// exactly the source's rows, each once, in the partition of its createdon,
// and the Snapshot files model.json names hold the same records.
func pgCheckInPlace(t testing.TB, lake string, td *pgTable, src map[string]pgRow, since time.Time) {
	t.Helper()
	lt := openPGLakeTable(t, lake, td, "InPlaceUpdate")
	p := &problems{t: t, what: fmt.Sprintf("%s (in place, %s)", td.name, lake)}
	common := func(r lakecheck.Record) string { key, _ := lt.common(p, r, since); return key }
	recs := checkLiveRows(t, p, lake, td.name, lt.e, src, common, func(key string, r lakecheck.Record, row pgRow) {
		if d := lt.diff(r, row, false); d != "" {
			p.add("key %s: %s", shorten(key, 40), d)
		}
		if part := lt.partition(row); part != "" && r.File != part {
			p.add("key %s: in %s, want %s", shorten(key, 40), r.File, part)
		} else if part == "" && !numberedFileRE.MatchString(r.File) {
			p.add("key %s: in %s, want a numbered partition", shorten(key, 40), r.File)
		}
	})
	p.report()
	checkSnapshotMatchesLive(t, &lakeTable{e: lt.e}, recs)
	t.Logf("%s in place (%s): %d rows match the source", td.name, lake, len(recs))
}

// pgCheckAppendOnly checks G1 for an append-only table against the
// writer's log: the records at or before the copy's position are the table
// as it stood after some whole prefix of the writer's transactions; the
// others, in versionnumber order, are exactly the rest of the changes,
// transaction by transaction (within one transaction in any order), none
// missing, none twice, each later transaction with higher versionnumbers.
func pgCheckAppendOnly(t testing.TB, lake string, td *pgTable, log []pgChange, since time.Time) {
	t.Helper()
	lt := openPGLakeTable(t, lake, td, "AppendOnly")
	copyPos := uint64(readState(t, lake).Tables[td.name].CopyPosition)
	p := &problems{t: t, what: fmt.Sprintf("%s (append only, %s)", td.name, lake)}
	copied, streamed, recs := splitAppendOnly(t, lake, td.name, lt.e, func(r lakecheck.Record) (string, uint64) { return lt.common(p, r, since) })
	// The writer's transactions (of this table) in commit order.
	var groups [][]pgChange
	for i, c := range log {
		if i == 0 || c.tx != log[i-1].tx {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], c)
	}
	j, rest := len(groups), 0
	for j > 0 && rest < len(streamed) {
		j--
		rest += len(groups[j])
	}
	if rest != len(streamed) {
		p.add("the lake holds %d change records after the copy (position %d); no whole suffix of the writer's %d transactions (%d changes) has that many", len(streamed), copyPos, len(groups), len(log))
		p.report()
		t.FailNow()
	}
	// The copy: the table after groups[:j].
	state := map[string]pgRow{}
	for _, g := range groups[:j] {
		for _, c := range g {
			if c.del {
				delete(state, c.key)
			} else {
				state[c.key] = c.row
			}
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
			p.add("copy: key %s in the lake's copy but not in the table after the first %d of %d transactions", shorten(c.key, 40), j, len(groups))
			continue
		}
		if d := lt.diff(c.r, row, false); d != "" {
			p.add("copy: key %s: %s", shorten(c.key, 40), d)
		}
	}
	for key := range state {
		if !seen[key] {
			p.add("copy: key %s missing (table after the first %d of %d transactions)", shorten(key, 40), j, len(groups))
		}
	}
	// The stream, transaction by transaction.
	at := 0
	var prevMax uint64
	for gi, g := range groups[j:] {
		rs := streamed[at : at+len(g)]
		at += len(g)
		if rs[0].v <= prevMax {
			p.add("transaction %d: versionnumber %d not after the previous transaction's %d", j+gi+1, rs[0].v, prevMax)
		}
		prevMax = rs[len(rs)-1].v
		used := make([]bool, len(rs))
		for _, c := range g {
			match, first := -1, -1
			for i, r := range rs {
				if used[i] || r.key != c.key || (r.r.Get("IsDelete").Text == "True") != c.del {
					continue
				}
				if first < 0 {
					first = i
				}
				if lt.diff(r.r, c.row, c.del) == "" {
					match = i
					break
				}
			}
			what := "upsert"
			if c.del {
				what = "delete"
			}
			switch {
			case match >= 0:
				used[match] = true
			case first >= 0:
				used[first] = true
				p.add("transaction %d %s of key %s: %s", j+gi+1, what, shorten(c.key, 40), lt.diff(rs[first].r, c.row, c.del))
			default:
				p.add("transaction %d %s of key %s: no such record among versionnumbers %d..%d", j+gi+1, what, shorten(c.key, 40), rs[0].v, rs[len(rs)-1].v)
			}
			if match >= 0 && !c.del {
				if part := lt.partition(c.row); part != "" && rs[match].r.File != part {
					p.add("transaction %d key %s: in %s, want %s", j+gi+1, shorten(c.key, 40), rs[match].r.File, part)
				}
			}
		}
		for i, r := range rs {
			if !used[i] {
				p.add("transaction %d: record of key %s (versionnumber %d, IsDelete %s) matches no change of the transaction", j+gi+1, shorten(r.key, 40), r.v, r.r.Get("IsDelete"))
			}
			if d := r.r.Get("IsDelete"); !d.Null() && (d.Text != "True" || d.Quoted) {
				p.add("key %s: IsDelete %s, want True or NULL", shorten(r.key, 40), d)
			}
			if lt.td.createdOn == "" && !numberedFileRE.MatchString(r.r.File) {
				p.add("key %s: in %s, want a numbered partition", shorten(r.key, 40), r.r.File)
			}
		}
	}
	p.report()
	checkSnapshotMatchesLive(t, &lakeTable{e: lt.e}, recs)
	t.Logf("%s append only (%s): %d copied rows (after %d of %d transactions) + %d change records match the writer's log", td.name, lake, len(copied), j, len(groups), len(streamed))
}

// pgTestDSN returns the test server's DSN (skipping locally without one,
// failing under CI); the test is slow, so it skips under -short.
func pgTestDSN(t testing.TB) string {
	t.Helper()
	testenv.Slow(t)
	return testenv.Need(t, "PG_TEST_DSN")
}
