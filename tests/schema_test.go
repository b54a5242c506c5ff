package tests

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/cdm/cdmtest"
	"github.com/lakelink/lakelink/tests/lakecheck"
)

// execRetry runs a write until it succeeds or 5 s pass. After ALTER TABLE
// on a tracked table, writes fail until lakelink re-installs its tracking;
// the SQLite source's documentation says to read between retries.
func execRetry(t testing.TB, db *sql.DB, retries *int, firstErr *string, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := db.Exec(query, args...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5 s: %v", shorten(query, 60), err)
		}
		if *firstErr == "" {
			*firstErr = err.Error()
		}
		*retries++
		var n int
		_ = db.QueryRow(`SELECT count(*) FROM t`).Scan(&n)
		time.Sleep(20 * time.Millisecond)
	}
}

// pollAttrs polls the lakes' model.json files until entity t's attribute
// list satisfies ok in each, for up to 3 s, and returns how long each took
// (-1 when it did not happen) and the first invalid model.json seen. It
// runs in its own goroutine, so it reports instead of failing the test.
func pollAttrs(lakes []string, from time.Time, ok func([]string) bool) ([]time.Duration, error) {
	took := make([]time.Duration, len(lakes))
	for i := range took {
		took[i] = -1
	}
	var bad error
	waitFor(3*time.Second, func() bool {
		done := true
		for i, lake := range lakes {
			if took[i] >= 0 {
				continue
			}
			done = false
			data, err := os.ReadFile(filepath.Join(lake, "model.json"))
			if err != nil {
				continue
			}
			if err := cdmtest.ValidateModel(data); err != nil {
				if bad == nil {
					bad = fmt.Errorf("%s: %w", lake, err)
				}
				continue
			}
			var m lakecheck.Model
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			if e := m.Entity("t"); e != nil && ok(e.AttributeNames()) {
				took[i] = time.Since(from)
			}
		}
		return done
	})
	return took, bad
}

// TestSchemaChange checks that with `lakelink run` running (commit
// interval 1 s), ALTER TABLE ADD COLUMN reaches model.json as a new last
// attribute (after IsDelete) by the next commit, that rows written before
// it stay ragged, and that a dropped column stays in model.json and is
// empty in rows written after the drop; in place (link a) and append only
// (link b).
func TestSchemaChange(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the binary")
	}
	lakelinkBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db := openDB(t, dbPath)
	mustExec(t, db, `CREATE TABLE t (k INTEGER PRIMARY KEY, createdon DATETIME, somecol TEXT, v INTEGER)`)
	const created = "2021-03-04 05:06:07"
	somecol := map[int64]any{} // key → somecol as last written before the drop
	for k := int64(1); k <= 50; k++ {
		v := "old " + strconv.FormatInt(k, 10) + `, "quoted"`
		mustExecArgs(t, db, `INSERT INTO t VALUES (?, ?, ?, ?)`, k, created, v, k*10)
		somecol[k] = v
	}
	lakeA, lakeB := filepath.Join(dir, "lake-a"), filepath.Join(dir, "lake-b")
	cfg := filepath.Join(dir, "lakelink.yaml")
	yaml := fmt.Sprintf(`links:
  - name: a
    source: %q
    lake: %q
    commit_interval: 1s
    tables: [{name: t}]
  - name: b
    source: %q
    lake: %q
    commit_interval: 1s
    tables: [{name: t, mode: append-only}]
`, sourceURL(dbPath), lakeURL(lakeA), sourceURL(dbPath), lakeURL(lakeB))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startLakelink(t, dir, "run", "--config", cfg)
	waitSynced(t, p, lakeA, time.Minute, "t")
	waitSynced(t, p, lakeB, time.Minute, "t")
	time.Sleep(1500 * time.Millisecond)

	// ADD COLUMN, then writes that use it.
	retries, firstErr := 0, ""
	addAt := time.Now()
	mustExec(t, db, `ALTER TABLE t ADD COLUMN extra TEXT`)
	type lat struct {
		took []time.Duration
		err  error
	}
	addLat := make(chan lat, 1)
	go func() {
		endsWithExtra := func(names []string) bool {
			n := len(names)
			return n >= 2 && names[n-1] == "extra" && names[n-2] == "IsDelete"
		}
		took, err := pollAttrs([]string{lakeA, lakeB}, addAt, endsWithExtra)
		addLat <- lat{took, err}
	}()
	afterAdd := map[int64]bool{}
	for k := int64(100); k < 120; k++ {
		execRetry(t, db, &retries, &firstErr, `INSERT INTO t (k, createdon, somecol, v, extra) VALUES (?, ?, ?, ?, ?)`, k, created, "new", k, "extra "+strconv.FormatInt(k, 10))
		somecol[k] = "new"
		afterAdd[k] = true
	}
	for k := int64(1); k <= 5; k++ {
		execRetry(t, db, &retries, &firstErr, `UPDATE t SET extra = ? WHERE k = ?`, "set later", k)
		afterAdd[k] = true
	}
	la := <-addLat
	if la.err != nil {
		t.Errorf("ADD COLUMN: invalid model.json: %v", la.err)
	}
	t.Logf("ADD COLUMN: writes retried %d times (first error: %s); model.json showed extra after IsDelete after %s (link a, in place) and %s (link b, append only)", retries, shorten(firstErr, 120), la.took[0].Round(time.Millisecond), la.took[1].Round(time.Millisecond))
	if la.took[0] < 0 || la.took[1] < 0 {
		t.Fatalf("ADD COLUMN: model.json did not show attribute extra at the end within 3 s (link a %v, link b %v); log tail:\n%s", la.took[0], la.took[1], p.tail(20))
	}
	for i, d := range la.took {
		// The next commit: the source notices the change (~100 ms), the
		// batch commits one interval later. Twice the interval is late.
		if d > 2*time.Second {
			t.Errorf("ADD COLUMN: model.json of link %c showed extra after %s, more than the next commit (interval 1 s)", 'a'+i, d)
		}
	}

	// DROP COLUMN, then writes.
	retries, firstErr = 0, ""
	dropAt := time.Now()
	mustExec(t, db, `ALTER TABLE t DROP COLUMN somecol`)
	afterDrop := map[int64]bool{}
	for k := int64(200); k < 220; k++ {
		execRetry(t, db, &retries, &firstErr, `INSERT INTO t (k, createdon, v, extra) VALUES (?, ?, ?, ?)`, k, created, k, "after drop")
		afterDrop[k], afterAdd[k] = true, true
	}
	for k := int64(6); k <= 10; k++ {
		execRetry(t, db, &retries, &firstErr, `UPDATE t SET v = -v WHERE k = ?`, k)
		afterDrop[k], afterAdd[k] = true, true
	}
	dropDone := time.Since(dropAt)
	t.Logf("DROP COLUMN: writes retried %d times (first error: %s), done after %s", retries, shorten(firstErr, 120), dropDone.Round(time.Millisecond))
	time.Sleep(2500 * time.Millisecond)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	mustRunOnce(t, dir, "--config", cfg)

	wantAttrs := []string{"Id", "SinkCreatedOn", "SinkModifiedOn", "k", "createdon", "somecol", "v", "versionnumber", "IsDelete", "extra"}
	src := map[int64][3]any{} // k → v, extra (as stored)
	rows, err := db.Query(`SELECT k, v, extra FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k int64
		var v, extra any
		if err := rows.Scan(&k, &v, &extra); err != nil {
			t.Fatal(err)
		}
		if b, ok := extra.([]byte); ok {
			extra = string(b)
		}
		src[k] = [3]any{v, extra}
	}
	rows.Close()

	for _, tc := range []struct {
		name, lake string
		inPlace    bool
	}{{"a/in-place", lakeA, true}, {"b/append-only", lakeB, false}} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := lakecheck.ReadModel(t, tc.lake)
			e := m.Entity("t")
			if e == nil {
				t.Fatalf("model.json has no entity t")
			}
			if got := e.AttributeNames(); strings.Join(got, ",") != strings.Join(wantAttrs, ",") {
				t.Fatalf("attributes %q, want %q (extra added at the end, somecol kept)", got, wantAttrs)
			}
			recs, err := lakecheck.ReadLive(tc.lake, e)
			if err != nil {
				t.Fatal(err)
			}
			pr := &problems{t: t, what: "table t " + tc.name}
			// For append only, the last record of each key is its current state.
			last := map[int64]lakecheck.Record{}
			lastV := map[int64]uint64{}
			ragged := 0
			for _, r := range recs {
				k, err := strconv.ParseInt(r.Get("Id").Text, 10, 64)
				if err != nil {
					pr.add("Id %s is not an integer", r.Get("Id"))
					continue
				}
				v, _ := strconv.ParseUint(r.Get("versionnumber").Text, 10, 64)
				if r.Width < len(wantAttrs) {
					ragged++
					if r.Width != len(wantAttrs)-1 {
						pr.add("key %d: %d fields, want %d (ragged) or %d", k, r.Width, len(wantAttrs)-1, len(wantAttrs))
					}
				}
				if _, ok := last[k]; !ok || v > lastV[k] {
					last[k], lastV[k] = r, v
				}
			}
			for k, want := range src {
				r, ok := last[k]
				if !ok {
					pr.add("key %d: missing", k)
					continue
				}
				if tc.inPlace && !afterAdd[k] && r.Width != len(wantAttrs)-1 {
					pr.add("key %d: written before ADD COLUMN and not since, has %d fields, want %d (ragged)", k, r.Width, len(wantAttrs)-1)
				}
				if got := r.Get("v"); got.Text != fmt.Sprint(want[0]) || got.Quoted {
					pr.add("key %d attr v: got %s, want %v", k, got, want[0])
				}
				wantExtra, _ := lakecheck.Encode(lakecheck.KString, want[1])
				if got := r.Get("extra"); got != wantExtra {
					pr.add("key %d attr extra: got %s, want %s", k, got, wantExtra)
				}
				wantSome := lakecheck.Null
				if !afterDrop[k] {
					wantSome, _ = lakecheck.Encode(lakecheck.KString, somecol[k])
				}
				if got := r.Get("somecol"); got != wantSome {
					pr.add("key %d attr somecol (dropped): got %s, want %s", k, got, wantSome)
				}
			}
			if !tc.inPlace && ragged < 50 {
				pr.add("%d ragged records, want at least the 50 written before ADD COLUMN", ragged)
			}
			pr.report()
			t.Logf("%d records, %d of them ragged (written before ADD COLUMN)", len(recs), ragged)
		})
	}
}

func mustExecArgs(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", shorten(query, 60), err)
	}
}
