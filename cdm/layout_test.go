package cdm

import (
	"strings"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

func TestPartitionName(t *testing.T) {
	tests := []struct {
		granularity string
		createdOn   lakelink.Value
		want        string
	}{
		{GranularityYear, time.Date(2021, 6, 25, 16, 0, 0, 0, time.UTC), "2021"},
		{GranularityMonth, time.Date(2021, 6, 25, 16, 0, 0, 0, time.UTC), "2021-06"},
		{GranularityMonth, time.Date(2021, 12, 31, 23, 0, 0, 0, time.UTC), "2021-12"},
		// In UTC: 1 a.m. on January 1 at +02:00 is still the previous year.
		{GranularityYear, time.Date(2022, 1, 1, 1, 0, 0, 0, time.FixedZone("+2", 7200)), "2021"},
		{GranularityMonth, time.Date(2022, 1, 1, 1, 0, 0, 0, time.FixedZone("+2", 7200)), "2021-12"},
		{GranularityYear, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "0001"},
		{GranularityYear, nil, "1900"},
		{GranularityMonth, nil, "1900"},
		{"year", time.Date(2021, 6, 25, 0, 0, 0, 0, time.UTC), "2021"},
	}
	for _, tt := range tests {
		got, err := PartitionName(tt.granularity, tt.createdOn)
		if err != nil || got != tt.want {
			t.Errorf("PartitionName(%q, %v) = %q, %v; want %q", tt.granularity, tt.createdOn, got, err, tt.want)
		}
	}
	bad := []struct {
		granularity string
		createdOn   lakelink.Value
	}{
		{GranularityYear, "2021-06-25"},
		{GranularityYear, lakelink.BadValue{Raw: "x", Reason: "text in a DATETIME column"}},
		{GranularityYear, int64(2021)},
		{GranularityYear, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{GranularityNone, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"", nil},
		{"Week", time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range bad {
		if got, err := PartitionName(tt.granularity, tt.createdOn); err == nil {
			t.Errorf("PartitionName(%q, %#v) = %q, want an error", tt.granularity, tt.createdOn, got)
		}
	}
}

func TestNumberedPartition(t *testing.T) {
	if got := NumberedPartition(1); got != "1" {
		t.Errorf("NumberedPartition(1) = %q, want \"1\"", got)
	}
	if got := NumberedPartition(12); got != "12" {
		t.Errorf("NumberedPartition(12) = %q, want \"12\"", got)
	}
}

func TestTableFolder(t *testing.T) {
	tests := []struct{ in, want string }{
		{"orders", "orders"},
		{"Orders", "orders"},
		{"sales.Orders", "sales_orders"},
		{"my table", "my table"},
		{"Ünïcode_表", "ünïcode_表"},
		{"optionsetmetadata_x", "optionsetmetadata_x"},
		{strings.Repeat("a", 256), strings.Repeat("a", 256)},
	}
	for _, tt := range tests {
		got, err := TableFolder(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("TableFolder(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestTableFolderRefusals(t *testing.T) {
	tests := []struct{ in, why string }{
		{"", "empty"},
		{"a/b", `"/"`},
		{`a\b`, `"/" or "\"`},
		{"/etc", `"/"`},
		{"..", `".."`},
		{"a..b", `".."`},
		{"../x", `".."`},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"a\u0085b", "control character"},
		{`a"b`, `'"'`},
		{" a", "white space"},
		{"a ", "white space"},
		{"a\u00a0", "white space"},
		{"a.b.c", `"."`},
		{"a.", `not "schema.table"`},
		{".a", `not "schema.table"`},
		{"\xff", "UTF-8"},
		{strings.Repeat("a", 257), "256"},
		{"Microsoft.Athena.TrickleFeedService", "lake's own"},
		{"microsoft.athena.tricklefeedservice", "lake's own"},
		{"OptionsetMetadata", "lake's own"},
		{"OPTIONSETMETADATA", "lake's own"},
		{"model.json", "lake's own"},
		{"Model.JSON", "lake's own"},
	}
	for _, tt := range tests {
		got, err := TableFolder(tt.in)
		if err == nil {
			t.Errorf("TableFolder(%q) = %q, want an error", tt.in, got)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.why) || !strings.Contains(msg, quoteShort(tt.in)) {
			t.Errorf("TableFolder(%q) error %q, want it to name the table and say %q", tt.in, msg, tt.why)
		}
	}
}

func TestCheckAttributeName(t *testing.T) {
	for _, ok := range []string{"name", "Name With Spaces", "a.b", "ID_2", "isdeleted", strings.Repeat("é", 256)} {
		if err := CheckAttributeName(ok); err != nil {
			t.Errorf("CheckAttributeName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", " x", "x\t", "\xff", strings.Repeat("a", 257), "Id", "id", "ID", "SinkCreatedOn", "sinkmodifiedon", "VersionNumber", "isdelete"} {
		err := CheckAttributeName(bad)
		if err == nil {
			t.Errorf("CheckAttributeName(%q) = nil, want an error", bad)
		} else if !strings.Contains(err.Error(), quoteShort(bad)) {
			t.Errorf("CheckAttributeName(%q) error %q does not name the column", bad, err)
		}
	}
}

func TestPaths(t *testing.T) {
	at := time.Unix(1624900475, 0)
	tests := []struct{ got, want string }{
		{PartitionPath("orders", "2021"), "orders/2021.csv"},
		{SplitPartitionPath("orders", "2021", 1), "orders/2021_001.csv"},
		{SplitPartitionPath("orders", "2021-06", 12), "orders/2021-06_012.csv"},
		{SplitPartitionPath("orders", "2021", 1234), "orders/2021_1234.csv"},
		{SnapshotPath("orders", "2021", at), "orders/Snapshot/2021_1624900475.csv"},
		{SnapshotPath("orders", "2021_001", at), "orders/Snapshot/2021_001_1624900475.csv"},
		{EntityModelPath("orders"), "Microsoft.Athena.TrickleFeedService/orders-model.json"},
		{EntityMetadataPath("orders"), "Microsoft.Athena.TrickleFeedService/orders-EntityMetadata.json"},
		{StateFolder, "Microsoft.Athena.TrickleFeedService/lakelink"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseSnapshotPath(t *testing.T) {
	tests := []struct {
		path      string
		partition string
		unix      int64
		ok        bool
	}{
		{"orders/Snapshot/2021_1624900475.csv", "2021", 1624900475, true},
		{"orders/Snapshot/2021-06_1624900475.csv", "2021-06", 1624900475, true},
		{"orders/Snapshot/2021_001_1624900475.csv", "2021_001", 1624900475, true},
		{"orders/Snapshot/1_0.csv", "1", 0, true},
		{"orders/2021.csv", "", 0, false},
		{"other/Snapshot/2021_1624900475.csv", "", 0, false},
		{"orders/Snapshot/2021_1624900475.json", "", 0, false},
		{"orders/Snapshot/2021.csv", "", 0, false},
		{"orders/Snapshot/_1624900475.csv", "", 0, false},
		{"orders/Snapshot/2021_-5.csv", "", 0, false},
		{"orders/Snapshot/2021_+5.csv", "", 0, false},
		{"orders/Snapshot/2021_0162.csv", "", 0, false},
		{"orders/Snapshot/2021_x.csv", "", 0, false},
		{"orders/Snapshot/sub/2021_1.csv", "", 0, false},
	}
	for _, tt := range tests {
		p, at, ok := ParseSnapshotPath("orders", tt.path)
		if ok != tt.ok || p != tt.partition || (ok && !at.Equal(time.Unix(tt.unix, 0))) {
			t.Errorf("ParseSnapshotPath(%q) = %q, %v, %v; want %q, %v, %v", tt.path, p, at, ok, tt.partition, time.Unix(tt.unix, 0), tt.ok)
		}
	}
}

func TestSplitName(t *testing.T) {
	for _, tt := range []struct {
		partition string
		n         int
		name      string
	}{
		{"2020", 0, "2020"},
		{"2020", 1, "2020_001"},
		{"2020-05", 12, "2020-05_012"},
		{"3", 1000, "3_1000"},
	} {
		if got := SplitPartitionName(tt.partition, tt.n); got != tt.name {
			t.Errorf("SplitPartitionName(%q, %d) = %q, want %q", tt.partition, tt.n, got, tt.name)
		}
		p, n, ok := ParseSplitName(tt.name)
		if tt.n == 0 {
			if ok {
				t.Errorf("ParseSplitName(%q) = %q, %d, true; want not a split", tt.name, p, n)
			}
			continue
		}
		if !ok || p != tt.partition || n != tt.n {
			t.Errorf("ParseSplitName(%q) = %q, %d, %v; want %q, %d", tt.name, p, n, ok, tt.partition, tt.n)
		}
	}
	for _, name := range []string{"2020_1", "2020_01", "2020_000", "2020_0001", "_001", "2020_abc", "2020"} {
		if p, n, ok := ParseSplitName(name); ok {
			t.Errorf("ParseSplitName(%q) = %q, %d, true; want not a split name", name, p, n)
		}
	}
}
