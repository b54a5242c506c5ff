// Command bench measures lakelink against a baseline run on the same
// machine in the same run, and prints the figures side by side:
//
//  1. Initial write of a SQLite table into a fresh file lake, against the
//     sqlite3 CLI writing the same table as CSV.
//  2. In-place merge of a batch of changes into one partition of 100,000
//     and of 1,000,000 rows: time and peak heap of each, so a reader sees
//     that memory does not grow with the partition.
//  3. (-pg) A PostgreSQL source: initial write against psql's COPY to CSV,
//     catch-up over a WAL backlog against pg_recvlogical, commit-to-lake
//     latency at a steady write rate, and memory while exporting one large
//     transaction.
//  4. (-lakes) One append-only commit into a small and a large partition on
//     the local folder, Azurite and versitygw: time, requests and bytes.
//
// Run it from the module root: go run ./bench [flags]. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	rows            int
	quick           bool
	install         bool
	dir             string
	keep            bool
	mergeSizes      []int
	changes         int
	updatePct       int
	repeat          int
	mergeRepeat     int
	commitInterval  time.Duration
	idleExit        time.Duration
	goBench         bool
	goBenchTime     string
	cpuProfile      string
	mergeCPUProfile string
	verbose         bool
	skipInitial     bool
	skipMerge       bool

	// Which sets run: SQLite (1, 2), PostgreSQL (3), object lakes (4).
	sqlite, pg, lakes bool

	pgDSN            string
	pgBin            string
	pgRows           int
	pgBacklog        int
	pgRate           int
	pgLatencyFor     time.Duration
	pgCommitInterval time.Duration
	pgBigTx          int
	pgCPUProfile     string // of lakelink's first PostgreSQL initial write
	pgCatchUpProfile string // of the catch-up

	lakeKinds  []string
	lakeSizes  []int // MB (10^6 bytes)
	lakeRows   int
	lakeRepeat int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench [flags]\n\nMeasures lakelink's initial write and in-place merge against baselines run alongside; see bench/README.md.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.rows, "rows", 1_000_000, "rows of the initial-write table")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 100,000 rows, merges of 1,000 changes into 10,000- and 100,000-row partitions, no repeats (flags given explicitly win)")
	fs.BoolVar(&o.install, "install", false, "when the sqlite3 CLI is missing, run `apt-get install -y sqlite3`")
	fs.StringVar(&o.dir, "dir", "", "work folder for databases and lakes (default: a new temp folder, removed afterwards)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder")
	sizes := fs.String("merge-sizes", "100000,1000000", "comma-separated partition sizes (rows) for the merge benchmark")
	fs.IntVar(&o.changes, "changes", 10_000, "changes per merge batch")
	fs.IntVar(&o.updatePct, "update-pct", 50, "percentage of the batch that updates existing rows; the rest inserts new ones")
	fs.IntVar(&o.repeat, "repeat", 3, "run the initial write (baseline and lakelink) this many times and report the fastest of each (-quick: 1)")
	fs.IntVar(&o.mergeRepeat, "merge-repeat", 3, "merge this many batches into each partition and report the fastest merge and the highest peak heap (-quick: 1)")
	fs.DurationVar(&o.commitInterval, "commit-interval", time.Second, "the engine's CommitInterval (its default is 1s)")
	fs.DurationVar(&o.idleExit, "idle-exit", 100*time.Millisecond, "the engine's IdleExit: how long RunOnce waits for quiet before it returns (its default is 500ms)")
	fs.BoolVar(&o.goBench, "gobench", true, "also run the Go benchmark BenchmarkMergeTable in ./export (go test -bench, -benchmem)")
	fs.StringVar(&o.goBenchTime, "gobench-time", "3x", "-benchtime for the Go benchmark")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of lakelink's initial write to this file")
	fs.StringVar(&o.mergeCPUProfile, "merge-cpuprofile", "", "write a CPU profile of the largest merge RunOnce to this file")
	fs.BoolVar(&o.verbose, "v", false, "show the engine's info logs")
	fs.BoolVar(&o.skipInitial, "skip-initial", false, "skip the initial-write benchmark")
	fs.BoolVar(&o.skipMerge, "skip-merge", false, "skip the merge benchmark")
	fs.BoolVar(&o.sqlite, "sqlite", false, "run the SQLite set (1, 2): the default when neither -pg nor -lakes is given")
	fs.BoolVar(&o.pg, "pg", false, "run the PostgreSQL set (3) against -pg-dsn")
	fs.BoolVar(&o.lakes, "lakes", false, "run the object-lake set (4) against the local folder, Azurite and versitygw")
	all := fs.Bool("all", false, "run every set: SQLite, PostgreSQL and the object lakes")
	fs.StringVar(&o.pgDSN, "pg-dsn", os.Getenv("PG_TEST_DSN"), "PostgreSQL server (wal_level=logical) as a URL; the bench creates and drops a database lakelink_bench on it (default $PG_TEST_DSN)")
	fs.StringVar(&o.pgBin, "pg-bin", "", "folder of psql and pg_recvlogical (default $PG_TEST_BIN, PATH, then /usr/lib/postgresql/*/bin)")
	fs.IntVar(&o.pgRows, "pg-rows", 1_000_000, "rows of the PostgreSQL initial-write table (-quick: 100,000)")
	fs.IntVar(&o.pgBacklog, "pg-backlog", 500_000, "changes of the catch-up backlog, in transactions of 1,000 (-quick: 50,000)")
	fs.IntVar(&o.pgRate, "pg-rate", 1000, "changes/s of the latency writer, one row per transaction")
	fs.DurationVar(&o.pgLatencyFor, "pg-latency-for", 30*time.Second, "how long the latency writer runs (-quick: 5s)")
	fs.DurationVar(&o.pgCommitInterval, "pg-commit-interval", 100*time.Millisecond, "the engine's CommitInterval in the latency benchmark")
	fs.IntVar(&o.pgBigTx, "pg-big-tx", 2_000_000, "rows of the single large transaction of the memory benchmark (-quick: 200,000)")
	fs.StringVar(&o.pgCPUProfile, "pg-cpuprofile", "", "write a CPU profile of lakelink's first PostgreSQL initial write (3a) to this file")
	fs.StringVar(&o.pgCatchUpProfile, "pg-catchup-cpuprofile", "", "write a CPU profile of lakelink's PostgreSQL catch-up (3b) to this file")
	kinds := fs.String("lake-kinds", "file,azure,s3", "comma-separated lakes of set 4; azure needs AZURE_BLOB_ENDPOINT and AZURE_STORAGE_KEY, s3 needs S3_ENDPOINT and AWS_* (ci/services.sh)")
	lsizes := fs.String("lake-sizes", "10,500", "comma-separated partition sizes in MB for set 4 (-quick: 10,50)")
	fs.IntVar(&o.lakeRows, "lake-rows", 1000, "rows of one append-only commit in set 4")
	fs.IntVar(&o.lakeRepeat, "lake-repeat", 3, "appends per partition in set 4; the fastest is shown (-quick: 1)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: all settings are flags; try -h", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["rows"] {
			o.rows = 100_000
		}
		if !set["merge-sizes"] {
			*sizes = "10000,100000"
		}
		if !set["changes"] {
			o.changes = 1_000
		}
		if !set["repeat"] {
			o.repeat = 1
		}
		if !set["merge-repeat"] {
			o.mergeRepeat = 1
		}
		if !set["pg-rows"] {
			o.pgRows = 100_000
		}
		if !set["pg-backlog"] {
			o.pgBacklog = 50_000
		}
		if !set["pg-latency-for"] {
			o.pgLatencyFor = 5 * time.Second
		}
		if !set["pg-big-tx"] {
			o.pgBigTx = 200_000
		}
		if !set["lake-sizes"] {
			*lsizes = "10,50"
		}
		if !set["lake-repeat"] {
			o.lakeRepeat = 1
		}
	}
	if *all {
		o.sqlite, o.pg, o.lakes = true, true, true
	} else if !o.pg && !o.lakes {
		o.sqlite = true
	}
	for _, k := range strings.Split(*kinds, ",") {
		switch k = strings.TrimSpace(k); k {
		case "":
		case "file", "azure", "s3":
			o.lakeKinds = append(o.lakeKinds, k)
		default:
			return o, fmt.Errorf("-lake-kinds: %q is not file, azure or s3", k)
		}
	}
	for _, s := range strings.Split(*lsizes, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-lake-sizes: %q is not a positive size in MB", s)
		}
		o.lakeSizes = append(o.lakeSizes, n)
	}
	for _, s := range strings.Split(*sizes, ",") {
		s = strings.TrimSpace(strings.ReplaceAll(s, "_", ""))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-merge-sizes: %q is not a positive row count", s)
		}
		o.mergeSizes = append(o.mergeSizes, n)
	}
	switch {
	case o.rows <= 0:
		return o, fmt.Errorf("-rows: %d, want at least 1", o.rows)
	case o.changes < 0:
		return o, fmt.Errorf("-changes: %d, want 0 or more", o.changes)
	case o.updatePct < 0 || o.updatePct > 100:
		return o, fmt.Errorf("-update-pct: %d, want 0 to 100", o.updatePct)
	case o.repeat < 1:
		return o, fmt.Errorf("-repeat: %d, want at least 1", o.repeat)
	case o.mergeRepeat < 1:
		return o, fmt.Errorf("-merge-repeat: %d, want at least 1", o.mergeRepeat)
	case o.pgRows < 1000 || o.pgBacklog < 1000:
		return o, fmt.Errorf("-pg-rows %d, -pg-backlog %d: want at least 1,000 each", o.pgRows, o.pgBacklog)
	case o.pgRate < 1 || o.pgLatencyFor <= 0 || o.pgBigTx < 1:
		return o, fmt.Errorf("-pg-rate %d, -pg-latency-for %s, -pg-big-tx %d: want positive values", o.pgRate, o.pgLatencyFor, o.pgBigTx)
	case o.lakeRows < 1 || o.lakeRepeat < 1:
		return o, fmt.Errorf("-lake-rows %d, -lake-repeat %d: want at least 1", o.lakeRows, o.lakeRepeat)
	}
	return o, nil
}

// run is the whole benchmark; main only wires signals and exit codes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	dir := o.dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "lakelink-bench-")
		if err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}

	r := &report{w: stdout, opts: o, dir: dir, args: args}
	r.machine()

	if o.sqlite && !o.skipInitial {
		if err := initialWrite(ctx, r, o, dir, logger); err != nil {
			return fmt.Errorf("initial write: %w", err)
		}
	}
	if o.sqlite && !o.skipMerge {
		if err := mergeBench(ctx, r, o, dir, logger); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		if o.goBench {
			if err := goBench(ctx, r, o); err != nil {
				// The Go benchmark is a second opinion; its failure is shown, not fatal.
				r.printf("\nGo benchmark failed: %v\n", err)
			}
		}
	}
	// A set that was asked for and could not run fails the run, after
	// the figures of the others are printed.
	var failed []error
	if o.pg {
		if err := pgBench(ctx, r, o, dir, logger); err != nil {
			r.printf("\nPostgreSQL set failed: %v\n", err)
			failed = append(failed, fmt.Errorf("postgres: %w", err))
		}
	}
	if o.lakes {
		if err := lakeBench(ctx, r, o, dir, logger); err != nil {
			r.printf("\nobject-lake set failed: %v\n", err)
			failed = append(failed, fmt.Errorf("lakes: %w", err))
		}
	}
	r.summary()
	if o.keep || o.dir != "" {
		r.printf("\nwork folder kept: %s\n", dir)
	}
	return errors.Join(failed...)
}

// machineInfo describes where the figures were measured.
func machineInfo() []string {
	info := []string{
		fmt.Sprintf("cpus: %d (GOMAXPROCS %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		fmt.Sprintf("os/arch: %s/%s", runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("go: %s", runtime.Version()),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				info = append(info, "cpu: "+strings.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			info = append(info, "memory: "+strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " "))
		}
	}
	return info
}
