package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
)

// A table added to a running link (a link that exports every table, when
// the source gains one) is copied in the background while the stream goes
// on:
//
//  1. At a transaction boundary the engine tracks the table, records it in
//     the state as in progress, and starts its copy in a goroutine, on a
//     private view of the table that nothing else touches.
//  2. From then on the stream's changes of that table go to a spool on
//     local disk, in order; the other tables are committed as usual, and
//     their positions acknowledged.
//  3. When the copy is done, at the next boundary, the private view
//     becomes the table's, the spooled changes after the copy's position
//     are added to the batch (those at or before it are in the copy), and
//     a commit and a snapshot publish the table.
//
// A crash or restart before step 3 loses nothing: the state still says the
// table's copy is in progress, so the next run copies it again, from a new
// snapshot that holds every change acknowledged meanwhile.

// bgCopy is the initial copy of one table running in the background.
type bgCopy struct {
	t      *table // the private view the copy fills
	spool  *spool // the table's changes received meanwhile
	cancel context.CancelFunc
	done   chan error // the copy's result, once
}

// background runs the copies of tables added to a running link.
type background struct {
	e        *Exporter
	copies   map[string]*bgCopy // by source table name
	wg       sync.WaitGroup
	lastScan time.Time
}

func (e *Exporter) newBackground() *background {
	return &background{e: e, copies: map[string]*bgCopy{}, lastScan: time.Now()}
}

// scanDue reports whether it is time to look at the source's tables.
func (bg *background) scanDue(once bool) bool {
	cfg := bg.e.cfg
	return !once && cfg.TableScanInterval > 0 && time.Since(bg.lastScan) >= cfg.TableScanInterval
}

// scan looks at the source's tables: a linked table that is gone stops
// (the lake keeps its rows as they were, and status says why), and, when
// the link exports every table, each new one that can be linked is
// tracked and its copy started. It runs at a transaction boundary.
func (bg *background) scan(ctx context.Context, st *State, tables map[string]*table) error {
	e := bg.e
	bg.lastScan = time.Now()
	infos, err := e.src.Tables(ctx)
	if err != nil {
		return fmt.Errorf("list source tables: %w", err)
	}
	if bg.dropped(tables, infos) {
		if err := writeState(ctx, e.lake, st); err != nil {
			return err
		}
	}
	if len(e.cfg.Tables) > 0 {
		return nil
	}
	folders := map[string]string{}
	for name, t := range tables {
		folders[t.st.Folder] = name
	}
	var added []*TableState
	var names []string
	for _, ti := range infos {
		if tables[ti.Name] != nil {
			continue
		}
		reason := Unlinkable(ti)
		var ts *TableState
		if reason == "" {
			if ts, err = e.tableState(st, ti, lakelink.TableSettings{Name: ti.Name}, folders); err != nil {
				reason = err.Error()
			}
		}
		if reason != "" {
			if !e.warned[ti.Name] {
				e.log.Warn("table not linked", slog.String("table", ti.Name), slog.String("reason", reason))
				e.warned[ti.Name] = true
			}
			continue
		}
		added = append(added, ts)
		names = append(names, ti.Name)
	}
	if len(added) == 0 {
		return nil
	}
	if err := e.src.Track(ctx, e.cfg.Link, names); err != nil {
		for _, n := range names {
			delete(st.Tables, n)
		}
		var nl *lakelink.NotLinkableError
		if errors.As(err, &nl) {
			// Changed since it was listed; the next scan looks again.
			e.log.Warn("table not linked", slog.String("table", nl.Table), slog.String("reason", nl.Reason))
			return nil
		}
		return fmt.Errorf("install change tracking: %w", err)
	}
	for _, ts := range added {
		ts.InitialSync = SyncInProgress
		tables[ts.Source] = &table{st: ts, created: -1, link: e.cfg.Link}
		if err := bg.start(ctx, tables[ts.Source]); err != nil {
			return err
		}
		e.log.Info("table added to the running link; copying it while the others stream", slog.String("table", ts.Source), slog.String("mode", ts.Mode))
	}
	e.noteTables(tables)
	return writeState(ctx, e.lake, st)
}

// dropped stops the linked tables the source no longer has, and reports
// whether it stopped any.
func (bg *background) dropped(tables map[string]*table, infos []lakelink.TableInfo) bool {
	have := map[string]bool{}
	for _, ti := range infos {
		have[ti.Name] = true
	}
	any := false
	for _, name := range sortedKeys(tables) {
		t := tables[name]
		if have[name] || t.st.Error != "" {
			continue
		}
		if bc := bg.copies[name]; bc != nil {
			bc.cancel()
			bc.spool.close()
			delete(bg.copies, name)
		}
		t.st.Error = fmt.Sprintf("table %q is gone from the source (dropped or renamed; seen at %s): the lake keeps its rows as they were; to export it again under its name, create it and run lakelink resync --lake LAKE --table %s", name, lakelink.Now().Format(time.RFC3339), name)
		if t.st.InitialSync != SyncCompleted {
			t.st.InitialSync = SyncFailed
		}
		bg.e.log.Warn("linked table gone from the source", slog.String("table", name))
		any = true
	}
	if any {
		bg.e.noteTables(tables)
	}
	return any
}

// start begins the background copy of t.
func (bg *background) start(ctx context.Context, t *table) error {
	sp, err := newSpool(bg.e.cfg.SpoolDir)
	if err != nil {
		return err
	}
	priv := &table{st: cloneTableState(t.st), created: -1, link: t.link}
	cctx, cancel := context.WithCancel(ctx)
	bc := &bgCopy{t: priv, spool: sp, cancel: cancel, done: make(chan error, 1)}
	bg.copies[t.st.Source] = bc
	bg.wg.Add(1)
	go func() {
		defer bg.wg.Done()
		bc.done <- bg.e.copyRows(cctx, priv)
	}()
	return nil
}

// hold spools a change of a table whose copy runs in the background, and
// reports whether it did.
func (bg *background) hold(c lakelink.Change) (bool, error) {
	bc := bg.copies[c.Table]
	if bc == nil {
		return false, nil
	}
	return true, bc.spool.add(c)
}

// finished returns the copies that are done, with their results, and
// forgets them.
func (bg *background) finished() map[string]error {
	var out map[string]error
	for name, bc := range bg.copies {
		select {
		case err := <-bc.done:
			if out == nil {
				out = map[string]error{}
			}
			out[name] = err
		default:
		}
	}
	return out
}

// stop cancels the copies still running and waits for them.
func (bg *background) stop() {
	for _, bc := range bg.copies {
		bc.cancel()
	}
	bg.wg.Wait()
	for name, bc := range bg.copies {
		bc.spool.close()
		delete(bg.copies, name)
	}
}

// adopt makes a finished copy's view the table's and replays the spooled
// changes after the copy's position through add (rows) and schema (a
// definition the rows after it follow). A definition is applied only when
// a row after the copy's position follows it, or when it came after that
// position itself: one announced earlier describes rows the copy holds.
func (bg *background) adopt(tables map[string]*table, name string, add func(*table, lakelink.Change) error, schema func(*table, lakelink.Table) error) (*table, error) {
	bc := bg.copies[name]
	delete(bg.copies, name)
	defer bc.spool.close()
	t := tables[name]
	*t.st = *bc.t.st
	bc.t.st = t.st
	t = bc.t
	tables[name] = t
	var held *lakelink.Change
	err := bc.spool.replay(func(c lakelink.Change) error {
		if c.Op == lakelink.OpSchema {
			held = &c
			return nil
		}
		if c.Pos <= t.st.CopyPosition || t.st.Error != "" {
			return nil
		}
		if held != nil {
			if err := schema(t, *held.Schema); err != nil {
				return err
			}
			held = nil
		}
		return add(t, c)
	})
	if err == nil && held != nil && held.Pos > t.st.CopyPosition && t.st.Error == "" {
		err = schema(t, *held.Schema)
	}
	bg.e.log.Info("background copy published", slog.String("table", name), slog.Int("spooled_changes", bc.spool.n), slog.String("position", t.st.CopyPosition.String()))
	return t, err
}

// cloneTableState returns a deep copy of a table's state.
func cloneTableState(ts *TableState) *TableState {
	data, err := json.Marshal(ts)
	if err != nil {
		panic(fmt.Sprintf("export: clone table state: %v", err)) // plain data: can't fail
	}
	var c TableState
	if err := json.Unmarshal(data, &c); err != nil {
		panic(fmt.Sprintf("export: clone table state: %v", err))
	}
	if c.Partitions == nil {
		c.Partitions = map[string]*PartState{}
	}
	return &c
}
