package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
	"github.com/lakelink/lakelink/source/postgres"
)

type unlinkFlags struct {
	source, lake, link string
}

func newUnlinkCmd(g *globals) *cobra.Command {
	var f unlinkFlags
	cmd := &cobra.Command{
		Use:   "unlink --source URL --lake URL [--link NAME]",
		Short: "Remove a link's change tracking from its source; the lake stays as it is, readable",
		Long: `Unlink removes a link's change tracking from its source database, so that
the source no longer keeps changes for lakelink:

  PostgreSQL  drops the logical replication slot lakelink_<link> (and with
              it the WAL the slot kept on the server's disk) and the
              publication lakelink_<link>
  SQLite      drops the link's triggers from its tables and its change-log
              tables _lakelink_<link>_*

What stays: the source's own tables and data, and the whole lake.
model.json, the partition files and their Snapshot copies are not touched:
every tool reads them as before, but they are no longer kept current.

The link is the one the lake's export records (lakelink status shows it);
--link must match it, and names the link when the lake holds no export
(default "default"). When the lake records which PostgreSQL cluster it was
exported from, a source that is another cluster is refused.

Stop lakelink first: while a running lakelink streams from the slot,
PostgreSQL can't drop it, and unlink says so and drops nothing.

Afterwards, "lakelink run" of this link into the same lake can't resume:
the changes made since the unlink were never recorded, and run refuses and
says so. Export into a new lake (or prefix), or mark every table for a
fresh copy with "lakelink resync --table NAME" and run again.`,
		Example: `  lakelink unlink --source 'postgres://lakelink@db.example.com/app' --lake ./lake
  lakelink unlink --source sqlite:///srv/app.db --lake file:///srv/lake --link crm`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(cmd); err != nil {
				return err
			}
			return unlink(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "the link's source database URL: sqlite:///ABSOLUTE/PATH.db or a file path, or postgres://USER@HOST:PORT/DB")
	fl.StringVar(&f.lake, "lake", "", "the link's lake URL: file:///ABSOLUTE/DIR or a folder path, s3://BUCKET/PREFIX?..., azure://ACCOUNT/CONTAINER/PREFIX")
	fl.StringVar(&f.link, "link", "", `link name (default: the one the lake's export records, else "`+defaultLink+`")`)
	return cmd
}

// check refuses missing or malformed flags with a usage error.
func (f *unlinkFlags) check(cmd *cobra.Command) error {
	switch {
	case f.source == "" && f.lake == "":
		return usagef(cmd, "--source and --lake are required")
	case f.source == "":
		return usagef(cmd, "--source is required")
	case f.lake == "":
		return usagef(cmd, "--lake is required")
	}
	if _, err := parseSource(f.source); err != nil {
		return usagef(cmd, "--source %s: %v", redactURL(f.source), err)
	}
	if _, err := parseLake(f.lake); err != nil {
		return usagef(cmd, "--lake %s: %v", redactURL(f.lake), err)
	}
	if cmd.Flags().Changed("link") {
		if err := lakelink.CheckLinkName(f.link); err != nil {
			return usagef(cmd, "--link %v", err)
		}
	}
	return nil
}

// unlink finds the link in the lake, checks the source is the lake's, and
// untracks every table of the link. f.link is "" when --link was not given.
func unlink(ctx context.Context, g *globals, f unlinkFlags, out io.Writer) error {
	lake, err := openLake(ctx, f.lake, lakeRead)
	if err != nil {
		return err
	}
	defer lake.Close()
	st, err := export.ReadState(ctx, lake)
	switch {
	case errors.Is(err, lakelink.ErrNotExist):
		st = nil
		if f.link == "" {
			f.link = defaultLink
		}
		fmt.Fprintf(out, "lake %s holds no lakelink export; unlinking link %q from the source only\n", lake, f.link)
	case err != nil:
		return err
	case f.link != "" && st.Link != f.link:
		return fmt.Errorf("lake %s holds the export of link %q, not %q: give --link %s, or the lake of link %q", lake, st.Link, f.link, st.Link, f.link)
	default:
		f.link = st.Link
	}

	src, err := openSource(ctx, f.source, g.logger)
	if err != nil {
		return err
	}
	defer src.Close()
	source := redactURL(f.source)
	if err := sameInstance(ctx, src, st, source); err != nil {
		return err
	}
	var slot *postgres.SlotStatus
	if sr, ok := src.(slotReporter); ok {
		s, err := sr.SlotStatus(ctx, f.link)
		if err != nil {
			return err
		}
		if s.Active {
			return slotInUse(f.link, s)
		}
		slot = &s
	}
	if err := src.Untrack(ctx, f.link, nil); err != nil {
		if postgres.InUse(err) && slot != nil {
			return slotInUse(f.link, *slot)
		}
		return fmt.Errorf("link %q: unlink from %s: %w", f.link, source, err)
	}
	fmt.Fprintf(out, "link %s: %s\n", f.link, unlinked(slot, f.link, source))
	fmt.Fprintf(out, "lake %s is unchanged: model.json and its snapshots stay readable, but are no longer kept current\n", lake)
	return nil
}

// sameInstance refuses a source that is another instance than the one the
// lake's export came from: the link of the same name there is not this
// lake's.
func sameInstance(ctx context.Context, src lakelink.Source, st *export.State, source string) error {
	idf, ok := src.(lakelink.Identified)
	if !ok || st == nil || st.SourceID == "" {
		return nil
	}
	id, err := idf.SystemID(ctx)
	if err != nil {
		return err
	}
	if id != st.SourceID {
		return fmt.Errorf("source %s is another database instance (system identifier %s) than the one the lake's link %q was exported from (%s): nothing dropped; give the link's own source", source, id, st.Link, st.SourceID)
	}
	return nil
}

// slotInUse is the error for a slot a running lakelink streams from.
func slotInUse(link string, s postgres.SlotStatus) error {
	pid := ""
	if s.ActivePID != 0 {
		pid = fmt.Sprintf(" (server process %d)", s.ActivePID)
	}
	return fmt.Errorf("link %q: replication slot %q is in use by a running lakelink%s: stop it, then unlink again; nothing was dropped", link, s.Slot, pid)
}

// unlinked says what unlink removed from the source.
func unlinked(slot *postgres.SlotStatus, link, source string) string {
	if slot == nil {
		return fmt.Sprintf("removed the change-tracking triggers and the _lakelink_%s_* tables from %s", link, source)
	}
	what := func(exists bool, kind string) string {
		if exists {
			return "dropped " + kind + " " + slot.Slot
		}
		return "no " + kind + " " + slot.Slot + " (already gone)"
	}
	return fmt.Sprintf("%s and %s on %s", what(slot.Exists, "replication slot"), what(slot.Publication, "publication"), source)
}
