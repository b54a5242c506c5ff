package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for the demo's own writes

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
	"github.com/lakelink/lakelink/export"
)

// Demo sizes: a few thousand rows, a few hundred changes per second.
const (
	demoAccounts        = 1000
	demoContacts        = 3000
	demoRelations       = 2000
	demoTick            = 20 * time.Millisecond // one workload transaction per tick
	demoChangesPerTick  = 6                     // about 300 changes/s
	demoLink            = "demo"
	demoDBName          = "source.db"
	demoLakeName        = "lake"
	demoProgressEvery   = time.Second
	demoDefaultDuration = 20 * time.Second
	demoQueryTable      = "account" // the table the DuckDB query reads
)

type demoFlags struct {
	dir      string
	duration time.Duration
	force    bool
}

func newDemoCmd(g *globals) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Export a sample SQLite database into a local lake while it changes",
		Long: `Demo shows lakelink end to end with nothing but Go. It creates a SQLite
database (WAL mode) at DIR/source.db with the tables account, contact and
accountcontact and a few thousand rows, links it to a lake in DIR/lake, and
runs a workload of a few hundred inserts, updates and deletes per second
while lakelink exports them, showing progress once a second. Then it stops
the workload, lets lakelink catch up and take a snapshot, checks that the
lake holds as many rows as the source, and prints where model.json is and a
DuckDB query that reads a table through it.

Without --dir, DIR is a new folder under the system's temp folder. A DIR
that already holds a demo is refused unless --force, which replaces it.`,
		Example: `  lakelink demo
  lakelink demo --dir /tmp/lakelink-demo --duration 1m --force`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.duration <= 0 {
				return usagef(cmd, "--duration %s: must be positive", f.duration)
			}
			logger := g.logger
			if !cmd.Flags().Changed("log-level") {
				// Keep the engine's lifecycle logs from breaking up the
				// progress line; --log-level brings them back.
				logger, _ = newLogger(g.stderr, "warn", g.logFormat)
			}
			return runDemo(cmd.Context(), logger, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&f.dir, "dir", "", "folder for the demo's database and lake (default: a new folder under the temp folder)")
	cmd.Flags().DurationVar(&f.duration, "duration", demoDefaultDuration, "how long the workload runs")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace the demo database and lake already in --dir")
	return cmd
}

// runDemo runs the demo; see newDemoCmd.
func runDemo(ctx context.Context, logger *slog.Logger, f demoFlags, out io.Writer) error {
	dir, err := demoDir(f)
	if err != nil {
		return err
	}
	dbPath := filepath.Join(dir, demoDBName)
	lakeDir := filepath.Join(dir, demoLakeName)
	fmt.Fprintf(out, "lakelink demo in %s\n", dir)

	db, err := createDemoDB(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(out, "created %s: account (%d rows), contact (%d rows), accountcontact (%d rows)\n",
		dbPath, demoAccounts, demoContacts, demoRelations)

	src, err := openSource(ctx, dbPath, logger)
	if err != nil {
		return err
	}
	defer src.Close()
	lake, err := openLake(ctx, lakeDir, lakeExport)
	if err != nil {
		return err
	}
	defer lake.Close()
	ex, err := export.New(src, lake, export.Config{
		Link:           demoLink,
		Source:         dbPath,
		CommitInterval: time.Second,
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "exporting into %s for %s while a workload changes the database...\n", lakeDir, f.duration)

	// The exporter, running as "lakelink run" would.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- ex.Run(runCtx) }()

	// The workload.
	w := &workload{db: db, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		accounts: demoAccounts, contacts: demoContacts, log: logger}
	wlCtx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	var wg sync.WaitGroup
	wg.Go(func() { w.run(wlCtx) })

	// Live progress until the duration is over.
	live := newProgressLine(out)
	start := time.Now()
	tick := time.NewTicker(demoProgressEvery)
	defer tick.Stop()
	deadline := time.After(f.duration)
	var runErr error
	ran := false
loop:
	for {
		select {
		case <-tick.C:
			live.show(progressText(time.Since(start), ex.Progress(), w.changes.Load()))
		case <-deadline:
			break loop
		case <-ctx.Done():
			break loop
		case runErr = <-runDone:
			ran = true
			break loop
		}
	}
	live.show(progressText(time.Since(start), ex.Progress(), w.changes.Load()))
	live.done()
	stopWorkload()
	wg.Wait()
	if !ran {
		stopRun()
		runErr = <-runDone
	}
	if runErr != nil {
		return fmt.Errorf("export: %w", runErr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; the demo's files are in %s", dir)
	}
	if err := w.err(); err != nil {
		return fmt.Errorf("workload: %w", err)
	}

	fmt.Fprintf(out, "workload stopped after %d changes; catching up and taking a snapshot...\n", w.changes.Load())
	if err := ex.RunOnce(ctx); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; the demo's files are in %s", dir)
	}
	p := ex.Progress()
	fmt.Fprintf(out, "done: %d rows copied, %d changes exported in %d commits, %d snapshots\n\n", p.Copied, p.Changes, p.Commits, p.Snapshots)
	return demoSummary(ctx, out, db, lake, lakeDir)
}

// demoDir returns the demo's folder, made ready: a new temp folder, or
// --dir when it holds no demo yet (or --force).
func demoDir(f demoFlags) (string, error) {
	if f.dir == "" {
		return os.MkdirTemp("", "lakelink-demo-")
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return "", err
	}
	dbPath := filepath.Join(dir, demoDBName)
	lakeDir := filepath.Join(dir, demoLakeName)
	_, dbErr := os.Stat(dbPath)
	entries, lakeErr := os.ReadDir(lakeDir)
	existing := dbErr == nil || (lakeErr == nil && len(entries) > 0)
	if existing && !f.force {
		return "", fmt.Errorf("%s already holds a demo (%s or %s); use another --dir, or --force to replace it", dir, demoDBName, demoLakeName)
	}
	if existing {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		if err := os.RemoveAll(lakeDir); err != nil {
			return "", err
		}
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// openDemoDB opens the demo database the way an application would: WAL
// mode, a busy timeout, one connection.
func openDemoDB(path string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

const demoSchema = `
CREATE TABLE account (
	id        INTEGER PRIMARY KEY,
	name      TEXT NOT NULL,
	industry  VARCHAR(40),
	revenue   NUMERIC(14,2),
	rating    REAL,
	employees INTEGER,
	active    BOOLEAN NOT NULL DEFAULT 1,
	createdon DATETIME
);
CREATE TABLE contact (
	id        INTEGER PRIMARY KEY,
	accountid INTEGER,
	firstname TEXT,
	lastname  TEXT,
	email     TEXT,
	score     REAL,
	birthdate DATE,
	createdon DATETIME
);
CREATE TABLE accountcontact (
	accountid INTEGER NOT NULL,
	contactid INTEGER NOT NULL,
	role      TEXT,
	PRIMARY KEY (accountid, contactid)
);`

var (
	demoCompanies  = []string{"Contoso", "Fabrikam", "Northwind", "Adventure Works", "Tailspin", "Wingtip", "Litware", "Proseware", "Acme, Inc.", `The "Best" Bakery`}
	demoIndustries = []string{"Retail", "Manufacturing", "Finance", "Health", "Education", "Energy"}
	demoFirst      = []string{"Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon"}
	demoLast       = []string{"García", "Smith", "O'Brien", "Nguyen", "Müller", "Kowalski", "Rossi", "Tanaka", "Silva", "Brown"}
	demoRoles      = []string{"buyer", "owner", "technical contact", "billing"}
)

// createDemoDB creates the demo database with its tables and rows.
func createDemoDB(ctx context.Context, path string) (*sql.DB, error) {
	db, err := openDemoDB(path)
	if err != nil {
		return nil, fmt.Errorf("create demo database: %w", err)
	}
	rng := rand.New(rand.NewPCG(1, 2)) // the same rows every time
	err = func() error {
		if _, err := db.ExecContext(ctx, demoSchema); err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i := 1; i <= demoAccounts; i++ {
			if _, err := tx.ExecContext(ctx, insertAccount, append([]any{i}, accountValues(rng, pastTime(rng))...)...); err != nil {
				return err
			}
		}
		for i := 1; i <= demoContacts; i++ {
			if _, err := tx.ExecContext(ctx, insertContact, append([]any{i}, contactValues(rng, pastTime(rng))...)...); err != nil {
				return err
			}
		}
		for range demoRelations {
			if _, err := tx.ExecContext(ctx, insertRelation, 1+rng.IntN(demoAccounts), 1+rng.IntN(demoContacts), pick(rng, demoRoles)); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create demo database %s: %w", path, err)
	}
	return db, nil
}

const (
	insertAccount  = `INSERT INTO account (id, name, industry, revenue, rating, employees, active, createdon) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	insertContact  = `INSERT INTO contact (id, accountid, firstname, lastname, email, score, birthdate, createdon) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	insertRelation = `INSERT OR IGNORE INTO accountcontact (accountid, contactid, role) VALUES (?, ?, ?)`
)

func pick(rng *rand.Rand, list []string) string { return list[rng.IntN(len(list))] }

// pastTime returns a createdon spread over the last six years, in SQLite's
// text form; about one in fifty is NULL (partition 1900).
func pastTime(rng *rand.Rand) any {
	if rng.IntN(50) == 0 {
		return nil
	}
	t := time.Now().UTC().Add(-time.Duration(rng.Int64N(int64(6 * 365 * 24 * time.Hour))))
	return t.Format("2006-01-02 15:04:05")
}

func accountValues(rng *rand.Rand, createdOn any) []any {
	var revenue any = strconv.FormatFloat(float64(rng.IntN(100_000_000))/100, 'f', 2, 64)
	if rng.IntN(20) == 0 {
		revenue = nil
	}
	return []any{
		fmt.Sprintf("%s %d", pick(rng, demoCompanies), rng.IntN(1000)),
		pick(rng, demoIndustries),
		revenue,
		float64(rng.IntN(50)) / 10,
		rng.IntN(5000),
		rng.IntN(10) != 0,
		createdOn,
	}
}

func contactValues(rng *rand.Rand, createdOn any) []any {
	first, last := pick(rng, demoFirst), pick(rng, demoLast)
	var email any = strings.ToLower(strings.ReplaceAll(first+"."+last, "'", "")) + "@example.com"
	switch rng.IntN(20) {
	case 0:
		email = nil // NULL: an empty field in the lake
	case 1:
		email = "" // an empty string: "" in the lake
	}
	birth := time.Date(1950+rng.IntN(55), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	return []any{
		1 + rng.IntN(demoAccounts), first, last, email,
		rng.Float64() * 100, birth.Format("2006-01-02"), createdOn,
	}
}

// workload writes a mix of inserts, updates and deletes to the demo
// database until its context ends.
type workload struct {
	db       *sql.DB
	rng      *rand.Rand
	log      *slog.Logger
	accounts int // the highest account id
	contacts int // the highest contact id
	changes  atomic.Int64

	mu      sync.Mutex
	lastErr error
	errs    int
}

func (w *workload) run(ctx context.Context) {
	tick := time.NewTicker(demoTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := w.step(ctx)
		if err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.lastErr = err
			w.errs++
			w.mu.Unlock()
			w.log.Debug("workload step failed", slog.Any("err", err))
			continue
		}
		w.changes.Add(n)
	}
}

// err returns the last error when most steps failed, which means the
// workload could not write at all.
func (w *workload) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.errs > 0 && w.changes.Load() == 0 {
		return w.lastErr
	}
	return nil
}

// step runs one transaction of a few changes and returns how many rows it
// changed.
func (w *workload) step(ctx context.Context) (int64, error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var n int64
	now := time.Now().UTC().Format("2006-01-02 15:04:05")
	rng := w.rng
	accounts, contacts := w.accounts, w.contacts
	for range demoChangesPerTick {
		var res sql.Result
		switch r := rng.IntN(100); {
		case r < 10:
			accounts++
			res, err = tx.ExecContext(ctx, insertAccount, append([]any{accounts}, accountValues(rng, now)...)...)
		case r < 30:
			contacts++
			res, err = tx.ExecContext(ctx, insertContact, append([]any{contacts}, contactValues(rng, now)...)...)
		case r < 40:
			res, err = tx.ExecContext(ctx, insertRelation, 1+rng.IntN(accounts), 1+rng.IntN(contacts), pick(rng, demoRoles))
		case r < 55:
			res, err = tx.ExecContext(ctx, `UPDATE account SET rating = ?, employees = employees + 1 WHERE id = ?`, float64(rng.IntN(50))/10, 1+rng.IntN(accounts))
		case r < 80:
			res, err = tx.ExecContext(ctx, `UPDATE contact SET score = ?, email = ? WHERE id = ?`, rng.Float64()*100, fmt.Sprintf("c%d@example.org", rng.IntN(1e6)), 1+rng.IntN(contacts))
		case r < 85:
			res, err = tx.ExecContext(ctx, `UPDATE accountcontact SET role = ? WHERE rowid = (SELECT rowid FROM accountcontact ORDER BY random() LIMIT 1)`, pick(rng, demoRoles))
		case r < 92:
			res, err = tx.ExecContext(ctx, `DELETE FROM contact WHERE id = ?`, 1+rng.IntN(contacts))
		case r < 96:
			res, err = tx.ExecContext(ctx, `DELETE FROM account WHERE id = ?`, 1+rng.IntN(accounts))
		default:
			res, err = tx.ExecContext(ctx, `DELETE FROM accountcontact WHERE rowid = (SELECT rowid FROM accountcontact ORDER BY random() LIMIT 1)`)
		}
		if err != nil {
			return 0, err
		}
		k, _ := res.RowsAffected()
		n += k
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	w.accounts, w.contacts = accounts, contacts
	return n, nil
}

// progressLine shows one line of progress: rewritten in place with \r on a
// terminal, one line each time otherwise (a log file, a pipe, a test).
type progressLine struct {
	out   io.Writer
	term  bool
	shown bool
	last  string
}

func newProgressLine(out io.Writer) *progressLine {
	return &progressLine{out: out, term: isTerminal(out)}
}

func (p *progressLine) show(s string) {
	if s == p.last {
		return
	}
	p.last = s
	if p.term {
		fmt.Fprintf(p.out, "\r%s\033[K", s)
	} else {
		fmt.Fprintln(p.out, s)
	}
	p.shown = true
}

// done ends the line on a terminal.
func (p *progressLine) done() {
	if p.term && p.shown {
		fmt.Fprintln(p.out)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func progressText(elapsed time.Duration, p export.Progress, made int64) string {
	s := fmt.Sprintf("%3ds  copied %d rows  exported %d changes  %d commits  lag %s  (workload made %d changes)",
		int(elapsed.Seconds()), p.Copied, p.Changes, p.Commits, p.Lag.Round(time.Millisecond), made)
	if p.Down != "" {
		s += "  retrying: " + p.Down
	}
	return s
}

// demoSummary prints what the lake holds, checks it against the source, and
// prints a DuckDB query that reads a table through model.json.
func demoSummary(ctx context.Context, out io.Writer, db *sql.DB, lake lakelink.Lake, lakeDir string) error {
	st, err := export.ReadState(ctx, lake)
	if err != nil {
		return err
	}
	model, err := readModel(ctx, lake)
	if err != nil {
		return err
	}
	objs, err := lake.List(ctx, "")
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tWRITE MODE\tROWS IN LAKE\tROWS IN SOURCE\tPARTITIONS")
	names := make([]string, 0, len(st.Tables))
	for n := range st.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var mismatch []string
	for _, n := range names {
		t := st.Tables[n]
		var srcRows int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(n, `"`, `""`)+`"`).Scan(&srcRows); err != nil {
			return err
		}
		mode := t.Mode
		if e, ok := model.Entity(t.Folder); ok {
			if m, ok := e.Annotation(cdm.AnnotationWriteMode); ok {
				mode = m
			}
		}
		lakeRows := strconv.FormatInt(t.Rows, 10)
		if t.Mode == lakelink.ModeAppendOnly {
			lakeRows += " changes" // append only: every change is a record
		} else if t.Rows != srcRows {
			mismatch = append(mismatch, fmt.Sprintf("%s: %d rows in the lake, %d in the source", n, t.Rows, srcRows))
		}
		if t.Error != "" {
			lakeRows += " (stopped: " + t.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", t.Folder, mode, lakeRows, srcRows, len(t.Partitions))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var live, snaps, other int
	for _, o := range objs {
		switch {
		case strings.Contains(o.Path, "/"+cdm.SnapshotFolder+"/"):
			snaps++
		case strings.HasSuffix(o.Path, ".csv") && strings.Count(o.Path, "/") == 1 && !strings.HasPrefix(o.Path, cdm.OptionsetFolder+"/"):
			live++
		default:
			other++
		}
	}
	fmt.Fprintf(out, "\nfiles:      %d in %s (%d live partitions, %d snapshot copies, %d metadata and state)\n", len(objs), lakeDir, live, snaps, other)
	fmt.Fprintf(out, "model.json: %s\n", filepath.Join(lakeDir, cdm.ModelPath))

	if q, ok := duckDBQuery(model, demoQueryTable); ok {
		fmt.Fprintf(out, "\nRead the account table with DuckDB (the files are the snapshot model.json lists):\n\n%s\n", q)
	}
	fmt.Fprintf(out, "\nMore: lakelink status --lake %s\n", lakeDir)
	if len(mismatch) > 0 {
		return fmt.Errorf("the lake does not match the source: %s", strings.Join(mismatch, "; "))
	}
	return nil
}

// readModel reads and parses the lake's model.json.
func readModel(ctx context.Context, lake lakelink.Lake) (cdm.Model, error) {
	r, err := lake.Open(ctx, cdm.ModelPath)
	if err != nil {
		return cdm.Model{}, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return cdm.Model{}, fmt.Errorf("read %s: %w", cdm.ModelPath, err)
	}
	m, err := cdm.ParseModel(data)
	if err != nil {
		return cdm.Model{}, fmt.Errorf("read %s: %w", cdm.ModelPath, err)
	}
	return m, nil
}

// duckDBQuery returns a DuckDB query that reads an entity's partitions, as
// model.json lists them, with its attributes as typed columns.
func duckDBQuery(m cdm.Model, entity string) (string, bool) {
	e, ok := m.Entity(entity)
	if !ok || len(e.Partitions) == 0 {
		return "", false
	}
	var files []string
	for _, p := range e.Partitions {
		loc := p.Location
		if u, err := url.Parse(loc); err == nil && u.Scheme == "file" {
			loc = filepath.FromSlash(u.Path)
		}
		files = append(files, sqlString(loc))
	}
	var cols []string
	for _, a := range e.Attributes {
		cols = append(cols, fmt.Sprintf("%s: '%s'", sqlString(a.Name), duckDBType(a)))
	}
	// auto_detect = false: the sniffer would take SinkCreatedOn's format
	// for every TIMESTAMP column. allow_quoted_nulls = false keeps "" an
	// empty string (only an unquoted empty field is NULL). null_padding
	// reads ragged rows (written before a column was added) with NULL in
	// the missing fields. Checked with DuckDB 1.5.
	return fmt.Sprintf("SELECT * FROM read_csv(\n    [%s],\n    header = false, auto_detect = false, delim = ',', quote = '\"', escape = '\"',\n    allow_quoted_nulls = false, null_padding = true,\n    columns = {%s});",
		strings.Join(files, ",\n     "), strings.Join(cols, ", ")), true
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// duckDBType maps an attribute's CDM dataType to the DuckDB type that reads
// its text form (LAKE-FORMAT.md "Values by type") without loss.
func duckDBType(a cdm.Attribute) string {
	switch a.Name {
	case cdm.AttrSinkCreatedOn, cdm.AttrSinkModifiedOn:
		// "6/28/2021 4:34:35 PM": convert with strptime(x, '%m/%d/%Y %I:%M:%S %p').
		return "VARCHAR"
	}
	switch a.DataType {
	case "int64":
		return "BIGINT"
	case "double":
		return "DOUBLE"
	case "decimal":
		p, s := -1, 0
		for _, t := range a.Traits {
			if t.TraitReference != cdm.TraitNumericShaped {
				continue
			}
			for _, arg := range t.Arguments {
				n, err := strconv.Atoi(arg.Value)
				if err != nil {
					continue
				}
				switch arg.Name {
				case cdm.ArgPrecision:
					p = n
				case cdm.ArgScale:
					s = n
				}
			}
		}
		if p >= 1 && p <= 38 && s >= 0 && s <= p {
			return fmt.Sprintf("DECIMAL(%d,%d)", p, s)
		}
		return "VARCHAR" // no declared precision: keep every digit as text
	case "boolean":
		return "BOOLEAN"
	case "guid":
		return "UUID"
	case "date":
		return "DATE"
	case "time":
		return "TIME"
	case "dateTime":
		return "TIMESTAMP"
	case "dateTimeOffset":
		return "TIMESTAMPTZ"
	}
	return "VARCHAR" // string, json, base64 bytes
}
