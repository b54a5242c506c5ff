package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/api"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/lease"
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
	tableScan        time.Duration
	once             bool
	leaseTTL         time.Duration
	listen           string
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run (--source URL --lake URL | --config FILE) [--listen ADDR]",
		Short: "Export a source's tables into a lake, continuously or once",
		Long: `Run exports the tables of a source database into a lake in the CDM folder
format. Each newly linked table is first copied whole (the initial write);
then the source's changes are batched for the commit interval and committed
to the lake, and a snapshot is taken every snapshot interval.

Without --table, every table that can be linked is linked, and each one that
can't is named with its reason in a warning. A table named with --table that
can't be linked is an error. Without --table, tables the source gains while
lakelink runs are linked too: every --table-scan-interval it looks for new
ones, and copies each in the background while the others keep streaming.

Without --once, lakelink runs until SIGINT or SIGTERM, then finishes the
commit in flight and exits. With --once it exports everything the source has
committed up to now, commits, takes a snapshot and exits.

--config FILE runs the links of a YAML file instead, each on its own and all
at once; one that fails is reported and makes the exit code 1 while the
others go on. See docs/configuration.md.

One writer per lake: before writing, each link takes a lease in its lake
(Microsoft.Athena.TrickleFeedService/lakelink/lease.json) and renews it
every --lease-ttl/3. A second lakelink pointed at the same folder or prefix
is refused, with exit code 1 and a message naming the holder (host, pid,
link, since when). If the holder dies without releasing it, its lease
expires after --lease-ttl and another lakelink may take over. A link that
can't renew its lease in time (the lake is unreachable) stops writing, and
takes the lease back once the lake answers, unless another lakelink took
it first.

--listen ADDR (such as 127.0.0.1:7077) serves the live status of every
link of this process over HTTP while it runs: a web page at http://ADDR/
that refreshes itself, GET /v1/links (JSON: position,
commits, lag, tables, and whether the source or lake is down and since
when), /v1/links/NAME, /metrics (Prometheus) and /healthz. "lakelink status
--server http://ADDR" prints it. Only a loopback address is allowed, unless
the environment variable LAKELINK_API_TOKEN holds a token: then any address
is, and every request must carry "Authorization: Bearer <token>". Source
and lake URLs are shown without credentials. See docs/http-api.md.

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

  # Several links from a config file, with their live status and metrics
  # at http://127.0.0.1:7077/v1/links and /metrics
  lakelink run --config lakelink.yaml --listen 127.0.0.1:7077`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			specs, err := f.specs(cmd)
			if err != nil {
				return err
			}
			if f.leaseTTL < minLeaseTTL {
				return usagef(cmd, "--lease-ttl %s: must be at least %s", f.leaseTTL, minLeaseTTL)
			}
			o := runOpts{once: f.once, leaseTTL: f.leaseTTL, listen: f.listen}
			if f.listen != "" {
				o.token = os.Getenv(api.TokenEnv)
				if err := api.CheckListen(f.listen, o.token); err != nil {
					return usagef(cmd, "--listen %v", err)
				}
			}
			return runLinks(cmd.Context(), g.logger, specs, o, cmd.OutOrStdout())
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
	fl.DurationVar(&f.tableScan, "table-scan-interval", defaultTableScanInterval, "how often to look at the source's tables: without --table, for new ones to add while running; always, for linked ones that are gone (0s: never)")
	fl.BoolVar(&f.once, "once", false, "export what the source has committed up to now, take a snapshot, and exit")
	fl.StringVar(&f.listen, "listen", "", "serve the links' live status (/v1/links) and Prometheus metrics (/metrics) over HTTP on this address, such as 127.0.0.1:7077 (default: off); an address other than loopback needs "+api.TokenEnv)
	fl.DurationVar(&f.leaseTTL, "lease-ttl", lease.DefaultTTL, "how long the lake's writer lease lasts unless renewed: how soon another lakelink may take over a lake after this one died")
	return cmd
}

// specs turns the flags into the links to run, or a usage error.
func (f *runFlags) specs(cmd *cobra.Command) ([]linkSpec, error) {
	if f.config != "" {
		for _, name := range []string{"source", "lake", "link", "table", "mode", "partition", "createdon", "commit-interval", "snapshot-interval", "snapshot-retention", "table-scan-interval"} {
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
	if f.tableScan < 0 {
		return nil, usagef(cmd, "--table-scan-interval %s: must be 0s (never) or positive", f.tableScan)
	}
	s := linkSpec{
		Link:              lakelink.Link{Name: f.link, Source: f.source, Lake: f.lake},
		CommitInterval:    f.commitInterval,
		SnapshotInterval:  f.snapshotInterval,
		SnapshotRetention: f.retention,
		TableScanInterval: scanInterval(f.tableScan),
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

// minLeaseTTL is the shortest --lease-ttl.
const minLeaseTTL = time.Second

// runOpts are the settings of a run that are not per link.
type runOpts struct {
	once     bool
	leaseTTL time.Duration // 0: lease.DefaultTTL
	listen   string        // the HTTP API's address, or "" for none
	token    string        // the HTTP API's token (api.TokenEnv), or ""
}

// runLinks runs every link at once and waits for them all. One link's
// failure does not stop the others. With o.listen, the HTTP API serves
// their live status until they have all ended.
func runLinks(ctx context.Context, logger *slog.Logger, specs []linkSpec, o runOpts, stdout io.Writer) error {
	out := &lockedWriter{w: stdout}
	live := make([]*liveLink, len(specs))
	for i, s := range specs {
		live[i] = &liveLink{name: s.Name, state: api.Starting}
	}
	if o.listen != "" {
		stop, err := serveAPI(ctx, logger, specs, live, o)
		if err != nil {
			return err
		}
		defer stop()
	}
	if len(specs) == 1 {
		return live[0].run(func() error { return runLink(ctx, logger, specs[0], o, out, live[0]) })
	}
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		wg.Go(func() {
			errs[i] = live[i].run(func() error { return runLink(ctx, logger, s, o, out, live[i]) })
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

// serveAPI starts the HTTP API (package api) on o.listen for the links,
// until the returned stop is called (after the links have ended: it keeps
// serving while they finish their last commit after a signal).
func serveAPI(ctx context.Context, logger *slog.Logger, specs []linkSpec, live []*liveLink, o runOpts) (stop func(), err error) {
	links := make([]api.Link, len(specs))
	for i, s := range specs {
		links[i] = api.Link{
			Name:     s.Name,
			Source:   redactURL(s.Source),
			Lake:     redactURL(s.Lake),
			Progress: live[i].progress,
			State:    live[i].State,
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := api.Start(sctx, api.Config{Addr: o.listen, Token: o.token, Links: links, Logger: logger})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	base := "http://" + srv.Addr()
	logger.Info("http api: serving the links' live status and metrics", slog.String("addr", srv.Addr()),
		slog.String("ui", base+"/"), slog.String("status", base+"/v1/links"), slog.String("metrics", base+"/metrics"), slog.Bool("token", o.token != ""))
	return func() {
		cancel()
		if err := srv.Wait(); err != nil {
			logger.Warn("http api: shut down", slog.Any("err", err))
		}
	}, nil
}

// liveLink is a link of this process as the HTTP API shows it: its
// exporter once it has one, and how the link ended.
type liveLink struct {
	name  string
	mu    sync.Mutex
	ex    *export.Exporter // nil until the link has opened its source and lake
	state string           // api.Starting, api.Running or api.Stopped
	err   error            // why a stopped link failed
}

// run runs the link with runLink and records how it ended.
func (l *liveLink) run(runLink func() error) error {
	err := runLink()
	l.mu.Lock()
	l.state, l.err = api.Stopped, err
	l.mu.Unlock()
	return err
}

// started records the link's exporter: it runs now.
func (l *liveLink) started(ex *export.Exporter) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.ex, l.state = ex, api.Running
	l.mu.Unlock()
}

// progress is the exporter's progress, or none before it exists.
func (l *liveLink) progress() export.Progress {
	l.mu.Lock()
	ex := l.ex
	l.mu.Unlock()
	if ex == nil {
		return export.Progress{Link: l.name}
	}
	return ex.Progress()
}

// State is the link's state for api.Link.
func (l *liveLink) State() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.err
}

// runLink opens a link's source and lake, takes the lake's writer lease
// and runs its exporter until ctx ends (or, once, until it has caught up).
// live, when not nil, is told of the exporter.
func runLink(ctx context.Context, logger *slog.Logger, s linkSpec, o runOpts, out io.Writer, live *liveLink) error {
	once := o.once
	log := logger.With(slog.String("link", s.Name))
	src, err := openSource(ctx, s.Source, logger)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	defer src.Close()
	lake, err := openLake(ctx, s.Lake, lakeExport)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	defer lake.Close()
	cfg := export.Config{
		Link:              s.Name,
		Source:            redactURL(s.Source),
		Tables:            s.Tables,
		Defaults:          s.Defaults,
		CommitInterval:    s.CommitInterval,
		SnapshotInterval:  s.SnapshotInterval,
		SnapshotRetention: s.SnapshotRetention,
		TableScanInterval: s.TableScanInterval,
		Logger:            logger,
	}
	w, err := acquireLease(ctx, log, lake, s.Name, o.leaseTTL)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	defer w.release()
	// Every write goes through the lease: losing it stops them at once.
	// While the lake is unreachable the lease may expire; the exporter
	// then retries as in any lake outage, and writes again once the lease
	// is taken back. A lease another lakelink took stops the link.
	ex, err := export.New(src, lease.Guard(lake, w), cfg)
	if err != nil {
		return fmt.Errorf("link %q: %w", s.Name, err)
	}
	live.started(ex)
	log.Info("link started", slog.String("source", redactURL(s.Source)), slog.String("lake", lake.String()), slog.Bool("once", once))
	xctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(w.taken, func() { cancel(context.Cause(w.taken)) })
	defer stop()
	if once {
		err = ex.RunOnce(xctx)
	} else {
		err = ex.Run(xctx)
	}
	p := ex.Progress()
	log.Info("link stopped", slog.Int64("copied", p.Copied), slog.Int64("changes", p.Changes), slog.Int64("commits", p.Commits))
	if w.taken.Err() != nil {
		return fmt.Errorf("link %q: stopped writing to lake %s: %w", s.Name, lake, context.Cause(w.taken))
	}
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

// writerLease is a link's lease on its lake (see package lease), held for
// as long as the link runs: one lease after another, since a lease that
// expires while the lake is unreachable is taken back when it answers. It
// is the lease.Term that the link's writes are bound to.
type writerLease struct {
	lake lease.Lake // nil: the lake can't hold a lease
	opts lease.Options
	log  *slog.Logger

	mu  sync.Mutex
	cur *lease.Lease // nil while taking it back

	taken  context.Context // canceled when another lakelink has the lease
	give   context.CancelCauseFunc
	closed context.Context // canceled by release
	close  context.CancelFunc
	done   chan struct{} // closed when watch has returned
}

// acquireLease takes the writer lease of lake for link, or says who holds
// it and what to do.
func acquireLease(ctx context.Context, log *slog.Logger, lake lakelink.Lake, link string, ttl time.Duration) (*writerLease, error) {
	w := &writerLease{log: log, done: make(chan struct{})}
	w.taken, w.give = context.WithCancelCause(context.Background())
	w.closed, w.close = context.WithCancel(context.Background())
	ll, ok := lake.(lease.Lake)
	if !ok {
		log.Warn("the lake can't hold a writer lease (it has no conditional writes): nothing stops a second lakelink from writing to it", slog.String("lake", lake.String()))
		close(w.done)
		return w, nil
	}
	w.lake, w.opts = ll, lease.Options{Link: link, TTL: ttl, ID: lease.NewID(), Logger: log}
	cur, err := lease.Acquire(ctx, ll, w.opts)
	if err != nil {
		return nil, leaseError(err)
	}
	w.cur = cur
	log.Info("lease: acquired; this process is the lake's only writer", slog.String("lake", lake.String()), slog.Duration("ttl", cur.Record().TTL()))
	go w.watch()
	return w, nil
}

// leaseError adds to a refusal what the user can do about it.
func leaseError(err error) error {
	var held *lease.HeldError
	if !errors.As(err, &held) {
		return err
	}
	return fmt.Errorf("%w.\nOnly one lakelink may write to a lake folder or prefix. Stop the other one; or, if it is gone "+
		"(a killed process can't release its lease), run this again after %s, when its lease has expired; "+
		"or give this link a lake folder or prefix of its own", err, held.Expires.UTC().Format(time.RFC3339))
}

// watch waits for the current lease to end and takes it back when it
// expired (the lake was unreachable), until release or until another
// lakelink has it.
func (w *writerLease) watch() {
	defer close(w.done)
	for {
		w.mu.Lock()
		cur := w.cur
		w.mu.Unlock()
		hctx, cancel := cur.Hold(w.closed)
		<-hctx.Done()
		cancel()
		if w.closed.Err() != nil {
			return
		}
		if err := cur.Err(); !errors.Is(err, lease.ErrExpired) {
			w.give(err)
			return
		}
		next, err := w.takeBack()
		if err != nil {
			if w.closed.Err() == nil {
				w.give(err)
			}
			return
		}
		w.mu.Lock()
		w.cur = next
		w.mu.Unlock()
	}
}

// takeBack takes back the lease that expired while the lake was
// unreachable, retrying with backoff until the lake answers. Another
// lakelink that took it meanwhile is an error. The outage itself is the
// exporter's to log.
func (w *writerLease) takeBack() (*lease.Lease, error) {
	// Short steps (a failed read is cheap): the exporter's own retries
	// should find the lease back soon after the lake is.
	const maxBackoff = time.Second
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, maxBackoff) {
		cur, err := lease.Acquire(w.closed, w.lake, w.opts)
		if err == nil {
			w.log.Info("lease: taken back; writing again", slog.String("lake", w.lake.String()))
			return cur, nil
		}
		if errors.Is(err, lease.ErrHeld) || w.closed.Err() != nil {
			return nil, leaseError(err)
		}
		w.log.Debug("lease: lake unavailable; retrying", slog.Any("err", err), slog.Duration("backoff", backoff))
		select {
		case <-w.closed.Done():
			return nil, w.closed.Err()
		case <-time.After(backoff):
		}
	}
}

// Err is nil while the link holds the lease; see lease.Term.
func (w *writerLease) Err() error {
	if w.lake == nil {
		return nil
	}
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	return cur.Err()
}

// Hold returns ctx, also canceled when the current lease ends; see
// lease.Term.
func (w *writerLease) Hold(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.lake == nil {
		return context.WithCancel(ctx)
	}
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	return cur.Hold(ctx)
}

// release gives the lease up, so the next lakelink needn't wait for it to
// expire.
func (w *writerLease) release() {
	w.close()
	<-w.done
	if w.lake == nil {
		return
	}
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cur.Release(ctx); err != nil {
		w.log.Warn("lease: not released; the next lakelink waits for it to expire", slog.Any("err", err))
	}
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
