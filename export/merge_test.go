package export

import (
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// TestIDField checks the merge's fast Id scan against the format's own
// field splitter, on every shape an Id field takes.
func TestIDField(t *testing.T) {
	var recs [][]byte
	for _, key := range [][]lakelink.Value{
		{int64(42)}, {int64(-9223372036854775808)}, {"plain"}, {""}, {`with "quotes", and commas`},
		{"line\nbreak\r\n"}, {"6b82fed7-c82c-eb11-a813-000d3a3a75c1"},
		{int64(1), "a,b"}, {"x\"y", int64(2)},
	} {
		kinds := make([]lakelink.Kind, len(key))
		for i, v := range key {
			if _, ok := v.(int64); ok {
				kinds[i] = lakelink.KindInt64
			}
		}
		id, err := cdm.AppendID(nil, kinds, key)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, append(id, []byte(`,"1/1/2024 1:00:00 AM","x, ""y""",7,`+"\n")...))
		recs = append(recs, id) // a last record without its newline
	}
	for _, rec := range recs {
		want := cdm.SplitFields(nil, rec)[0]
		if got := idField(rec); string(got) != string(want) {
			t.Errorf("idField(%q) = %q, want %q", rec, got, want)
		}
	}
}
