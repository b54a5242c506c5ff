package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions. Every metric has the label link; the per-table ones
// have table too.
var (
	descChanges = prometheus.NewDesc("lakelink_changes_total",
		"Changes exported by the link's commits since the process started.", []string{"link"}, nil)
	descCommits = prometheus.NewDesc("lakelink_commits_total",
		"Commits the link made since the process started.", []string{"link"}, nil)
	descCopied = prometheus.NewDesc("lakelink_copied_rows_total",
		"Rows written by the link's initial copies since the process started.", []string{"link"}, nil)
	descSnapshots = prometheus.NewDesc("lakelink_snapshots_total",
		"Snapshots the link took since the process started.", []string{"link"}, nil)
	descPosition = prometheus.NewDesc("lakelink_position",
		"The source position of the link's last commit (PostgreSQL: the LSN as a number; SQLite: the change sequence number).", []string{"link"}, nil)
	descLastCommit = prometheus.NewDesc("lakelink_last_commit_timestamp_seconds",
		"When the link last committed, in Unix seconds; absent before its first commit.", []string{"link"}, nil)
	descLastSnapshot = prometheus.NewDesc("lakelink_last_snapshot_timestamp_seconds",
		"When the link last took a snapshot, in Unix seconds; absent before its first snapshot.", []string{"link"}, nil)
	descLag = prometheus.NewDesc("lakelink_commit_lag_seconds",
		"How long the oldest change of the link's last commit waited before it was in the lake.", []string{"link"}, nil)
	descDown = prometheus.NewDesc("lakelink_down",
		"1 while the link waits out an outage of its source or lake (it retries with backoff), else 0.", []string{"link"}, nil)
	descDownSince = prometheus.NewDesc("lakelink_down_since_timestamp_seconds",
		"When the link's current outage began, in Unix seconds; absent while it is not down.", []string{"link"}, nil)
	descRunning = prometheus.NewDesc("lakelink_running",
		"1 while the link runs (or waits out an outage), 0 while it starts or after it stopped.", []string{"link"}, nil)
	descTableRows = prometheus.NewDesc("lakelink_table_rows",
		"Rows (in place) or records (append only) of the table in the lake.", []string{"link", "table"}, nil)
	descTableStopped = prometheus.NewDesc("lakelink_table_stopped",
		"1 when the table stopped on an error (see lakelink status), else 0.", []string{"link", "table"}, nil)
)

// collector is a prometheus.Collector that reads every link's Progress at
// scrape time: nothing runs between scrapes.
type collector struct {
	links []Link
	now   func() time.Time
}

// Describe sends the descriptions of every metric Collect may send.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChanges, descCommits, descCopied, descSnapshots, descPosition,
		descLastCommit, descLastSnapshot, descLag, descDown, descDownSince, descRunning, descTableRows, descTableStopped} {
		ch <- d
	}
}

// Collect sends every link's metrics, as its Progress says now.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, l := range c.links {
		p := l.Progress()
		s := status(l, p, now)
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{l.Name}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l.Name)
		}
		counter(descChanges, s.Changes)
		counter(descCommits, s.Commits)
		counter(descCopied, s.CopiedRows)
		counter(descSnapshots, s.Snapshots)
		gauge(descPosition, float64(s.Position))
		if !p.LastCommit.IsZero() {
			gauge(descLastCommit, unixSeconds(p.LastCommit))
		}
		if !p.LastSnapshot.IsZero() {
			gauge(descLastSnapshot, unixSeconds(p.LastSnapshot))
		}
		gauge(descLag, p.Lag.Seconds())
		gauge(descDown, bool01(s.Down.Down))
		if s.Down.Down && !p.DownSince.IsZero() {
			gauge(descDownSince, unixSeconds(p.DownSince))
		}
		gauge(descRunning, bool01(s.State == Running))
		for _, t := range s.Tables {
			gauge(descTableRows, float64(t.Rows), t.Name)
			gauge(descTableStopped, bool01(t.Error != ""), t.Name)
		}
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
