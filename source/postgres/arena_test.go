package postgres

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lakelink/lakelink"
)

// TestArena checks that values from an arena are ordinary Values: equal
// to the same values boxed the usual way, of the same dynamic type, intact
// after garbage collections while the arena fills new slabs, and encoded
// by gob (the engine's spool) like the others.
func TestArena(t *testing.T) {
	var a arena
	base := time.Date(2021, 6, 25, 16, 21, 12, 123456000, time.UTC)
	n := 3*arenaValues + 7
	got := make([][4]lakelink.Value, n)
	want := make([][4]lakelink.Value, n)
	for i := range n {
		s := fmt.Sprintf("value %d", i)
		want[i] = [4]lakelink.Value{int64(i) * 1_000_003, float64(i) / 3, s, base.Add(time.Duration(i) * time.Second)}
		got[i] = [4]lakelink.Value{a.int64(int64(i) * 1_000_003), a.float64(float64(i) / 3), a.text([]byte(s)), a.time(base.Add(time.Duration(i) * time.Second))}
		if i%500 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i := range n {
		for j := range 4 {
			if got[i][j] != want[i][j] {
				t.Fatalf("value %d.%d = %#v (%T), want %#v (%T)", i, j, got[i][j], got[i][j], want[i][j], want[i][j])
			}
		}
		switch v := got[i][2].(type) {
		case string:
			if v != want[i][2] {
				t.Fatalf("string %d = %q", i, v)
			}
		default:
			t.Fatalf("value %d.2 has type %T, want string", i, v)
		}
	}
	var g, w bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(lakelink.Change{Row: got[n-1][:]}); err != nil {
		t.Fatal(err)
	}
	if err := gob.NewEncoder(&w).Encode(lakelink.Change{Row: want[n-1][:]}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.Bytes(), w.Bytes()) {
		t.Errorf("gob of arena values differs from gob of the same values")
	}
	// A nil arena boxes as usual.
	var none *arena
	if v := none.int64(5); v != lakelink.Value(int64(5)) {
		t.Errorf("nil arena: %#v", v)
	}
}

// TestArenaStrings checks that strings of an arena do not change when
// later strings fill the same block, and that long ones get their own.
func TestArenaStrings(t *testing.T) {
	var a arena
	buf := []byte("abc")
	s1 := a.string(buf)
	buf[0] = 'x' // the caller's buffer is reused
	s2 := a.string(buf)
	long := a.string(bytes.Repeat([]byte("y"), arenaMax+1))
	if s1 != "abc" || s2 != "xbc" || len(long) != arenaMax+1 || a.string(nil) != "" {
		t.Errorf("arena strings: %q %q %d", s1, s2, len(long))
	}
}
