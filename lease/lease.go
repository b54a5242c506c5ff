package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// Path is where the lease lives in a lake, beside the export state (a
// folder that readers skip).
const Path = cdm.StateFolder + "/lease.json"

// DefaultTTL is how long a lease lasts without renewal, unless
// Options.TTL says otherwise.
const DefaultTTL = 30 * time.Second

// MinTTL is the shortest TTL Acquire accepts.
const MinTTL = 50 * time.Millisecond

// StopBefore sets the holder's safety margin: a holder that could not
// renew stops writing when TTL/StopBefore of its lease is left.
const StopBefore = 6

// recordFormat is the version of the lease record's shape.
const recordFormat = 1

// maxRecord bounds what is read of a lease object.
const maxRecord = 1 << 20

// Lake is what a lease needs of a lake: reading an object with its version,
// and the two conditional writes. lake/file, lake/s3 and lake/azure have
// them.
type Lake interface {
	// Stat describes the object at path; a missing one wraps
	// lakelink.ErrNotExist. Its ModTime is the lake's clock.
	Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error)
	// OpenVersion is Open, and the version of the bytes it reads; a missing
	// object wraps lakelink.ErrNotExist.
	OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error)
	// CreateIfAbsent is Create, but Close fails (wrapping
	// lakelink.ErrExist) and nothing changes when an object is at path.
	CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error)
	// CreateIfVersion is Create, but Close fails and nothing changes when
	// the object at path no longer has version, or is gone.
	CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error)
	// String describes the lake for messages.
	String() string
}

var (
	// ErrHeld is what *HeldError is: another process holds a live lease.
	ErrHeld = errors.New("the lake is being written by another lakelink")
	// ErrTakenOver is the cause of a lost lease that another process now
	// holds: this one must not write there again.
	ErrTakenOver = errors.New("writer lease taken over by another lakelink")
	// ErrExpired is the cause of a lost lease that could not be renewed in
	// time (the lake failed or was unreachable): Acquire may take it back
	// once the lake answers, unless another process was first.
	ErrExpired = errors.New("writer lease could not be renewed in time")
	// ErrReleased is the cause of the end of a lease that was released.
	ErrReleased = errors.New("writer lease released")
)

// Holder names the process that holds a lease.
type Holder struct {
	ID    string    `json:"id"` // random, one per lakelink process and link
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Link  string    `json:"link"`
	Since time.Time `json:"since"` // when it took the lease
	// Machine names the kernel boot and process namespace the PID belongs
	// to, when known: a later process with the same Machine can tell that
	// the holder is gone (killed) without waiting for the lease to expire.
	Machine string `json:"machine,omitempty"`
}

func (h Holder) String() string {
	return fmt.Sprintf("link %q on host %s (pid %d), since %s", h.Link, h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
}

// Record is the lease object's content.
type Record struct {
	Format   int       `json:"format"`
	Holder   Holder    `json:"holder"`
	Counter  uint64    `json:"counter"` // one more at every write, whoever writes
	Renewed  time.Time `json:"renewed"` // the holder's clock when it wrote this
	Expires  time.Time `json:"expires"` // Renewed + TTL
	TTLMilli int64     `json:"ttlMs"`
	Released bool      `json:"released,omitempty"`
}

// TTL is the record's time to live.
func (r Record) TTL() time.Duration { return time.Duration(r.TTLMilli) * time.Millisecond }

// ExpiresAt is when the lease expires: the later of the expiry its holder
// wrote and the lake's modification time plus the TTL. A released lease has
// expired.
func (r Record) ExpiresAt(modTime time.Time) time.Time {
	if r.Released {
		return time.Time{}
	}
	if m := modTime.Add(r.TTL()); m.After(r.Expires) {
		return m
	}
	return r.Expires
}

// HeldError is Acquire's refusal: another process holds a live lease.
type HeldError struct {
	Lake    string
	Holder  Holder
	Expires time.Time // unless renewed
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lake %s is being written by another lakelink: %s; its lease expires at %s unless renewed",
		e.Lake, e.Holder, e.Expires.UTC().Format(time.RFC3339))
}

// Is makes a *HeldError match ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Options configure Acquire.
type Options struct {
	Link string        // the link that writes, named in the lease
	TTL  time.Duration // DefaultTTL when 0
	// ID identifies the holder; random when empty. Acquire with the ID of a
	// lease this process lost (ErrExpired) takes it back while nobody else
	// took it.
	ID     string
	Logger *slog.Logger
}

// Lease is a held writer lease, renewed in the background until Release
// or until it is lost.
type Lease struct {
	lake Lake
	ttl  time.Duration
	log  *slog.Logger

	id     string          // the holder's
	ctx    context.Context // canceled when the lease ends; its cause says why
	cancel context.CancelCauseFunc
	stop   context.Context // canceled by Release: ends the renewal loop and its request
	halt   context.CancelFunc
	done   chan struct{} // closed when the renewal loop has ended

	mu       sync.Mutex
	rec      Record    // the last record written
	version  string    // rec's version in the lake; "" when not known
	deadline time.Time // monotonic: stop writing now unless renewed
}

// NewID returns a random holder ID.
func NewID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Acquire takes the lake's writer lease: it creates it when absent, and
// takes it over when it has expired, was released, or carries opts.ID. A
// live lease of another holder is refused with a *HeldError. Of processes
// that race, one wins and the others get a *HeldError. On success the
// lease is renewed in the background until Release.
func Acquire(ctx context.Context, lake Lake, opts Options) (*Lease, error) {
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL {
		return nil, fmt.Errorf("lease: TTL %s is shorter than %s", ttl, MinTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := opts.ID
	if id == "" {
		id = NewID()
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	me := Holder{ID: id, Host: host, PID: os.Getpid(), Link: opts.Link, Since: time.Now().UTC(), Machine: machine()}
	const tries = 10
	for range tries {
		rec, ver, err := read(ctx, lake)
		if errors.Is(err, lakelink.ErrNotExist) {
			sent := time.Now()
			next := newRecord(me, 1, sent, ttl)
			err := write(lake.CreateIfAbsent(ctx, Path))(next)
			if errors.Is(err, lakelink.ErrExist) {
				continue // another process was first: look at its lease
			}
			if err != nil {
				return nil, fmt.Errorf("lease: create %s in %s: %w", Path, lake, err)
			}
			return start(ctx, lake, ttl, log, next, sent), nil
		}
		if err != nil {
			return nil, err
		}
		if rec.Holder.ID != id && !rec.Released {
			fi, err := lake.Stat(ctx, Path)
			if errors.Is(err, lakelink.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("lease: %w", err)
			}
			if exp := rec.ExpiresAt(fi.ModTime); time.Now().Before(exp) && !gone(rec.Holder, me) {
				return nil, &HeldError{Lake: lake.String(), Holder: rec.Holder, Expires: exp}
			}
		}
		if rec.Holder.ID == id {
			me.Since = rec.Holder.Since
		}
		sent := time.Now()
		next := newRecord(me, rec.Counter+1, sent, ttl)
		if err := write(lake.CreateIfVersion(ctx, Path, ver))(next); err != nil {
			if changed(ctx, lake, ver) {
				continue // another process was first: look at its lease
			}
			return nil, fmt.Errorf("lease: take over %s in %s: %w", Path, lake, err)
		}
		switch {
		case rec.Holder.ID == id:
		case rec.Released:
			log.Info("lease: took over a released lease", slog.String("previous", rec.Holder.String()))
		case gone(rec.Holder, me):
			log.Warn("lease: took over the lease of a process that is gone (killed?)", slog.String("previous", rec.Holder.String()))
		default:
			log.Warn("lease: took over an expired lease; its holder stopped renewing it",
				slog.String("previous", rec.Holder.String()), slog.Time("expired", rec.Expires))
		}
		return start(ctx, lake, ttl, log, next, sent), nil
	}
	return nil, fmt.Errorf("lease: %s in %s changed %d times while lakelink tried to take it; is another lakelink starting on this lake?", Path, lake, tries)
}

func newRecord(h Holder, counter uint64, now time.Time, ttl time.Duration) Record {
	return Record{Format: recordFormat, Holder: h, Counter: counter, Renewed: now.UTC(), Expires: now.Add(ttl).UTC(), TTLMilli: ttl.Milliseconds()}
}

// start returns the lease that rec, written at sent, holds, and starts
// renewing it.
func start(ctx context.Context, lake Lake, ttl time.Duration, log *slog.Logger, rec Record, sent time.Time) *Lease {
	l := &Lease{lake: lake, ttl: ttl, log: log, id: rec.Holder.ID, rec: rec, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.stop, l.halt = context.WithCancel(context.Background())
	l.deadline = sent.Add(l.margin())
	l.readBack(ctx, rec.Counter)
	go l.loop()
	return l
}

// margin is how long after a write's start the holder may write on
// without renewing.
func (l *Lease) margin() time.Duration { return l.ttl - l.ttl/StopBefore }

// Record returns the lease's record as last written.
func (l *Lease) Record() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// Err is nil while the lease is held; then why it ended (wrapping
// ErrTakenOver, ErrExpired or ErrReleased).
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Hold returns a context derived from ctx that is also canceled when the
// lease ends; context.Cause then says why (see Err). Writes to the lake
// must be done under it. Call cancel when done with it.
func (l *Lease) Hold(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	hctx, cancelCause := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancelCause(context.Cause(l.ctx)) })
	return hctx, func() {
		stop()
		cancelCause(context.Canceled)
	}
}

// Release stops renewing and marks the lease released, on condition that
// it is still this holder's, so the next writer needn't wait for it to
// expire. A lease already lost is left as it is.
func (l *Lease) Release(ctx context.Context) error {
	l.halt()
	<-l.done
	if l.Err() != nil {
		return nil
	}
	l.cancel(ErrReleased)
	l.mu.Lock()
	rec, ver := l.rec, l.version
	l.mu.Unlock()
	if ver == "" {
		cur, v, err := read(ctx, l.lake)
		if err != nil {
			return fmt.Errorf("lease: release: %w", err)
		}
		if cur.Holder.ID != l.id {
			return nil
		}
		rec, ver = cur, v
	}
	now := time.Now()
	next := newRecord(rec.Holder, rec.Counter+1, now, l.ttl)
	next.Expires, next.Released = next.Renewed, true
	if err := write(l.lake.CreateIfVersion(ctx, Path, ver))(next); err != nil {
		if cur, _, rerr := read(ctx, l.lake); rerr == nil && cur.Holder.ID != l.id {
			return nil // another holder has it: nothing of ours to release
		}
		return fmt.Errorf("lease: release %s in %s: %w", Path, l.lake, err)
	}
	l.log.Info("lease: released", slog.String("lake", l.lake.String()))
	return nil
}

// loop renews the lease every TTL/3, and retries every TTL/10 after a
// failure, until Release, a takeover, or the deadline.
func (l *Lease) loop() {
	defer close(l.done)
	every, retry := l.ttl/3, max(l.ttl/10, 5*time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	var lastErr error
	for {
		select {
		case <-l.stop.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		if !time.Now().Before(deadline) {
			l.lose(fmt.Errorf("%w: no renewal succeeded for %s (last error: %v); stopped writing before it expires", ErrExpired, l.margin(), lastErr))
			return
		}
		ctx, cancel := context.WithDeadline(l.stop, deadline)
		err := l.renew(ctx)
		cancel()
		if l.stop.Err() != nil {
			return // released meanwhile
		}
		switch {
		case errors.Is(err, ErrTakenOver):
			l.lose(err)
			return
		case err != nil:
			if lastErr == nil || lastErr.Error() != err.Error() {
				// Info: the lake's trouble is the exporter's to report.
				l.log.Info("lease: renewal failed; retrying", slog.String("lake", l.lake.String()), slog.Any("err", err),
					slog.Duration("left", time.Until(deadline)))
			}
			lastErr = err
			t.Reset(min(retry, max(time.Until(deadline), 0)))
		default:
			if lastErr != nil {
				l.log.Info("lease: renewed again", slog.String("lake", l.lake.String()))
			}
			lastErr = nil
			// Every TTL/3 from the last renewal's start, however long it took.
			l.mu.Lock()
			next := time.Until(l.deadline.Add(-l.margin()).Add(every))
			l.mu.Unlock()
			t.Reset(max(next, 0))
		}
	}
}

// lose ends the lease with cause.
func (l *Lease) lose(cause error) {
	level := slog.LevelError
	if errors.Is(cause, ErrExpired) {
		level = slog.LevelWarn // the lake is down: the holder may take it back
	}
	l.log.Log(context.Background(), level, "lease: lost; stopping the writes to this lake", slog.String("lake", l.lake.String()), slog.Any("err", cause))
	l.cancel(cause)
}

// renew writes the next record by compare-and-swap. It returns an error
// wrapping ErrTakenOver when another holder has the lease.
func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rec, ver := l.rec, l.version
	l.mu.Unlock()
	if ver == "" {
		cur, v, err := l.readOurs(ctx)
		if err != nil {
			return err
		}
		rec.Counter, ver = cur.Counter, v
	}
	sent := time.Now()
	next := newRecord(rec.Holder, rec.Counter+1, sent, l.ttl)
	err := write(l.lake.CreateIfVersion(ctx, Path, ver))(next)
	l.mu.Lock()
	l.version = "" // whatever happened, the version changed or is in doubt
	if err == nil {
		l.rec, l.deadline = next, sent.Add(l.margin())
	}
	l.mu.Unlock()
	if err != nil {
		// Another holder, or a failing lake? The record says.
		cur, v, rerr := l.readOurs(ctx)
		if rerr != nil {
			if errors.Is(rerr, ErrTakenOver) {
				return rerr
			}
			return fmt.Errorf("lease: renew: %w", err)
		}
		l.mu.Lock()
		l.rec.Counter, l.version = cur.Counter, v
		if cur.Counter == next.Counter { // the write landed, its answer did not
			l.rec, l.deadline = next, sent.Add(l.margin())
			err = nil
		}
		l.mu.Unlock()
		if err != nil {
			return fmt.Errorf("lease: renew: %w", err)
		}
		return nil
	}
	l.readBack(ctx, next.Counter)
	return nil
}

// readBack learns the version of the record with counter that this
// holder just wrote. On failure the version stays unknown, for the next
// renewal to read.
func (l *Lease) readBack(ctx context.Context, counter uint64) {
	cur, v, err := read(ctx, l.lake)
	if err != nil || cur.Holder.ID != l.id || cur.Counter != counter {
		return // a takeover is seen by the next renewal's swap
	}
	l.mu.Lock()
	l.version = v
	l.mu.Unlock()
}

// readOurs reads the lease and checks that it is still this holder's.
func (l *Lease) readOurs(ctx context.Context) (Record, string, error) {
	cur, v, err := read(ctx, l.lake)
	switch {
	case errors.Is(err, lakelink.ErrNotExist):
		return Record{}, "", fmt.Errorf("%w: %s was deleted from %s", ErrTakenOver, Path, l.lake)
	case err != nil:
		return Record{}, "", err
	case cur.Holder.ID != l.id:
		return Record{}, "", fmt.Errorf("%w: %s took it at %s", ErrTakenOver, cur.Holder, cur.Renewed.Format(time.RFC3339))
	case cur.Released:
		return Record{}, "", fmt.Errorf("%w: it was marked released", ErrTakenOver)
	}
	return cur, v, nil
}

// read reads the lease record and its version.
func read(ctx context.Context, lake Lake) (Record, string, error) {
	r, ver, err := lake.OpenVersion(ctx, Path)
	if err != nil {
		return Record{}, "", fmt.Errorf("lease: read %s in %s: %w", Path, lake, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxRecord))
	if err != nil {
		return Record{}, "", fmt.Errorf("lease: read %s in %s: %w", Path, lake, err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil || rec.Holder.ID == "" {
		if err == nil {
			err = errors.New("no holder")
		}
		return Record{}, "", fmt.Errorf("lease: %s in %s is not a lease record (%v); if no lakelink writes this lake, delete it", Path, lake, err)
	}
	return rec, ver, nil
}

// write returns a function that writes rec into what open returned and
// closes it: write(lake.CreateIfAbsent(ctx, Path))(rec).
func write(w io.WriteCloser, err error) func(Record) error {
	return func(rec Record) error {
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return err // not closed: Close would commit an empty object
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
}

// changed reports whether the lease is no longer at version ver (another
// process wrote it, or deleted it).
func changed(ctx context.Context, lake Lake, ver string) bool {
	_, v, err := read(ctx, lake)
	if errors.Is(err, lakelink.ErrNotExist) {
		return true
	}
	return err == nil && v != ver
}
