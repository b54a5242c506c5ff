package export

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/file"
)

// TestStateFence: on a lake with conditional writes, the state record is
// written only over the version the exporter read or last wrote. When
// something else replaces it meanwhile (here: a record with a far higher
// commit count, as another writer would leave), the running exporter's
// next state write fails instead of rolling the record back, and its
// session starts again from the record as it is now.
func TestStateFence(t *testing.T) {
	ctx := context.Background()
	lake, err := file.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, w, _ := newSetup(21, 10)
	stop := startRun(t, src, lake, testConfig())
	defer stop()
	waitState(t, lake, "the copies", func(st *State) bool {
		return st.Tables["account"] != nil && st.Tables["account"].InitialSync == SyncCompleted && st.Tables["event"].InitialSync == SyncCompleted
	})
	w.step(3)
	first := waitState(t, lake, "the first commits", func(st *State) bool { return st.Commit >= 1 })

	// Another writer's record: the same export, with commit 100000.
	first.Commit = 100000
	data, err := json.MarshalIndent(first, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeObject(ctx, lake, StatePath, data); err != nil {
		t.Fatal(err)
	}
	w.step(5)
	st := waitState(t, lake, "a commit after the other writer's", func(st *State) bool { return st.Commit > 100000 })
	if st.Commit < 100000 {
		t.Fatalf("commit %d: the exporter rolled the record back", st.Commit)
	}
	// And it still exports exactly.
	w.step(5)
	waitState(t, lake, "the last changes", func(st *State) bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return st.Position >= src.pos
	})
	stop()
	checkInPlace(t, src, lake, "account")
}

// TestStateFenceRefusesStaleWrite: the fence itself, without an exporter:
// a write over a version that is gone fails with lakelink.ErrChanged and
// leaves the record as it was.
func TestStateFenceRefusesStaleWrite(t *testing.T) {
	ctx := context.Background()
	lake, err := file.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, fence, err := readStateFenced(ctx, lake)
	if !isNotExist(err) || fence == nil {
		t.Fatalf("readStateFenced of an empty lake: fence %v, err %v; want a fence and not-exist", fence, err)
	}
	st := newState("t", "src")
	st.fence = fence
	if err := writeState(ctx, lake, st); err != nil {
		t.Fatalf("first write: %v", err)
	}
	stale, _, err := readStateFenced(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	st.Commit = 1
	if err := writeState(ctx, lake, st); err != nil {
		t.Fatalf("second write: %v", err)
	}
	stale.Commit = 7
	err = writeState(ctx, lake, stale)
	if !errors.Is(err, lakelink.ErrChanged) {
		t.Fatalf("write over a stale version: %v; want lakelink.ErrChanged", err)
	}
	now, err := ReadState(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	if now.Commit != 1 {
		t.Fatalf("after the refused write the record has commit %d, want 1", now.Commit)
	}
	// A second record created where one exists is refused too.
	other := newState("t", "src")
	other.fence = &stateFence{lake: fence.lake, absent: true}
	if err := writeState(ctx, lake, other); !errors.Is(err, lakelink.ErrChanged) {
		t.Fatalf("create over an existing record: %v; want lakelink.ErrChanged", err)
	}
}
