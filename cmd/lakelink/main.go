// Command lakelink continuously exports database tables into a data lake in
// the CDM folder format: model.json, header-less CSV partitions and
// read-only Snapshot copies.
//
// Run "lakelink --help" for the commands, or see docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once
		// instead of waiting for the commit in flight.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
