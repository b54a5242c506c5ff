// Package export is lakelink's engine: it copies a link's tables from a
// Source into a Lake, then keeps them current from the source's change
// stream, in the CDM folder format of package cdm.
//
// One Exporter runs one link. It is the only package that sees both sources
// and lakes. Its commit protocol (docs/commit-protocol.md) is: data files
// complete and durable, then model.json and the per-table metadata derived
// from the state, then the state record, then the source's ack. Replays after
// a crash are harmless: in place, a change applies only when its
// versionnumber is newer than the row's; append only, recovery cuts every
// file back to its committed length before anything is appended.
package export

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lakelink/lakelink"
)

// Config is what an Exporter needs besides its source and lake.
type Config struct {
	// Link names the link; it names the source's change tracking too.
	// Letters, digits and underscores.
	Link string
	// Source describes the source for status (a URL without credentials).
	Source string
	// Tables are the tables to export with their settings. When empty,
	// every table the source can link is exported, and each one it can't is
	// named in a warning.
	Tables []lakelink.TableSettings
	// Defaults apply to every table whose own settings leave a field empty.
	Defaults lakelink.TableSettings
	// CommitInterval is how long changes are batched before a commit (1 s).
	CommitInterval time.Duration
	// SnapshotInterval is how often snapshots are taken (1 h).
	SnapshotInterval time.Duration
	// SnapshotRetention is how many snapshot generations of a partition
	// are kept (5).
	SnapshotRetention int
	// MaxBatchBytes bounds the memory a batch holds (32 MiB, counted with
	// the bookkeeping of each row): a batch that reaches it is committed
	// at the next transaction boundary, and within a transaction larger
	// than that its rows are written out part by part.
	MaxBatchBytes int64
	// SplitBytes is the size past which an append-only partition file is
	// continued in an overflow split, <partition>_001.csv and on, so that
	// the cost of an append stays bounded on lakes that can't append in
	// place. 0 takes the lake's advice (a lake with a SplitSize method),
	// else no splits.
	SplitBytes int64
	// TableScanInterval is how often a link that exports every table (no
	// Tables) looks for tables the source has gained; each new table that
	// can be linked is tracked and copied in the background while the
	// others keep streaming (10 s; negative: never).
	TableScanInterval time.Duration
	// SpoolDir is the local folder where the changes of a table whose copy
	// runs in the background wait (the system's temporary folder).
	SpoolDir string
	// IdleExit, for RunOnce, is how long the stream must stay quiet before
	// the export counts as caught up (500 ms).
	IdleExit time.Duration
	// Logger receives the engine's logs (slog.Default when nil).
	Logger *slog.Logger

	retryBackoff time.Duration // the first retry's wait (1 s); tests shorten it
}

// withDefaults returns c with every empty field set to its default, or an
// error naming the field that is wrong.
func (c Config) withDefaults() (Config, error) {
	if c.Link == "" {
		c.Link = "default"
	}
	if err := lakelink.CheckLinkName(c.Link); err != nil {
		return c, fmt.Errorf("link name %w", err)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = time.Hour
	}
	if c.SnapshotRetention <= 0 {
		c.SnapshotRetention = 5
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 32 << 20
	}
	if c.TableScanInterval == 0 {
		c.TableScanInterval = 10 * time.Second
	}
	if c.IdleExit <= 0 {
		c.IdleExit = 500 * time.Millisecond
	}
	if c.retryBackoff <= 0 {
		c.retryBackoff = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := checkSettings("defaults", c.Defaults); err != nil {
		return c, err
	}
	for i, t := range c.Tables {
		if t.Name == "" {
			return c, fmt.Errorf("tables[%d].name: empty", i)
		}
		if err := checkSettings(fmt.Sprintf("tables[%d] (%s)", i, t.Name), t); err != nil {
			return c, err
		}
	}
	return c, nil
}

func checkSettings(where string, t lakelink.TableSettings) error {
	if err := lakelink.CheckMode(t.Mode); err != nil {
		return fmt.Errorf("%s.mode: %w", where, err)
	}
	if err := lakelink.CheckPartition(t.Partition); err != nil {
		return fmt.Errorf("%s.partition: %w", where, err)
	}
	return nil
}

// createdOnNames are the column names taken as createdOn when a table's
// settings name none (compared case-insensitively).
var createdOnNames = []string{"createdon", "created_on", "createdat", "created_at"}

func isTemporal(k lakelink.Kind) bool {
	return k == lakelink.KindDate || k == lakelink.KindDateTime || k == lakelink.KindDateTimeOffset
}

// resolveSettings fills a table's settings: the createdOn column (named, or
// found by name), the mode (in place with createdOn, append only without) and
// the partition strategy (year). explicit is the column named by the user.
func resolveSettings(t lakelink.Table, s, defaults lakelink.TableSettings) (lakelink.TableSettings, error) {
	if s.Mode == "" {
		s.Mode = defaults.Mode
	}
	if s.Partition == "" {
		s.Partition = defaults.Partition
	}
	if s.Partition == "" {
		s.Partition = lakelink.PartitionYear
	}
	if s.CreatedOn == "" && defaults.CreatedOn != "" && t.ColumnIndex(defaults.CreatedOn) >= 0 {
		s.CreatedOn = defaults.CreatedOn
	}
	if s.CreatedOn != "" {
		i := t.ColumnIndex(s.CreatedOn)
		if i < 0 {
			return s, fmt.Errorf("table %q: createdOn column %q does not exist", t.Name, s.CreatedOn)
		}
		if !isTemporal(t.Columns[i].Kind) {
			return s, fmt.Errorf("table %q: createdOn column %q is %s (%s), not a date or timestamp", t.Name, s.CreatedOn, t.Columns[i].Type, t.Columns[i].Kind)
		}
	} else {
		for _, c := range t.Columns {
			for _, n := range createdOnNames {
				if strings.EqualFold(c.Name, n) && isTemporal(c.Kind) && s.CreatedOn == "" {
					s.CreatedOn = c.Name
				}
			}
		}
	}
	if s.Mode == "" {
		if s.CreatedOn != "" {
			s.Mode = lakelink.ModeInPlace
		} else {
			s.Mode = lakelink.ModeAppendOnly
		}
	}
	return s, nil
}
