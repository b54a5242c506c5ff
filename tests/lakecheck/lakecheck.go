// Package lakecheck reads a lakelink lake the way an outside reader would,
// without lakelink's own cdm decoder: model.json through encoding/json into
// its own small structs, and the header-less CSV partitions through a small
// RFC 4180 reader that tells NULL (an unquoted empty field) from the empty
// string (""), which encoding/csv can't. It also holds an expected-value
// encoder for SQLite values, written from LAKE-FORMAT.md "Values by type",
// so that tests compare source values with lake text.
package lakecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lakelink/lakelink/cdm/cdmtest"
)

// Model is model.json as a reader needs it.
type Model struct {
	Name     string   `json:"name"`
	Entities []Entity `json:"entities"`
}

// Entity is one table of model.json.
type Entity struct {
	Type        string       `json:"$type"`
	Name        string       `json:"name"`
	Annotations []Annotation `json:"annotations"`
	Attributes  []Attribute  `json:"attributes"`
	Partitions  []Partition  `json:"partitions"`
}

// Annotation is a name/value pair of model.json.
type Annotation struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Attribute is one column of an entity.
type Attribute struct {
	Name     string `json:"name"`
	DataType string `json:"dataType"`
}

// Partition is one partition of an entity; Location names its newest
// Snapshot file.
type Partition struct {
	Name     string `json:"name"`
	Location string `json:"location"`
}

// Annotation returns the value of the named annotation, or "".
func (e *Entity) Annotation(name string) string {
	for _, a := range e.Annotations {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// AttributeNames returns the entity's attribute names in order.
func (e *Entity) AttributeNames() []string {
	names := make([]string, len(e.Attributes))
	for i, a := range e.Attributes {
		names[i] = a.Name
	}
	return names
}

// Entity returns the named entity (exact name), or nil.
func (m *Model) Entity(name string) *Entity {
	for i := range m.Entities {
		if m.Entities[i].Name == name {
			return &m.Entities[i]
		}
	}
	return nil
}

// ParseModel validates model.json bytes against the CDM schema (failing
// the test when they are not valid) and parses them.
func ParseModel(t testing.TB, data []byte) *Model {
	t.Helper()
	cdmtest.MustValidateModel(t, data)
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("model.json: %v", err)
	}
	return &m
}

// ReadModel reads, validates and parses <lake>/model.json. It returns the
// raw bytes too.
func ReadModel(t testing.TB, lake string) (*Model, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lake, "model.json"))
	if err != nil {
		t.Fatalf("read model.json: %v", err)
	}
	return ParseModel(t, data), data
}

// LocationPath turns a partition location (file:///...) into a local path.
func LocationPath(loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("partition location %q: %v", loc, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("partition location %q: not a file:// URI", loc)
	}
	return filepath.FromSlash(u.Path), nil
}

// Field is one CSV field. Null is an unquoted empty field; an empty
// string is Quoted with Text "".
type Field struct {
	Text   string
	Quoted bool
}

// Null reports whether the field is SQL NULL.
func (f Field) Null() bool { return !f.Quoted && f.Text == "" }

// String shows the field for messages: NULL, "quoted" or bare, shortened.
func (f Field) String() string {
	if f.Null() {
		return "NULL"
	}
	s := f.Text
	if len(s) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…(" + strconv.Itoa(len(f.Text)) + " bytes)"
	}
	if f.Quoted {
		return strconv.Quote(s)
	}
	return "bare " + strconv.Quote(s)
}

// Null is the NULL field.
var Null = Field{}

// ParseCSV reads header-less RFC 4180 records that each end with "\n".
// Quoted fields may hold commas, doubled quotes, CR and LF. It refuses a
// quote inside an unquoted field, anything but a comma or a newline after a
// closing quote, a CR outside quotes and a last record without its "\n"
// (a half-written file).
func ParseCSV(data []byte) ([][]Field, error) {
	var records [][]Field
	var rec []Field
	line := 1
	i := 0
	for i < len(data) {
		// One field starts at i.
		var f Field
		if data[i] == '"' {
			f.Quoted = true
			i++
			var b strings.Builder
			for {
				j := bytes.IndexByte(data[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("line %d: quoted field never closed", line)
				}
				line += bytes.Count(data[i:i+j], []byte{'\n'})
				b.Write(data[i : i+j])
				i += j + 1
				if i < len(data) && data[i] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			f.Text = b.String()
			if i < len(data) && data[i] != ',' && data[i] != '\n' {
				return nil, fmt.Errorf("line %d: %q after a closing quote", line, data[i])
			}
		} else {
			j := i
			for j < len(data) && data[j] != ',' && data[j] != '\n' {
				switch data[j] {
				case '"':
					return nil, fmt.Errorf("line %d: quote inside an unquoted field", line)
				case '\r':
					return nil, fmt.Errorf("line %d: CR outside quotes", line)
				}
				j++
			}
			f.Text = string(data[i:j])
			i = j
		}
		rec = append(rec, f)
		if i >= len(data) {
			return nil, fmt.Errorf("line %d: last record does not end with a newline (half-written file?)", line)
		}
		if data[i] == '\n' {
			records = append(records, rec)
			rec = nil
			line++
		}
		i++
		if data[i-1] == ',' && i == len(data) {
			return nil, fmt.Errorf("line %d: last record does not end with a newline (half-written file?)", line)
		}
	}
	return records, nil
}

// Record is one row of a partition file mapped to attribute names.
type Record struct {
	File   string // the file it came from (base name)
	Fields map[string]Field
	Width  int // how many fields the row had (ragged rows have fewer)
}

// Get returns the named attribute's field; a field past a ragged row's end
// is NULL.
func (r Record) Get(attr string) Field { return r.Fields[attr] }

// mapRecords maps rows to attribute names; missing trailing fields are
// NULL, extra fields are an error.
func mapRecords(file string, rows [][]Field, attrs []string) ([]Record, error) {
	out := make([]Record, 0, len(rows))
	for i, row := range rows {
		if len(row) > len(attrs) {
			return nil, fmt.Errorf("%s: record %d has %d fields, model.json names %d attributes", file, i+1, len(row), len(attrs))
		}
		r := Record{File: filepath.Base(file), Fields: make(map[string]Field, len(attrs)), Width: len(row)}
		for j, a := range attrs {
			if j < len(row) {
				r.Fields[a] = row[j]
			} else {
				r.Fields[a] = Null
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadFile parses one partition file and maps its rows to attrs.
func ReadFile(path string, attrs []string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows, err := ParseCSV(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mapRecords(path, rows, attrs)
}

// LiveFiles lists the live partition files <lake>/<folder>/*.csv, sorted.
func LiveFiles(lake, folder string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(lake, folder, "*.csv"))
	sort.Strings(files)
	return files, err
}

// ReadLive returns every record of the entity's live partition files
// <lake>/<entity>/*.csv.
func ReadLive(lake string, e *Entity) ([]Record, error) {
	files, err := LiveFiles(lake, e.Name)
	if err != nil {
		return nil, err
	}
	var all []Record
	for _, f := range files {
		recs, err := ReadFile(f, e.AttributeNames())
		if err != nil {
			return nil, err
		}
		all = append(all, recs...)
	}
	return all, nil
}

// ReadSnapshot returns every record of the Snapshot files that model.json
// names for the entity.
func ReadSnapshot(e *Entity) ([]Record, error) {
	var all []Record
	for _, p := range e.Partitions {
		path, err := LocationPath(p.Location)
		if err != nil {
			return nil, err
		}
		recs, err := ReadFile(path, e.AttributeNames())
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", p.Name, err)
		}
		all = append(all, recs...)
	}
	return all, nil
}

// PartitionOf returns the partition name of a live file path ("2021" for
// .../2021.csv).
func PartitionOf(file string) string {
	return strings.TrimSuffix(filepath.Base(file), ".csv")
}

// ErrNoEntity is returned when model.json has no entity of that name.
var ErrNoEntity = errors.New("no such entity in model.json")
