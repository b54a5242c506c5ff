package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// StatePath is where a link's export state lives in the lake.
const StatePath = cdm.StateFolder + "/state.json"

// stateVersion is the version of the state record's shape.
const stateVersion = 1

// Initial sync states, as model.json's Athena:InitialSyncState names them.
const (
	SyncNotStarted = "NotStarted"
	SyncInProgress = "InProgress"
	SyncCompleted  = "Completed"
	SyncFailed     = "Failed"
)

// State is the export state of one link, kept in the lake next to the data
// it describes. It is replaced atomically at every commit; everything it
// names is durable before it is written.
type State struct {
	Version  int               `json:"version"`
	Link     string            `json:"link"`
	Source   string            `json:"source"`
	SourceID string            `json:"sourceId,omitempty"` // the source instance's SystemID, when it has one
	Position lakelink.Position `json:"position"`           // every change up to here is in the lake
	Commit   uint64            `json:"commit"`             // number of commits so far
	// Pending, when beyond Position, is the end of a commit that was being
	// written: the lake may hold in-place changes up to it.
	Pending    lakelink.Position      `json:"pending,omitempty"`
	CommitTime time.Time              `json:"commitTime,omitzero"`
	Snapshot   time.Time              `json:"snapshot,omitzero"` // when the last snapshot was taken
	Tables     map[string]*TableState `json:"tables"`            // by source table name

	// fence, when set, makes every write of the record conditional on the
	// version this process last read or wrote (see stateFence).
	fence *stateFence
}

// TableState is the export state of one table.
type TableState struct {
	Source    string `json:"source"`    // the source's name of the table
	Folder    string `json:"folder"`    // its folder (and entity) name in the lake
	Mode      string `json:"mode"`      // lakelink.ModeInPlace or lakelink.ModeAppendOnly
	Partition string `json:"partition"` // lakelink.PartitionYear or PartitionMonth; "" when numbered
	CreatedOn string `json:"createdOn,omitempty"`

	Key     []string        `json:"key"` // key column names, in key order
	KeyKind []lakelink.Kind `json:"keyKinds"`
	Columns []ColState      `json:"columns"` // source columns in lake order, dropped ones kept
	Initial int             `json:"initial"` // how many of Columns stand before versionnumber

	InitialSync          string            `json:"initialSync"`
	InitialSyncCompleted time.Time         `json:"initialSyncCompleted,omitzero"`
	CopyPosition         lakelink.Position `json:"copyPosition"` // changes at or before it are in the copy

	Rows       int64                 `json:"rows"`
	Partitions map[string]*PartState `json:"partitions"`
	Numbered   int                   `json:"numbered,omitempty"` // the current numbered partition
	LastCommit time.Time             `json:"lastCommit,omitzero"`
	LastPos    lakelink.Position     `json:"lastPosition,omitempty"` // the last change exported
	Error      string                `json:"error,omitempty"`        // why the table stopped
}

// ColState is one source column as the lake knows it.
type ColState struct {
	Name      string        `json:"name"`           // the source's name
	Attr      string        `json:"attr,omitempty"` // the lake's name, when it differs (see lakeName)
	Kind      lakelink.Kind `json:"kind"`
	Type      string        `json:"type"`
	MaxLength int           `json:"maxLength"`
	Precision int           `json:"precision"`
	Scale     int           `json:"scale"`
	Options   []string      `json:"options,omitempty"`
	Dropped   bool          `json:"dropped,omitempty"`
}

// PartState is one partition of a table.
type PartState struct {
	Size      int64   `json:"size"`      // committed length of the live file
	Rows      int64   `json:"rows"`      // rows (in place) or records (append only) in it
	Changed   bool    `json:"changed"`   // changed since its last snapshot
	Snapshots []int64 `json:"snapshots"` // unix seconds of its snapshot files, oldest first
}

func newState(link, source string) *State {
	return &State{Version: stateVersion, Link: link, Source: source, Tables: map[string]*TableState{}}
}

// column returns the lakelink.Column of a ColState, named as in the lake.
func (c ColState) column() lakelink.Column {
	name := c.Name
	if c.Attr != "" {
		name = c.Attr
	}
	return lakelink.Column{Name: name, Kind: c.Kind, Type: c.Type, MaxLength: c.MaxLength, Precision: c.Precision, Scale: c.Scale, Options: c.Options}
}

func colState(c lakelink.Column) ColState {
	return ColState{Name: c.Name, Kind: c.Kind, Type: c.Type, MaxLength: c.MaxLength, Precision: c.Precision, Scale: c.Scale, Options: c.Options}
}

// lakeName is the attribute name of a source column: its own name, unless
// that is (ignoring case) a system attribute's or another column's, when
// underscores are added until it is unique. A table whose key column is
// "id" thus gets the attribute "id_" beside the system column Id.
func lakeName(name string, taken map[string]bool) string {
	for _, sys := range []string{"Id", "SinkCreatedOn", "SinkModifiedOn", "versionnumber", "IsDelete"} {
		taken[strings.ToLower(sys)] = true
	}
	for taken[strings.ToLower(name)] {
		name += "_"
	}
	taken[strings.ToLower(name)] = true
	return name
}

// attributes returns the table's model.json attributes in lake order: Id,
// SinkCreatedOn, SinkModifiedOn, the initial columns, versionnumber,
// IsDelete, then the columns added later.
func (t *TableState) attributes() []cdm.Attribute {
	attrs := []cdm.Attribute{cdm.IDAttribute(t.KeyKind), cdm.SystemAttribute("SinkCreatedOn"), cdm.SystemAttribute("SinkModifiedOn")}
	for _, c := range t.Columns[:t.Initial] {
		attrs = append(attrs, cdm.ColumnAttribute(c.column()))
	}
	attrs = append(attrs, cdm.SystemAttribute("versionnumber"), cdm.SystemAttribute("IsDelete"))
	for _, c := range t.Columns[t.Initial:] {
		attrs = append(attrs, cdm.ColumnAttribute(c.column()))
	}
	return attrs
}

// granularity is the table's Athena:PartitionGranularity.
func (t *TableState) granularity() string {
	switch {
	case t.CreatedOn == "":
		return cdm.GranularityNone
	case t.Partition == lakelink.PartitionMonth:
		return cdm.GranularityMonth
	}
	return cdm.GranularityYear
}

func (t *TableState) writeMode() string {
	if t.Mode == lakelink.ModeInPlace {
		return "InPlaceUpdate"
	}
	return "AppendOnly"
}

// partitionNames returns the table's partitions, sorted.
func (t *TableState) partitionNames() []string {
	names := make([]string, 0, len(t.Partitions))
	for n := range t.Partitions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (t *TableState) part(name string) *PartState {
	p := t.Partitions[name]
	if p == nil {
		p = &PartState{}
		t.Partitions[name] = p
	}
	return p
}

// clone returns a deep copy, so that a commit can prepare the next state
// while the last committed one stays intact until the new one is durable.
func (s *State) clone() *State {
	data, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("export: clone state: %v", err)) // only plain data: can't fail
	}
	var c State
	if err := json.Unmarshal(data, &c); err != nil {
		panic(fmt.Sprintf("export: clone state: %v", err))
	}
	return &c
}

// ReadState reads a link's export state from the lake; a lake without one
// gives an error wrapping lakelink.ErrNotExist.
func ReadState(ctx context.Context, lake lakelink.Lake) (*State, error) {
	r, err := lake.Open(ctx, StatePath)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return parseState(lake, data)
}

// parseState decodes a state record read from lake.
func parseState(lake lakelink.Lake, data []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", lake.URL(StatePath), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this lakelink knows version %d", lake.URL(StatePath), s.Version, stateVersion)
	}
	if s.Tables == nil {
		s.Tables = map[string]*TableState{}
	}
	for _, t := range s.Tables {
		if t.Partitions == nil {
			t.Partitions = map[string]*PartState{}
		}
	}
	return &s, nil
}

// writeState replaces the state record atomically; under a fence, only if
// nobody else wrote it since this process read or wrote it.
func writeState(ctx context.Context, lake lakelink.Lake, s *State) error {
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if s.fence != nil {
		return s.fence.write(ctx, data)
	}
	return writeObject(ctx, lake, StatePath, data)
}

// versionedLake is a lake with conditional writes (lake/file, lake/s3,
// lake/azure, and a lease-guarded lake over them).
type versionedLake interface {
	lakelink.Lake
	OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error)
	CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error)
	CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error)
}

// stateFence keeps the version of the state record that this process read
// or last wrote, and makes each write of it conditional on that version:
// if anything else wrote the record meanwhile (a second lakelink that took
// the lake over while this one was paused past its lease, or a resync or
// unlink run while this one exports), the write fails with
// lakelink.ErrChanged and changes nothing, so that a stale writer can
// never roll the record back. The session then starts again from the
// record as it is (or stops, when its lease is gone).
type stateFence struct {
	lake    versionedLake
	version string // "" with absent: there was no record
	absent  bool
}

// readStateFenced reads the state record, with a fence when the lake has
// conditional writes. A lake without a record gives an error wrapping
// lakelink.ErrNotExist and the fence for creating it (nil without one).
func readStateFenced(ctx context.Context, lake lakelink.Lake) (*State, *stateFence, error) {
	vl, ok := lake.(versionedLake)
	if !ok {
		st, err := ReadState(ctx, lake)
		return st, nil, err
	}
	r, version, err := vl.OpenVersion(ctx, StatePath)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		st, err := ReadState(ctx, lake)
		return st, nil, err
	case isNotExist(err):
		return nil, &stateFence{lake: vl, absent: true}, fmt.Errorf("read state: %w", err)
	case err != nil:
		return nil, nil, fmt.Errorf("read state: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read state: %w", err)
	}
	st, err := parseState(lake, data)
	if err != nil {
		return nil, nil, err
	}
	f := &stateFence{lake: vl, version: version}
	st.fence = f
	return st, f, nil
}

// write replaces the record if it is still the version the fence holds,
// then learns the version of what it wrote.
func (f *stateFence) write(ctx context.Context, data []byte) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var w io.WriteCloser
	if f.absent {
		w, err = f.lake.CreateIfAbsent(ctx, StatePath)
	} else {
		w, err = f.lake.CreateIfVersion(ctx, StatePath, f.version)
	}
	if err == nil {
		if _, err = w.Write(data); err != nil {
			cancel()
			_ = w.Close()
		} else {
			err = w.Close()
		}
	}
	if errors.Is(err, lakelink.ErrChanged) || errors.Is(err, lakelink.ErrExist) {
		return fmt.Errorf("write state: %w: something else wrote the lake's state since this lakelink read it (another lakelink, or lakelink resync or unlink while this one ran); this one starts again from the state as it is now", lakelink.ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	// The next write is conditional on the version just written. Read it
	// back: the lake says a version only when reading.
	r, version, err := f.lake.OpenVersion(ctx, StatePath)
	if err != nil {
		return fmt.Errorf("write state: read it back: %w", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("write state: read it back: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("write state: %w: another writer replaced the lake's state right after this lakelink wrote it", lakelink.ErrChanged)
	}
	f.version, f.absent = version, false
	return nil
}

// writeObject writes a small object whole; it is visible only once complete.
func writeObject(ctx context.Context, lake lakelink.Lake, path string, data []byte) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := lake.Create(ctx, path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := w.Write(data); err != nil {
		cancel()
		_ = w.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// isNotExist reports whether err says an object is missing.
func isNotExist(err error) bool { return errors.Is(err, lakelink.ErrNotExist) }

// Resync marks a table of the lake's export for a fresh initial copy: the
// next run copies it again from the source and streams its changes from
// there, whatever stopped it (a bad value since fixed, a type change). Its
// columns are forgotten; its partitions keep only their snapshot lists, so
// that new snapshot names never reuse an old one and retention ages the old
// files out (a partition the new copy does not fill gets an empty
// snapshot). Run it while no lakelink exports into this lake.
func Resync(ctx context.Context, lake lakelink.Lake, table string) error {
	st, err := ReadState(ctx, lake)
	if err != nil {
		return err
	}
	ts := st.Tables[table]
	if ts == nil {
		var names []string
		for n := range st.Tables {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("resync: the lake's export has no table %q (it has %s)", table, strings.Join(names, ", "))
	}
	parts := map[string]*PartState{}
	for name, p := range ts.Partitions {
		if len(p.Snapshots) > 0 {
			parts[name] = &PartState{Changed: true, Snapshots: p.Snapshots}
		}
	}
	st.Tables[table] = &TableState{
		Source: ts.Source, Folder: ts.Folder, Mode: ts.Mode, Partition: ts.Partition, CreatedOn: ts.CreatedOn,
		InitialSync: SyncNotStarted, Partitions: parts,
	}
	return writeState(ctx, lake, st)
}
