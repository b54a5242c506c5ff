// Package lakelink holds the vocabulary shared by every part of lakelink:
// tables, columns, kinds and values, changes and positions, links and their
// settings, and the two interfaces that backends plug into, Source and Lake.
//
// The package holds types and interfaces only. The engine that moves changes
// from a Source into a Lake lives in package export; the lake format lives in
// package cdm.
package lakelink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"
)

// Kind is the neutral type of a column. Sources map their own types to a
// Kind; package cdm maps a Kind to a CDM data type and its text form. Neither
// knows the other.
type Kind uint8

// The kinds, and the Go type a non-NULL Value of each kind holds.
const (
	KindString         Kind = iota // string (text, varchar, interval, inet, enum labels...)
	KindInt64                      // int64
	KindFloat64                    // float64
	KindDecimal                    // string: plain decimal digits, optional sign and point, no exponent
	KindBool                       // bool
	KindBytes                      // []byte (written base64)
	KindDate                       // time.Time, the date part in UTC
	KindTime                       // time.Time, the clock part in UTC (date ignored)
	KindDateTime                   // time.Time in UTC: a timestamp without time zone
	KindDateTimeOffset             // time.Time: a timestamp with time zone
	KindGUID                       // string: canonical lower-case 8-4-4-4-12 form
	KindJSON                       // string: JSON text
)

var kindNames = [...]string{
	KindString:         "string",
	KindInt64:          "int64",
	KindFloat64:        "double",
	KindDecimal:        "decimal",
	KindBool:           "boolean",
	KindBytes:          "bytes",
	KindDate:           "date",
	KindTime:           "time",
	KindDateTime:       "dateTime",
	KindDateTimeOffset: "dateTimeOffset",
	KindGUID:           "guid",
	KindJSON:           "json",
}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one column value of one row. nil is SQL NULL. A non-NULL value
// holds the Go type that its column's Kind names (see the Kind constants), or
// a BadValue when the source holds something its column's type can't express.
type Value = any

// BadValue is a value a source read but could not convert to its column's
// Kind without loss, for example the text 'abc' stored in a SQLite INTEGER
// column. The engine refuses to export it and stops the table with a
// BadValueError naming the table, column, key and value.
type BadValue struct {
	Raw    any    // the value as the source stored it
	Reason string // why it does not fit, e.g. "text in an INTEGER column"
}

// String returns the raw value with the reason, for error messages.
func (b BadValue) String() string { return fmt.Sprintf("%#v (%s)", b.Raw, b.Reason) }

// Column describes one column of a source table.
type Column struct {
	Name      string // as the source names it
	Kind      Kind   // the neutral type
	Type      string // the declared type as the source spells it, e.g. "varchar(20)" or "INTEGER"
	MaxLength int    // declared maximum length of a string column, or -1
	Precision int    // declared precision of a decimal column, or -1
	Scale     int    // declared scale of a decimal column, or -1
	Options   []string
	// Options lists the labels of an enum-like column (PostgreSQL enum), in order.
}

// Table describes a source table: its current columns and its key.
type Table struct {
	Name    string   // as the source names it; a PostgreSQL table outside public is "schema.table"
	Columns []Column // in source order
	Key     []int    // indexes into Columns of the primary-key columns, in key order
}

// ColumnIndex returns the index of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// TableInfo is a table a source has, and whether it can be linked.
type TableInfo struct {
	Table
	Linkable bool
	Reason   string // why it can't be linked, with what would fix it; empty when Linkable
}

// Position is how far a source has been exported: a SQLite change sequence
// number or a PostgreSQL LSN. Positions grow with source order. The zero
// Position is before every change. A Position is also what the lake's
// versionnumber column holds.
type Position uint64

// String returns the position in decimal.
func (p Position) String() string { return strconv.FormatUint(uint64(p), 10) }

// Op is what a Change does.
type Op uint8

// The operations a stream delivers.
const (
	OpInsert   Op = iota + 1 // a new row; Row holds it
	OpUpdate                 // a changed row; Row holds its new values
	OpDelete                 // a removed row; Row holds the old row, at least its key columns
	OpSchema                 // the table's columns changed; Schema holds the new definition
	OpCommit                 // the end of a source transaction; Pos is its end position
	OpTruncate               // every row of the table is gone (PostgreSQL TRUNCATE); no Row
)

var opNames = [...]string{OpInsert: "insert", OpUpdate: "update", OpDelete: "delete", OpSchema: "schema", OpCommit: "commit", OpTruncate: "truncate"}

// String returns the operation's name.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Change is one event of a source's change stream.
//
// Rows are positional against the table's definition as last announced on
// the stream: before the first row of a table, and again whenever its
// columns change, the stream delivers an OpSchema with the table's
// definition.
//
// Unchanged marks the values an OpUpdate leaves out because they did not
// change (PostgreSQL: a TOASTed value under the default replica identity).
// It is nil when every value is there, the common case; otherwise it is as
// long as Row, Unchanged[i] true says the source did not send column i, and
// Row[i] is then nil, which does not mean NULL: the column keeps the value
// it had before the update. Only an OpUpdate carries it, and never for a
// key column. The engine takes such a value from the row as the lake holds
// it (in place), or stops the table, naming the column and the fix, when it
// can't (append only); it never writes it as NULL.
type Change struct {
	Op     Op
	Table  string   // the table's source name; empty for OpCommit
	Pos    Position // the change's own position; for OpCommit the transaction's end position
	Row    []Value  // OpInsert, OpUpdate, OpDelete
	Schema *Table   // OpSchema
	// OldKnown is false for a delete whose non-key columns the source does
	// not know (they are nil in Row, which then does not mean NULL).
	OldKnown bool
	// Unchanged (OpUpdate only, usually nil) marks the columns whose values
	// the source did not send because they did not change; see above.
	Unchanged []bool
}

// Snapshot is a consistent copy of one table's rows: every change at or
// before Position is in it, and none after it.
type Snapshot interface {
	// Table is the table's definition; rows are positional against it.
	Table() Table
	// Position is the source position the copy is consistent at.
	Position() Position
	// Next returns the next row, or io.EOF after the last. The returned slice
	// may be reused by the next call.
	Next() ([]Value, error)
	// Close releases the snapshot; it may be called at any time.
	Close() error
}

// Stream is a source's change stream for one link.
type Stream interface {
	// Next returns the next change, blocking until one is there or ctx is
	// done (then it returns ctx.Err()). Changes come in source order, grouped
	// in transactions that each end with an OpCommit.
	Next(ctx context.Context) (Change, error)
	// Ack tells the source that every change up to and including pos is
	// durably in the lake, so it may forget them. pos is always a position
	// an OpCommit carried.
	Ack(ctx context.Context, pos Position) error
	// Close ends the stream.
	Close() error
}

// Source is a database whose tables lakelink exports.
//
// A Source is safe for use by one link at a time; its methods may block on
// I/O and honour ctx.
type Source interface {
	// Tables lists every user table with whether it can be linked and, if
	// not, why.
	Tables(ctx context.Context) ([]TableInfo, error)
	// Track installs change tracking for the named tables of a link. It is
	// idempotent, and an error names the table that can't be tracked and why
	// (a *NotLinkableError).
	Track(ctx context.Context, link string, tables []string) error
	// Snapshot starts a consistent copy of a tracked table.
	Snapshot(ctx context.Context, link, table string) (Snapshot, error)
	// Stream starts the link's change stream after position from: the first
	// change delivered is the first one after from. It delivers the changes
	// of every table the link tracks.
	Stream(ctx context.Context, link string, from Position) (Stream, error)
	// Untrack removes the link's change tracking from the named tables
	// (every table of the link when tables is nil).
	Untrack(ctx context.Context, link string, tables []string) error
	// Close releases the source.
	Close() error
}

// Identified is implemented by a Source that can name the database instance
// it reads (PostgreSQL: the cluster's system identifier). The lake's state
// records it at the first run, and a later run against another instance is
// refused: positions of one instance mean nothing in another.
type Identified interface {
	SystemID(ctx context.Context) (string, error)
}

// Tailer is implemented by a Source that can tell the position a link's
// committed changes reach now. RunOnce exports until its stream has passed
// that position, however long the source is silent meanwhile (PostgreSQL
// decodes a large backlog without sending anything), and then stops, even
// while the application goes on writing.
type Tailer interface {
	Tail(ctx context.Context, link string) (Position, error)
}

// NotLinkableError says that a table can't be linked, and why.
type NotLinkableError struct {
	Table  string
	Reason string
}

func (e *NotLinkableError) Error() string {
	return fmt.Sprintf("table %q can't be linked: %s", e.Table, e.Reason)
}

// BadValueError says that a value can't be exported exactly. The table it
// belongs to stops; the link's other tables go on.
type BadValueError struct {
	Link   string
	Table  string
	Column string
	Key    string // the row's Id as written to the lake
	Value  string // the value, quoted and shortened for display
	Reason string
}

func (e *BadValueError) Error() string {
	link := ""
	if e.Link != "" {
		link = "link " + strconv.Quote(e.Link) + ": "
	}
	return fmt.Sprintf("%stable %q column %q key %s: value %s can't be exported: %s",
		link, e.Table, e.Column, e.Key, e.Value, e.Reason)
}

// ErrNotExist is returned by lakes for an object that is not there.
var ErrNotExist = fs.ErrNotExist

// ErrExist is returned by a conditional create for an object that is there.
var ErrExist = fs.ErrExist

// ErrResync marks an error of a source that can't resume its change stream
// from the lake's position (PostgreSQL: the slot is missing, lost, or ahead
// of the lake): retrying can't fix it, only a fresh copy of the tables
// (lakelink resync) can. The error's text says which and how.
var ErrResync = errors.New("the source can't resume from the lake's position")

// ErrChanged is returned (wrapped) by a write conditional on an object's
// version when the object has another version, or is gone.
var ErrChanged = errors.New("object changed")

// ErrTransient marks an error worth retrying (a network blip, a busy
// database). Check with errors.Is.
var ErrTransient = errors.New("transient")

// Write modes of a table in the lake.
const (
	ModeInPlace    = "in-place"
	ModeAppendOnly = "append-only"
)

// Partition strategies of a table in the lake.
const (
	PartitionYear  = "year"
	PartitionMonth = "month"
)

// TableSettings are the per-table choices of a link. Empty fields take
// defaults: the createdOn column is found by name (createdon, created_on,
// createdat, created_at, case-insensitive); the mode is in-place when the
// table has a createdOn column and append-only otherwise; the partition
// strategy is year.
type TableSettings struct {
	Name      string `yaml:"name" json:"name"`
	Mode      string `yaml:"mode,omitempty" json:"mode,omitempty"`           // ModeInPlace or ModeAppendOnly
	Partition string `yaml:"partition,omitempty" json:"partition,omitempty"` // PartitionYear or PartitionMonth
	CreatedOn string `yaml:"createdon,omitempty" json:"createdon,omitempty"` // column that picks the partition
}

// Link is one source exported into one lake.
type Link struct {
	Name   string          `yaml:"name" json:"name"`
	Source string          `yaml:"source" json:"source"` // URL
	Lake   string          `yaml:"lake" json:"lake"`     // URL
	Tables []TableSettings `yaml:"tables,omitempty" json:"tables,omitempty"`
}

// Now is the clock lakelink reads; tests may replace it.
var Now = func() time.Time { return time.Now().UTC() }

var linkNameRE = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// CheckLinkName refuses a link name that can't name a source's change
// tracking: it must be 1 to 40 lower-case letters, digits or underscores.
func CheckLinkName(name string) error {
	if !linkNameRE.MatchString(name) {
		return fmt.Errorf("%q: use 1 to 40 lower-case letters, digits or underscores", name)
	}
	return nil
}

// CheckMode refuses a write mode other than ModeInPlace, ModeAppendOnly or
// "" (the default).
func CheckMode(m string) error {
	switch m {
	case "", ModeInPlace, ModeAppendOnly:
		return nil
	}
	return fmt.Errorf("%q: use %s or %s", m, ModeInPlace, ModeAppendOnly)
}

// CheckPartition refuses a partition strategy other than PartitionYear,
// PartitionMonth or "" (the default).
func CheckPartition(p string) error {
	switch p {
	case "", PartitionYear, PartitionMonth:
		return nil
	}
	return fmt.Errorf("%q: use %s or %s", p, PartitionYear, PartitionMonth)
}
