package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lakelink/lakelink/export"
)

// tableJSON is one table in "lakelink tables --json".
type tableJSON struct {
	Name     string       `json:"name"`
	Linkable bool         `json:"linkable"`
	Reason   string       `json:"reason,omitempty"`
	Key      []string     `json:"key"`
	Columns  []columnJSON `json:"columns"`
}

type columnJSON struct {
	Name string `json:"name"`
	Type string `json:"type"` // as declared in the source
	Kind string `json:"kind"` // lakelink's neutral kind
}

func newTablesCmd(g *globals) *cobra.Command {
	var source string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tables --source URL",
		Short: "List a source's tables and whether each can be linked",
		Long: `Tables lists every table of a source database, whether it can be linked,
and, when it can't, why and what would fix it. It changes nothing.`,
		Example: `  lakelink tables --source sqlite:///srv/app.db
  lakelink tables --source app.db --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if source == "" {
				return usagef(cmd, "--source is required")
			}
			if _, err := parseSource(source); err != nil {
				return usagef(cmd, "--source %s: %v", redactURL(source), err)
			}
			ctx := cmd.Context()
			src, err := openSource(ctx, source, g.logger)
			if err != nil {
				return err
			}
			defer src.Close()
			infos, err := src.Tables(ctx)
			if err != nil {
				return err
			}
			list := make([]tableJSON, 0, len(infos))
			for _, ti := range infos {
				t := tableJSON{Name: ti.Name, Key: []string{}, Columns: []columnJSON{}}
				t.Reason = export.Unlinkable(ti)
				t.Linkable = t.Reason == ""
				for _, k := range ti.Key {
					t.Key = append(t.Key, ti.Columns[k].Name)
				}
				for _, c := range ti.Columns {
					t.Columns = append(t.Columns, columnJSON{Name: c.Name, Type: c.Type, Kind: c.Kind.String()})
				}
				list = append(list, t)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Source string      `json:"source"`
					Tables []tableJSON `json:"tables"`
				}{redactURL(source), list})
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "no tables")
				return nil
			}
			tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tLINKABLE\tKEY\tCOLUMNS\tREASON")
			for _, t := range list {
				yes := "yes"
				if !t.Linkable {
					yes = "no"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", t.Name, yes, strings.Join(t.Key, ","), len(t.Columns), t.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "source database URL: sqlite:///ABSOLUTE/PATH.db or a file path, or postgres://USER@HOST:PORT/DB")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document instead of a table")
	return cmd
}
