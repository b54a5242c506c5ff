package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/lakelink/lakelink"
)

// colInfo is one column as SQLite declares it. A generation's column list
// is stored as JSON of these.
type colInfo struct {
	Name string `json:"name"`
	Type string `json:"type"` // the declared type, as written
	PK   int    `json:"pk"`   // 1-based position in the primary key, 0 if not in it
}

// tableDesc is what describe learns about a table.
type tableDesc struct {
	name         string
	exists       bool
	kind         string // pragma_table_list type: table, virtual, shadow, view
	withoutRowid bool
	cols         []colInfo
}

// describe reads the named table's definition from the main database. A
// missing table gives exists false and no error.
func describe(ctx context.Context, q queryer, name string) (tableDesc, error) {
	d := tableDesc{name: name}
	// A read of sqlite_schema makes the connection check the schema cookie
	// and reload a stale schema; the pragmas below would not.
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil {
		return d, err
	}
	var wr int
	err := q.QueryRowContext(ctx, `SELECT type, wr FROM pragma_table_list(?) WHERE schema = 'main'`, name).Scan(&d.kind, &wr)
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	d.exists = true
	d.withoutRowid = wr != 0
	// hidden: 0 normal, 1 hidden column of a virtual table, 2 and 3
	// generated columns (which SELECT * includes).
	rows, err := q.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_xinfo(?, 'main') WHERE hidden <> 1 ORDER BY cid`, name)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		var c colInfo
		if err := rows.Scan(&c.Name, &c.Type, &c.PK); err != nil {
			return d, err
		}
		d.cols = append(d.cols, c)
	}
	return d, rows.Err()
}

// info is the table as Tables reports it.
func (d tableDesc) info() lakelink.TableInfo {
	ti := lakelink.TableInfo{Table: tableOf(d.name, d.cols)}
	switch {
	case d.kind == "virtual":
		ti.Reason = "is a virtual table: lakelink tracks changes with triggers, which SQLite does not allow on virtual tables; link a table that holds the same rows instead"
	case d.kind == "shadow":
		ti.Reason = "is a shadow table that a virtual table keeps for itself; link the data's own table instead"
	case d.kind != "table":
		ti.Reason = "is a " + d.kind + ", not a table"
	case len(ti.Key) == 0:
		ti.Reason = `has no PRIMARY KEY: lakelink identifies rows by their key; recreate the table with one (for example "id INTEGER PRIMARY KEY")`
	default:
		ti.Linkable = true
	}
	return ti
}

// keyNames returns the primary-key column names in key order.
func keyNames(cols []colInfo) []string {
	var pk []colInfo
	for _, c := range cols {
		if c.PK > 0 {
			pk = append(pk, c)
		}
	}
	sort.Slice(pk, func(i, j int) bool { return pk[i].PK < pk[j].PK })
	names := make([]string, len(pk))
	for i, c := range pk {
		names[i] = c.Name
	}
	return names
}

// tableOf maps SQLite columns to a lakelink table definition.
func tableOf(name string, cols []colInfo) lakelink.Table {
	t := lakelink.Table{Name: name, Columns: make([]lakelink.Column, len(cols))}
	for i, c := range cols {
		t.Columns[i] = columnOf(c.Name, c.Type)
	}
	for _, k := range keyNames(cols) {
		for i, c := range cols {
			if c.Name == k {
				t.Key = append(t.Key, i)
			}
		}
	}
	return t
}

func sameColumns(a, b []colInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// columnOf maps a declared type to a Kind, following SQLite's affinity
// rules with the names LAKE-FORMAT.md gives their own rows: contains INT is
// int64 (BOOL and BOOLEAN are bool), DATE date, DATETIME and TIMESTAMP
// dateTime, NUMERIC and DECIMAL decimal, contains CHAR, CLOB or TEXT string,
// BLOB bytes, contains REAL, FLOA or DOUB double, no type string, and
// anything else (NUMERIC affinity) decimal. Two named types beyond that
// table: TIME is time and JSON is json.
func columnOf(name, decl string) lakelink.Column {
	c := lakelink.Column{Name: name, Type: decl, MaxLength: -1, Precision: -1, Scale: -1}
	u := strings.ToUpper(strings.TrimSpace(decl))
	base, args := splitType(u)
	switch {
	case u == "":
		c.Kind = lakelink.KindString
	case base == "BOOLEAN" || base == "BOOL":
		c.Kind = lakelink.KindBool
	case strings.Contains(u, "INT"):
		c.Kind = lakelink.KindInt64
	case base == "DATE":
		c.Kind = lakelink.KindDate
	case base == "DATETIME" || base == "TIMESTAMP":
		c.Kind = lakelink.KindDateTime
	case base == "TIME":
		c.Kind = lakelink.KindTime
	case base == "JSON":
		c.Kind = lakelink.KindJSON
	case base == "NUMERIC" || base == "DECIMAL":
		c.Kind = lakelink.KindDecimal
		if len(args) >= 1 && len(args) <= 2 {
			c.Precision = args[0]
			if len(args) == 2 {
				c.Scale = args[1]
			}
		}
	case strings.Contains(u, "CHAR") || strings.Contains(u, "CLOB") || strings.Contains(u, "TEXT"):
		c.Kind = lakelink.KindString
		if strings.Contains(base, "CHAR") && len(args) == 1 {
			c.MaxLength = args[0]
		}
	case strings.Contains(u, "BLOB"):
		c.Kind = lakelink.KindBytes
	case strings.Contains(u, "REAL") || strings.Contains(u, "FLOA") || strings.Contains(u, "DOUB"):
		c.Kind = lakelink.KindFloat64
	default:
		c.Kind = lakelink.KindDecimal
	}
	return c
}

// splitType splits "VARCHAR (20)" into "VARCHAR" and [20], and
// "DOUBLE  PRECISION" into "DOUBLE PRECISION". Arguments that are not
// non-negative integers make args nil.
func splitType(u string) (base string, args []int) {
	if i := strings.IndexByte(u, '('); i >= 0 {
		inner := u[i+1:]
		if j := strings.IndexByte(inner, ')'); j >= 0 {
			for _, a := range strings.Split(inner[:j], ",") {
				n, err := strconv.Atoi(strings.TrimSpace(a))
				if err != nil || n < 0 {
					args = nil
					break
				}
				args = append(args, n)
			}
		}
		u = u[:i]
	}
	return strings.Join(strings.Fields(u), " "), args
}
