package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
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
	var lakeURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --lake URL",
		Short: "Show what a lake holds: per table, its mode, sync state, rows, last commit and snapshot",
		Long: `Status reads a lake's durable export state (written by "lakelink run" at
every commit) and shows, per table: write mode, partition strategy, initial
sync state and completion time, rows, last commit time and position, last
snapshot, and the error if the table stopped. It changes nothing and works
whether or not lakelink is running.`,
		Example: `  lakelink status --lake file:///srv/lake
  lakelink status --lake ./lake --json | jq '.tables[] | {name, rows}'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lakeURL == "" {
				return usagef(cmd, "--lake is required")
			}
			if _, err := parseLake(lakeURL); err != nil {
				return usagef(cmd, "--lake %s: %v", redactURL(lakeURL), err)
			}
			ctx := cmd.Context()
			lake, err := openLake(ctx, lakeURL, true)
			if err != nil {
				return err
			}
			defer lake.Close()
			st, err := export.ReadState(ctx, lake)
			if errors.Is(err, lakelink.ErrNotExist) {
				return fmt.Errorf("lake %s holds no lakelink export yet (no %s); run lakelink run first", lake, export.StatePath)
			}
			if err != nil {
				return err
			}
			doc := buildStatus(st, lake.String())
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			return printStatus(cmd.OutOrStdout(), doc)
		},
	}
	cmd.Flags().StringVar(&lakeURL, "lake", "", "lake URL: file:///ABSOLUTE/DIR or a folder path, s3://BUCKET/PREFIX?..., azure://ACCOUNT/CONTAINER/PREFIX")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document instead of a table")
	return cmd
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
	fmt.Fprintf(w, "snapshot  %s\n\n", showTime(doc.LastSnapshot))
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

func showTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05Z")
}
