package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0 // success
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line (or config file) is wrong
)

// usageError is a mistake in how lakelink was invoked: an unknown flag, a
// missing or bad flag value, a URL lakelink can't use, an invalid config
// file. It exits with code 2 and says what to try.
type usageError struct {
	err error
	cmd string // the command path whose --help to suggest
}

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usagef returns a usageError for cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), cmd: cmd.CommandPath()}
}

// globals are the flags every command takes, and what they make.
type globals struct {
	logLevel  string
	logFormat string
	stderr    io.Writer
	logger    *slog.Logger
}

// run runs lakelink with the command-line arguments args (without the
// program name) and returns the exit code. It writes results to stdout and
// logs and errors to stderr. Canceling ctx stops a running export after the
// commit in flight.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
	case isCobraUsageError(err):
		ue = &usageError{err: err, cmd: cmd.CommandPath()}
	default:
		fmt.Fprintf(stderr, "lakelink: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "lakelink: %v\n", ue.err)
	path := ue.cmd
	if path == "" {
		path = "lakelink"
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
	return exitUsage
}

// isCobraUsageError reports whether err is one of the errors cobra returns
// for a command line it can't parse (the flag errors come through
// SetFlagErrorFunc already wrapped).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "lakelink",
		Short: "Export database tables continuously into a data lake in the CDM folder format",
		Long: `lakelink exports database tables continuously into a data lake in the CDM
folder format: model.json, header-less CSV partitions per table, and
read-only Snapshot copies that model.json lists.

A link is one source database exported into one lake. "lakelink run" copies
each linked table once (the initial write), then keeps the lake current from
the source's change stream, commit by commit, and takes snapshots.`,
		Example: `  # Try it: a sample SQLite database exported into a local folder for 20 s
  lakelink demo

  # Export a SQLite database into a folder until Ctrl-C
  lakelink run --source sqlite:///srv/app.db --lake file:///srv/lake

  # What a lake holds
  lakelink status --lake /srv/lake`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(g.stderr, g.logLevel, g.logFormat)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			g.logger = logger
			return nil
		},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(cmd, "unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return usagef(cmd, "no command given")
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, cmd: cmd.CommandPath()}
	})
	root.AddCommand(newRunCmd(g), newTablesCmd(g), newStatusCmd(g), newResyncCmd(g), newUnlinkCmd(g), newDemoCmd(g), newLinkCmd(g))
	return root
}

// newLogger returns the logger the flags ask for, writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q (flags start with --)", args[0])
	}
	return nil
}
