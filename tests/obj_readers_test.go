package tests

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lakelink/lakelink/tests/lakecheck"
)

// TestObjReaders checks G3 on each object lake (issue 5, acceptance 3):
// while lakelink commits continuously (every 200 ms, a snapshot every
// second) and a workload writes, readers load model.json and read every
// object it names, at least 1,000 complete reads per lake, with zero
// errors and zero torn rows: every file parses as complete CSV, every row
// has as many fields as its entity has attributes, or fewer only for rows
// written before a column was added (ragged right: halfway through, a
// column is added to one table), and no object that any model.json named
// ever changes.
func TestObjReaders(t *testing.T) { forEachKind(t, objReaders) }

// genRecent is a createdOn in 2024 or 2025, so that a table has few
// partitions and a complete read stays short.
func genRecent(g *gen) any {
	if g.r.Intn(20) == 0 {
		return nil
	}
	tm := time.Date(2024+g.r.Intn(2), time.Month(1+g.r.Intn(12)), 1+g.r.Intn(28), g.r.Intn(24), g.r.Intn(60), g.r.Intn(60), 0, time.UTC)
	return tm.Format("2006-01-02 15:04:05")
}

// readerStats is what the reader goroutines found.
type readerStats struct {
	reads   atomic.Int64 // complete reads: model.json and every object it names
	objects atomic.Int64 // objects read
	rows    atomic.Int64 // rows parsed
	ragged  atomic.Int64 // rows with fewer fields than attributes

	mu     sync.Mutex
	errs   []string
	hashes map[string][32]byte // object -> sha256 when first read
	models map[[32]byte][]byte // every distinct model.json
}

func (s *readerStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

// readAll is one complete read: model.json, then every object it names.
// minWidth is the fewest fields a row of an entity may have.
func (s *readerStats) readAll(ctx context.Context, l *objLake, minWidth func(entity string) int) {
	data, err := l.read(ctx, "model.json")
	if ctx.Err() != nil {
		return // the readers were stopped: not an error of the lake
	}
	if err != nil {
		s.fail("read model.json: %v", err)
		return
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	if _, ok := s.models[sum]; !ok {
		s.models[sum] = data
	}
	s.mu.Unlock()
	var m lakecheck.Model // validated against the schema afterwards
	if err := json.Unmarshal(data, &m); err != nil {
		s.fail("model.json: %v", err)
		return
	}
	for _, e := range m.Entities {
		attrs := len(e.Attributes)
		for _, p := range e.Partitions {
			path, err := l.locationPath(p.Location)
			if err != nil {
				s.fail("entity %s: %v", e.Name, err)
				return
			}
			raw, err := l.read(ctx, path)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.fail("entity %s partition %s: model.json names %s, which can't be read: %v", e.Name, p.Name, path, err)
				return
			}
			rows, err := lakecheck.ParseCSV(raw)
			if err != nil {
				s.fail("entity %s: %s is not complete CSV: %v", e.Name, path, err)
				return
			}
			for i, row := range rows {
				switch {
				case len(row) > attrs || len(row) < minWidth(e.Name):
					s.fail("entity %s: %s row %d has %d fields; the entity has %d attributes (at least %d fields expected)", e.Name, path, i+1, len(row), attrs, minWidth(e.Name))
					return
				case len(row) < attrs:
					s.ragged.Add(1)
				}
			}
			s.rows.Add(int64(len(rows)))
			s.objects.Add(1)
			h := sha256.Sum256(raw)
			s.mu.Lock()
			old, seen := s.hashes[path]
			if !seen {
				s.hashes[path] = h
			}
			s.mu.Unlock()
			if seen && old != h {
				s.fail("%s changed after a model.json named it", path)
				return
			}
		}
	}
	s.reads.Add(1)
}

func objReaders(t *testing.T, srv objServer) {
	const wantReads = 1000
	seed := testSeed(t)
	lakelinkBin(t)
	dir := t.TempDir()
	live, ledger := objTables(genRecent)
	dbPath, db, w := newObjSource(t, dir, seed, live, ledger)
	base := ctxTimeout(t, 4*time.Minute)
	seedFast(t, w, live, 200)
	for w.changes < 300 {
		if err := w.tx(base, 50, []*tableDef{ledger}, true); err != nil {
			t.Fatalf("seed ledger: %v", err)
		}
	}
	l := newObjLake(t, srv)
	p := startRun(t, dir, "--source", sourceURL(dbPath), "--lake", l.url, "--commit-interval", "200ms", "--snapshot-interval", "1s")
	waitObjSynced(t, p, l, time.Minute, "live", "ledger")
	bg := goWorkload(t, base, w, 3, 80*time.Millisecond)

	// Rows of live have its 4 columns and 5 system attributes; once a
	// column is added below, older rows have one field less than live has
	// attributes.
	minWidth := func(entity string) int {
		if entity == "live" {
			return len(live.cols) + 5
		}
		return len(ledger.cols) + 5
	}
	s := &readerStats{hashes: map[string][32]byte{}, models: map[[32]byte][]byte{}}
	readCtx, stopReaders := context.WithCancel(base)
	defer stopReaders()
	var rwg sync.WaitGroup
	start := time.Now()
	for range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for readCtx.Err() == nil {
				s.readAll(readCtx, l, minWidth)
			}
		}()
	}
	time.Sleep(5 * time.Second)
	bg.finish(t)
	mustExec(t, db, `ALTER TABLE "live" ADD COLUMN "extra" TEXT`)
	// Writes to live fail until lakelink re-installs its tracking (within
	// about 100 ms): the first transaction is retried until then, with a
	// read in between, which makes SQLite reload the schema (see the
	// source/sqlite package comment).
	var lastErr error
	if !waitFor(20*time.Second, func() bool {
		lastErr = w.tx(base, 2, []*tableDef{live}, false)
		if lastErr != nil {
			var n int
			_ = db.QueryRow(`SELECT count(*) FROM "live"`).Scan(&n)
		}
		return lastErr == nil
	}) {
		t.Fatalf("writes to live still fail 20 s after ALTER TABLE: %v", lastErr)
	}
	bg = goWorkload(t, base, w, 3, 80*time.Millisecond)
	for time.Since(start) < 12*time.Second || s.reads.Load() < wantReads {
		if time.Since(start) > 150*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopReaders()
	rwg.Wait()
	elapsed := time.Since(start)
	bg.finish(t)
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Errorf("lakelink run: exit %d after SIGTERM; log tail:\n%s", code, p.tail(20))
	}
	for _, data := range s.models {
		l.parseModel(t, data) // fails the test unless valid
	}
	t.Logf("%s: %d complete reads in %s by 4 readers: %d objects, %d rows (%d ragged), %d distinct objects, %d distinct model.json; %d changes written",
		l.kind, s.reads.Load(), elapsed.Round(time.Millisecond), s.objects.Load(), s.rows.Load(), s.ragged.Load(), len(s.hashes), len(s.models), w.changesSafe())
	for i, e := range s.errs {
		if i == 10 {
			t.Errorf("… and %d more errors", len(s.errs)-10)
			break
		}
		t.Errorf("reader: %s", e)
	}
	if n := s.reads.Load(); n < wantReads {
		t.Errorf("%d complete reads in %s, want at least %d", n, elapsed.Round(time.Millisecond), wantReads)
	}
	if len(s.models) < 10 {
		t.Errorf("only %d distinct model.json seen in %s: lakelink did not publish snapshots while the readers read", len(s.models), elapsed.Round(time.Millisecond))
	}
	if s.ragged.Load() == 0 {
		t.Errorf("no ragged row read after a column was added to live: the test did not exercise older rows")
	}
	m := l.parseModel(t, mustRead(t, l, "model.json"))
	if e := m.Entity("live"); e == nil || !strings.Contains(strings.Join(e.AttributeNames(), ","), "extra") {
		t.Errorf("model.json after the run: entity live has no attribute extra")
	}
}

// mustRead reads an object of the lake or fails the test.
func mustRead(t testing.TB, l *objLake, path string) []byte {
	t.Helper()
	data, err := l.read(ctxTimeout(t, time.Minute), path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}
