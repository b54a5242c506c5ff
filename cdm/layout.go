package cdm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// Partition granularities, the values of Athena:PartitionGranularity.
const (
	GranularityYear  = "Year"  // partitions "2021", by createdOn's year in UTC
	GranularityMonth = "Month" // partitions "2021-06", by createdOn's month in UTC
	GranularityNone  = "None"  // numbered partitions "1", "2", ... for tables without createdOn
)

// NullPartition is the partition of a row whose createdOn is NULL.
const NullPartition = "1900"

// RowsPerNumberedPartition is how many rows a numbered partition holds
// before the next one starts.
const RowsPerNumberedPartition = 5000000

// Paths of the lake root.
const (
	// ModelPath is the CDM manifest.
	ModelPath = "model.json"
	// SystemFolder holds per-table model and metadata files; readers skip it.
	SystemFolder = "Microsoft.Athena.TrickleFeedService"
	// StateFolder is where lakelink keeps its own export state.
	StateFolder = SystemFolder + "/lakelink"
	// OptionsetFolder holds the labels of enum-like columns.
	OptionsetFolder = "OptionsetMetadata"
	// SnapshotFolder is the folder of snapshot copies inside a table folder.
	SnapshotFolder = "Snapshot"
)

// PartitionName returns the partition of a row by its createdOn value:
// "2021" (GranularityYear) or "2021-06" (GranularityMonth) of the value in
// UTC, and NullPartition ("1900") when createdOn is nil. createdOn is a
// time.Time, a value of any temporal kind; another Go type (a
// lakelink.BadValue, a string), a year outside 0001..9999, or a granularity
// other than Year and Month (matched case-insensitively) is an error.
func PartitionName(granularity string, createdOn lakelink.Value) (string, error) {
	month := false
	switch {
	case strings.EqualFold(granularity, GranularityYear):
	case strings.EqualFold(granularity, GranularityMonth):
		month = true
	default:
		return "", fmt.Errorf("cdm: partition by createdOn with granularity %q: want Year or Month", granularity)
	}
	if createdOn == nil {
		return NullPartition, nil
	}
	t, ok := createdOn.(time.Time)
	if !ok {
		return "", fmt.Errorf("cdm: partition by createdOn value %s: %w", showValue(createdOn), badValue(lakelink.KindDateTime, createdOn))
	}
	u := t.UTC()
	y := u.Year()
	if y < 1 || y > 9999 {
		return "", fmt.Errorf("cdm: partition by createdOn value %s: year outside 0001..9999", showValue(t))
	}
	b := make([]byte, 0, 7)
	b = appendDigits(b, y, 4)
	if month {
		b = append(b, '-')
		b = appendDigits(b, int(u.Month()), 2)
	}
	return string(b), nil
}

// NumberedPartition returns the name of numbered partition n (1, 2, ...)
// of a table without createdOn.
func NumberedPartition(n int) string {
	return strconv.Itoa(n)
}

// TableFolder maps a source table name to its folder in the lake, which is
// also its entity name in model.json: lower case, and "schema.table" (a
// PostgreSQL table outside public) becomes "schema_table". It refuses, with
// an error naming the table and the reason, a name that is empty or not
// valid UTF-8; that has '/', '\\', "..", a control character or '"'; that
// starts or ends with white space; that is longer than 256 characters; that
// still has a '.' after the mapping; or that names a system folder
// (Microsoft.Athena.TrickleFeedService, OptionsetMetadata) or model.json,
// case-insensitively.
func TableFolder(sourceName string) (string, error) {
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("cdm: table %s can't be exported: %s", quoteShort(sourceName), why)
	}
	if why := badName(sourceName); why != "" {
		return refuse(why)
	}
	switch {
	case strings.Contains(sourceName, ".."):
		return refuse(`its name has ".."`)
	case strings.ContainsAny(sourceName, `/\`):
		return refuse(`its name has "/" or "\"`)
	case strings.Contains(sourceName, `"`):
		return refuse(`its name has a '"', which model.json can't hold in an entity name`)
	}
	for _, r := range sourceName {
		if unicode.IsControl(r) {
			return refuse("its name has a control character")
		}
	}
	for _, reserved := range []string{SystemFolder, OptionsetFolder, ModelPath} {
		if strings.EqualFold(sourceName, reserved) {
			return refuse("its name is the lake's own " + reserved)
		}
	}
	name := strings.ToLower(sourceName)
	if schema, table, ok := strings.Cut(name, "."); ok {
		if schema == "" || table == "" {
			return refuse(`its name is not "schema.table"`)
		}
		name = schema + "_" + table
	}
	if strings.Contains(name, ".") {
		return refuse(`its name has a "." besides the one after the schema, which model.json can't hold in an entity name`)
	}
	// Lower-casing can change a name; check the result as well.
	if why := badName(name); why != "" {
		return refuse("its folder name " + quoteShort(name) + " " + why)
	}
	for _, reserved := range []string{OptionsetFolder} {
		if strings.EqualFold(name, reserved) {
			return refuse("its folder name is the lake's own " + reserved)
		}
	}
	return name, nil
}

// badName says why model.json can't hold name (empty, invalid UTF-8, white
// space at either end, more than 256 characters), or returns "".
func badName(name string) string {
	switch {
	case name == "":
		return "its name is empty"
	case !utf8.ValidString(name):
		return "its name is not valid UTF-8"
	case utf8.RuneCountInString(name) > 256:
		return "its name is longer than 256 characters"
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "its name starts or ends with white space"
	}
	return ""
}

// System attribute names, in the order model.json lists them around the
// table's columns.
const (
	AttrID             = "Id"
	AttrSinkCreatedOn  = "SinkCreatedOn"
	AttrSinkModifiedOn = "SinkModifiedOn"
	AttrVersionNumber  = "versionnumber"
	AttrIsDelete       = "IsDelete"
)

var systemAttributes = []string{AttrID, AttrSinkCreatedOn, AttrSinkModifiedOn, AttrVersionNumber, AttrIsDelete}

// CheckAttributeName refuses a column name that model.json can't hold
// (empty, invalid UTF-8, white space at either end, more than 256
// characters) or that is, case-insensitively, the name of a system
// attribute (Id, SinkCreatedOn, SinkModifiedOn, versionnumber, IsDelete).
// The error names the column and says why.
func CheckAttributeName(name string) error {
	if why := badName(name); why != "" {
		return fmt.Errorf("cdm: column %s can't be exported: %s", quoteShort(name), why)
	}
	for _, s := range systemAttributes {
		if strings.EqualFold(name, s) {
			return fmt.Errorf("cdm: column %s can't be exported: its name is the lake's system column %s", quoteShort(name), s)
		}
	}
	return nil
}

// PartitionPath returns the path of a live partition file:
// "<folder>/<partition>.csv".
func PartitionPath(folder, partition string) string {
	return folder + "/" + partition + ".csv"
}

// SplitPartitionPath returns the path of overflow split n (1, 2, ...) of a
// partition: "<folder>/<partition>_001.csv" for n = 1.
func SplitPartitionPath(folder, partition string, n int) string {
	return PartitionPath(folder, SplitPartitionName(partition, n))
}

// SplitPartitionName names overflow split n of a partition: "2020_001" for
// n = 1, the partition itself for n = 0. A split is a partition of its own
// in model.json, with the year of the partition it continues.
func SplitPartitionName(partition string, n int) string {
	if n <= 0 {
		return partition
	}
	num := strconv.Itoa(n)
	if len(num) < 3 {
		num = "000"[len(num):] + num
	}
	return partition + "_" + num
}

// ParseSplitName splits the name of an overflow split into the partition it
// continues and its number (1, 2, ...); ok is false for any other name.
func ParseSplitName(name string) (partition string, n int, ok bool) {
	i := strings.LastIndexByte(name, '_')
	if i <= 0 || len(name)-i-1 < 3 {
		return "", 0, false
	}
	num := name[i+1:]
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || SplitPartitionName(name[:i], n) != name {
		return "", 0, false
	}
	return name[:i], n, true
}

// SnapshotPath returns the path of the snapshot copy of a partition taken
// at t: "<folder>/Snapshot/<partition>_<unix seconds>.csv".
func SnapshotPath(folder, partition string, t time.Time) string {
	return folder + "/" + SnapshotFolder + "/" + partition + "_" + strconv.FormatInt(t.Unix(), 10) + ".csv"
}

// ParseSnapshotPath returns the partition and time (UTC, whole seconds) of
// a path SnapshotPath made for folder; ok is false for any other path.
func ParseSnapshotPath(folder, path string) (partition string, t time.Time, ok bool) {
	rest, found := strings.CutPrefix(path, folder+"/"+SnapshotFolder+"/")
	if !found {
		return "", time.Time{}, false
	}
	rest, found = strings.CutSuffix(rest, ".csv")
	if !found {
		return "", time.Time{}, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || strings.ContainsRune(rest[:i], '/') {
		return "", time.Time{}, false
	}
	secs := rest[i+1:]
	sec, err := strconv.ParseInt(secs, 10, 64)
	// Only the canonical text: no sign, no leading zeros.
	if err != nil || sec < 0 || strconv.FormatInt(sec, 10) != secs {
		return "", time.Time{}, false
	}
	return rest[:i], time.Unix(sec, 0).UTC(), true
}

// EntityModelPath returns the path of the model.json that holds only the
// table in folder: "Microsoft.Athena.TrickleFeedService/<folder>-model.json".
func EntityModelPath(folder string) string {
	return SystemFolder + "/" + folder + "-model.json"
}

// EntityMetadataPath returns the path of the table's column metadata:
// "Microsoft.Athena.TrickleFeedService/<folder>-EntityMetadata.json".
func EntityMetadataPath(folder string) string {
	return SystemFolder + "/" + folder + "-EntityMetadata.json"
}
