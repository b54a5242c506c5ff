package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/lake/file"
	"github.com/lakelink/lakelink/source/sqlite"
)

// baselineResult is one run of the sqlite3 CLI writing the table as CSV.
type baselineResult struct {
	took  time.Duration
	bytes int64
}

// writeResult is one lakelink initial write.
type writeResult struct {
	copyTook time.Duration // RunOnce start to the last partition file durably closed
	total    time.Duration // the whole RunOnce: copy, metadata, snapshot, idle exit
	probe    probeStats
	heap     heapStats
	// The engine's own account, from its logs: from RunOnce start until the
	// copy's first row was asked for (opening, tracking, starting the
	// snapshot), and the copy loop with its metadata writes.
	beforeCopy, copyLoop time.Duration
	rows                 int64 // rows the lake's state says were copied
	lakeBytes            int64 // bytes of every file in the lake folder afterwards
}

// sqlite3CLI returns the sqlite3 CLI's path, installing it first when asked
// and missing, or "" with the reason it is unavailable.
func sqlite3CLI(ctx context.Context, r *report, install bool) (string, string) {
	if p, err := exec.LookPath("sqlite3"); err == nil {
		return p, ""
	}
	if !install {
		return "", "the sqlite3 CLI is not installed: install the Debian package with `apt-get install -y sqlite3`, or run the bench with -install"
	}
	r.printf("sqlite3 CLI missing: running apt-get install -y sqlite3\n")
	out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "sqlite3").CombinedOutput()
	if err != nil {
		// A fresh machine may not have the package lists yet.
		r.printf("apt-get install failed (%v); running apt-get update first\n", err)
		if upd, err := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); err != nil {
			return "", fmt.Sprintf("apt-get update failed: %v: %s", err, lastLine(upd))
		}
		out, err = exec.CommandContext(ctx, "apt-get", "install", "-y", "sqlite3").CombinedOutput()
	}
	if err != nil {
		return "", fmt.Sprintf("apt-get install -y sqlite3 failed: %v: %s", err, lastLine(out))
	}
	if p, err := exec.LookPath("sqlite3"); err == nil {
		return p, ""
	}
	return "", "sqlite3 is still not on PATH after apt-get install -y sqlite3"
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// sqlite3Version returns `sqlite3 --version`, shortened.
func sqlite3Version(cli string) string {
	out, err := exec.Command(cli, "--version").Output()
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(out))
	if len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// runBaseline times `sqlite3 -csv DB "SELECT * FROM t" > out`.
func runBaseline(ctx context.Context, cli, db, out string) (baselineResult, error) {
	f, err := os.Create(out)
	if err != nil {
		return baselineResult{}, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, cli, "-csv", db, "SELECT * FROM "+tableName)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		return baselineResult{}, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	fi, err := f.Stat()
	if err != nil {
		return baselineResult{}, err
	}
	return baselineResult{took: took, bytes: fi.Size()}, nil
}

// isPartitionOf returns a test for "the path is a live partition file of
// the folder": folder/NAME.csv.
func isPartitionOf(folder string) func(string) bool {
	return func(p string) bool {
		rest, ok := strings.CutPrefix(p, folder+"/")
		return ok && !strings.Contains(rest, "/") && strings.HasSuffix(rest, ".csv")
	}
}

// engine is one link of one table into a file lake, run in process through
// the public engine API.
type engine struct {
	src   lakelink.Source
	lake  *probeLake
	exp   *export.Exporter
	dbURL string
	table string // the source table exported
}

func openEngine(ctx context.Context, o options, db, lakeDir string, logger *slog.Logger) (*engine, error) {
	if err := os.MkdirAll(lakeDir, 0o755); err != nil {
		return nil, err
	}
	src, err := sqlite.Open(ctx, db, logger)
	if err != nil {
		return nil, err
	}
	return newEngine(ctx, src, "sqlite://"+filepath.ToSlash(db), "bench", tableName, lakeDir, o.commitInterval, o.idleExit, logger)
}

// newEngine links table of src into a file lake at lakeDir (which exists)
// behind a probeLake. It closes src when it fails.
func newEngine(ctx context.Context, src lakelink.Source, srcDesc, link, table, lakeDir string, commitInterval, idleExit time.Duration, logger *slog.Logger) (*engine, error) {
	fl, err := file.Open(ctx, lakeDir)
	if err != nil {
		src.Close()
		return nil, err
	}
	folder, err := cdm.TableFolder(table)
	if err != nil {
		src.Close()
		return nil, err
	}
	pl := newProbeLake(fl, isPartitionOf(folder))
	exp, err := export.New(src, pl, export.Config{
		Link:           link,
		Source:         srcDesc,
		Tables:         []lakelink.TableSettings{{Name: table}},
		CommitInterval: commitInterval,
		IdleExit:       idleExit,
		Logger:         logger,
	})
	if err != nil {
		src.Close()
		return nil, err
	}
	return &engine{src: src, lake: pl, exp: exp, dbURL: srcDesc, table: table}, nil
}

func (e *engine) Close() error { return e.src.Close() }

// tableState reads the table's state from the lake.
func (e *engine) tableState(ctx context.Context) (*export.TableState, error) {
	st, err := export.ReadState(ctx, e.lake)
	if err != nil {
		return nil, err
	}
	ts := st.Tables[e.table]
	if ts == nil {
		return nil, fmt.Errorf("the lake's state has no table %q", e.table)
	}
	if ts.Error != "" {
		return nil, fmt.Errorf("table %q stopped: %s", e.table, ts.Error)
	}
	return ts, nil
}

// lakelinkWrite runs one initial write into a fresh lake at lakeDir, of the
// engine that open returns (given the logger to use).
func lakelinkWrite(ctx context.Context, open func(*slog.Logger) (*engine, error), lakeDir string, logger *slog.Logger, profile string) (writeResult, error) {
	if err := os.RemoveAll(lakeDir); err != nil {
		return writeResult{}, err
	}
	logger, logs := newCapture(logger.Handler())
	e, err := open(logger)
	if err != nil {
		return writeResult{}, err
	}
	defer e.Close()
	var res writeResult
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
	}
	h := startHeap(nil)
	start := time.Now()
	err = e.exp.RunOnce(ctx)
	res.total = time.Since(start)
	res.heap = h.Stop()
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, err
	}
	res.probe = e.lake.stats()
	if t, _ := logs.get("initial copy started"); !t.IsZero() {
		res.beforeCopy = t.Sub(start)
	}
	_, res.copyLoop = logs.get("initial copy done")
	if !res.probe.LastClose.IsZero() {
		res.copyTook = res.probe.LastClose.Sub(start)
	}
	ts, err := e.tableState(ctx)
	if err != nil {
		return res, err
	}
	if ts.InitialSync != export.SyncCompleted {
		return res, fmt.Errorf("initial sync is %q after RunOnce", ts.InitialSync)
	}
	res.rows = ts.Rows
	res.lakeBytes, err = dirSize(lakeDir)
	return res, err
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

// initialWrite is benchmark 1.
func initialWrite(ctx context.Context, r *report, o options, dir string, logger *slog.Logger) error {
	r.section(fmt.Sprintf("1. Initial write: %s rows, 6 columns, 10 year partitions", count(o.rows)))
	db := filepath.Join(dir, "initial.db")
	os.Remove(db)
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	start := time.Now()
	if err := buildDB(ctx, db, o.rows, tenYears); err != nil {
		return err
	}
	fi, err := os.Stat(db)
	if err != nil {
		return err
	}
	r.printf("setup: built %s (%s, WAL mode) in %s\n", db, mib(fi.Size()), dur(time.Since(start)))

	cli, why := sqlite3CLI(ctx, r, o.install)
	var baseCmd string
	if cli != "" {
		baseCmd = fmt.Sprintf("%s -csv %s %q > %s", cli, db, "SELECT * FROM "+tableName, filepath.Join(dir, "baseline.csv"))
		r.cmds = append(r.cmds, "baseline: "+baseCmd)
		r.machineExtra = append(r.machineExtra, "sqlite3 CLI: "+sqlite3Version(cli))
	} else {
		r.printf("baseline unavailable: %s\n", why)
	}
	lakeDir := filepath.Join(dir, "lake-initial")
	r.cmds = append(r.cmds, fmt.Sprintf("lakelink (in process, the engine behind): lakelink run --source sqlite://%s --lake file://%s --once", filepath.ToSlash(db), filepath.ToSlash(lakeDir)))

	var best *baselineResult
	var bestW *writeResult
	for i := 0; i < o.repeat; i++ {
		if cli != "" {
			b, err := runBaseline(ctx, cli, db, filepath.Join(dir, "baseline.csv"))
			if err != nil {
				r.printf("baseline failed: %v\n", err)
				cli = ""
			} else {
				if o.repeat > 1 {
					r.printf("run %d: sqlite3 %s\n", i+1, dur(b.took))
				}
				if best == nil || b.took < best.took {
					best = &b
				}
			}
		}
		profile := ""
		if i == 0 {
			profile = o.cpuProfile
		}
		open := func(l *slog.Logger) (*engine, error) { return openEngine(ctx, o, db, lakeDir, l) }
		w, err := lakelinkWrite(ctx, open, lakeDir, logger, profile)
		if err != nil {
			return err
		}
		if w.rows != int64(o.rows) {
			return fmt.Errorf("the lake's state counts %d rows, want %d", w.rows, o.rows)
		}
		if o.repeat > 1 {
			r.printf("run %d: lakelink copy %s, RunOnce %s\n", i+1, dur(w.copyTook), dur(w.total))
		}
		if bestW == nil || w.copyTook < bestW.copyTook {
			bestW = &w
		}
	}
	r.initial(o.rows, best, *bestW, o)
	return nil
}
