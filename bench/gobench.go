package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// goBench runs BenchmarkMergeTable of package export, which calls the
// engine's merge directly (no source, no fsync), and prints its lines.
func goBench(ctx context.Context, r *report, o options) error {
	r.section("2b. Go benchmark of the merge alone (export.BenchmarkMergeTable, 10,000 changes)")
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("find the module root with `go list -m`: %w", err)
	}
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkMergeTable$", "-benchmem", "-benchtime", o.goBenchTime, "./export"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = strings.TrimSpace(string(root))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	line := "(cd " + cmd.Dir + " && go " + strings.Join(quoteArgs(args), " ") + ")"
	r.cmds = append(r.cmds, "go benchmark: "+line)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", line, err, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			r.printf("%s\n", l)
			r.goBench = append(r.goBench, l)
		}
	}
	r.printf("B/op is what one merge allocates in all (the batch is built outside the timed loop); peak-heap-B is the highest HeapInuse\n")
	r.printf("  sampled every 10 ms while merging. Neither should grow with the partition; ns/op should grow linearly with it.\n")
	return nil
}
