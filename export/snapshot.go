package export

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// snapshot copies every partition changed since its last snapshot to an
// immutable file under Snapshot/, points model.json at the newest copy of
// each partition, and then deletes generations past the retention. A file
// model.json names is never deleted: model.json is replaced before the old
// generations go.
func (e *Exporter) snapshot(ctx context.Context, st *State, tables map[string]*table) error {
	now := lakelink.Now()
	copies := 0
	for _, name := range sortedKeys(tables) {
		ts := tables[name].st
		if ts.InitialSync != SyncCompleted {
			continue
		}
		for _, p := range ts.partitionNames() {
			ps := ts.Partitions[p]
			if !ps.Changed && len(ps.Snapshots) > 0 {
				continue
			}
			sec := now.Unix()
			if n := len(ps.Snapshots); n > 0 && ps.Snapshots[n-1] >= sec {
				sec = ps.Snapshots[n-1] + 1 // snapshot names must stay unique
			}
			src := cdm.PartitionPath(ts.Folder, p)
			dst := cdm.SnapshotPath(ts.Folder, p, time.Unix(sec, 0))
			if err := copyObject(ctx, e.lake, src, dst, ps.Size); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			ps.Snapshots = append(ps.Snapshots, sec)
			ps.Changed = false
			copies++
		}
	}
	// The copies may be cut short by shutdown (recovery deletes copies the
	// state does not name); from here on the snapshot is finished even when
	// shutdown begins meanwhile, so that retention is not left behind.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	st.Snapshot = now
	if err := writeState(ctx, e.lake, st); err != nil {
		return err
	}
	if err := e.writeModel(ctx, st); err != nil {
		return err
	}
	// Retention: model.json now names only the newest generation.
	deleted := 0
	for _, name := range sortedKeys(tables) {
		ts := tables[name].st
		for _, p := range ts.partitionNames() {
			ps := ts.Partitions[p]
			for len(ps.Snapshots) > e.cfg.SnapshotRetention {
				old := cdm.SnapshotPath(ts.Folder, p, time.Unix(ps.Snapshots[0], 0))
				if err := e.lake.Delete(ctx, old); err != nil {
					return fmt.Errorf("snapshot retention: %w", err)
				}
				ps.Snapshots = ps.Snapshots[1:]
				deleted++
			}
		}
	}
	if deleted > 0 {
		if err := writeState(ctx, e.lake, st); err != nil {
			return err
		}
	}
	e.noteSnapshot(now)
	e.log.Info("snapshot taken", slog.Int("files", copies), slog.Int("expired", deleted))
	return nil
}

// buildEntity turns a table's state into its model.json entity, with
// partitions pointing at their newest snapshot.
func (e *Exporter) buildEntity(ts *TableState) cdm.Entity {
	spec := cdm.EntitySpec{
		Folder:               ts.Folder,
		Attributes:           ts.attributes(),
		Granularity:          ts.granularity(),
		InitialSyncState:     ts.InitialSync,
		InitialSyncCompleted: ts.InitialSyncCompleted,
		WriteMode:            ts.writeMode(),
	}
	for _, p := range ts.partitionNames() {
		ps := ts.Partitions[p]
		if len(ps.Snapshots) == 0 {
			continue
		}
		t := time.Unix(ps.Snapshots[len(ps.Snapshots)-1], 0).UTC()
		spec.Partitions = append(spec.Partitions, cdm.PartitionSpec{
			Name:        p,
			Location:    e.lake.URL(cdm.SnapshotPath(ts.Folder, p, t)),
			RefreshTime: t,
			Year:        partitionYear(p),
		})
	}
	return cdm.BuildEntity(spec)
}

// writeModel replaces model.json with what the state describes. Tables
// whose copy has not produced columns yet are left out.
func (e *Exporter) writeModel(ctx context.Context, st *State) error {
	var entities []cdm.Entity
	for _, ts := range sortedTables(st) {
		if len(ts.Columns) == 0 {
			continue
		}
		entities = append(entities, e.buildEntity(ts))
	}
	if err := e.writeOptionsets(ctx, st); err != nil {
		return err
	}
	data, err := cdm.NewModel(lakelink.Now(), entities).Marshal()
	if err != nil {
		return fmt.Errorf("write model.json: %w", err)
	}
	return writeObject(ctx, e.lake, cdm.ModelPath, data)
}

// writeOptionsets writes OptionsetMetadata.csv, the labels of the enum
// columns of every table, when it differs from what this process last
// wrote (the first time: when there are labels at all).
func (e *Exporter) writeOptionsets(ctx context.Context, st *State) error {
	var list []cdm.OptionsetEntity
	for _, ts := range sortedTables(st) {
		oe := cdm.OptionsetEntity{Folder: ts.Folder}
		for _, c := range ts.Columns {
			if len(c.Options) > 0 {
				oe.Columns = append(oe.Columns, c.column())
			}
		}
		if len(oe.Columns) > 0 {
			list = append(list, oe)
		}
	}
	data, err := cdm.OptionsetMetadata(list)
	if err != nil {
		return fmt.Errorf("write %s: %w", cdm.OptionsetPath, err)
	}
	if bytes.Equal(data, e.optionsets) {
		return nil // unchanged, or still no labels at all (both nil)
	}
	if err := writeObject(ctx, e.lake, cdm.OptionsetPath, data); err != nil {
		return err
	}
	e.optionsets = append([]byte{}, data...)
	return nil
}

// writeTableMeta writes a table's own model.json and EntityMetadata.json
// under Microsoft.Athena.TrickleFeedService.
func (e *Exporter) writeTableMeta(ctx context.Context, ts *TableState) error {
	if len(ts.Columns) == 0 {
		return nil
	}
	data, err := cdm.NewModel(lakelink.Now(), []cdm.Entity{e.buildEntity(ts)}).Marshal()
	if err != nil {
		return fmt.Errorf("write %s: %w", cdm.EntityModelPath(ts.Folder), err)
	}
	if err := writeObject(ctx, e.lake, cdm.EntityModelPath(ts.Folder), data); err != nil {
		return err
	}
	cols := make([]lakelink.Column, len(ts.Columns))
	for i, c := range ts.Columns {
		cols[i] = c.column()
	}
	meta, err := cdm.EntityMetadata(ts.Folder, cols)
	if err != nil {
		return fmt.Errorf("write %s: %w", cdm.EntityMetadataPath(ts.Folder), err)
	}
	return writeObject(ctx, e.lake, cdm.EntityMetadataPath(ts.Folder), meta)
}
