// Package postgres is the lakelink source for a PostgreSQL database, read
// by logical replication (the pgoutput plugin) with pgx and pglogrepl.
//
// # Change tracking
//
// For a link L, lakelink keeps in the database:
//
//	publication lakelink_L   FOR TABLE (the tracked tables), publish_via_partition_root
//	slot        lakelink_L   logical, pgoutput, created by the first Snapshot or Stream
//
// The publication is created first (by Track), the slot after it, so the
// slot never decodes a change of a tracked table without the publication.
// A table can be tracked when it has a primary key or REPLICA IDENTITY FULL:
// without either, PostgreSQL can't say which row an UPDATE or DELETE
// touched. REPLICA IDENTITY NOTHING (published, its UPDATEs and DELETEs
// would fail) and USING INDEX (not supported yet) are refused with the
// ALTER TABLE that fixes them.
//
// # Copy and stream
//
// The first Snapshot of a link creates the slot with an exported snapshot
// and copies the table inside it: the copy holds exactly the changes up to
// the slot's consistent point, which is the snapshot's Position, and the
// slot streams exactly the transactions that commit after it. A later
// Snapshot, while the slot exists, does the same with a temporary slot of
// its own (dropped with its connection): its Position is that slot's
// consistent point, exact in the same way. The link's stream may then
// deliver changes of that table at or before the Position, which the copy
// already holds; the engine skips a table's changes at or before its copy's
// Position.
//
// Rows of the copy are read with a text-format query and rows of the stream
// arrive as pgoutput text tuples; both are decoded by one decoder (decode),
// under the same session settings (TimeZone UTC, DateStyle ISO, ...), so a
// value reads the same either way.
//
// Stream starts the slot at from with pgoutput protocol 1 and messages
// 'true'. An OpCommit carries the transaction's end LSN, which is what Ack
// should be given: PostgreSQL resends a transaction only when its commit
// starts at or after the start position. The slot's confirmed flush LSN
// only ever moves to a position Ack was given, so it is never past the
// lake's state.
//
// # Safety at start
//
// A fresh slot's confirmed flush LSN is its consistent point, which is the
// first Snapshot's Position: a stream that starts from there is accepted.
// From any position other than 0, Stream refuses with an error wrapping
// lakelink.ErrResync when the slot is missing (dropped, or the database
// restored elsewhere), lost (wal_status lost: it kept more WAL than
// max_slot_wal_keep_size allows; or invalidated) or confirmed past from
// (moved by hand or by another program): starting anyway would skip the
// changes between. The message names the tables for lakelink resync; the
// next run copies them again, creating a new slot if there is none and
// replacing a lost one.
//
// # Idle links
//
// A slot holds WAL from its confirmed position on. When the link's tables
// are idle while the rest of the database is busy, no transaction of the
// link would move it, so the stream does two things, both through the
// engine's usual commit-then-Ack path, never by acknowledging a position
// the lake's state does not hold:
//
//   - Progress commits. When no transaction is open, everything delivered
//     is acknowledged, and a keepalive says the server has decoded the WAL
//     up to a later position W, the stream delivers an OpCommit at W,
//     without rows (at most once per standby status interval, a third of
//     wal_sender_timeout, or 10 s when it is 0; at once when the keepalive
//     asks for a reply, as a server shutting down does: it waits for the
//     slot to be confirmed up to its last WAL record before it stops).
//   - Heartbeats. When no transaction was delivered for the heartbeat
//     interval and keepalives show the WAL moving, the stream writes
//     pg_logical_emit_message(true, 'lakelink_<link>', 'heartbeat') through
//     an ordinary connection (at most once per interval); the slot decodes
//     it as a transaction, which the stream delivers as an OpCommit without
//     rows. The interval is the source URL's parameter heartbeat (default
//     10s; heartbeat=off for none), which is not sent to PostgreSQL:
//     postgres://lakelink@db:5432/app?sslmode=require&heartbeat=30s.
//
// # Values
//
// Kinds follow the lake format's "Values by type": smallint, integer and
// bigint are KindInt64; real and double precision KindFloat64 (NaN and the
// infinities included); numeric and money KindDecimal, the text kept exact
// (numeric NaN or infinity is a BadValue); text, varchar(n) and char(n)
// KindString with MaxLength; boolean, bytea, uuid, timestamptz, timestamp,
// date and time their own kinds; json and jsonb KindJSON as PostgreSQL
// prints them; arrays and composite types KindJSON (JSON arrays and objects,
// decoded from PostgreSQL's text form); anything else (interval, inet,
// enums, ranges...) KindString with PostgreSQL's own text. A value the
// kind can't hold (a timestamp at infinity, a date before year 1 or after
// 9999, time 24:00:00) is a BadValue.
//
// # Positions
//
// A Position is an LSN. A row change's Pos is its transaction's commit LSN
// plus one, the same for every change of the transaction, rather than the
// LSN of the change's own WAL record: a transaction that commits after a
// snapshot's position, so is not in the copy, may have written its rows
// before that position, and its changes must still compare as newer than
// the copy. With commit LSN + 1, every transaction in a copy has positions
// at or before the copy's Position and every other after it, and positions
// grow in commit order: snapshot Position < row changes <= OpCommit's end
// LSN < the next transaction's row changes. A key update's delete and
// insert share their position; a row changed twice in one transaction has
// the same position twice, in order.
//
// A progress commit's W is the end of the last WAL record the server
// decoded before its keepalive: every transaction that committed before W
// was delivered before it, and every later one has its commit record at or
// after W, so its changes (commit LSN + 1) and its OpCommit come after W. A
// stream started from W skips exactly the transactions whose commit record
// starts before W, as the server does.
//
// # Unchanged TOASTed values
//
// An UPDATE that leaves a large (TOASTed) value unchanged does not carry
// it: pgoutput sends an "unchanged" marker instead. With REPLICA IDENTITY
// FULL the old row carries every value, and the stream takes the unchanged
// value from it. With the default identity the value is nowhere in the
// stream: the OpUpdate leaves it nil and marks it in
// lakelink.Change.Unchanged, and the engine keeps the value the lake holds
// (in place) or stops the table with an error naming the column and the
// fix, REPLICA IDENTITY FULL (append only, which has no earlier value at
// hand). It is never written as NULL. Where the stream can't mark it (a key
// column, or the insert half of an UPDATE that changed the key) the value
// comes as a lakelink.BadValue whose reason names the same fix. Track logs
// a warning for a tracked table that can have TOASTed values under the
// default identity.
//
// # Limits
//
//   - TRUNCATE of a tracked table stops the stream with an error naming the
//     table (the table must be copied again); it is never skipped silently.
//   - A copy that is cut short starts again from scratch (it is not yet
//     resumable), and the slot keeps WAL for as long as it runs. A large
//     plain table may be read in ctid ranges by several connections that
//     share the exported snapshot (see snapshot.go), one per two cores.
//   - A Relation message gives a column's type; its spelling, an enum's
//     labels, a composite's fields and the primary key are read from the
//     catalog when the message arrives, so a later change to those can show
//     early.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lakelink/lakelink"
)

// sessionParams are the settings of every connection lakelink opens, the
// replication connection included: they fix the text form of values.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "1", // shortest exact text for float4 and float8
	"bytea_output":       "hex",
	"lc_monetary":        "C", // money as $1,234.56, see decode
	"application_name":   "lakelink",
}

// Source is a PostgreSQL database opened as a lakelink source.
type Source struct {
	pool      *pgxpool.Pool
	replCfg   *pgconn.Config // for replication connections
	logger    *slog.Logger
	heartbeat time.Duration // see heartbeatParam; 0: none
}

var _ lakelink.Source = (*Source)(nil)

// Open connects to the database at dsn (postgres://USER@HOST:PORT/DB?...;
// the password from the URL, PGPASSWORD or ~/.pgpass) and checks that it can
// do logical replication (wal_level=logical). The password is never logged.
// The URL's parameter heartbeat (see the package comment) is lakelink's and
// is not sent to PostgreSQL.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dsn, heartbeat, err := splitParams(dsn)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse source URL: %w", err) // pgconn redacts the password
	}
	for k, v := range sessionParams {
		pcfg.ConnConfig.RuntimeParams[k] = v
	}
	pcfg.MaxConns = 8
	rcfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse source URL: %w", err) // pgconn redacts the password
	}
	for k, v := range sessionParams {
		rcfg.RuntimeParams[k] = v
	}
	rcfg.RuntimeParams["replication"] = "database"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(rcfg), err)
	}
	var walLevel string
	if err := pool.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(rcfg), err)
	}
	if walLevel != "logical" {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s has wal_level=%s; lakelink needs logical replication: set wal_level = logical in postgresql.conf and restart PostgreSQL", where(rcfg), walLevel)
	}
	logger.Info("postgres source opened", "source", where(rcfg))
	return &Source{pool: pool, replCfg: rcfg, logger: logger, heartbeat: heartbeat}, nil
}

// ParseURL checks a source URL (postgres:// or postgresql://, or any
// connection string pgx reads) without connecting, and returns what Open
// takes. Its errors never show the password.
func ParseURL(u string) (string, error) {
	dsn, _, err := splitParams(u)
	if err != nil {
		return "", err
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return "", fmt.Errorf("postgres: %w", err) // pgconn redacts the password
	}
	return u, nil
}

// where describes the database for errors and logs, without credentials.
func where(c *pgconn.Config) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Close releases the source's connections.
func (s *Source) Close() error {
	s.pool.Close()
	return nil
}

// name is the publication's and the slot's name for a link.
func name(link string) (string, error) {
	if err := lakelink.CheckLinkName(link); err != nil {
		return "", fmt.Errorf("postgres: link %w", err)
	}
	return "lakelink_" + link, nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tableRef is a table found in the catalog.
type tableRef struct {
	oid           uint32
	schema, table string
	replIdent     byte // 'd' default, 'f' full, 'i' index, 'n' nothing
	hasPK         bool
	partitioned   bool
	quoted        string // quote_ident(schema).quote_ident(table), as PostgreSQL quotes it
}

// Name is the table's lakelink name: "table" in schema public,
// "schema.table" elsewhere.
func (r tableRef) Name() string {
	if r.schema == "public" {
		return r.table
	}
	return r.schema + "." + r.table
}

// ident is the table's quoted SQL name.
func (r tableRef) ident() string {
	if r.quoted != "" {
		return r.quoted
	}
	return pgx.Identifier{r.schema, r.table}.Sanitize()
}

// reason says why the table can't be linked, or "" when it can.
func (r tableRef) reason() string {
	switch r.replIdent {
	case 'n':
		// Published, its UPDATEs and DELETEs would fail.
		return fmt.Sprintf("it has REPLICA IDENTITY NOTHING, so PostgreSQL would refuse its UPDATEs and DELETEs once published: run ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a primary key) or FULL", r.ident())
	case 'i':
		// The stream would carry the index's columns as the old key, not
		// the primary key's.
		return fmt.Sprintf("it has REPLICA IDENTITY USING INDEX, which lakelink does not support yet: run ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a primary key) or FULL", r.ident())
	}
	if r.hasPK || r.replIdent == 'f' {
		return ""
	}
	return fmt.Sprintf("it has no primary key, so PostgreSQL can't identify the rows an UPDATE or DELETE changes: add a primary key (ALTER TABLE %s ADD PRIMARY KEY (...)), or run ALTER TABLE %s REPLICA IDENTITY FULL", r.ident(), r.ident())
}

const tablesSQL = `
SELECT c.oid, n.nspname, c.relname, c.relreplident::text, c.relkind = 'p',
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`

func scanRefs(rows pgx.Rows) ([]tableRef, error) {
	var refs []tableRef
	for rows.Next() {
		var r tableRef
		var ident string
		if err := rows.Scan(&r.oid, &r.schema, &r.table, &ident, &r.partitioned, &r.hasPK, &r.quoted); err != nil {
			return nil, err
		}
		if ident != "" {
			r.replIdent = ident[0]
		}
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// findTable looks a table up by its lakelink name; ok is false when there
// is no such table.
func findTable(ctx context.Context, q querier, name string) (ref tableRef, ok bool, err error) {
	rows, err := q.Query(ctx, tablesSQL+`
  AND ((n.nspname = 'public' AND c.relname = $1) OR (n.nspname <> 'public' AND n.nspname || '.' || c.relname = $1))`, name)
	if err != nil {
		return tableRef{}, false, err
	}
	refs, err := scanRefs(rows)
	if err != nil || len(refs) == 0 {
		return tableRef{}, false, err
	}
	return refs[0], true, nil
}

const columnsSQL = `
SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod),
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder),
       COALESCE((SELECT k.ord FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0),
       a.attstorage::text IN ('x', 'e'),
       ` + compositeSQL + `
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// compositeSQL selects, for the type t, its array element type (or 0), the
// relation of its fields if it is a composite type (or 0), and the same
// for its element type.
const compositeSQL = `CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END,
       CASE WHEN t.typtype = 'c' THEN t.typrelid ELSE 0 END,
       COALESCE((SELECT e.typrelid FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c' AND t.typcategory = 'A'), 0)`

// addFields makes c, of a composite type (relid) or an array of one
// (elemRelid), decode to JSON objects with the fields' names.
func addFields(ctx context.Context, q querier, c *col, relid, elemRelid uint32, depth int) error {
	if elemRelid != 0 && c.elem != nil {
		return addFields(ctx, q, c.elem, elemRelid, 0, depth)
	}
	if relid == 0 {
		return nil
	}
	if depth > 8 {
		return fmt.Errorf("composite type %s nested too deep", c.Type)
	}
	rows, err := q.Query(ctx, `
SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), `+compositeSQL+`
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, relid)
	if err != nil {
		return err
	}
	type nested struct{ relid, elemRelid uint32 }
	var more []nested
	fields := []col{}
	for rows.Next() {
		var (
			name, typeName   string
			oid, elem, r, er uint32
			typmod           int32
		)
		if err := rows.Scan(&name, &oid, &typmod, &typeName, &elem, &r, &er); err != nil {
			rows.Close()
			return err
		}
		fields = append(fields, column(name, oid, typmod, typeName, nil, elem))
		more = append(more, nested{r, er})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, n := range more {
		if err := addFields(ctx, q, &fields[i], n.relid, n.elemRelid, depth+1); err != nil {
			return err
		}
	}
	c.Kind, c.fields = lakelink.KindJSON, fields
	return nil
}

// loadTable reads a table's definition from the catalog, with its columns'
// decoders. toastable reports whether a column can hold TOASTed values.
func loadTable(ctx context.Context, q querier, ref tableRef) (tab lakelink.Table, cols []col, toastable bool, err error) {
	rows, err := q.Query(ctx, columnsSQL, ref.oid)
	if err != nil {
		return tab, nil, false, err
	}
	defer rows.Close()
	tab.Name = ref.Name()
	var composites [][2]uint32 // per column: see compositeSQL
	type keyCol struct {
		ord int64
		idx int
	}
	var keys []keyCol
	for rows.Next() {
		var (
			name, typeName string
			oid, elem      uint32
			relid, erelid  uint32
			typmod         int32
			options        []string
			ord            int64
			toast          bool
		)
		if err := rows.Scan(&name, &oid, &typmod, &typeName, &options, &ord, &toast, &elem, &relid, &erelid); err != nil {
			return tab, nil, false, err
		}
		if len(options) == 0 {
			options = nil
		}
		if ord > 0 {
			keys = append(keys, keyCol{ord, len(cols)})
		}
		toastable = toastable || toast
		cols = append(cols, column(name, oid, typmod, typeName, options, elem))
		composites = append(composites, [2]uint32{relid, erelid})
	}
	if err := rows.Err(); err != nil {
		return tab, nil, false, err
	}
	rows.Close()
	for i, r := range composites {
		if err := addFields(ctx, q, &cols[i], r[0], r[1], 0); err != nil {
			return tab, nil, false, err
		}
		tab.Columns = append(tab.Columns, cols[i].Column)
	}
	for o := int64(1); o <= int64(len(keys)); o++ {
		for _, k := range keys {
			if k.ord == o {
				tab.Key = append(tab.Key, k.idx)
			}
		}
	}
	if len(tab.Key) == 0 && ref.replIdent == 'f' {
		// REPLICA IDENTITY FULL without a primary key: the whole row
		// identifies it.
		for i := range tab.Columns {
			tab.Key = append(tab.Key, i)
		}
	}
	return tab, cols, toastable, nil
}

// Tables lists the ordinary and partitioned tables of every user schema
// (partitions are exported under their root). A table without a primary key
// or REPLICA IDENTITY FULL is listed as not linkable, with the ALTER TABLE
// that fixes it.
func (s *Source) Tables(ctx context.Context) ([]lakelink.TableInfo, error) {
	rows, err := s.pool.Query(ctx, tablesSQL+" ORDER BY n.nspname, c.relname")
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables: %w", err)
	}
	refs, err := scanRefs(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables: %w", err)
	}
	infos := make([]lakelink.TableInfo, 0, len(refs))
	for _, r := range refs {
		tab, _, _, err := loadTable(ctx, s.pool, r)
		if err != nil {
			return nil, fmt.Errorf("postgres: read table %q: %w", r.Name(), err)
		}
		reason := r.reason()
		infos = append(infos, lakelink.TableInfo{Table: tab, Linkable: reason == "", Reason: reason})
	}
	return infos, nil
}

// Track adds the tables to the link's publication, creating it (with
// publish_via_partition_root) when it does not exist. It is idempotent. A
// table that is missing or can't be linked gives a
// *lakelink.NotLinkableError, and nothing changes. The slot is created later,
// by the first Snapshot or Stream.
func (s *Source) Track(ctx context.Context, link string, tables []string) error {
	pub, err := name(link)
	if err != nil {
		return err
	}
	var refs []tableRef
	for _, t := range tables {
		ref, ok, err := findTable(ctx, s.pool, t)
		if err != nil {
			return fmt.Errorf("postgres: track %q: %w", t, err)
		}
		if !ok {
			return &lakelink.NotLinkableError{Table: t, Reason: "there is no such table (a table outside schema public is named schema.table)"}
		}
		if r := ref.reason(); r != "" {
			return &lakelink.NotLinkableError{Table: t, Reason: r}
		}
		if ref.replIdent != 'f' {
			if _, _, toastable, err := loadTable(ctx, s.pool, ref); err == nil && toastable {
				s.logger.Warn("table can hold TOASTed values that an UPDATE leaves out of the stream: in place the lake keeps their last value, but an append-only table, or an UPDATE that changes the key, stops the table unless it has REPLICA IDENTITY FULL",
					"link", link, "table", ref.Name(), "fix", "ALTER TABLE "+ref.ident()+" REPLICA IDENTITY FULL")
			}
		}
		refs = append(refs, ref)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", pub).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: track: find publication %q: %w", pub, err)
	}
	if !exists {
		var idents []string
		for _, r := range refs {
			idents = append(idents, r.ident())
		}
		sql := "CREATE PUBLICATION " + pgx.Identifier{pub}.Sanitize()
		if len(idents) > 0 {
			sql += " FOR TABLE " + strings.Join(idents, ", ")
		}
		sql += " WITH (publish_via_partition_root = true)"
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("postgres: create publication %q: %w", pub, err)
		}
		s.logger.Info("publication created", "link", link, "publication", pub)
		return nil
	}
	for _, r := range refs {
		var in bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2)", pub, r.oid).Scan(&in); err != nil {
			return fmt.Errorf("postgres: track %q: %w", r.Name(), err)
		}
		if in {
			continue
		}
		if _, err := s.pool.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+r.ident()); err != nil {
			return fmt.Errorf("postgres: track %q: add to publication %q: %w", r.Name(), pub, err)
		}
	}
	return nil
}

// Untrack removes the tables from the link's publication. With tables nil it
// drops the link's slot and publication; it fails while a stream of the link
// is running.
func (s *Source) Untrack(ctx context.Context, link string, tables []string) error {
	pub, err := name(link)
	if err != nil {
		return err
	}
	if tables == nil {
		if _, err := s.pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", pub); err != nil {
			return fmt.Errorf("postgres: untrack: drop slot %q: %w", pub, err)
		}
		if _, err := s.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: untrack: drop publication %q: %w", pub, err)
		}
		s.logger.Info("slot and publication dropped", "link", link, "publication", pub)
		return nil
	}
	for _, t := range tables {
		ref, ok, err := findTable(ctx, s.pool, t)
		if err != nil {
			return fmt.Errorf("postgres: untrack %q: %w", t, err)
		}
		if !ok {
			continue
		}
		var in bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2)", pub, ref.oid).Scan(&in); err != nil {
			return fmt.Errorf("postgres: untrack %q: %w", t, err)
		}
		if !in {
			continue
		}
		if _, err := s.pool.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" DROP TABLE "+ref.ident()); err != nil {
			return fmt.Errorf("postgres: untrack %q: %w", t, err)
		}
	}
	return nil
}
