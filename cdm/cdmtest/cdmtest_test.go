package cdmtest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/cdm/cdmtest"
)

// validModel returns a valid model.json decoded into generic JSON, for the
// test cases to break.
func validModel(t *testing.T) map[string]any {
	t.Helper()
	attrs := []cdm.Attribute{
		cdm.IDAttribute([]lakelink.Kind{lakelink.KindInt64}),
		cdm.SystemAttribute(cdm.AttrSinkCreatedOn),
		cdm.SystemAttribute(cdm.AttrSinkModifiedOn),
		cdm.ColumnAttribute(lakelink.Column{Name: "amount", Kind: lakelink.KindDecimal, MaxLength: -1, Precision: 10, Scale: 2}),
		cdm.SystemAttribute(cdm.AttrVersionNumber),
		cdm.SystemAttribute(cdm.AttrIsDelete),
	}
	e := cdm.BuildEntity(cdm.EntitySpec{
		Folder: "orders", Attributes: attrs, Granularity: cdm.GranularityYear,
		InitialSyncState: cdm.SyncCompleted, InitialSyncCompleted: time.Unix(1624900475, 0), WriteMode: cdm.WriteModeInPlaceUpdate,
		Partitions: []cdm.PartitionSpec{{Name: "2021", Location: "s3://bucket/lake/orders/Snapshot/2021_1624900475.csv", RefreshTime: time.Unix(1624900475, 0)}},
	})
	data, err := cdm.NewModel(time.Unix(1624900476, 0), []cdm.Entity{e}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cdmtest.MustValidateModel(t, data)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func entity(m map[string]any) map[string]any { return m["entities"].([]any)[0].(map[string]any) }
func attr(m map[string]any, i int) map[string]any {
	return entity(m)["attributes"].([]any)[i].(map[string]any)
}
func part(m map[string]any) map[string]any {
	return entity(m)["partitions"].([]any)[0].(map[string]any)
}

func TestValidateModelRejects(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(m map[string]any)
		want   string // a substring of the error
	}{
		{"not JSON", nil, "not JSON"},
		{"version", func(m map[string]any) { m["version"] = "2.0" }, "schema"},
		{"root name", func(m map[string]any) { m["name"] = "model" }, `name "model"`},
		{"no entities", func(m map[string]any) { delete(m, "entities") }, "schema"},
		{"entity name with a dot", func(m map[string]any) { entity(m)["name"] = "a.b.c" }, "schema"},
		{"entity name with a quote", func(m map[string]any) { entity(m)["name"] = `a"bc` }, "schema"},
		{"unknown dataType", func(m map[string]any) { attr(m, 3)["dataType"] = "money" }, "schema"},
		{"location not a URI", func(m map[string]any) { part(m)["location"] = "not a uri" }, "location"},
		{"relative location", func(m map[string]any) { part(m)["location"] = "orders/2021.csv" }, "location"},
		{"header", func(m map[string]any) { part(m)["fileFormatSettings"].(map[string]any)["columnHeaders"] = true }, "fileFormatSettings"},
		{"no encoding", func(m map[string]any) { delete(part(m)["fileFormatSettings"].(map[string]any), "encoding") }, "fileFormatSettings"},
		{"no traits", func(m map[string]any) { delete(part(m), "cdm:traits") }, "cdm:traits"},
		{"ragged right false", func(m map[string]any) {
			part(m)["cdm:traits"].([]any)[0].(map[string]any)["arguments"].([]any)[0].(map[string]any)["value"] = "false"
		}, "cdm:traits"},
		{"no partition year", func(m map[string]any) { part(m)["annotations"] = []any{} }, "Athena:PartitionYear"},
		{"refresh time not UTC", func(m map[string]any) { part(m)["refreshTime"] = "2021-06-28T18:34:35+02:00" }, "not UTC"},
		{"modified time", func(m map[string]any) { m["modifiedTime"] = "6/28/2021 4:34:35 PM" }, "modifiedTime"},
		{"duplicate attribute", func(m map[string]any) { attr(m, 3)["name"] = "ISDELETE" }, "used twice"},
		{"Id not first", func(m map[string]any) { attr(m, 0)["name"] = "Key" }, `want "Id"`},
		{"no maxLength", func(m map[string]any) { delete(attr(m, 3), "maxLength") }, "maxLength"},
		{"scale before precision", func(m map[string]any) {
			args := attr(m, 3)["cdm:traits"].([]any)[0].(map[string]any)["arguments"].([]any)
			args[0], args[1] = args[1], args[0]
		}, "precision,scale"},
		{"IsDelete type", func(m map[string]any) { attr(m, 5)["dataType"] = "string" }, "IsDelete"},
		{"no write mode", func(m map[string]any) { entity(m)["annotations"] = entity(m)["annotations"].([]any)[:3] }, "lakelink:WriteMode"},
		{"granularity", func(m map[string]any) {
			entity(m)["annotations"].([]any)[0].(map[string]any)["value"] = "Week"
		}, "Athena:PartitionGranularity"},
		{"completed time without completion", func(m map[string]any) {
			entity(m)["annotations"].([]any)[1].(map[string]any)["value"] = "InProgress"
		}, "Athena:InitialSyncDataCompletedTime"},
		{"reference entity", func(m map[string]any) { entity(m)["$type"] = "ReferenceEntity" }, "schema"},
		{"duplicate entity", func(m map[string]any) {
			m["entities"] = append(m["entities"].([]any), m["entities"].([]any)[0])
		}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(`{"name": "cdm"`)
			if tt.break_ != nil {
				m := validModel(t)
				tt.break_(m)
				var err error
				if data, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			err := cdmtest.ValidateModel(data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateModel = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
