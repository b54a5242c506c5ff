package tests

import (
	"strings"
	"testing"
	"time"
)

// TestPGTypesThroughLake (issue 4, acceptance 4): values that are hard to
// carry exactly reach the lake as LAKE-FORMAT.md says, from the initial
// copy and from the stream alike: numeric(38,18), a 100-digit
// unconstrained numeric, timestamptz written in several time zones, empty
// and NULL-holding arrays, nested JSON with unicode, a 1 MiB bytea.
func TestPGTypesThroughLake(t *testing.T) {
	td := &pgTable{
		name: "kinds",
		cols: []pgCol{
			{"id", "int8", pgInt8, nil}, {"createdon", "timestamptz", pgTimestamptz, nil},
			{"n38", "numeric(38,18)", pgNumeric, nil}, {"n100", "numeric", pgNumeric, nil},
			{"tz", "timestamptz", pgTimestamptz, nil}, {"ia", "int[]", pgIntArray, nil},
			{"doc", "jsonb", pgJSONB, nil}, {"blob", "bytea", pgBytea, nil},
		},
		createdOn: "createdon",
	}
	hundred := strings.Repeat("1234567890", 10)
	rows := []string{
		`1, '2024-01-01 00:00:00+00', 12345678901234567890.123456789012345678, ` + hundred + `, '2021-06-25 16:21:12.123456+05:30', '{}',
		 '{"a": {"b": ["é", "🎉", {"c": null}], "d": "שלום"}, "ü": [], "e": "quote \" and \\ back"}', decode(repeat('00ff10ab', 262144), 'hex')`,
		`2, '2023-07-04 12:00:00-08', -0.000000000000000001, -` + hundred + `.` + hundred + `, '1999-12-31 23:59:59.999999-08:00', '{1,NULL,-3}',
		 '[]', '\x'`,
		`3, NULL, 0, 0, '2000-02-29 12:00:00+14', '{2147483647}', '{"nested": [[[]]], "k": 1.5e300}', NULL`,
	}
	db, conn, dir, lake := pgSetup(t, "types", td.ddl(), "ALTER TABLE kinds REPLICA IDENTITY FULL")
	insert := func(offset int) {
		for _, r := range rows {
			id, rest, _ := strings.Cut(r, ",")
			mustPGExec(t, conn, "INSERT INTO kinds VALUES ("+strings.TrimSpace(id)+"+"+string(rune('0'+offset))+","+rest+")")
		}
	}
	insert(0)
	since := time.Now()
	args := []string{"--source", db.sourceURL(), "--lake", lakeURL(lake), "--table", "kinds"}
	mustRunOnce(t, dir, args...)                                                        // rows 1-3 by the initial copy
	insert(5)                                                                           // rows 6-8 by the stream
	mustPGExec(t, conn, `UPDATE kinds SET doc = '{"after": "ünïcödé 🎉"}' WHERE id = 1`) // the 1 MiB blob left unchanged
	mustRunOnce(t, dir, args...)
	pgCheckInPlace(t, lake, td, pgReadSource(t, conn, td), since)
}
