package cdm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm/cdmtest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cdm -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

// ordersColumns is a table with a column of every kind.
var ordersColumns = []lakelink.Column{
	{Name: "order_id", Kind: lakelink.KindGUID, Type: "uuid", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "customer", Kind: lakelink.KindString, Type: "varchar(100)", MaxLength: 100, Precision: -1, Scale: -1},
	{Name: "note", Kind: lakelink.KindString, Type: "text", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "quantity", Kind: lakelink.KindInt64, Type: "integer", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "weight", Kind: lakelink.KindFloat64, Type: "double precision", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "amount", Kind: lakelink.KindDecimal, Type: "numeric(18,2)", MaxLength: -1, Precision: 18, Scale: 2},
	{Name: "rate", Kind: lakelink.KindDecimal, Type: "numeric", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "paid", Kind: lakelink.KindBool, Type: "boolean", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "photo", Kind: lakelink.KindBytes, Type: "bytea", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "createdon", Kind: lakelink.KindDateTimeOffset, Type: "timestamp with time zone", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "shipped", Kind: lakelink.KindDateTime, Type: "timestamp without time zone", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "due", Kind: lakelink.KindDate, Type: "date", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "slot", Kind: lakelink.KindTime, Type: "time", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "extra", Kind: lakelink.KindJSON, Type: "jsonb", MaxLength: -1, Precision: -1, Scale: -1},
	{Name: "status", Kind: lakelink.KindString, Type: "order_status", MaxLength: -1, Precision: -1, Scale: -1, Options: []string{"new", "paid", "shipped"}},
}

// lakeAttributes composes the attribute list as the engine does: Id, the
// sink times, the initial columns, versionnumber, IsDelete, then columns
// added later.
func lakeAttributes(keyKinds []lakelink.Kind, initial, added []lakelink.Column) []Attribute {
	as := []Attribute{IDAttribute(keyKinds), SystemAttribute(AttrSinkCreatedOn), SystemAttribute(AttrSinkModifiedOn)}
	for _, c := range initial {
		as = append(as, ColumnAttribute(c))
	}
	as = append(as, SystemAttribute(AttrVersionNumber), SystemAttribute(AttrIsDelete))
	for _, c := range added {
		as = append(as, ColumnAttribute(c))
	}
	return as
}

func sampleModel() Model {
	snap := time.Date(2021, 6, 28, 16, 34, 35, 0, time.UTC)
	orders := BuildEntity(EntitySpec{
		Folder:               "orders",
		Attributes:           lakeAttributes([]lakelink.Kind{lakelink.KindGUID}, ordersColumns[:14], ordersColumns[14:]),
		Granularity:          GranularityYear,
		InitialSyncState:     SyncCompleted,
		InitialSyncCompleted: time.Date(2021, 6, 28, 0, 5, 0, 0, time.UTC),
		WriteMode:            WriteModeInPlaceUpdate,
		Partitions: []PartitionSpec{
			{Name: "2020", Location: "https://acct.dfs.core.windows.net:443/lake/orders/Snapshot/2020_1624898075.csv", RefreshTime: snap.Add(-40 * time.Minute)},
			{Name: "2021", Location: "https://acct.dfs.core.windows.net:443/lake/orders/Snapshot/2021_1624898075.csv", RefreshTime: snap.In(time.FixedZone("+2", 7200))},
		},
	})
	events := BuildEntity(EntitySpec{
		Folder: "audit_events",
		Attributes: lakeAttributes([]lakelink.Kind{lakelink.KindInt64, lakelink.KindString}, []lakelink.Column{
			{Name: "seq", Kind: lakelink.KindInt64, Type: "INTEGER", MaxLength: -1, Precision: -1, Scale: -1},
			{Name: "source", Kind: lakelink.KindString, Type: "TEXT", MaxLength: -1, Precision: -1, Scale: -1},
		}, nil),
		Granularity:      GranularityNone,
		InitialSyncState: SyncInProgress,
		WriteMode:        WriteModeAppendOnly,
		Partitions: []PartitionSpec{
			{Name: "1", Location: "file:///srv/lake/audit_events/Snapshot/1_1624898075.csv", RefreshTime: snap, Year: "1"},
		},
	})
	empty := BuildEntity(EntitySpec{
		Folder:           "sales_returns",
		Attributes:       lakeAttributes([]lakelink.Kind{lakelink.KindInt64}, nil, nil),
		Granularity:      GranularityMonth,
		InitialSyncState: SyncNotStarted,
		WriteMode:        WriteModeInPlaceUpdate,
	})
	return NewModel(snap.Add(time.Second), []Entity{orders, events, empty})
}

func TestModelGolden(t *testing.T) {
	data, err := sampleModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "model.json.golden", data)
	cdmtest.MustValidateModel(t, data)
}

func TestModelRoundTrip(t *testing.T) {
	m := sampleModel()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back); diff != "" {
		t.Fatalf("ParseModel(Marshal(m)) differs (-want +got):\n%s", diff)
	}
	again, err := back.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("Marshal is not stable: %v\n%s", err, cmp.Diff(string(data), string(again)))
	}
}

func TestModelZeroValuesValidate(t *testing.T) {
	// nil slices marshal as [], times as UTC, even without BuildEntity.
	data, err := NewModel(time.Date(2021, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), nil).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"entities": []`)) || !bytes.Contains(data, []byte(`"modifiedTime": "2020-12-31T23:00:00Z"`)) {
		t.Fatalf("empty model:\n%s", data)
	}
	cdmtest.MustValidateModel(t, data)
}

func TestParseModelNumericArguments(t *testing.T) {
	data := `{"name":"cdm","version":"1.0","entities":[{"$type":"LocalEntity","name":"a","attributes":[
		{"name":"x","dataType":"decimal","cdm:traits":[{"traitReference":"is.dataFormat.numeric.shaped","arguments":[{"name":"precision","value":18},{"name":"scale","value":"2"}]}]}]}]}`
	m, err := ParseModel([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Entities[0].Attributes[0].Traits[0].Arguments
	want := []Argument{{Name: "precision", Value: "18"}, {Name: "scale", Value: "2"}}
	if !cmp.Equal(got, want) {
		t.Fatalf("arguments = %v, want %v", got, want)
	}
	if _, err := ParseModel([]byte(`{"name":`)); err == nil {
		t.Fatal("ParseModel of truncated JSON: no error")
	}
}

func TestBuildEntityAnnotations(t *testing.T) {
	done := time.Date(2021, 6, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		state string
		done  time.Time
		want  []Annotation
	}{
		{SyncCompleted, done, []Annotation{
			{AnnotationGranularity, GranularityMonth}, {AnnotationInitialSyncState, SyncCompleted},
			{AnnotationInitialSyncDone, "6/28/2021 12:00:00 PM"}, {AnnotationWriteMode, WriteModeAppendOnly},
		}},
		{SyncInProgress, done, []Annotation{
			{AnnotationGranularity, GranularityMonth}, {AnnotationInitialSyncState, SyncInProgress}, {AnnotationWriteMode, WriteModeAppendOnly},
		}},
		{SyncCompleted, time.Time{}, []Annotation{
			{AnnotationGranularity, GranularityMonth}, {AnnotationInitialSyncState, SyncCompleted}, {AnnotationWriteMode, WriteModeAppendOnly},
		}},
	}
	for _, tt := range tests {
		e := BuildEntity(EntitySpec{Folder: "t", Granularity: GranularityMonth, InitialSyncState: tt.state, InitialSyncCompleted: tt.done, WriteMode: WriteModeAppendOnly,
			Partitions: []PartitionSpec{{Name: "2021-06", Location: "s3://b/t/Snapshot/2021-06_1.csv"}}})
		if diff := cmp.Diff(tt.want, e.Annotations); diff != "" {
			t.Errorf("state %s: annotations differ (-want +got):\n%s", tt.state, diff)
		}
		if got, _ := annotation(e.Partitions[0].Annotations, AnnotationPartitionYear); got != "2021" {
			t.Errorf("Athena:PartitionYear of 2021-06 = %q, want 2021", got)
		}
		if v, ok := e.Annotation(AnnotationWriteMode); !ok || v != WriteModeAppendOnly {
			t.Errorf("Entity.Annotation(WriteMode) = %q, %v", v, ok)
		}
	}
}

func TestColumnAttribute(t *testing.T) {
	tests := []struct {
		c    lakelink.Column
		want Attribute
	}{
		{lakelink.Column{Name: "a", Kind: lakelink.KindString, MaxLength: 20}, Attribute{Name: "a", DataType: "string", MaxLength: 20,
			Traits: []TraitReference{{TraitReference: "is.constrained", Arguments: []Argument{{"maximumLength", "20"}}}}}},
		{lakelink.Column{Name: "b", Kind: lakelink.KindString, MaxLength: -1}, Attribute{Name: "b", DataType: "string", MaxLength: -1}},
		{lakelink.Column{Name: "c", Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 10, Scale: 3}, Attribute{Name: "c", DataType: "decimal", MaxLength: -1,
			Traits: []TraitReference{{TraitReference: "is.dataFormat.numeric.shaped", Arguments: []Argument{{"precision", "10"}, {"scale", "3"}}}}}},
		{lakelink.Column{Name: "d", Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 10, Scale: -1}, Attribute{Name: "d", DataType: "decimal", MaxLength: -1,
			Traits: []TraitReference{{TraitReference: "is.dataFormat.numeric.shaped", Arguments: []Argument{{"precision", "10"}, {"scale", "0"}}}}}},
		{lakelink.Column{Name: "e", Kind: lakelink.KindDecimal, MaxLength: -1, Precision: -1, Scale: -1}, Attribute{Name: "e", DataType: "decimal", MaxLength: -1}},
		{lakelink.Column{Name: "f", Kind: lakelink.KindBytes, MaxLength: -1}, Attribute{Name: "f", DataType: "string", MaxLength: -1,
			Annotations: []Annotation{{"lakelink:Encoding", "base64"}}}},
		{lakelink.Column{Name: "g", Kind: lakelink.KindGUID}, Attribute{Name: "g", DataType: "guid", MaxLength: -1}},
		{lakelink.Column{Name: "h", Kind: lakelink.KindInt64, MaxLength: 8}, Attribute{Name: "h", DataType: "int64", MaxLength: -1}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ColumnAttribute(tt.c)); diff != "" {
			t.Errorf("ColumnAttribute(%+v) differs (-want +got):\n%s", tt.c, diff)
		}
	}
}

func TestDataType(t *testing.T) {
	want := map[lakelink.Kind]string{
		lakelink.KindString: "string", lakelink.KindInt64: "int64", lakelink.KindFloat64: "double", lakelink.KindDecimal: "decimal",
		lakelink.KindBool: "boolean", lakelink.KindBytes: "string", lakelink.KindDate: "date", lakelink.KindTime: "time",
		lakelink.KindDateTime: "dateTime", lakelink.KindDateTimeOffset: "dateTimeOffset", lakelink.KindGUID: "guid", lakelink.KindJSON: "json",
		lakelink.Kind(200): "string",
	}
	for k, w := range want {
		if got := DataType(k); got != w {
			t.Errorf("DataType(%s) = %q, want %q", k, got, w)
		}
	}
}

func TestSystemAttributes(t *testing.T) {
	tests := []struct {
		got  Attribute
		want Attribute
	}{
		{IDAttribute([]lakelink.Kind{lakelink.KindGUID}), Attribute{Name: "Id", DataType: "guid", MaxLength: -1}},
		{IDAttribute([]lakelink.Kind{lakelink.KindInt64}), Attribute{Name: "Id", DataType: "int64", MaxLength: -1}},
		{IDAttribute([]lakelink.Kind{lakelink.KindString}), Attribute{Name: "Id", DataType: "string", MaxLength: -1}},
		{IDAttribute([]lakelink.Kind{lakelink.KindInt64, lakelink.KindInt64}), Attribute{Name: "Id", DataType: "string", MaxLength: -1}},
		{SystemAttribute("Id"), Attribute{Name: "Id", DataType: "string", MaxLength: -1}},
		{SystemAttribute("SinkCreatedOn"), Attribute{Name: "SinkCreatedOn", DataType: "dateTime", MaxLength: -1}},
		{SystemAttribute("sinkmodifiedon"), Attribute{Name: "SinkModifiedOn", DataType: "dateTime", MaxLength: -1}},
		{SystemAttribute("versionnumber"), Attribute{Name: "versionnumber", DataType: "int64", MaxLength: -1}},
		{SystemAttribute("IsDelete"), Attribute{Name: "IsDelete", DataType: "boolean", MaxLength: -1}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("system attribute differs (-want +got):\n%s", diff)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SystemAttribute(\"nope\") did not panic")
		}
	}()
	SystemAttribute("nope")
}

func TestEntityMetadataGolden(t *testing.T) {
	data, err := EntityMetadata("orders", ordersColumns)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "entitymetadata.json.golden", data)
	if _, err := EntityMetadata("orders", []lakelink.Column{{Name: "a\xff"}}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("EntityMetadata with an invalid name: error %v, want one about UTF-8", err)
	}
}
