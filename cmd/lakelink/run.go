package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
)

type runFlags struct {
	config           string
	source, lake     string
	link             string
	tables           []string
	mode, partition  string
	createdOn        string
	commitInterval   time.Duration
	snapshotInterval time.Duration
	retention        int
	once             bool
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run (--source URL --lake URL | --config FILE)",
		Short: "Export a source's tables into a lake, continuously or once",
		Long: `Run exports the tables of a source database into a lake in the CDM folder
format. Each newly linked table is first copied whole (the initial write);
then the source's changes are batched for the commit interval and committed
to the lake, and a snapshot is taken every snapshot interval.

Without --table, every table that can be linked is linked, and each one that
can't is named with its reason in a warning. A table named with --table that
can't be linked is an error.

Without --once, lakelink runs until SIGINT or SIGTERM, then finishes the
commit in flight and exits. With --once it exports everything the source has
committed up to now, commits, takes a snapshot and exits.

--config FILE runs the links of a YAML file instead, each on its own and all
at once; one that fails is reported and makes the exit code 1 while the
others go on. See docs/configuration.md.

Sources: sqlite:///ABSOLUTE/PATH.db, or a path to a SQLite file;
         postgres://USER@HOST:PORT/DB?... (password from the URL, PGPASSWORD
         or ~/.pgpass).
Lakes:   file:///ABSOLUTE/DIR, or a folder path (created when missing);
         s3://BUCKET[/PREFIX]?endpoint=...&region=...&path-style=true
         (AWS credential chain);
         azure://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL] (AZURE_STORAGE_KEY,
         AZURE_STORAGE_CONNECTION_STRING or the Azure credential chain).`,
		Example: `  # Export every table of app.db into /srv/lake until Ctrl-C
  lakelink run --source sqlite:///srv/app.db --lake file:///srv/lake

  # Two tables, partitioned by month of their created_at column, exported once
  lakelink run --source app.db --lake ./lake --table account --table contact \
      --partition month --createdon created_at --once

  # Several links from a config file
  lakelink run --config lakelink.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			specs, err := f.specs(cmd)
			if err != nil {
				return err
			}
			return runLinks(cmd.Context(), g.logger, specs, f.once, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "run the links of this YAML file (instead of --source and --lake)")
	fl.StringVar(&f.source, "source", "", "source database URL: sqlite:///ABSOLUTE/PATH.db or a file path, or postgres://USER@HOST:PORT/DB")
	fl.StringVar(&f.lake, "lake", "", "lake URL: file:///ABSOLUTE/DIR or a folder path, s3://BUCKET/PREFIX?..., azure://ACCOUNT/CONTAINER/PREFIX")
	fl.StringVar(&f.link, "link", defaultLink, "link name: names the source's change tracking and the lake's state")
	fl.StringArrayVar(&f.tables, "table", nil, "a table to link (repeat for several; default: every table that can be linked)")
	fl.StringVar(&f.mode, "mode", "", "write mode: in-place or append-only (default: in-place for tables with a createdOn column, else append-only)")
	fl.StringVar(&f.partition, "partition", "", "partition by createdOn: year or month (default year)")
	fl.StringVar(&f.createdOn, "createdon", "", "column whose value picks a row's partition (default: a date/time column named createdon, created_on, createdat or created_at)")
	fl.DurationVar(&f.commitInterval, "commit-interval", defaultCommitInterval, "how long changes are batched before a commit")
	fl.DurationVar(&f.snapshotInterval, "snapshot-interval", defaultSnapshotInterval, "how often snapshots are taken")
	fl.IntVar(&f.retention, "snapshot-retention", defaultSnapshotRetention, "snapshot generations kept per partition")
	fl.BoolVar(&f.once, "once", false, "export what the source has committed up to now, take a snapshot, and exit")
	return cmd
}

// specs turns the flags into the links to run, or a usage error.
func (f *runFlags) specs(cmd *cobra.Command) ([]linkSpec, error) {
	if f.config != "" {
		for _, name := range []string{"source", "lake", "link", "table", "mode", "partition", "createdon", "commit-interval", "snapshot-interval", "snapshot-retention"} {
			if cmd.Flags().Changed(name) {
				return nil, usagef(cmd, "--%s can't be used with --config: set it in the config file", name)
			}
		}
		c, err := loadConfig(f.config)
		if err != nil {
			return nil, usagef(cmd, "%v", err)
		}
		return c.specs(), nil
	}
	switch {
	case f.source == "" && f.lake == "":
		return nil, usagef(cmd, "--source and --lake are required (or --config FILE)")
	case f.source == "":
		return nil, usagef(cmd, "--source is required")
	case f.lake == "":
		return nil, usagef(cmd, "--lake is required")
	}
	if _, err := parseSource(f.source); err != nil {
		return nil, usagef(cmd, "--source %s: %v", redactURL(f.source), err)
	}
	if _, err := parseLake(f.lake); err != nil {
		return nil, usagef(cmd, "--lake %s: %v", redactURL(f.lake), err)
	}
	if err := lakelink.CheckLinkName(f.link); err != nil {
		return nil, usagef(cmd, "--link %v", err)
	}
	if err := lakelink.CheckMode(f.mode); err != nil {
		return nil, usagef(cmd, "--mode %v", err)
	}
	if err := lakelink.CheckPartition(f.partition); err != nil {
		return nil, usagef(cmd, "--partition %v", err)
	}
	if f.commitInterval <= 0 {
		return nil, usagef(cmd, "--commit-interval %s: must be positive", f.commitInterval)
	}
	if f.snapshotInterval <= 0 {
		return nil, usagef(cmd, "--snapshot-interval %s: must be positive", f.snapshotInterval)
	}
	if f.retention < 1 {
		return nil, usagef(cmd, "--snapshot-retention %d: keep at least 1 generation", f.retention)
	}
	s := linkSpec{
		Link:              lakelink.Link{Name: f.link, Source: f.source, Lake: f.lake},
		CommitInterval:    f.commitInterval,
		SnapshotInterval:  f.snapshotInterval,
		SnapshotRetention: f.retention,
	}
	settings := lakelink.TableSettings{Mode: f.mode, Partition: f.partition, CreatedOn: f.createdOn}
	if len(f.tables) == 0 {
		s.Defaults = settings
	}
	seen := map[string]bool{}
	for _, name := range f.tables {
		if name == "" {
			return nil, usagef(cmd, "--table: empty table name")
		}
		if seen[name] {
			return nil, usagef(cmd, "--table %q given twice", name)
		}
		seen[name] = true
		t := settings
		t.Name = name
		s.Tables = append(s.Tables, t)
	}
	return []linkSpec{s}, nil
}

// runLinks runs every link at once and waits for them all. One link's
// failure does not stop the others.
func runLinks(ctx context.Context, logger *slog.Logger, specs []linkSpec, once bool, stdout io.Writer) error {
	out := &lockedWriter{w: stdout}
	if len(specs) == 1 {
		return runLink(ctx, logger, specs[0], once, out)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		wg.Go(func() {
			errs[i] = runLink(ctx, logger, s, once, out)
			if errs[i] != nil {
				// Reported now: the other links may run for a long time yet.
				logger.Error("link failed", slog.String("link", s.Name), slog.Any("err", errs[i]))
			}
		})
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, specs[i].Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d links failed: %s (see the log above)", len(failed), len(specs), strings.Join(failed, ", "))
	}
	return nil
}

// runLink opens a link's source and lake and runs its exporter until ctx
// ends (or, once, until it has caught up).
func runLink(ctx context.Context, logger *slog.Logger, s linkSpec, once bool, out io.Writer) error {
	log := logger.With(slog.String("link", s.Name))
	src, err := openSource(ctx, s.Source, logger)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	defer src.Close()
	lake, err := openLake(ctx, s.Lake, false)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	defer lake.Close()
	ex, err := export.New(src, lake, export.Config{
		Link:              s.Name,
		Source:            redactURL(s.Source),
		Tables:            s.Tables,
		Defaults:          s.Defaults,
		CommitInterval:    s.CommitInterval,
		SnapshotInterval:  s.SnapshotInterval,
		SnapshotRetention: s.SnapshotRetention,
		Logger:            logger,
	})
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	log.Info("link started", slog.String("source", redactURL(s.Source)), slog.String("lake", lake.String()), slog.Bool("once", once))
	if once {
		err = ex.RunOnce(ctx)
	} else {
		err = ex.Run(ctx)
	}
	p := ex.Progress()
	log.Info("link stopped", slog.Int64("copied", p.Copied), slog.Int64("changes", p.Changes), slog.Int64("commits", p.Commits))
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	if !once {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("link %q: interrupted before the export caught up", s.Name)
	}
	st, err := export.ReadState(ctx, lake)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	return reportOnce(out, s.Name, lake.String(), st)
}

// reportOnce prints what a --once run left in the lake, and returns an
// error naming the tables that stopped.
func reportOnce(out io.Writer, link, lake string, st *export.State) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "link %s: exported up to position %s in %d commits into %s\n", link, st.Position, st.Commit, lake)
	tw := tabwriter.NewWriter(&buf, 2, 8, 2, ' ', 0)
	names := make([]string, 0, len(st.Tables))
	for n := range st.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var stopped []string
	for _, n := range names {
		t := st.Tables[n]
		state := t.InitialSync
		if t.Error != "" {
			state = "stopped: " + t.Error
			stopped = append(stopped, n)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d rows\t%s\n", t.Folder, t.Mode, t.Rows, state)
	}
	tw.Flush()
	if _, err := out.Write(buf.Bytes()); err != nil {
		return err
	}
	if len(stopped) > 0 {
		return fmt.Errorf("link %q: %d table(s) stopped: %s (see lakelink status)", link, len(stopped), strings.Join(stopped, ", "))
	}
	return nil
}

// lockedWriter serializes the writes of concurrent links.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
