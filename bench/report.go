package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report prints the figures as they come, and the summary at the end.
type report struct {
	w            io.Writer
	opts         options
	dir          string
	args         []string
	cmds         []string // exact command lines behind the figures
	machineExtra []string

	// Benchmark 1.
	haveInitial bool
	initRows    int
	base        *baselineResult
	write       writeResult

	// Benchmark 2.
	merges  []mergeResult
	goBench []string // result lines of BenchmarkMergeTable

	// Benchmarks 3 and 4.
	pg    *pgResult
	lakes []lakeResult
	extra []summaryRow // their lines of the summary
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(r.w, format, args...) }

func (r *report) section(title string) {
	r.printf("\n== %s ==\n", title)
}

func (r *report) machine() {
	r.printf("lakelink bench, %s\n", time.Now().UTC().Format(time.RFC3339))
	for _, l := range machineInfo() {
		r.printf("  %s\n", l)
	}
	r.printf("  work folder: %s\n", r.dir)
}

func (r *report) table(fn func(tw *tabwriter.Writer)) {
	tw := tabwriter.NewWriter(r.w, 0, 0, 3, ' ', 0)
	fn(tw)
	tw.Flush()
}

// initial prints benchmark 1's figures side by side.
func (r *report) initial(rows int, base *baselineResult, w writeResult, o options) {
	r.haveInitial, r.initRows, r.base, r.write = true, rows, base, w
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "\ttime\trows/s\tbytes written\tMB/s\tpeak heap\tpeak RSS\t\n")
		if base != nil {
			fmt.Fprintf(tw, "sqlite3 -csv > file (baseline)\t%s\t%s\t%s\t%s\t\t\t\n",
				dur(base.took), rate(rows, base.took), mib(base.bytes), mbps(base.bytes, base.took))
		} else {
			fmt.Fprintf(tw, "sqlite3 -csv > file (baseline)\tunavailable\t\t\t\t\t\t\n")
		}
		fmt.Fprintf(tw, "lakelink initial copy\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			dur(w.copyTook), rate(rows, w.copyTook), mib(w.probe.PartBytes), mbps(w.probe.PartBytes, w.copyTook),
			mib(int64(w.heap.Peak)), hwm(w.heap))
		fmt.Fprintf(tw, "lakelink RunOnce, all of it\t%s\t%s\t%s\t\t\t\t\n",
			dur(w.total), rate(rows, w.total), mib(w.probe.Written+w.probe.Copied))
	})
	r.printf("\n")
	if o.repeat > 1 {
		r.printf("the fastest of %d runs of each (-repeat), alternating.\n", o.repeat)
	}
	if base != nil {
		r.printf("ratio lakelink/sqlite3 (rows/s): %s for the copy, %s for the whole RunOnce\n",
			ratio(base.took, w.copyTook), ratio(base.took, w.total))
	}
	r.printf("lakelink wrote %s in %d partition files (CSV with Id, SinkCreatedOn, SinkModifiedOn, versionnumber, IsDelete added; the baseline CSV is %s),\n",
		mib(w.probe.PartBytes), w.probe.Partitions(), mibOr(base))
	r.printf("  plus %s of metadata and state, plus %s of snapshot copies (copy_file_range, %s); the lake folder holds %s.\n",
		mib(w.probe.Written-w.probe.PartBytes), mib(w.probe.Copied), dur(w.probe.CopyTime), mib(w.lakeBytes))
	r.printf("copy = RunOnce start until the last partition file is durably closed (includes opening the source, installing triggers, fsync);\n")
	r.printf("  by the engine's logs: %s before the first row (tracking, starting the snapshot), %s in the copy loop with its metadata (%s rows/s).\n",
		dur(w.beforeCopy), dur(w.copyLoop), rate(rows, w.copyLoop))
	r.printf("  RunOnce also writes model.json and state, takes the first snapshot and waits -idle-exit (%s) for quiet before it returns.\n", o.idleExit)
	r.printf("peak heap = max runtime.MemStats.HeapInuse sampled every 10 ms (%s after GC before the run); peak RSS = VmHWM%s.\n",
		mib(int64(w.heap.Baseline)), hwmNote(w.heap))
}

// mergeTable prints benchmark 2's figures side by side.
func (r *report) mergeTable(o options) {
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "partition rows\tfile\tmerge (rewrite)\trows/s through merge\tRunOnce with batch\tRunOnce empty\tdifference\tdifference - commit interval\tsnapshot copy\t\n")
		for _, m := range r.merges {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				count(m.rows), mib(m.partBytes), dur(m.merge), rate(m.rows, m.merge), dur(m.busy), dur(m.idle), dur(m.busy-m.idle),
				dur(m.busy-m.idle-o.commitInterval), dur(m.snapshot))
		}
	})
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "partition rows\tpeak heap during merge\tpeak heap, RunOnce with batch\tpeak heap, RunOnce empty\tpeak RSS, RunOnce with batch\t\n")
		for _, m := range r.merges {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n",
				count(m.rows), mibOrDash(m.busyHeap.PeakWin), mib(int64(m.busyHeap.Peak)), mib(int64(m.idleHeap.Peak)), hwm(m.busyHeap))
		}
	})
	r.printf("\n")
	if len(r.merges) >= 2 {
		a, b := r.merges[0], r.merges[len(r.merges)-1]
		r.printf("partition %gx larger: merge took %s as long, peak heap during the merge %s (%s vs %s).\n",
			float64(b.rows)/float64(a.rows), ratio(b.merge, a.merge),
			growth(a.busyHeap.PeakWin, b.busyHeap.PeakWin), mibOrDash(a.busyHeap.PeakWin), mibOrDash(b.busyHeap.PeakWin))
	}
	for _, m := range r.merges {
		if m.rewrites != 1 {
			r.printf("note: at %s rows the batch was written in %d partition rewrites (commits), not 1: the stream took longer than -commit-interval to deliver it.\n", count(m.rows), m.rewrites)
		}
	}
	r.printf("times: the fastest of %d rounds (-merge-repeat), each a fresh batch; peak heap: the highest of the rounds.\n", o.mergeRepeat)
	r.printf("merge (rewrite) = from the partition file's Create to its durable Close, as a wrapper around the file lake saw it:\n")
	r.printf("  one streaming pass reading the old file and writing the new one with the batch applied, plus fsync and rename.\n")
	r.printf("difference = RunOnce with batch - RunOnce empty: the merge, reading %s changes from SQLite's change log, the snapshot copy,\n", count(o.changes))
	r.printf("  and the engine's batching wait: a batch is committed -commit-interval (%s) after its first change arrives.\n", o.commitInterval)
	r.printf("peak heap in merge = max HeapInuse sampled while the partition file was open for writing; the batch (%s changes) is held in memory by design.\n", count(o.changes))
}

// summary prints every figure once more in one table, with the machine and
// the command lines.
func (r *report) summary() {
	r.section("Summary")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "figure\tlakelink\tbaseline\tratio\t\n")
		if r.haveInitial {
			w := r.write
			baseRate, baseTime, rt := "unavailable", "", ""
			if r.base != nil {
				baseRate, baseTime = rate(r.initRows, r.base.took), dur(r.base.took)
				rt = ratio(r.base.took, w.copyTook)
			}
			fmt.Fprintf(tw, "initial write %s rows: rows/s\t%s\t%s\t%s\t\n", count(r.initRows), rate(r.initRows, w.copyTook), baseRate, rt)
			fmt.Fprintf(tw, "initial write: time\t%s\t%s\t\t\n", dur(w.copyTook), baseTime)
			fmt.Fprintf(tw, "initial write: whole RunOnce\t%s\t\t\t\n", dur(w.total))
			bb := ""
			if r.base != nil {
				bb = mib(r.base.bytes)
			}
			fmt.Fprintf(tw, "initial write: partition bytes\t%s\t%s\t\t\n", mib(w.probe.PartBytes), bb)
			fmt.Fprintf(tw, "initial write: peak heap / RSS\t%s / %s\t\t\t\n", mib(int64(w.heap.Peak)), hwm(w.heap))
		}
		for _, m := range r.merges {
			fmt.Fprintf(tw, "merge %s changes into %s rows: rewrite\t%s\t\t\t\n", count(m.updates+m.inserts), count(m.rows), dur(m.merge))
			fmt.Fprintf(tw, "  RunOnce with batch / empty\t%s / %s\t\t\t\n", dur(m.busy), dur(m.idle))
			fmt.Fprintf(tw, "  peak heap in merge / RunOnce\t%s / %s\t\t\t\n", mibOrDash(m.busyHeap.PeakWin), mib(int64(m.busyHeap.Peak)))
		}
		for _, l := range r.goBench {
			name, figures := goBenchLine(l)
			fmt.Fprintf(tw, "%s\t%s\t\t\t\n", name, figures)
		}
		r.printExtra(tw)
	})
	r.printf("\nmachine:\n")
	for _, l := range append(machineInfo(), r.machineExtra...) {
		r.printf("  %s\n", l)
	}
	r.printf("\ncommands:\n")
	r.printf("  go run ./bench %s\n", strings.Join(quoteArgs(r.args), " "))
	for _, c := range r.cmds {
		r.printf("  %s\n", c)
	}
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"'$") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// count formats n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 0:
		return "-" + dur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func rate(rows int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	r := float64(rows) / d.Seconds()
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0f k", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func mib(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

func mibOrDash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return mib(int64(n))
}

func mibOr(b *baselineResult) string {
	if b == nil {
		return "unavailable"
	}
	return mib(b.bytes)
}

func mbps(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/1e6/d.Seconds())
}

// ratio is how many times faster b's rate is than a's, for the same work
// timed as a (baseline) and b: a/b.
func ratio(a, b time.Duration) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a.Seconds()/b.Seconds())
}

func growth(a, b uint64) string {
	if a == 0 || b == 0 {
		return "not sampled (the merge was shorter than 10 ms)"
	}
	return fmt.Sprintf("%.2fx", float64(b)/float64(a))
}

func hwm(h heapStats) string {
	if h.HWM == 0 {
		return "-"
	}
	return mib(int64(h.HWM))
}

func hwmNote(h heapStats) string {
	if h.HWM == 0 {
		return " (unavailable on this OS)"
	}
	if !h.HWMReset {
		return " (could not be reset: the process's peak so far, including building the SQLite table)"
	}
	return " of the process, reset before the run (/proc/self/clear_refs)"
}

// goBenchLine turns a result line of BenchmarkMergeTable into a label and
// its figures: time and allocation per merge, and the peak heap.
func goBenchLine(l string) (string, string) {
	f := strings.Fields(l)
	if len(f) < 4 {
		return l, ""
	}
	name := f[0]
	if _, n, ok := strings.Cut(name, "partition="); ok {
		n, _, _ = strings.Cut(n, "-")
		if v, err := strconv.Atoi(n); err == nil {
			name = "merge alone (Go benchmark), " + count(v) + " rows"
		}
	}
	unit := map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err == nil {
			unit[f[i+1]] = v
		}
	}
	return name, fmt.Sprintf("%s/op, %s/op in %s allocs, peak heap %s",
		dur(time.Duration(unit["ns/op"])), mib(int64(unit["B/op"])), count(int(unit["allocs/op"])), mib(int64(unit["peak-heap-B"])))
}
