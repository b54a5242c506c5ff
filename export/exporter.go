package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// Exporter runs one link: initial writes, then continuous incremental
// writes, commits and snapshots.
type Exporter struct {
	src  lakelink.Source
	lake lakelink.Lake
	cfg  Config
	log  *slog.Logger

	mu       sync.Mutex
	progress Progress
	warned   map[string]bool
	// optionsets is the OptionsetMetadata.csv this process last wrote.
	optionsets []byte
}

// New returns an Exporter for one link. It checks the configuration; it
// does not touch the source or the lake until Run.
func New(src lakelink.Source, lake lakelink.Lake, cfg Config) (*Exporter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if sz, ok := lake.(splitSizer); ok && cfg.SplitBytes == 0 {
		cfg.SplitBytes = sz.SplitSize()
	}
	return &Exporter{
		src: src, lake: lake, cfg: cfg,
		log:      cfg.Logger.With(slog.String("link", cfg.Link)),
		progress: Progress{Link: cfg.Link},
		warned:   map[string]bool{},
	}, nil
}

// splitSizer is a lake that advises a size for append-only partition
// files (Config.SplitBytes).
type splitSizer interface {
	SplitSize() int64
}

// onceTries is how often RunOnce tries before it gives up (about half a
// minute of backoff); Run retries for as long as it runs.
const onceTries = 6

// commitTimeout bounds a commit, which shutdown does not interrupt.
const commitTimeout = 2 * time.Minute

// permanentError is an error that retrying can't fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Run exports until ctx is canceled, then finishes the commit in flight and
// returns nil. Errors of the source or the lake are retried with
// exponential backoff; an error retrying can't fix (a table that can't be
// linked, a lake that belongs to another link) is returned.
func (e *Exporter) Run(ctx context.Context) error { return e.run(ctx, false) }

// RunOnce exports everything the source has committed up to now (initial
// writes included), commits, takes a snapshot and returns. An error of the
// source or the lake is retried a few times with backoff, then returned.
func (e *Exporter) RunOnce(ctx context.Context) error { return e.run(ctx, true) }

func (e *Exporter) run(ctx context.Context, once bool) error {
	backoff := e.cfg.retryBackoff
	var since time.Time // when the outage began
	for tries := 1; ; tries++ {
		commits := e.Progress().Commits
		err := e.session(ctx, once)
		if e.Progress().Commits > commits {
			// The session got going before it failed: a new outage starts
			// its backoff afresh.
			backoff, since, tries = e.cfg.retryBackoff, time.Time{}, 1
		}
		if err == nil || ctx.Err() != nil {
			return nil
		}
		var pe permanentError
		if errors.As(err, &pe) {
			return pe.err
		}
		if errors.Is(err, lakelink.ErrResync) {
			return err
		}
		if once && tries >= onceTries {
			return fmt.Errorf("gave up after %d tries: %w", tries, err)
		}
		// One line per backoff step (the lakes' and sources' own quick
		// retries within a step are not logged).
		if since.IsZero() {
			since = time.Now()
		}
		e.log.Warn("export interrupted; retrying", slog.Any("err", err), slog.Int("attempt", tries), slog.Duration("backoff", backoff), slog.Duration("down", time.Since(since).Round(time.Second)))
		e.setDown(err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if backoff < time.Minute {
			backoff *= 2
		}
	}
}

// session runs the export from the lake's committed state until ctx ends,
// an error occurs, or (once) the source is caught up.
func (e *Exporter) session(ctx context.Context, once bool) error {
	st, fence, err := readStateFenced(ctx, e.lake)
	switch {
	case isNotExist(err):
		st = newState(e.cfg.Link, e.cfg.Source)
		st.fence = fence
	case err != nil:
		return err
	case st.Link != e.cfg.Link:
		return permanent(fmt.Errorf("lake %s holds the export of link %q, not %q: use another lake or prefix, or the same link name", e.lake, st.Link, e.cfg.Link))
	}
	if e.cfg.Source != "" {
		st.Source = e.cfg.Source
	}
	if allNotStarted(st) {
		// Every table waits for its initial copy (a new lake, or a resync
		// of all): the stream's old position means nothing any more.
		st.Position, st.Pending = 0, 0
	}
	if err := e.checkSourceID(ctx, st); err != nil {
		return err
	}
	tables, err := e.linkTables(ctx, st)
	if err != nil {
		return err
	}
	if err := e.recover(ctx, st, tables); err != nil {
		return err
	}
	if err := e.writeModel(ctx, st); err != nil {
		return err
	}
	e.noteTables(tables)
	copied := false
	for _, name := range sortedKeys(tables) {
		t := tables[name]
		if t.st.InitialSync == SyncCompleted || t.st.Error != "" {
			continue
		}
		if err := e.copyTable(ctx, st, t); err != nil {
			return err
		}
		e.noteTables(tables)
		copied = true
	}
	e.setDown("")
	// Every change at or before the oldest copy's position is in the lake
	// through the copies. The stream starts there at the earliest: a source
	// whose stream began with the copies (a new PostgreSQL slot) can't go
	// back before it, and says so.
	if p, ok := oldestCopy(tables); ok && p > st.Position {
		st.Position = p
	}
	if copied {
		if err := e.snapshot(ctx, st, tables); err != nil {
			return err
		}
	}
	return e.stream(ctx, st, tables, once)
}

// allNotStarted reports whether every table of the state waits for its
// initial copy.
func allNotStarted(st *State) bool {
	for _, ts := range st.Tables {
		if ts.InitialSync != SyncNotStarted {
			return false
		}
	}
	return true
}

// checkSourceID refuses a lake whose export came from another instance of
// the source (a PostgreSQL cluster restored elsewhere, another server
// behind the same name), and records the instance at the first run.
func (e *Exporter) checkSourceID(ctx context.Context, st *State) error {
	idf, ok := e.src.(lakelink.Identified)
	if !ok {
		return nil
	}
	id, err := idf.SystemID(ctx)
	if err != nil {
		return fmt.Errorf("identify the source: %w", err)
	}
	switch {
	case st.SourceID == id:
	case st.SourceID == "" || allNotStarted(st):
		if st.SourceID != "" {
			e.log.Warn("the source is another instance than before; every table is copied again", slog.String("was", st.SourceID), slog.String("now", id))
		}
		st.SourceID = id
	default:
		var names []string
		for _, n := range sortedKeys(st.Tables) {
			names = append(names, "--table "+n)
		}
		return permanent(fmt.Errorf("the lake's export of link %q was made from source instance %s, but the source is now instance %s: its positions mean nothing here; export into a new lake or prefix, or run lakelink resync --lake URL %s to copy every table again", st.Link, st.SourceID, id, strings.Join(names, " ")))
	}
	return nil
}

// linkTables decides which tables the link exports, installs their change
// tracking, and returns their working views.
func (e *Exporter) linkTables(ctx context.Context, st *State) (map[string]*table, error) {
	infos, err := e.src.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	byName := map[string]lakelink.TableInfo{}
	for _, ti := range infos {
		byName[ti.Name] = ti
	}
	var settings []lakelink.TableSettings
	if len(e.cfg.Tables) > 0 {
		for _, s := range e.cfg.Tables {
			ti, ok := byName[s.Name]
			if !ok {
				return nil, permanent(&lakelink.NotLinkableError{Table: s.Name, Reason: "the source has no such table"})
			}
			if reason := Unlinkable(ti); reason != "" {
				return nil, permanent(&lakelink.NotLinkableError{Table: s.Name, Reason: reason})
			}
			settings = append(settings, s)
		}
	} else {
		for _, ti := range infos {
			if reason := Unlinkable(ti); reason != "" {
				if !e.warned[ti.Name] {
					e.log.Warn("table not linked", slog.String("table", ti.Name), slog.String("reason", reason))
					e.warned[ti.Name] = true
				}
				continue
			}
			settings = append(settings, lakelink.TableSettings{Name: ti.Name})
		}
	}
	tables := map[string]*table{}
	folders := map[string]string{}
	names := make([]string, 0, len(settings))
	for _, s := range settings {
		ti := byName[s.Name]
		ts, err := e.tableState(st, ti, s, folders)
		if err != nil {
			return nil, permanent(err)
		}
		tables[ti.Name] = &table{st: ts, created: -1, link: e.cfg.Link}
		names = append(names, ti.Name)
	}
	if err := e.src.Track(ctx, e.cfg.Link, names); err != nil {
		var nl *lakelink.NotLinkableError
		if errors.As(err, &nl) {
			return nil, permanent(err)
		}
		return nil, fmt.Errorf("install change tracking: %w", err)
	}
	return tables, nil
}

// tableState returns the state of a linked table, made from its settings
// when the link has none yet. folders holds the folder of each table
// linked so far, and gains this one's: two tables whose names make the
// same folder are refused.
func (e *Exporter) tableState(st *State, ti lakelink.TableInfo, s lakelink.TableSettings, folders map[string]string) (*TableState, error) {
	folder, _ := cdm.TableFolder(ti.Name)
	if other, dup := folders[folder]; dup {
		return nil, fmt.Errorf("tables %q and %q would both be written to folder %q: link only one of them", other, ti.Name, folder)
	}
	folders[folder] = ti.Name
	if ts := st.Tables[ti.Name]; ts != nil {
		return ts, nil
	}
	rs, err := resolveSettings(ti.Table, s, e.cfg.Defaults)
	if err != nil {
		return nil, err
	}
	ts := &TableState{
		Source: ti.Name, Folder: folder, Mode: rs.Mode, Partition: rs.Partition, CreatedOn: rs.CreatedOn,
		InitialSync: SyncNotStarted, Partitions: map[string]*PartState{},
	}
	if ts.CreatedOn == "" {
		ts.Partition = ""
	}
	st.Tables[ti.Name] = ts
	return ts, nil
}

// Unlinkable says why a table can't be linked, or "" when it can: the
// source's reason, or a name the lake format can't hold.
func Unlinkable(ti lakelink.TableInfo) string {
	if !ti.Linkable {
		return ti.Reason
	}
	if _, err := cdm.TableFolder(ti.Name); err != nil {
		return err.Error()
	}
	taken := map[string]bool{}
	for _, c := range ti.Columns {
		if err := cdm.CheckAttributeName(lakeName(c.Name, taken)); err != nil {
			return err.Error()
		}
	}
	return ""
}

// recover makes the lake match its state after a crash: append-only files
// are cut back to their committed length, and files a crashed commit
// created for partitions the state does not know are removed.
func (e *Exporter) recover(ctx context.Context, st *State, tables map[string]*table) error {
	for _, name := range sortedKeys(tables) {
		ts := tables[name].st
		if ts.InitialSync != SyncCompleted {
			continue
		}
		objs, err := e.lake.List(ctx, ts.Folder+"/")
		if err != nil {
			return fmt.Errorf("recover %s: %w", ts.Folder, err)
		}
		for _, o := range objs {
			if err := e.recoverObject(ctx, ts, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// recoverObject brings one object of a table's folder back to the committed
// state: an append-only partition loses its uncommitted tail, and a
// snapshot the state does not know (a crash between its copy and the state
// write) is deleted. No model.json ever named such a snapshot: model.json
// is written from the state, after it.
func (e *Exporter) recoverObject(ctx context.Context, ts *TableState, o lakelink.ObjectInfo) error {
	if part, t, ok := cdm.ParseSnapshotPath(ts.Folder, o.Path); ok {
		if p := ts.Partitions[part]; p != nil && slices.Contains(p.Snapshots, t.Unix()) {
			return nil
		}
		e.log.Info("deleting an uncommitted snapshot", slog.String("file", o.Path))
		if err := e.lake.Delete(ctx, o.Path); err != nil {
			return fmt.Errorf("recover %s: %w", o.Path, err)
		}
		return nil
	}
	part, ok := livePartition(ts.Folder, o.Path)
	if !ok || ts.Mode != lakelink.ModeAppendOnly {
		return nil
	}
	p := ts.Partitions[part]
	switch {
	case p == nil || p.Size == 0:
		if err := e.lake.Delete(ctx, o.Path); err != nil {
			return fmt.Errorf("recover %s: %w", o.Path, err)
		}
	case o.Size > p.Size:
		e.log.Info("cutting an uncommitted tail", slog.String("file", o.Path), slog.Int64("committed", p.Size), slog.Int64("size", o.Size))
		if err := appendTo(ctx, e.lake, o.Path, p.Size, nil); err != nil {
			return fmt.Errorf("recover %s: %w", o.Path, err)
		}
	case o.Size < p.Size:
		return permanent(fmt.Errorf("recover %s: the lake holds %d bytes but %d were committed: the lake lost data; run lakelink resync --table %s", o.Path, o.Size, p.Size, ts.Source))
	}
	return nil
}

// stream applies the change stream from the state's position.
func (e *Exporter) stream(ctx context.Context, st *State, tables map[string]*table, once bool) error {
	s, err := e.src.Stream(ctx, e.cfg.Link, st.Position)
	if err != nil {
		return fmt.Errorf("start change stream: %w", err)
	}
	defer s.Close()
	repairUntil := st.Pending
	if repairUntil <= st.Position {
		repairUntil = 0
	}
	lastWait := time.Now()
	b := newBatch()
	atBoundary := true
	meta := false
	idleSince := time.Now()
	var scratch []byte
	var modified string
	var modifiedSec int64 = -1

	pending := func() bool { return meta || b.end > st.Position }
	commit := func(ctx context.Context) error {
		// A commit is finished even when shutdown begins meanwhile.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		defer cancel()
		if err := e.commit(ctx, st, tables, b, s, repairUntil > 0 && b.first <= repairUntil, meta); err != nil {
			return err
		}
		b, meta = newBatch(), false
		return nil
	}
	// applySchema makes t's rows follow def; it reports whether the lake's
	// attributes changed. A change the lake can't follow stops the table.
	applySchema := func(t *table, def lakelink.Table) (bool, error) {
		changed, err := t.setDefinition(def)
		if err != nil {
			e.failTable(t, b, err)
			meta = true
			return false, nil
		}
		if changed {
			e.log.Info("table schema changed", slog.String("table", t.st.Source), slog.Int("columns", len(t.st.Columns)))
			meta = true
		}
		return changed, nil
	}
	// addRow adds a row change of t to the batch.
	addRow := func(t *table, c lakelink.Change) error {
		if c.Op == lakelink.OpTruncate {
			b.noteChange(c.Pos, time.Now())
			if t.st.Mode != lakelink.ModeInPlace {
				e.failTable(t, b, fmt.Errorf("table %q was truncated (at position %s): an append-only table can't record that as changes; run lakelink resync --lake LAKE --table %s to copy it again", t.st.Source, c.Pos, t.st.Source))
				meta = true
				return nil
			}
			e.log.Info("table truncated in the source; emptying it in the lake", slog.String("table", t.st.Source), slog.String("position", c.Pos.String()))
			b.truncate(t)
			t.st.LastPos = c.Pos
			return nil
		}
		if t.def.Columns == nil {
			return fmt.Errorf("change stream: a %s of table %q came before its schema", c.Op, c.Table)
		}
		now := lakelink.Now()
		if sec := now.Unix(); sec != modifiedSec {
			modified, modifiedSec = cdm.FormatSinkTime(now), sec
		}
		b.noteChange(c.Pos, now)
		var err error
		if t.st.Mode == lakelink.ModeInPlace {
			scratch, err = b.addInPlace(t, c, now, modified, scratch)
		} else {
			scratch, err = b.addAppend(t, c, modified, e.cfg.SplitBytes, scratch)
		}
		if err != nil {
			e.failTable(t, b, err)
			meta = true
			return nil
		}
		t.st.LastPos = c.Pos
		if b.bytes >= e.cfg.MaxBatchBytes {
			// A transaction larger than a batch: its data goes out now,
			// its commit at its end.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			err := e.flushPartial(fctx, st, tables, b, repairUntil > 0 && b.first <= repairUntil)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	// Tables added to the running link are copied in the background.
	bg := e.newBackground()
	defer bg.stop()
	// atBoundaryWork publishes the background copies that are done and
	// looks for new tables when it is time; it runs between transactions.
	atBoundaryWork := func() error {
		for name, cerr := range bg.finished() {
			var ve copyValueError
			switch {
			case errors.As(cerr, &ve):
				bg.copies[name].spool.close()
				delete(bg.copies, name)
				e.failTable(tables[name], b, ve.err)
				tables[name].st.Error += fmt.Sprintf("; once the source is fixed, run lakelink resync --lake LAKE --table %s", name)
				meta = true
				continue
			case cerr != nil:
				return fmt.Errorf("copy of added table %q: %w", name, cerr)
			}
			if _, err := bg.adopt(tables, name, addRow, func(t *table, def lakelink.Table) error {
				_, err := applySchema(t, def)
				return err
			}); err != nil {
				return err
			}
			meta = true
			if err := commit(ctx); err != nil {
				return err
			}
			if err := e.snapshot(ctx, st, tables); err != nil {
				return err
			}
		}
		if bg.scanDue(once) {
			return bg.scan(ctx, st, tables)
		}
		return nil
	}
	// Once: where the source's committed changes reach now.
	var tail lakelink.Position
	tailer, hasTail := e.src.(lakelink.Tailer)
	if hasTail && once {
		if tail, err = tailer.Tail(ctx, e.cfg.Link); err != nil {
			return fmt.Errorf("find the end of the source's changes: %w", err)
		}
	}
	// Once, with a source that tells its end: everything committed at the
	// start is in the lake, whatever the application writes meanwhile.
	reachedTail := func() bool { return once && hasTail && !pending() && st.Position >= tail }
	for {
		wait := e.cfg.CommitInterval
		switch {
		case !b.start.IsZero():
			wait = time.Until(b.start.Add(e.cfg.CommitInterval))
		case once:
			wait = e.cfg.IdleExit / 4
		}
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		nctx, cancel := context.WithTimeout(ctx, wait)
		c, err := s.Next(nctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// Shutting down: finish the commit in flight, then stop.
			if atBoundary && pending() {
				return commit(ctx)
			}
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			if atBoundary && pending() && time.Since(b.start) >= e.cfg.CommitInterval {
				if err := commit(ctx); err != nil {
					return err
				}
			}
			if atBoundary {
				if err := atBoundaryWork(); err != nil {
					return err
				}
			}
			if !pending() {
				if reachedTail() {
					return e.snapshot(ctx, st, tables)
				}
				if once && time.Since(idleSince) >= e.cfg.IdleExit {
					if !hasTail {
						return e.snapshot(ctx, st, tables)
					}
					if time.Since(lastWait) >= 10*time.Second {
						e.log.Info("waiting for the source to pass the end of its changes at the start", slog.String("position", st.Position.String()), slog.String("end", tail.String()))
						lastWait = time.Now()
					}
				}
				if time.Since(st.Snapshot) >= e.cfg.SnapshotInterval {
					if err := e.snapshot(ctx, st, tables); err != nil {
						return err
					}
				}
			}
			continue
		default:
			return fmt.Errorf("change stream: %w", err)
		}
		idleSince = time.Now()
		if b.start.IsZero() {
			b.start = idleSince
		}
		switch c.Op {
		case lakelink.OpCommit:
			atBoundary = true
			if c.Pos > b.end {
				b.end = c.Pos
			}
			if b.bytes >= e.cfg.MaxBatchBytes || meta || (pending() && time.Since(b.start) >= e.cfg.CommitInterval) || (once && hasTail && b.end >= tail) {
				if err := commit(ctx); err != nil {
					return err
				}
				if reachedTail() {
					return e.snapshot(ctx, st, tables)
				}
			}
			if err := atBoundaryWork(); err != nil {
				return err
			}
			continue
		case lakelink.OpSchema:
			if held, err := bg.hold(c); held || err != nil {
				if err != nil {
					return err
				}
				continue
			}
			t := tables[c.Table]
			if t == nil || t.st.Error != "" || c.Schema == nil {
				continue
			}
			changed, err := applySchema(t, *c.Schema)
			if err != nil {
				return err
			}
			// The new attributes reach model.json at once, before the rows
			// that need them.
			if changed && atBoundary {
				if err := commit(ctx); err != nil {
					return err
				}
			}
			continue
		}
		atBoundary = false
		if held, err := bg.hold(c); held || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		t := tables[c.Table]
		if t == nil || t.st.Error != "" || c.Pos <= t.st.CopyPosition {
			continue
		}
		if err := addRow(t, c); err != nil {
			return err
		}
	}
}

// flushPartial writes out the data of a batch that outgrew MaxBatchBytes
// in the middle of a transaction, so that memory is bounded by the batch
// size, not by the largest transaction. The state's position stays: the
// data is uncommitted until the commit at the transaction's end. In place,
// the state's Pending first says that the lake may hold changes up to
// b.last, so that a restart replays them in repair mode (a replayed change
// of the same transaction wins over its earlier self: see merger);
// appended records stay past the committed sizes, where recovery cuts
// them off and snapshots never read.
func (e *Exporter) flushPartial(ctx context.Context, st *State, tables map[string]*table, b *batch, repair bool) error {
	if err := e.markPending(ctx, st, tables, b, b.last); err != nil {
		return err
	}
	for _, name := range sortedKeys(b.tables) {
		t, tb := tables[name], b.tables[name]
		if t.st.Mode == lakelink.ModeInPlace {
			if err := e.mergeInPlace(ctx, t, tb, repair); err != nil {
				return err
			}
			tb.rows = map[string]*entry{}
			continue
		}
		for _, p := range sortedKeys(tb.appends) {
			if err := e.appendRecords(ctx, t, p, tb.appends[p]); err != nil {
				return err
			}
		}
	}
	e.log.Debug("flushed part of a large transaction", slog.Int("changes", b.changes), slog.Int64("bytes", b.bytes))
	b.bytes = 0
	return nil
}

// appendRecords appends the records of ab not written yet to the end of
// partition p, past its committed size and what earlier flushes of the
// batch wrote there; ab.flushed counts them from then on.
func (e *Exporter) appendRecords(ctx context.Context, t *table, p string, ab *appendBuf) error {
	if len(ab.data) == 0 {
		return nil
	}
	path := cdm.PartitionPath(t.st.Folder, p)
	if err := appendTo(ctx, e.lake, path, t.st.part(p).Size+ab.flushed, ab.data); err != nil {
		return err
	}
	ab.flushed += int64(len(ab.data))
	ab.data = nil
	return nil
}

// markPending records in the lake's state, before in-place data of the
// batch is written, that the lake may hold changes up to pos.
func (e *Exporter) markPending(ctx context.Context, st *State, tables map[string]*table, b *batch, pos lakelink.Position) error {
	inPlace := false
	for name, tb := range b.tables {
		if tables[name].st.Mode == lakelink.ModeInPlace && (len(tb.rows) > 0 || tb.truncated) {
			inPlace = true
		}
	}
	if !inPlace || pos <= st.Position || pos <= st.Pending {
		return nil
	}
	st.Pending = pos
	return writeState(ctx, e.lake, st)
}

// mergeInPlace merges an in-place table's share of a batch into its
// partitions.
func (e *Exporter) mergeInPlace(ctx context.Context, t *table, tb *tableBatch, repair bool) error {
	if tb.truncated {
		if err := e.emptyPartitions(ctx, t); err != nil {
			return err
		}
		tb.truncated = false
	}
	if len(tb.rows) == 0 {
		return nil
	}
	stopped := t.st.Error != ""
	parts, err := mergeTable(ctx, e.lake, t, tb, repair)
	if err != nil {
		return err
	}
	if !stopped && t.st.Error != "" {
		// The merge met a row it can't write exactly (see mergeTable).
		e.log.Error("table stopped", slog.String("table", t.st.Source), slog.String("err", t.st.Error))
	}
	for p, ps := range parts {
		old := t.st.part(p)
		old.Size, old.Rows, old.Changed = ps.Size, ps.Rows, true
	}
	return nil
}

// emptyPartitions empties every partition file of an in-place table (a
// TRUNCATE in the source). A replay after a crash empties them again: the
// stream delivers the truncate again, and the state's Pending says the
// lake may hold it.
func (e *Exporter) emptyPartitions(ctx context.Context, t *table) error {
	for _, p := range t.st.partitionNames() {
		ps := t.st.Partitions[p]
		if ps.Size == 0 && ps.Rows == 0 {
			continue
		}
		if err := writeObject(ctx, e.lake, cdm.PartitionPath(t.st.Folder, p), nil); err != nil {
			return fmt.Errorf("truncate %s: %w", t.st.Source, err)
		}
		ps.Size, ps.Rows, ps.Changed = 0, 0, true
	}
	return nil
}

// failTable stops one table: its share of the batch is dropped and the
// error is kept in the state, shown by status. The other tables go on.
func (e *Exporter) failTable(t *table, b *batch, err error) {
	e.log.Error("table stopped", slog.String("table", t.st.Source), slog.Any("err", err))
	t.st.Error = err.Error()
	var bad *lakelink.BadValueError
	if errors.As(err, &bad) {
		t.st.Error += fmt.Sprintf("; fix the value in the source, then run lakelink resync --lake LAKE --table %s", t.st.Source)
	}
	if t.st.InitialSync != SyncCompleted {
		t.st.InitialSync = SyncFailed
	}
	delete(b.tables, t.st.Source)
}

// commit publishes a batch: data files, then metadata, then the state
// record, then the source's ack.
func (e *Exporter) commit(ctx context.Context, st *State, tables map[string]*table, b *batch, s lakelink.Stream, repair, meta bool) error {
	now := lakelink.Now()
	// Say what may be in the lake beyond the state before writing it, so
	// that a restart knows to repair (see merger).
	if err := e.markPending(ctx, st, tables, b, b.end); err != nil {
		return err
	}
	for _, name := range sortedKeys(b.tables) {
		t, tb := tables[name], b.tables[name]
		if t.st.Mode == lakelink.ModeInPlace {
			if err := e.mergeInPlace(ctx, t, tb, repair); err != nil {
				return err
			}
		} else {
			for _, p := range sortedKeys(tb.appends) {
				ab := tb.appends[p]
				if err := e.appendRecords(ctx, t, p, ab); err != nil {
					return err
				}
				ps := t.st.part(p)
				ps.Size += ab.flushed
				ps.Rows += ab.rows
				ps.Changed = true
			}
		}
		var rows int64
		for _, p := range t.st.Partitions {
			rows += p.Rows
		}
		t.st.Rows = rows
		t.st.LastCommit = now
	}
	if meta {
		for _, name := range sortedKeys(tables) {
			if err := e.writeTableMeta(ctx, tables[name].st); err != nil {
				return err
			}
		}
		if err := e.writeModel(ctx, st); err != nil {
			return err
		}
	}
	if b.end > st.Position {
		st.Position = b.end
	}
	st.Pending = 0
	st.Commit++
	st.CommitTime = now
	if err := writeState(ctx, e.lake, st); err != nil {
		return err
	}
	if err := s.Ack(ctx, st.Position); err != nil {
		return fmt.Errorf("ack position %d: %w", st.Position, err)
	}
	lag := time.Duration(0)
	if !b.start.IsZero() {
		lag = time.Since(b.start)
	}
	e.noteCommit(st, tables, b.changes, lag)
	e.log.Debug("commit", slog.Uint64("commit", st.Commit), slog.String("position", st.Position.String()), slog.Int("changes", b.changes), slog.Duration("lag", lag))
	return nil
}

// livePartition reports whether path is a live partition file of the
// folder, and which partition.
func livePartition(folder, path string) (string, bool) {
	if len(path) <= len(folder)+1 || path[:len(folder)+1] != folder+"/" {
		return "", false
	}
	rest := path[len(folder)+1:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return "", false
		}
	}
	if len(rest) < 5 || rest[len(rest)-4:] != ".csv" {
		return "", false
	}
	return rest[:len(rest)-4], true
}

// oldestCopy returns the smallest copy position of the tables being
// exported (copied and not stopped).
func oldestCopy(tables map[string]*table) (lakelink.Position, bool) {
	var p lakelink.Position
	ok := false
	for _, t := range tables {
		if t.st.InitialSync != SyncCompleted || t.st.Error != "" {
			continue
		}
		if !ok || t.st.CopyPosition < p {
			p, ok = t.st.CopyPosition, true
		}
	}
	return p, ok
}

// sortedTables returns the tables sorted by folder name.
func sortedTables(st *State) []*TableState {
	list := make([]*TableState, 0, len(st.Tables))
	for _, t := range st.Tables {
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Folder < list[j].Folder })
	return list
}
