package export

import (
	"time"

	"github.com/lakelink/lakelink"
)

// Progress is what a running Exporter has done so far, for live progress
// displays and the HTTP API. The lake's state (ReadState) is the durable
// record; Progress adds the counters of this process.
type Progress struct {
	Link         string
	Copied       int64             // rows written by initial copies
	Changes      int64             // changes exported by commits
	Commits      int64             // commits made
	Snapshots    int64             // snapshots taken
	Position     lakelink.Position // the last committed position
	LastCommit   time.Time
	LastSnapshot time.Time
	Lag          time.Duration // how long the oldest change of the last commit waited
	Tables       []TableProgress
	Down         string    // the error the export is waiting out, if any
	DownSince    time.Time // since when
}

// TableProgress is one table's share of Progress.
type TableProgress struct {
	Name        string
	InitialSync string
	Rows        int64
	Error       string
}

// Progress returns a copy of the exporter's progress.
func (e *Exporter) Progress() Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.progress
	p.Tables = append([]TableProgress(nil), p.Tables...)
	return p
}

func (e *Exporter) addCopied(n int64) {
	e.mu.Lock()
	e.progress.Copied += n
	e.mu.Unlock()
}

func (e *Exporter) noteCommit(st *State, tables map[string]*table, changes int, lag time.Duration) {
	e.mu.Lock()
	e.progress.Changes += int64(changes)
	e.progress.Commits++
	e.progress.Position = st.Position
	e.progress.LastCommit = st.CommitTime
	e.progress.Lag = lag
	e.mu.Unlock()
	e.noteTables(tables)
}

// noteTables refreshes the per-table part of the progress.
func (e *Exporter) noteTables(tables map[string]*table) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.progress.Tables = e.progress.Tables[:0]
	for _, name := range sortedKeys(tables) {
		ts := tables[name].st
		e.progress.Tables = append(e.progress.Tables, TableProgress{Name: ts.Source, InitialSync: ts.InitialSync, Rows: ts.Rows, Error: ts.Error})
	}
}

func (e *Exporter) noteSnapshot(t time.Time) {
	e.mu.Lock()
	e.progress.Snapshots++
	e.progress.LastSnapshot = t
	e.mu.Unlock()
}

// setDown records the error the export is waiting out ("" once it runs).
func (e *Exporter) setDown(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if msg == "" {
		e.progress.Down, e.progress.DownSince = "", time.Time{}
		return
	}
	if e.progress.Down == "" {
		e.progress.DownSince = time.Now()
	}
	e.progress.Down = msg
}
