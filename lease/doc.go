// Package lease keeps one writer per CDM folder: a lease object in the lake
// (Path, next to the export state) that names the lakelink process writing
// the folder and until when.
//
// Acquire creates the lease if it is absent (If-None-Match: *), or takes it
// over by compare-and-swap (If-Match on its version) once it has expired or
// been released; a live lease held by another process is refused with a
// *HeldError that names the holder. While held, the lease is renewed by
// compare-and-swap every TTL/3. A holder that finds the lease taken over,
// or that can't renew it before StopBefore of its TTL is left, stops
// writing: the context of Hold is canceled, and its cause says why
// (ErrTakenOver, ErrExpired). Release marks the lease released, on
// condition that it is still ours, so the next writer needn't wait.
//
// Time. A lease expires at the later of two instants: the expiry its
// holder wrote (the holder's clock at renewal, plus the TTL) and the lake's
// modification time of the object plus the TTL (the lake's clock). Another
// process compares them with its own clock, so a holder whose clock runs
// behind is still covered by the lake's clock. The holder stops writing at
// its own monotonic clock's renewal time plus TTL - TTL/StopBefore, which
// leaves TTL/StopBefore (5 s of the default 30 s) for a write in flight to
// end and for clock differences. The assumption: the clocks of the hosts
// that run lakelink on one lake differ by less than that margin (NTP keeps
// them within milliseconds).
//
// What a lease does not do: fence. A write that the old holder started
// before it stopped may still land after the lease changed hands (at most
// the margin above). The engine's state record, written last in each
// commit, is where a fencing check belongs (see the lead's notes).
package lease
