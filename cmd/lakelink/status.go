package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/api"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/source/postgres"
)

// statusJSON is the document "lakelink status --json" prints. Its fields
// are stable: new ones may be added, none are renamed or removed. Times are
// RFC 3339 in UTC, or null when the event has not happened.
type statusJSON struct {
	Link         string            `json:"link"`
	Source       string            `json:"source"` // without credentials
	Lake         string            `json:"lake"`
	Position     uint64            `json:"position"` // every change up to here is in the lake
	Commits      uint64            `json:"commits"`
	LastCommit   *time.Time        `json:"lastCommit"`
	LastSnapshot *time.Time        `json:"lastSnapshot"`
	Tables       []tableStatusJSON `json:"tables"` // sorted by name
	Slot         *slotJSON         `json:"slot"`   // with --source postgres://...; else null
}

// slotJSON is the link's PostgreSQL replication slot in statusJSON, as the
// source reports it.
type slotJSON struct {
	Name        string `json:"name"`        // lakelink_<link>, also the publication's name
	Exists      bool   `json:"exists"`      // false after unlink, or before the first run
	Publication bool   `json:"publication"` // the publication exists
	Active      bool   `json:"active"`      // a running lakelink streams from it
	ActivePID   int32  `json:"activePid"`   // its server process, or 0
	// WALStatus is reserved, extended, unreserved (about to be lost) or
	// lost (the tables must be copied again); "" when the slot is missing.
	WALStatus         string `json:"walStatus"`
	Lost              bool   `json:"lost"`              // the slot can't stream any more
	LostReason        string `json:"lostReason"`        // why, or ""
	ConfirmedLSN      string `json:"confirmedLsn"`      // confirmed_flush_lsn, e.g. "0/16B3748"
	ConfirmedPosition uint64 `json:"confirmedPosition"` // the same as a position (compare with position)
	CurrentLSN        string `json:"currentLsn"`        // the server's WAL position now
	RetainedBytes     int64  `json:"retainedBytes"`     // WAL the slot keeps on the server's disk
	LagBytes          int64  `json:"lagBytes"`          // WAL not confirmed yet
	// LagSeconds is 0 when LagBytes is 0, else the time since the lake's
	// last commit (or initial copy): about how far behind the lake is. null
	// when unknown (no slot, or no commit yet).
	LagSeconds *float64 `json:"lagSeconds"`
	// SafeWALBytes is the WAL that can still be written before the slot is
	// lost, or -1 when unlimited (max_slot_wal_keep_size = -1).
	SafeWALBytes int64  `json:"safeWalBytes"`
	Error        string `json:"error"` // why the source could not be asked, or ""
}

// tableStatusJSON is one table of statusJSON.
type tableStatusJSON struct {
	Name                 string     `json:"name"`      // the source's name
	Folder               string     `json:"folder"`    // the table's folder and entity name in the lake
	Mode                 string     `json:"mode"`      // in-place or append-only
	Partition            string     `json:"partition"` // year, month or numbered
	CreatedOn            string     `json:"createdOn"` // the column that picks the partition, or ""
	InitialSync          string     `json:"initialSync"`
	InitialSyncCompleted *time.Time `json:"initialSyncCompleted"`
	Rows                 int64      `json:"rows"` // rows (in place) or records (append only)
	Partitions           int        `json:"partitions"`
	LastCommit           *time.Time `json:"lastCommit"`
	LastPosition         uint64     `json:"lastPosition"` // the position of the last change exported
	LastSnapshot         *time.Time `json:"lastSnapshot"`
	Error                string     `json:"error"` // why the table stopped, or ""
}

func newStatusCmd(g *globals) *cobra.Command {
	var lakeURL, sourceURL, server, link string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status (--lake URL [--source postgres://...] | --server http://ADDR [--link NAME])",
		Short: "Show what a lake holds, or what a running lakelink is doing (--server)",
		Long: `Status reads a lake's durable export state (written by "lakelink run" at
every commit) and shows, per table: write mode, partition strategy, initial
sync state and completion time, rows, last commit time and position, last
snapshot, and the error if the table stopped. It changes nothing and works
whether or not lakelink is running.

With --source (a PostgreSQL source: the link's own), it also asks the
server about the link's replication slot: whether it exists and is active,
its wal_status (lost: the tables must be copied again), its confirmed
position, the WAL it retains on the server's disk, and the lag in bytes
(WAL not confirmed yet) and seconds (the time since the lake's last commit,
when the lag is not 0). A slot that retains more and more WAL while
lakelink is stopped fills the server's disk: see docs/postgres.md.

With --server instead of --lake, status asks a running "lakelink run
--listen ADDR" over HTTP (GET /v1/links) and prints, per link of that
process (or only --link NAME): its state, position, commits, changes and
rows copied by the process, last commit and its lag, last snapshot, the
tables, and, while the source or lake is unavailable, since when and why:
    lake unavailable since 2026-12-02T19:50:01Z (2m10s): <error>
It works while the lake can't be read. When the run has a token, set
LAKELINK_API_TOKEN to it here too. --json prints the API's document (see
docs/http-api.md).`,
		Example: `  lakelink status --lake file:///srv/lake
  lakelink status --lake ./lake --json | jq '.tables[] | {name, rows}'
  lakelink status --lake ./lake --source postgres://lakelink@db/app --json | jq .slot
  lakelink status --server http://127.0.0.1:7077 --link crm`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case server != "" && lakeURL != "":
				return usagef(cmd, "--server and --lake can't be used together: --server asks a running lakelink, --lake reads the lake")
			case server != "" && sourceURL != "":
				return usagef(cmd, "--source can't be used with --server: it goes with --lake")
			case server != "":
				base, err := serverURL(server)
				if err != nil {
					return usagef(cmd, "--server %v", err)
				}
				return liveStatus(cmd.Context(), cmd.OutOrStdout(), base, link, asJSON)
			case link != "":
				return usagef(cmd, "--link goes with --server (a lake holds one link)")
			case lakeURL == "":
				return usagef(cmd, "--lake is required (or --server http://ADDR of a running lakelink run --listen ADDR)")
			}
			ep, err := parseLake(lakeURL)
			if err != nil {
				return usagef(cmd, "--lake %s: %v", redactURL(lakeURL), err)
			}
			if sourceURL != "" {
				ep, err := parseSource(sourceURL)
				if err != nil {
					return usagef(cmd, "--source %s: %v", redactURL(sourceURL), err)
				}
				if ep.backend != backendPostgres {
					return usagef(cmd, "--source %s: only a PostgreSQL source (postgres://...) has a replication slot to show", redactURL(sourceURL))
				}
			}
			ctx := cmd.Context()
			lake, err := openLake(ctx, lakeURL, lakeRead)
			if err != nil {
				if ep.backend == backendFile {
					return err // a folder that is not there, or not one
				}
				return lakeUnavailable(redactURL(lakeURL), err)
			}
			defer lake.Close()
			st, err := export.ReadState(ctx, lake)
			if errors.Is(err, lakelink.ErrNotExist) {
				return fmt.Errorf("lake %s holds no lakelink export yet (no %s); run lakelink run first", lake, export.StatePath)
			}
			if err != nil {
				return lakeUnavailable(lake.String(), err)
			}
			doc := buildStatus(st, lake.String())
			var slotErr error
			if sourceURL != "" {
				var s postgres.SlotStatus
				s, slotErr = readSlot(ctx, sourceURL, st.Link, g)
				doc.Slot = slotStatus(s, slotErr, lastCommit(st), lakelink.Now())
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(doc); err != nil {
					return err
				}
			} else if err := printStatus(cmd.OutOrStdout(), doc); err != nil {
				return err
			}
			return slotErr
		},
	}
	cmd.Flags().StringVar(&lakeURL, "lake", "", "lake URL: file:///ABSOLUTE/DIR or a folder path, s3://BUCKET/PREFIX?..., azure://ACCOUNT/CONTAINER/PREFIX")
	cmd.Flags().StringVar(&sourceURL, "source", "", "the link's PostgreSQL source (postgres://USER@HOST:PORT/DB): also show its replication slot")
	cmd.Flags().StringVar(&server, "server", "", "ask a running lakelink instead (the http://ADDR of its run --listen ADDR): live status, outages included")
	cmd.Flags().StringVar(&link, "link", "", "with --server: show only this link")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document instead of a table")
	return cmd
}

// lakeUnavailable explains that status could not read the lake, and where
// to look instead.
func lakeUnavailable(lake string, err error) error {
	return fmt.Errorf("lake %s is unavailable: %w\n"+
		"A lakelink that exports into it waits the outage out and says since when and why: "+
		"lakelink status --server http://ADDR (the ADDR of its run --listen)", lake, err)
}

// slotReporter is a source that can report a link's replication slot
// (PostgreSQL).
type slotReporter interface {
	SlotStatus(ctx context.Context, link string) (postgres.SlotStatus, error)
}

// readSlot asks the source at u about the link's slot.
func readSlot(ctx context.Context, u, link string, g *globals) (postgres.SlotStatus, error) {
	src, err := openSource(ctx, u, g.logger)
	if err != nil {
		return postgres.SlotStatus{}, err
	}
	defer src.Close()
	sr, ok := src.(slotReporter)
	if !ok {
		return postgres.SlotStatus{}, fmt.Errorf("source %s has no replication slot", redactURL(u))
	}
	return sr.SlotStatus(ctx, link)
}

// slotStatus turns what the source said about the link's slot into the
// status document's slot; lastCommit is the lake's last commit, which
// gives the lag in seconds.
func slotStatus(s postgres.SlotStatus, err error, lastCommit, now time.Time) *slotJSON {
	if err != nil {
		return &slotJSON{Name: s.Slot, Error: err.Error()}
	}
	j := &slotJSON{
		Name: s.Slot, Exists: s.Exists, Publication: s.Publication, Active: s.Active, ActivePID: s.ActivePID,
		WALStatus: s.WALStatus, Lost: s.Lost, LostReason: s.LostReason,
		ConfirmedPosition: uint64(s.Confirmed), RetainedBytes: s.RetainedBytes, LagBytes: s.LagBytes,
		SafeWALBytes: s.SafeWALBytes,
	}
	if s.Exists {
		j.ConfirmedLSN = lsnText(s.Confirmed)
	}
	if s.Current != 0 {
		j.CurrentLSN = lsnText(s.Current)
	}
	switch {
	case !s.Exists:
	case s.LagBytes == 0:
		j.LagSeconds = new(float64)
	case !lastCommit.IsZero():
		sec := math.Round(max(now.Sub(lastCommit).Seconds(), 0)*10) / 10
		j.LagSeconds = &sec
	}
	return j
}

// lastCommit is when the lake last took in changes: its last commit, or a
// table's initial copy if that came later.
func lastCommit(st *export.State) time.Time {
	last := st.CommitTime
	for _, t := range st.Tables {
		if t.LastCommit.After(last) {
			last = t.LastCommit
		}
	}
	return last
}

// lsnText writes a position as PostgreSQL writes an LSN: 0/16B3748.
func lsnText(p lakelink.Position) string {
	return fmt.Sprintf("%X/%X", uint64(p)>>32, uint32(p))
}

// timePtr returns &t in UTC, or nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// buildStatus turns a lake's state into the status document.
func buildStatus(st *export.State, lake string) statusJSON {
	doc := statusJSON{
		Link:         st.Link,
		Source:       redactURL(st.Source),
		Lake:         lake,
		Position:     uint64(st.Position),
		Commits:      st.Commit,
		LastCommit:   timePtr(st.CommitTime),
		LastSnapshot: timePtr(st.Snapshot),
		Tables:       []tableStatusJSON{},
	}
	for _, t := range st.Tables {
		var snap int64
		for _, p := range t.Partitions {
			if n := len(p.Snapshots); n > 0 && p.Snapshots[n-1] > snap {
				snap = p.Snapshots[n-1]
			}
		}
		ts := tableStatusJSON{
			Name:                 t.Source,
			Folder:               t.Folder,
			Mode:                 t.Mode,
			Partition:            t.Partition,
			CreatedOn:            t.CreatedOn,
			InitialSync:          t.InitialSync,
			InitialSyncCompleted: timePtr(t.InitialSyncCompleted),
			Rows:                 t.Rows,
			Partitions:           len(t.Partitions),
			LastCommit:           timePtr(t.LastCommit),
			LastPosition:         uint64(t.LastPos),
			Error:                t.Error,
		}
		if ts.Partition == "" {
			ts.Partition = "numbered"
		}
		if snap > 0 {
			ts.LastSnapshot = timePtr(time.Unix(snap, 0))
		}
		doc.Tables = append(doc.Tables, ts)
	}
	sort.Slice(doc.Tables, func(i, j int) bool { return doc.Tables[i].Name < doc.Tables[j].Name })
	return doc
}

// printStatus prints the status document for people: a header, then an
// aligned table.
func printStatus(w io.Writer, doc statusJSON) error {
	fmt.Fprintf(w, "link      %s\n", doc.Link)
	fmt.Fprintf(w, "source    %s\n", doc.Source)
	fmt.Fprintf(w, "lake      %s\n", doc.Lake)
	fmt.Fprintf(w, "position  %d (%d commits, last %s)\n", doc.Position, doc.Commits, showTime(doc.LastCommit))
	fmt.Fprintf(w, "snapshot  %s\n", showTime(doc.LastSnapshot))
	if doc.Slot != nil {
		printSlot(w, doc.Slot)
	}
	fmt.Fprintln(w)
	if len(doc.Tables) == 0 {
		fmt.Fprintln(w, "no tables linked")
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tMODE\tPARTITION\tINITIAL SYNC\tCOMPLETED\tROWS\tLAST COMMIT\tPOSITION\tLAST SNAPSHOT\tERROR")
	for _, t := range doc.Tables {
		errText := t.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n",
			t.Name, t.Mode, t.Partition, t.InitialSync, showTime(t.InitialSyncCompleted),
			t.Rows, showTime(t.LastCommit), t.LastPosition, showTime(t.LastSnapshot), errText)
	}
	return tw.Flush()
}

// printSlot prints the slot's lines of the status header.
func printSlot(w io.Writer, s *slotJSON) {
	pub := "publication " + s.Name
	if !s.Publication {
		pub = "no publication"
	}
	switch {
	case s.Error != "":
		fmt.Fprintf(w, "slot      unknown: %s\n", s.Error)
		return
	case !s.Exists:
		fmt.Fprintf(w, "slot      %s does not exist (%s): the link was unlinked or has not run\n", s.Name, pub)
		return
	}
	state := "inactive (lakelink is not streaming)"
	if s.Active {
		state = fmt.Sprintf("active (server process %d)", s.ActivePID)
	}
	fmt.Fprintf(w, "slot      %s, %s, wal_status %s, %s\n", s.Name, state, s.WALStatus, pub)
	if s.Lost {
		fmt.Fprintf(w, "          LOST: %s; the link can't resume: its tables must be copied again (lakelink resync, docs/postgres.md)\n", s.LostReason)
	}
	fmt.Fprintf(w, "confirmed %s (position %d)\n", s.ConfirmedLSN, s.ConfirmedPosition)
	lag := showBytes(s.LagBytes)
	if s.LagSeconds != nil {
		lag += fmt.Sprintf(", %.1f s", *s.LagSeconds)
	}
	fmt.Fprintf(w, "lag       %s\n", lag)
	limit := "no limit (max_slot_wal_keep_size = -1)"
	if s.SafeWALBytes >= 0 {
		limit = showBytes(s.SafeWALBytes) + " more before the slot is lost"
	}
	fmt.Fprintf(w, "retained  %s of WAL; %s\n", showBytes(s.RetainedBytes), limit)
}

// showBytes writes a byte count for people: 512 B, 1.5 KiB, 16.0 MiB.
func showBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n), 0
	for v >= 1024 && unit < 4 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", v, [...]string{"B", "KiB", "MiB", "GiB", "TiB"}[unit])
}

func showTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05Z")
}

// liveTimeout bounds a request of status --server.
const liveTimeout = 10 * time.Second

// serverURL checks --server and returns it without a trailing slash; a
// bare HOST:PORT is taken as http://HOST:PORT.
func serverURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %v; give http://HOST:PORT, the address of lakelink run --listen", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%q: give http://HOST:PORT, the address of lakelink run --listen", redactURL(s))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// liveStatus asks the running lakelink at base (its HTTP API, package api)
// for the live status of its links, or of link, and prints it.
func liveStatus(ctx context.Context, w io.Writer, base, link string, asJSON bool) error {
	path := "/v1/links"
	if link != "" {
		path += "/" + url.PathEscape(link)
	}
	body, err := apiGet(ctx, base, path)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := w.Write(body)
		return err
	}
	var doc api.LinksJSON
	if link != "" {
		var one api.LinkStatus
		err = json.Unmarshal(body, &one)
		doc.Links = []api.LinkStatus{one}
	} else {
		err = json.Unmarshal(body, &doc)
	}
	if err != nil {
		return fmt.Errorf("lakelink at %s: GET %s: %w", base, path, err)
	}
	return printLive(w, doc.Links)
}

// apiGet gets path of the lakelink API at base, with the token of
// api.TokenEnv when it is set, and returns the body of a 200 response.
func apiGet(ctx context.Context, base, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	token := os.Getenv(api.TokenEnv)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no lakelink answers at %s: %w; is lakelink run --listen running there?", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("lakelink at %s: GET %s: %w", base, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	msg := api.ErrorText(body)
	if msg == "" {
		msg = fmt.Sprintf("HTTP %s; is this a lakelink run --listen address?", resp.Status)
	}
	if resp.StatusCode == http.StatusUnauthorized && token == "" {
		msg += " (" + api.TokenEnv + " is not set here)"
	} else if resp.StatusCode == http.StatusUnauthorized {
		msg += " (" + api.TokenEnv + " is not the run's token)"
	}
	return nil, fmt.Errorf("lakelink at %s: %s", base, msg)
}

// printLive prints the live status of links for people: per link a
// header, the outage if there is one, and its tables.
func printLive(w io.Writer, links []api.LinkStatus) error {
	if len(links) == 0 {
		_, err := fmt.Fprintln(w, "this lakelink runs no links")
		return err
	}
	for i, l := range links {
		if i > 0 {
			fmt.Fprintln(w)
		}
		state := l.State
		switch {
		case l.State == api.Starting:
			state += ": opening its source and lake"
		case l.State == api.Stopped && l.Error != "":
			state += ": " + l.Error
		}
		fmt.Fprintf(w, "link      %s (%s)\n", l.Link, state)
		fmt.Fprintf(w, "source    %s\n", l.Source)
		fmt.Fprintf(w, "lake      %s\n", l.Lake)
		fmt.Fprintf(w, "position  %d (%d commits, last %s, lag %.1f s)\n", l.Position, l.Commits, showTime(l.LastCommit), l.LagSeconds)
		fmt.Fprintf(w, "exported  %d changes, %d rows copied by this process\n", l.Changes, l.CopiedRows)
		fmt.Fprintf(w, "snapshot  %s\n", showTime(l.LastSnapshot))
		if l.Down.Down {
			fmt.Fprintln(w, downLine(l.Down))
		}
		if len(l.Tables) == 0 {
			continue
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TABLE\tINITIAL SYNC\tROWS\tERROR")
		for _, t := range l.Tables {
			errText := t.Error
			if errText == "" {
				errText = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", t.Name, t.InitialSync, t.Rows, errText)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// downLine says what is unavailable, since when and why:
// "lake unavailable since 2026-12-02T19:50:01Z (2m10s): ERROR".
func downLine(d api.DownJSON) string {
	what := d.What
	if what == "" {
		what = "source or lake"
	}
	since := "an unknown time"
	if d.Since != nil {
		since = d.Since.UTC().Format(time.RFC3339)
	}
	dur := time.Duration(d.ForSeconds * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%s unavailable since %s (%s): %s", what, since, dur, d.Error)
}
