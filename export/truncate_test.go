package export

import (
	"strings"
	"testing"

	"github.com/lakelink/lakelink"
)

// TestTruncate: a TRUNCATE in the source empties an in-place table in the
// lake, and the rows written after it (in the same batch or later) are
// there; an append-only table can't record it and stops with an error
// that says so and how to copy it again, while the other tables go on.
func TestTruncate(t *testing.T) {
	src, w, lake := newSetup(31, 30)
	runOnce(t, src, lake)
	w.step(10)
	src.truncate("account")
	src.truncate("event")
	w.live, w.evs = map[int64]bool{}, map[string]bool{}
	w.step(20) // rows after the truncate, in the same batch
	st := runOnce(t, src, lake)
	checkInPlace(t, src, lake, "account")
	if st.Tables["account"].Error != "" {
		t.Fatalf("account stopped: %s", st.Tables["account"].Error)
	}
	if msg := st.Tables["event"].Error; !strings.Contains(msg, "truncated") || !strings.Contains(msg, "lakelink resync") {
		t.Fatalf("event (append only) after TRUNCATE: error %q; want one that says it was truncated and how to resync", msg)
	}
	// Later batches, and a truncate alone in its batch.
	w.step(10)
	runOnce(t, src, lake)
	checkInPlace(t, src, lake, "account")
	src.truncate("account")
	w.live = map[int64]bool{}
	runOnce(t, src, lake)
	checkInPlace(t, src, lake, "account")
	if rows := readLake(t, lake, "account"); len(rows) != 0 {
		t.Fatalf("after a TRUNCATE alone the lake holds %d rows of account, want 0", len(rows))
	}
	src.apply(lakelink.Change{Op: lakelink.OpInsert, Table: "account", Row: w.accountRow(7)})
	runOnce(t, src, lake)
	checkInPlace(t, src, lake, "account")
}

// TestTruncateCrash: a crash at every lake write of a commit that holds a
// TRUNCATE, then a restart, leaves the in-place table exact.
func TestTruncateCrash(t *testing.T) {
	setup := func(seed uint64) (*fakeSource, *crashLake) {
		src := newFakeSource()
		src.createTable(accountDef())
		src.createTable(eventDef())
		w := newWorkload(seed, src)
		w.step(30)
		lake := &crashLake{memLake: newMemLake()}
		runOnce(t, src, lake)
		w.step(10)
		src.truncate("account")
		w.live = map[int64]bool{}
		w.step(10)
		return src, lake
	}
	for n := 1; ; n++ {
		src, lake := setup(uint64(n))
		err := lake.crashRun(t, src, n, testConfig())
		if !lake.crashed {
			if err != nil || n < 4 {
				t.Fatalf("write %d: no crash (RunOnce: %v)", n, err)
			}
			t.Logf("a crash at each of %d writes", n-1)
			return
		}
		lake.crashed, lake.n = false, 0
		runOnce(t, src, lake)
		checkInPlace(t, src, lake, "account")
		checkSizes(t, lake)
	}
}
