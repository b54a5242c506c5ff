package postgres

import (
	"time"
	"unsafe"

	"github.com/lakelink/lakelink"
)

// arena is where decoded values live, so that decoding a row does not
// allocate once per value: the text of strings is copied into shared
// blocks, and int64, float64, string and time.Time values are boxed as
// lakelink.Values that point into shared slabs instead of each into a
// small allocation of its own (which is what converting one to an
// interface does).
//
// What makes this sound: a block's bytes and a slab's elements are written
// once, before a string or a Value points at them, and not again until
// reset, so strings and Values stay immutable while anyone can see them,
// as Go requires. Without reset (the stream; a snapshot read with Next), a
// full block or slab is dropped for a new one and the garbage collector
// frees it once no string or Value points into it; one live value keeps
// its whole block or slab alive, which is small, and the engine encodes
// rows at once. reset (a snapshot read with NextBatch, whose caller is
// done with a batch's rows before it asks for the next) makes the arena
// use its blocks and slabs again.
//
// A nil arena allocates every value on its own. An arena is not safe for
// concurrent use.
type arena struct {
	recycle bool // keep blocks and slabs for reset
	blocks  slabs[byte]
	ints    slabs[int64]
	floats  slabs[float64]
	strs    slabs[string]
	times   slabs[time.Time]
}

const (
	arenaBlock  = 32 << 10       // bytes of a block of string text
	arenaMax    = arenaBlock / 8 // longer strings get their own allocation
	arenaValues = 512            // values of a slab
)

// reset makes every block and slab of a recycling arena free again: no
// string or Value of the arena may be used after it.
func (a *arena) reset() {
	a.blocks.reset()
	a.ints.reset()
	a.floats.reset()
	a.strs.reset()
	a.times.reset()
}

// string returns a string with b's bytes.
func (a *arena) string(b []byte) string {
	if a == nil || len(b) > arenaMax {
		return string(b)
	}
	if len(b) == 0 {
		return ""
	}
	block := a.blocks.room(len(b), arenaBlock, a.recycle)
	copy(block, b)
	return unsafe.String(&block[0], len(b))
}

// The Values of the arena's kinds.

func (a *arena) int64(v int64) lakelink.Value {
	if a == nil {
		return v
	}
	return box(&a.ints, v, int64Type, a.recycle)
}

func (a *arena) float64(v float64) lakelink.Value {
	if a == nil {
		return v
	}
	return box(&a.floats, v, float64Type, a.recycle)
}

func (a *arena) time(v time.Time) lakelink.Value {
	if a == nil {
		return v
	}
	return box(&a.times, v, timeType, a.recycle)
}

// text returns a Value holding a string of b's bytes.
func (a *arena) text(b []byte) lakelink.Value {
	if a == nil {
		return string(b)
	}
	return box(&a.strs, a.string(b), stringType, a.recycle)
}

// slabs hands out the elements of slabs of T in turn.
type slabs[T any] struct {
	free  []T   // the rest of the slab in use
	used  [][]T // with recycle: the slabs handed out since the last reset
	spare [][]T // slabs to use again
}

// room returns the next n elements, from a new slab of size elements
// when the one in use has fewer left. With recycle the slab is kept for
// reset.
func (s *slabs[T]) room(n, size int, recycle bool) []T {
	if len(s.free) < n {
		var slab []T
		if k := len(s.spare); k > 0 {
			slab, s.spare = s.spare[k-1], s.spare[:k-1]
		} else {
			slab = make([]T, size)
		}
		if recycle {
			s.used = append(s.used, slab)
		}
		s.free = slab
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

func (s *slabs[T]) reset() {
	s.spare = append(s.spare, s.used...)
	s.used, s.free = s.used[:0], nil
}

// box stores v in the next element of s and returns a Value of type typ
// that points at it, as converting v to an interface would point at a
// copy of its own.
func box[T any](s *slabs[T], v T, typ unsafe.Pointer, recycle bool) lakelink.Value {
	p := &s.room(1, arenaValues, recycle)[0]
	*p = v
	var out lakelink.Value
	e := (*eface)(unsafe.Pointer(&out))
	e.typ, e.data = typ, unsafe.Pointer(p)
	return out
}

// eface is the layout of an interface value without methods, such as
// lakelink.Value: its dynamic type, and a pointer to its value for every
// type that is not itself a pointer (int64, float64, string, time.Time).
type eface struct {
	typ, data unsafe.Pointer
}

// typeOf returns the type word of v.
func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type   = typeOf(int64(0))
	float64Type = typeOf(float64(0))
	stringType  = typeOf("")
	timeType    = typeOf(time.Time{})
)
