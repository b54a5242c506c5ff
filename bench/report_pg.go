package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"
)

// summaryRow is one line of the summary table.
type summaryRow struct{ what, lakelink, baseline, ratio string }

// pgInitial prints 3a.
func (r *report) pgInitial(o options) {
	p := r.pg
	w, b := p.write, p.base
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "\ttime\trows/s\tbytes written\tMB/s\tpeak heap\tpeak RSS\t\n")
		fmt.Fprintf(tw, "psql COPY (SELECT ...) TO STDOUT (FORMAT csv) > file (baseline)\t%s\t%s\t%s\t%s\t\t\t\n",
			dur(b.took), rate(p.rows, b.took), mib(b.bytes), mbps(b.bytes, b.took))
		fmt.Fprintf(tw, "lakelink initial copy\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			dur(w.copyTook), rate(p.rows, w.copyTook), mib(w.probe.PartBytes), mbps(w.probe.PartBytes, w.copyTook), mib(int64(w.heap.Peak)), hwm(w.heap))
		fmt.Fprintf(tw, "lakelink RunOnce, all of it\t%s\t%s\t%s\t\t\t\t\n", dur(w.total), rate(p.rows, w.total), mib(w.probe.Written+w.probe.Copied))
	})
	r.printf("\nratio lakelink/psql (rows/s): %s for the copy, %s for the whole RunOnce (the fastest of %d runs of each, alternating).\n",
		ratio(b.took, w.copyTook), ratio(b.took, w.total), o.repeat)
	r.printf("copy = RunOnce start until the last partition file is durably closed: connecting, the publication, the slot with its\n")
	r.printf("  exported snapshot, the SELECT of every row (text format), encoding, %d partition files, fsync. By the engine's logs:\n", w.probe.Partitions())
	r.printf("  %s before the first row, %s in the copy loop (%s rows/s).\n", dur(w.beforeCopy), dur(w.copyLoop), rate(p.rows, w.copyLoop))
	r.extra = append(r.extra,
		summaryRow{fmt.Sprintf("pg initial write %s rows: rows/s", count(p.rows)), rate(p.rows, w.copyTook), rate(p.rows, b.took) + " (psql COPY csv)", ratio(b.took, w.copyTook)},
		summaryRow{"pg initial write: peak heap / RSS", mib(int64(w.heap.Peak)) + " / " + hwm(w.heap), "", ""})
}

// pgCatchUp prints 3b.
func (r *report) pgCatchUp(o options) {
	p := r.pg
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "\ttime\tchanges/s\toutput\t\n")
		fmt.Fprintf(tw, "pg_recvlogical, pgoutput, to a file (baseline)\t%s\t%s\t%s\t\n", dur(p.recv), rate(p.backlog, p.recv), mib(p.recvBytes))
		fmt.Fprintf(tw, "lakelink catch-up into the lake\t%s\t%s\t%d commits\t\n", dur(p.catchUp), rate(p.backlog, p.catchUp), p.catchUpCommits)
	})
	r.printf("\nratio lakelink/pg_recvlogical (changes/s): %s. Both decode the same WAL (%s) from slots created at the same point;\n", ratio(p.recv, p.catchUp), mib(p.walBytes))
	r.printf("  pg_recvlogical runs with pgoutput and lakelink's options (proto_version 1, its publication, messages) and writes the raw messages.\n")
	r.printf("lakelink catch-up = a new engine's Run, from its start until the durable state record that counts the backlog's last insert\n")
	r.printf("  (Close of state.json returned): connecting, streaming, merging every year partition once per commit (CommitInterval %s), fsync.\n", o.commitInterval)
	r.extra = append(r.extra, summaryRow{fmt.Sprintf("pg catch-up %s changes: changes/s", count(p.backlog)), rate(p.backlog, p.catchUp), rate(p.backlog, p.recv) + " (pg_recvlogical)", ratio(p.recv, p.catchUp)})
}

// pgLatency prints 3c.
func (r *report) pgLatency(o options) {
	p := r.pg
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "changes\twriter's rate\tcommits\tp50\tp99\tmax\ttarget p99 (2 commit intervals)\t\n")
		fmt.Fprintf(tw, "%s\t%.0f/s\t%d\t%s\t%s\t%s\t%s\t\n", count(p.latN), p.latRate, p.latCommits, dur(p.p50), dur(p.p99), dur(p.pMax), dur(2*o.pgCommitInterval))
	})
	r.printf("\nlatency of a row = from its COMMIT returning to the writer (one row per transaction) until the lake's state record of the commit\n")
	r.printf("  that holds it is durable: a wrapper around the file lake sees state.json's Close return and reads its row count (rows are\n")
	r.printf("  inserted in id order by one writer, so a count of k means rows 1..k are in). The engine runs Run with CommitInterval %s.\n", o.pgCommitInterval)
	ci := fmt.Sprintf("CommitInterval %s", o.pgCommitInterval)
	r.extra = append(r.extra,
		summaryRow{fmt.Sprintf("pg commit-to-lake latency at %s/s: p50", count(o.pgRate)), dur(p.p50), ci, ""},
		summaryRow{"pg commit-to-lake latency: p99", dur(p.p99), "target " + dur(2*o.pgCommitInterval), fmt.Sprintf("%.2fx of target", p.p99.Seconds()/(2*o.pgCommitInterval).Seconds())})
}

// pgBigTx prints 3d.
func (r *report) pgBigTx(o options) {
	p := r.pg
	h := p.bigHeap
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "rows in the transaction\ttime to the lake\trows/s\tpeak heap\tpeak RSS\theap before\tPostgreSQL spilled\ttarget RSS\t\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t256 MiB\t\n", count(p.bigRows), dur(p.bigTook), rate(p.bigRows, p.bigTook),
			mib(int64(h.Peak)), hwm(h), mib(int64(h.Baseline)), mib(p.bigSpill))
	})
	r.printf("\ntime = from Run's start until the state record of the commit holding the rows is durable (the server decodes the\n")
	r.printf("  whole transaction before it sends its first row). peak heap = max HeapInuse sampled every 10 ms over that time;\n")
	r.printf("  peak RSS = VmHWM%s\n", hwmNote(h))
	r.printf("  after debug.FreeOSMemory. PostgreSQL spilled = spill_bytes of the slot in pg_stat_replication_slots (the server's own reorder buffer).\n")
	r.extra = append(r.extra, summaryRow{fmt.Sprintf("pg one %s-row transaction: peak RSS / heap", count(p.bigRows)), hwm(h) + " / " + mib(int64(h.Peak)), "target RSS 256 MiB", fmt.Sprintf("%.2fx of target", float64(h.HWM)/float64(256<<20))})
}

// printExtra prints the summary rows of sections 3 and 4.
func (r *report) printExtra(tw *tabwriter.Writer) {
	for _, s := range r.extra {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", s.what, s.lakelink, s.baseline, s.ratio)
	}
}

// durMS formats a duration in milliseconds with one decimal, for small costs.
func durMS(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// lakeTable prints set 4 and adds its summary rows.
func (r *report) lakeTable(o options) {
	if len(r.lakes) == 0 {
		return
	}
	r.printf("\n")
	r.table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "lake\tpartition\tappend commit (fastest of %d)\trequests\tbytes sent\tbytes received\trows' bytes\tothers' requests\t\n", o.lakeRepeat)
		for _, l := range r.lakes {
			req, sent, recv, other := "-", "-", "-", "-"
			if l.proxied {
				req, sent, recv = strconv.Itoa(l.calls.Requests), mib(l.calls.Sent), mib(l.calls.Received)
				other = strconv.Itoa(l.other.Requests)
			}
			fmt.Fprintf(tw, "%s\t%d MB\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.kind, l.mb, durMS(l.append), req, sent, recv, mib(l.added), other)
		}
	})
	r.printf("\n")
	for _, l := range r.lakes {
		if l.proxied {
			r.printf("%s, %d MB: %s\n", l.kind, l.mb, l.calls)
			if l.other.Requests > 0 {
				r.printf("  others (the server fetching a copy source through the proxy): %s, %s sent, %s received\n", l.other, mib(l.other.Sent), mib(l.other.Received))
			}
		}
	}
	// Growth from the smallest partition to the largest, per lake.
	for _, kind := range o.lakeKinds {
		var small, big *lakeResult
		for i := range r.lakes {
			l := &r.lakes[i]
			if l.kind != kind {
				continue
			}
			if small == nil || l.partBytes < small.partBytes {
				small = l
			}
			if big == nil || l.partBytes > big.partBytes {
				big = l
			}
		}
		if small == nil || small == big {
			continue
		}
		what := fmt.Sprintf("%s append %s rows: %d MB vs %d MB partition", kind, count(o.lakeRows), big.mb, small.mb)
		line := fmt.Sprintf("%s: partition %.0fx larger, commit time %s", what, float64(big.mb)/float64(small.mb), ratio(big.append, small.append))
		if big.split > 0 {
			line += fmt.Sprintf(" (the larger one's commit appends to its last overflow split, %.1f MB)", float64(big.partBytes)/1e6)
		}
		if small.proxied {
			line += fmt.Sprintf(", bytes sent %s, requests %d vs %d", growth(uint64(small.calls.Sent), uint64(big.calls.Sent)), big.calls.Requests, small.calls.Requests)
		}
		r.printf("%s\n", line)
		r.extra = append(r.extra, summaryRow{what + ": time", durMS(big.append), durMS(small.append), ratio(big.append, small.append)})
		if small.proxied {
			r.extra = append(r.extra, summaryRow{"  bytes sent / requests", fmt.Sprintf("%s / %d", mib(big.calls.Sent), big.calls.Requests),
				fmt.Sprintf("%s / %d", mib(small.calls.Sent), small.calls.Requests), growth(uint64(small.calls.Sent), uint64(big.calls.Sent))})
		}
	}
	r.printf("ratio = larger partition / smaller: 1.00x means the commit's cost does not grow with the partition.\n")
	r.printf("time: the fastest of the %d commits; requests and bytes: the commit that sent the most (on Azure a commit after a small\n", o.lakeRepeat)
	r.printf("  one reads that one's block back and stages it again with its rows, until blocks reach 1 MiB). bytes = HTTP bodies only.\n")
}
