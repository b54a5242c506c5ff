package cdm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// Root values of model.json.
const (
	ModelName        = "cdm"
	ModelVersion     = "1.0"
	ModelApplication = "lakelink"
)

// Annotations lakelink writes.
const (
	AnnotationGranularity      = "Athena:PartitionGranularity"         // on an entity: a Granularity constant
	AnnotationInitialSyncState = "Athena:InitialSyncState"             // on an entity: a Sync constant
	AnnotationInitialSyncDone  = "Athena:InitialSyncDataCompletedTime" // on an entity: FormatSinkTime text, once completed
	AnnotationWriteMode        = "lakelink:WriteMode"                  // on an entity: a WriteMode constant
	AnnotationPartitionYear    = "Athena:PartitionYear"                // on a partition: the year, or the partition number
	AnnotationEncoding         = "lakelink:Encoding"                   // on a KindBytes attribute: EncodingBase64
	EncodingBase64             = "base64"
)

// Values of Athena:InitialSyncState.
const (
	SyncNotStarted = "NotStarted"
	SyncInProgress = "InProgress"
	SyncCompleted  = "Completed"
	SyncFailed     = "Failed"
)

// Values of lakelink:WriteMode.
const (
	WriteModeInPlaceUpdate = "InPlaceUpdate"
	WriteModeAppendOnly    = "AppendOnly"
)

// EntityTypeLocal is the $type of every entity lakelink writes.
const EntityTypeLocal = "LocalEntity"

// Traits lakelink writes, and their arguments.
const (
	TraitConstrained   = "is.constrained"               // a string's declared length
	TraitNumericShaped = "is.dataFormat.numeric.shaped" // a decimal's precision and scale, in that order
	TraitPartitionCSV  = "is.partition.format.CSV"      // every partition
	ArgMaximumLength   = "maximumLength"
	ArgPrecision       = "precision"
	ArgScale           = "scale"
	ArgRaggedRight     = "raggedRight"
)

// Model is the content of model.json. It marshals with encoding/json to
// exactly the JSON LAKE-FORMAT.md documents: times in UTC (RFC 3339), nil
// slices as empty arrays.
type Model struct {
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Version      string    `json:"version"`
	Application  string    `json:"application"`
	ModifiedTime time.Time `json:"modifiedTime"`
	Entities     []Entity  `json:"entities"`
}

// Entity is one table of model.json.
type Entity struct {
	Type        string       `json:"$type"` // always "LocalEntity"
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Annotations []Annotation `json:"annotations"`
	Attributes  []Attribute  `json:"attributes"`
	Partitions  []Partition  `json:"partitions"`
}

// Annotation is a name-value pair on an entity, attribute or partition.
type Annotation struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Attribute is one column of an entity.
type Attribute struct {
	Name        string           `json:"name"`
	DataType    string           `json:"dataType"`
	MaxLength   int              `json:"maxLength"` // declared length, or -1
	Traits      []TraitReference `json:"cdm:traits,omitempty"`
	Annotations []Annotation     `json:"annotations,omitempty"`
}

// TraitReference is a CDM trait with its arguments, in order.
type TraitReference struct {
	TraitReference string     `json:"traitReference"`
	Arguments      []Argument `json:"arguments,omitempty"`
}

// Argument is one argument of a trait. lakelink writes every value as a
// JSON string; when parsing, a number or boolean is taken as its JSON text.
type Argument struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Partition is one data file of an entity: the newest snapshot copy of one
// partition.
type Partition struct {
	Name               string             `json:"name"`
	Location           string             `json:"location"` // absolute URI
	RefreshTime        time.Time          `json:"refreshTime"`
	FileFormatSettings FileFormatSettings `json:"fileFormatSettings"`
	Traits             []TraitReference   `json:"cdm:traits"`
	Annotations        []Annotation       `json:"annotations"`
}

// FileFormatSettings describes a partition file's CSV dialect. lakelink
// always writes CSVFormatSettings().
type FileFormatSettings struct {
	Type          string `json:"$type"` // "CsvFormatSettings"
	ColumnHeaders bool   `json:"columnHeaders"`
	Delimiter     string `json:"delimiter"`
	QuoteStyle    string `json:"quoteStyle"`
	CSVStyle      string `json:"csvStyle"`
	Encoding      string `json:"encoding"`
}

// CSVFormatSettings returns the settings of every partition lakelink
// writes: no header, ',' delimiter, QuoteStyle.Csv, CsvStyle.QuoteAlways,
// UTF-8.
func CSVFormatSettings() FileFormatSettings {
	return FileFormatSettings{
		Type:          "CsvFormatSettings",
		ColumnHeaders: false,
		Delimiter:     ",",
		QuoteStyle:    "QuoteStyle.Csv",
		CSVStyle:      "CsvStyle.QuoteAlways",
		Encoding:      "UTF-8",
	}
}

// PartitionTraits returns the traits of every partition lakelink writes:
// is.partition.format.CSV with raggedRight "true".
func PartitionTraits() []TraitReference {
	return []TraitReference{{
		TraitReference: TraitPartitionCSV,
		Arguments:      []Argument{{Name: ArgRaggedRight, Value: "true"}},
	}}
}

// marshalJSON is json.Marshal without HTML escaping, so names with '<' or
// '&' stay readable.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// orEmpty returns s, or an empty non-nil slice for nil, which marshals as [].
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// MarshalJSON writes the model with its time in UTC.
func (m Model) MarshalJSON() ([]byte, error) {
	type plain Model
	p := plain(m)
	p.ModifiedTime = p.ModifiedTime.UTC()
	p.Entities = orEmpty(p.Entities)
	return marshalJSON(p)
}

// MarshalJSON writes the entity with nil lists as empty arrays.
func (e Entity) MarshalJSON() ([]byte, error) {
	type plain Entity
	p := plain(e)
	p.Annotations = orEmpty(p.Annotations)
	p.Attributes = orEmpty(p.Attributes)
	p.Partitions = orEmpty(p.Partitions)
	return marshalJSON(p)
}

// MarshalJSON writes the partition with its time in UTC and nil lists as
// empty arrays.
func (p Partition) MarshalJSON() ([]byte, error) {
	type plain Partition
	q := plain(p)
	q.RefreshTime = q.RefreshTime.UTC()
	q.Traits = orEmpty(q.Traits)
	q.Annotations = orEmpty(q.Annotations)
	return marshalJSON(q)
}

// UnmarshalJSON reads an argument whose value is a JSON string, number or
// boolean (other tools write numbers, e.g. "maximumLength": 20).
func (a *Argument) UnmarshalJSON(data []byte) error {
	var raw struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	a.Name, a.Value = raw.Name, ""
	switch v := bytes.TrimSpace(raw.Value); {
	case len(v) == 0 || string(v) == "null":
	case v[0] == '"':
		return json.Unmarshal(v, &a.Value)
	default:
		a.Value = string(v)
	}
	return nil
}

// Marshal returns the model as indented JSON with a trailing newline. The
// output depends only on the model.
func (m Model) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("cdm: marshal model.json: %w", err)
	}
	return b.Bytes(), nil
}

// ParseModel parses model.json. It accepts any JSON that decodes into a
// Model; use cdmtest.ValidateModel to check a model against the format.
func ParseModel(data []byte) (Model, error) {
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		return Model{}, fmt.Errorf("cdm: parse model.json: %w", err)
	}
	return m, nil
}

// NewModel returns the model.json root with the given entities: name and
// description "cdm", version "1.0", application "lakelink".
func NewModel(modified time.Time, entities []Entity) Model {
	return Model{
		Name:         ModelName,
		Description:  ModelName,
		Version:      ModelVersion,
		Application:  ModelApplication,
		ModifiedTime: modified.UTC(),
		Entities:     orEmpty(entities),
	}
}

// Entity returns the entity named name, and whether there is one.
func (m Model) Entity(name string) (Entity, bool) {
	for _, e := range m.Entities {
		if e.Name == name {
			return e, true
		}
	}
	return Entity{}, false
}

// Annotation returns the value of the entity's annotation named name, and
// whether there is one.
func (e Entity) Annotation(name string) (string, bool) {
	return annotation(e.Annotations, name)
}

func annotation(as []Annotation, name string) (string, bool) {
	for _, a := range as {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// dataTypes maps each Kind to its CDM dataType.
var dataTypes = [...]string{
	lakelink.KindString:         "string",
	lakelink.KindInt64:          "int64",
	lakelink.KindFloat64:        "double",
	lakelink.KindDecimal:        "decimal",
	lakelink.KindBool:           "boolean",
	lakelink.KindBytes:          "string",
	lakelink.KindDate:           "date",
	lakelink.KindTime:           "time",
	lakelink.KindDateTime:       "dateTime",
	lakelink.KindDateTimeOffset: "dateTimeOffset",
	lakelink.KindGUID:           "guid",
	lakelink.KindJSON:           "json",
}

// DataType returns the CDM dataType of kind k: "string", "int64",
// "double", "decimal", "boolean", "guid", "dateTimeOffset", "dateTime",
// "date", "time" or "json". KindBytes (base64 text) and unknown kinds are
// "string".
func DataType(k lakelink.Kind) string {
	if int(k) < len(dataTypes) {
		return dataTypes[k]
	}
	return "string"
}

// ColumnAttribute returns the attribute of a table column: its dataType,
// maxLength (the declared length of a string column, or -1), the trait
// is.constrained(maximumLength) for a string with a declared length,
// is.dataFormat.numeric.shaped(precision, scale), in that order, for a
// decimal with a declared precision (an undeclared scale is 0, as in
// numeric(p)), and the annotation lakelink:Encoding = base64 for KindBytes.
func ColumnAttribute(c lakelink.Column) Attribute {
	a := Attribute{Name: c.Name, DataType: DataType(c.Kind), MaxLength: -1}
	switch c.Kind {
	case lakelink.KindString:
		if c.MaxLength > 0 {
			a.MaxLength = c.MaxLength
			a.Traits = []TraitReference{{
				TraitReference: TraitConstrained,
				Arguments:      []Argument{{Name: ArgMaximumLength, Value: strconv.Itoa(c.MaxLength)}},
			}}
		}
	case lakelink.KindDecimal:
		if c.Precision > 0 {
			a.Traits = []TraitReference{{
				TraitReference: TraitNumericShaped,
				Arguments: []Argument{
					{Name: ArgPrecision, Value: strconv.Itoa(c.Precision)},
					{Name: ArgScale, Value: strconv.Itoa(max(c.Scale, 0))},
				},
			}}
		}
	case lakelink.KindBytes:
		a.Annotations = []Annotation{{Name: AnnotationEncoding, Value: EncodingBase64}}
	}
	return a
}

// IDAttribute returns the Id attribute of a table whose key columns have
// the given kinds: the dataType of a single-column key's kind (guid, int64,
// string...), and string for a composite key, whose Id is a JSON array.
func IDAttribute(keyKinds []lakelink.Kind) Attribute {
	dt := "string"
	if len(keyKinds) == 1 {
		dt = DataType(keyKinds[0])
	}
	return Attribute{Name: AttrID, DataType: dt, MaxLength: -1}
}

// SystemAttribute returns the system attribute of that name, matched
// case-insensitively: Id (as IDAttribute(nil), dataType string; use
// IDAttribute for a table's own), SinkCreatedOn and SinkModifiedOn
// (dateTime), versionnumber (int64), IsDelete (boolean). It panics on any
// other name: the names are the Attr constants.
func SystemAttribute(name string) Attribute {
	dt := ""
	switch {
	case strings.EqualFold(name, AttrID):
		return IDAttribute(nil)
	case strings.EqualFold(name, AttrSinkCreatedOn):
		name, dt = AttrSinkCreatedOn, "dateTime"
	case strings.EqualFold(name, AttrSinkModifiedOn):
		name, dt = AttrSinkModifiedOn, "dateTime"
	case strings.EqualFold(name, AttrVersionNumber):
		name, dt = AttrVersionNumber, "int64"
	case strings.EqualFold(name, AttrIsDelete):
		name, dt = AttrIsDelete, "boolean"
	default:
		panic("cdm: no system attribute " + strconv.Quote(name))
	}
	return Attribute{Name: name, DataType: dt, MaxLength: -1}
}

// EntitySpec is what the engine knows about a table; BuildEntity turns it
// into a model.json entity.
type EntitySpec struct {
	Folder string // the table's folder name = entity name and description
	// Attributes is the full list in lake order, as the engine composes it:
	// Id, SinkCreatedOn, SinkModifiedOn, the initial columns,
	// versionnumber, IsDelete, then columns added later.
	Attributes           []Attribute
	Granularity          string    // GranularityYear, GranularityMonth or GranularityNone
	InitialSyncState     string    // SyncNotStarted, SyncInProgress, SyncCompleted or SyncFailed
	InitialSyncCompleted time.Time // zero unless completed
	WriteMode            string    // WriteModeInPlaceUpdate or WriteModeAppendOnly
	Partitions           []PartitionSpec
}

// PartitionSpec is one partition as model.json lists it.
type PartitionSpec struct {
	Name        string    // the partition: "2021", "2021-06", "1"
	Location    string    // absolute URI of its newest snapshot file
	RefreshTime time.Time // when that snapshot was taken
	// Year is the value of Athena:PartitionYear: the year, or the partition
	// number. Empty means the partition name up to its first '-'.
	Year string
}

// BuildEntity returns the model.json entity of a table: a LocalEntity
// named after its folder, with the annotations Athena:PartitionGranularity,
// Athena:InitialSyncState, Athena:InitialSyncDataCompletedTime (only when
// the state is Completed and the time is set) and lakelink:WriteMode, the
// attributes as given, and each partition with the CSV format settings,
// the is.partition.format.CSV trait and Athena:PartitionYear.
func BuildEntity(s EntitySpec) Entity {
	e := Entity{
		Type:        EntityTypeLocal,
		Name:        s.Folder,
		Description: s.Folder,
		Annotations: []Annotation{
			{Name: AnnotationGranularity, Value: s.Granularity},
			{Name: AnnotationInitialSyncState, Value: s.InitialSyncState},
		},
		Attributes: orEmpty(slices.Clone(s.Attributes)),
		Partitions: make([]Partition, 0, len(s.Partitions)),
	}
	if s.InitialSyncState == SyncCompleted && !s.InitialSyncCompleted.IsZero() {
		e.Annotations = append(e.Annotations, Annotation{Name: AnnotationInitialSyncDone, Value: FormatSinkTime(s.InitialSyncCompleted)})
	}
	e.Annotations = append(e.Annotations, Annotation{Name: AnnotationWriteMode, Value: s.WriteMode})
	for _, p := range s.Partitions {
		year := p.Year
		if year == "" {
			year, _, _ = strings.Cut(p.Name, "-")
		}
		e.Partitions = append(e.Partitions, Partition{
			Name:               p.Name,
			Location:           p.Location,
			RefreshTime:        p.RefreshTime.UTC(),
			FileFormatSettings: CSVFormatSettings(),
			Traits:             PartitionTraits(),
			Annotations:        []Annotation{{Name: AnnotationPartitionYear, Value: year}},
		})
	}
	return e
}

// EntityMetadataFile is the content of <folder>-EntityMetadata.json:
//
//	{
//	  "name": "orders",
//	  "attributes": [
//	    {"name": "id", "dataType": "int64", "sourceType": "bigint",
//	     "maxLength": -1, "precision": -1, "scale": -1},
//	    {"name": "status", "dataType": "string", "sourceType": "order_status",
//	     "maxLength": -1, "precision": -1, "scale": -1,
//	     "options": [{"index": 1, "label": "new"}, {"index": 2, "label": "paid"}]}
//	  ]
//	}
//
// attributes lists the table's columns (not the system attributes) in lake
// order; options, only on enum-like columns, lists their labels in the
// source's order, numbered from 1. The CSV holds the label itself.
type EntityMetadataFile struct {
	Name       string              `json:"name"`
	Attributes []AttributeMetadata `json:"attributes"`
}

// AttributeMetadata describes one column in EntityMetadataFile.
type AttributeMetadata struct {
	Name       string           `json:"name"`
	DataType   string           `json:"dataType"`   // the CDM dataType
	SourceType string           `json:"sourceType"` // the declared type as the source spells it
	MaxLength  int              `json:"maxLength"`  // declared length, or -1
	Precision  int              `json:"precision"`  // declared precision, or -1
	Scale      int              `json:"scale"`      // declared scale, or -1
	Options    []OptionMetadata `json:"options,omitempty"`
}

// OptionMetadata is one label of an enum-like column.
type OptionMetadata struct {
	Index int    `json:"index"` // 1, 2, ... in the source's order
	Label string `json:"label"`
}

// EntityMetadata returns the content of the table's
// <folder>-EntityMetadata.json (see EntityMetadataFile for its shape):
// indented JSON with a trailing newline. A name or label that is not valid
// UTF-8 is an error.
func EntityMetadata(folder string, columns []lakelink.Column) ([]byte, error) {
	if !utf8.ValidString(folder) {
		return nil, fmt.Errorf("cdm: entity metadata of %s: name is not valid UTF-8", quoteShort(folder))
	}
	f := EntityMetadataFile{Name: folder, Attributes: make([]AttributeMetadata, 0, len(columns))}
	for _, c := range columns {
		a := ColumnAttribute(c)
		m := AttributeMetadata{
			Name:       c.Name,
			DataType:   a.DataType,
			SourceType: c.Type,
			MaxLength:  a.MaxLength,
			Precision:  -1,
			Scale:      -1,
		}
		if c.Precision > 0 {
			m.Precision = c.Precision
			m.Scale = max(c.Scale, 0)
		} else if c.Scale >= 0 {
			m.Scale = c.Scale
		}
		bad := !utf8.ValidString(c.Name) || !utf8.ValidString(c.Type)
		for i, o := range c.Options {
			bad = bad || !utf8.ValidString(o)
			m.Options = append(m.Options, OptionMetadata{Index: i + 1, Label: o})
		}
		if bad {
			return nil, fmt.Errorf("cdm: entity metadata of %s: column %s: name, type or label is not valid UTF-8", quoteShort(folder), quoteShort(c.Name))
		}
		f.Attributes = append(f.Attributes, m)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("cdm: entity metadata of %s: %w", quoteShort(folder), err)
	}
	return b.Bytes(), nil
}
