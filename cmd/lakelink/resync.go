package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/export"
)

func newResyncCmd(g *globals) *cobra.Command {
	var lakeURL string
	var tables []string
	cmd := &cobra.Command{
		Use:   "resync --lake URL --table NAME",
		Short: "Mark tables of a lake for a fresh initial copy by the next run",
		Long: `Resync marks tables of a lake's export for a fresh initial copy: the next
"lakelink run" copies each one again from the source and streams its changes
from there. Use it for a table that stopped (a value that could not be
exported, since fixed in the source; a column whose type changed).

The table's columns and partitions are rebuilt by the copy. Readers keep
their view: old snapshot files stay until snapshot retention ages them out,
and a partition the new copy leaves empty gets an empty snapshot. Run it
while no lakelink exports into this lake.`,
		Example: `  lakelink status --lake ./lake          # see which table stopped, and why
  lakelink resync --lake ./lake --table account
  lakelink run --source app.db --lake ./lake`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lakeURL == "" {
				return usagef(cmd, "--lake is required")
			}
			if len(tables) == 0 {
				return usagef(cmd, "--table is required (repeat it for several tables)")
			}
			if _, err := parseLake(lakeURL); err != nil {
				return usagef(cmd, "--lake %s: %v", redactURL(lakeURL), err)
			}
			ctx := cmd.Context()
			lake, err := openLake(ctx, lakeURL, lakeUpdate)
			if err != nil {
				return err
			}
			defer lake.Close()
			for _, t := range tables {
				err := export.Resync(ctx, lake, t)
				if errors.Is(err, lakelink.ErrNotExist) {
					return fmt.Errorf("lake %s holds no lakelink export yet (no %s)", lake, export.StatePath)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "table %s will be copied again by the next lakelink run\n", t)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&lakeURL, "lake", "", "lake URL: file:///ABSOLUTE/DIR or a folder path, s3://BUCKET/PREFIX?..., azure://ACCOUNT/CONTAINER/PREFIX")
	cmd.Flags().StringArrayVar(&tables, "table", nil, "a table to copy again (repeat for several)")
	return cmd
}
