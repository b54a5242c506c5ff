package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

// copyTable writes a table's initial copy before the stream starts, and
// records it in the state. A copy cut short by a crash starts again from
// scratch: its files are never named by the state until the copy is
// complete.
func (e *Exporter) copyTable(ctx context.Context, st *State, t *table) error {
	t.st.InitialSync = SyncInProgress
	if err := writeState(ctx, e.lake, st); err != nil {
		return err
	}
	if err := e.writeModel(ctx, st); err != nil {
		return err
	}
	if err := e.copyRows(ctx, t); err != nil {
		var ve copyValueError
		if errors.As(err, &ve) {
			return e.copyFailed(ctx, st, t, ve.err)
		}
		return err
	}
	if err := writeState(ctx, e.lake, st); err != nil {
		return err
	}
	return e.writeModel(ctx, st)
}

// copyValueError is a value the copy can't export: it stops the table, not
// the link.
type copyValueError struct{ err error }

func (c copyValueError) Error() string { return c.err.Error() }
func (c copyValueError) Unwrap() error { return c.err }

// copyRows writes t's initial copy: a consistent snapshot of its rows,
// routed to partitions, each partition file written whole, and the table
// metadata files. It records the result in t.st (columns, partitions, rows,
// copy position, initial sync completed) but writes neither the state nor
// model.json, and touches nothing outside the table's folder: a copy in
// the background (a table added to a running link) works on a private
// table while the stream goes on. A value it can't export is returned as
// a copyValueError.
func (e *Exporter) copyRows(ctx context.Context, t *table) (err error) {
	ts := t.st
	log := e.log.With(slog.String("table", ts.Source))
	ts.InitialSync = SyncInProgress
	// Files of an earlier copy that did not finish.
	objs, err := e.lake.List(ctx, ts.Folder+"/")
	if err != nil {
		return fmt.Errorf("copy %s: %w", ts.Source, err)
	}
	for _, o := range objs {
		if _, ok := livePartition(ts.Folder, o.Path); ok {
			if err := e.lake.Delete(ctx, o.Path); err != nil {
				return fmt.Errorf("copy %s: %w", ts.Source, err)
			}
		}
	}
	for name, p := range ts.Partitions {
		if len(p.Snapshots) == 0 {
			delete(ts.Partitions, name) // made by the copy that did not finish
			continue
		}
		// Kept by a resync: the copy refills it, or it snapshots as empty.
		p.Size, p.Rows, p.Changed = 0, 0, true
	}
	ts.Numbered = 0

	snap, err := e.src.Snapshot(ctx, e.cfg.Link, ts.Source)
	if err != nil {
		return fmt.Errorf("copy %s: %w", ts.Source, err)
	}
	defer snap.Close()
	def := snap.Table()
	fresh := len(ts.Columns) == 0
	if _, err := t.setDefinition(def); err != nil {
		return copyValueError{err}
	}
	if fresh {
		ts.Initial = len(ts.Columns)
	}
	log.Info("initial copy started", slog.String("position", snap.Position().String()))

	start := time.Now()
	now := lakelink.Now()
	modified := cdm.FormatSinkTime(now)
	pos := snap.Position()
	writers := map[string]*partWriter{}
	defer func() {
		for _, pw := range writers {
			pw.cancel()
			_ = pw.w.Close()
		}
	}()
	open := func(part string) (*partWriter, error) {
		if pw := writers[part]; pw != nil {
			return pw, nil
		}
		wctx, cancel := context.WithCancel(ctx)
		w, err := e.lake.Create(wctx, cdm.PartitionPath(ts.Folder, part))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("copy %s: %w", ts.Source, err)
		}
		pw := &partWriter{w: w, bw: bufio.NewWriterSize(w, 256<<10), cancel: cancel}
		writers[part] = pw
		return pw, nil
	}
	// finish makes a partition file complete and durable; it is
	// safe for concurrent use.
	finish := func(part string, pw *partWriter) error {
		defer pw.cancel()
		if err := pw.bw.Flush(); err != nil {
			_ = pw.w.Close()
			return fmt.Errorf("copy %s: %w", cdm.PartitionPath(ts.Folder, part), err)
		}
		if err := pw.w.Close(); err != nil {
			return fmt.Errorf("copy %s: %w", cdm.PartitionPath(ts.Folder, part), err)
		}
		return nil
	}
	record := func(part string, pw *partWriter) {
		p := ts.part(part)
		p.Size, p.Rows, p.Changed = pw.size, pw.rows, true
	}
	closePart := func(part string) error {
		pw := writers[part]
		delete(writers, part)
		if err := finish(part, pw); err != nil {
			return err
		}
		record(part, pw)
		return nil
	}

	var buf []byte
	var rows int64
	lastLog := time.Now()
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	nextBatch := batchesOf(rctx, snap)
	var batch rowBatch
	for {
		for len(batch.rows) == 0 {
			if batch.err == io.EOF {
				break
			}
			if batch.err != nil {
				return fmt.Errorf("copy %s: %w", ts.Source, batch.err)
			}
			var ok bool
			if batch, ok = nextBatch(); !ok {
				return fmt.Errorf("copy %s: %w", ts.Source, ctx.Err())
			}
		}
		if len(batch.rows) == 0 {
			break // io.EOF
		}
		row := batch.rows[0]
		batch.rows = batch.rows[1:]
		var part string
		buf, part, err = t.encodeCopied(buf[:0], row, modified, pos)
		if err != nil {
			return copyValueError{err}
		}
		pw, err := open(part)
		if err != nil {
			return err
		}
		if _, err := pw.Write(buf); err != nil {
			return fmt.Errorf("copy %s: %w", cdm.PartitionPath(ts.Folder, part), err)
		}
		pw.rows++
		rows++
		if ts.CreatedOn == "" && pw.rows >= cdm.RowsPerNumberedPartition {
			if err := closePart(part); err != nil {
				return err
			}
			ts.Numbered++
		}
		if rows%4096 == 0 {
			e.addCopied(4096)
			if time.Since(lastLog) >= 5*time.Second {
				log.Info("initial copy", slog.Int64("rows", rows), slog.Float64("rows_per_s", float64(rows)/time.Since(start).Seconds()))
				lastLog = time.Now()
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	e.addCopied(rows % 4096)
	// The partition files are finished together: their writes and syncs
	// overlap.
	parts := sortedKeys(writers)
	pws := make([]*partWriter, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		pws[i] = writers[part]
		delete(writers, part)
		wg.Go(func() { errs[i] = finish(part, pws[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, part := range parts {
		record(part, pws[i])
	}
	ts.Rows = rows
	ts.CopyPosition = pos
	ts.InitialSync = SyncCompleted
	ts.InitialSyncCompleted = lakelink.Now()
	ts.LastCommit = ts.InitialSyncCompleted
	if err := e.writeTableMeta(ctx, ts); err != nil {
		return err
	}
	d := time.Since(start)
	log.Info("initial copy done", slog.Int64("rows", rows), slog.Duration("took", d.Round(time.Millisecond)), slog.Float64("rows_per_s", float64(rows)/d.Seconds()))
	return nil
}

// encodeCopied appends the record of a row of the initial copy to dst and
// returns the partition it goes to. modified is SinkCreatedOn and
// SinkModifiedOn, pos the copy's position.
func (t *table) encodeCopied(dst []byte, row []lakelink.Value, modified string, pos lakelink.Position) ([]byte, string, error) {
	dst, err := t.encodeID(dst, row)
	if err != nil {
		return dst, "", err
	}
	idLen := len(dst)
	part, err := t.partitionOf(row, dst[:idLen])
	if err != nil {
		return dst, "", err
	}
	dst = append(dst, ',')
	dst = cdm.AppendString(dst, modified)
	dst = append(dst, ',')
	dst = cdm.AppendString(dst, modified)
	dst, err = t.encodeRest(dst, row, pos, false, dst[:idLen])
	return dst, part, err
}

// rowBatch is a run of snapshot rows, or the error that ended them.
type rowBatch struct {
	rows [][]lakelink.Value
	err  error
}

// batchSnapshot is a Snapshot that hands its rows over in batches, read
// and decoded ahead in goroutines of its own (source/postgres). NextBatch
// returns at least one row, or an error (io.EOF after the last row). The
// rows, and the values in them, are valid until the next call of
// NextBatch or Close: the snapshot then reuses their memory.
type batchSnapshot interface {
	NextBatch() ([][]lakelink.Value, error)
}

// batchesOf returns a function that returns the snapshot's next batch of
// rows (after an error, whose batch has no rows, it must not be called
// again); ok is false when ctx ended first. A row is valid until the next
// call. A batchSnapshot hands over its own batches; any other snapshot is
// read ahead in a goroutine (see readAhead).
func batchesOf(ctx context.Context, snap lakelink.Snapshot) func() (b rowBatch, ok bool) {
	if bs, ok := snap.(batchSnapshot); ok {
		return func() (rowBatch, bool) {
			if ctx.Err() != nil {
				return rowBatch{}, false
			}
			rows, err := bs.NextBatch()
			if err != nil && ctx.Err() != nil {
				return rowBatch{}, false // the snapshot stopped with ctx
			}
			return rowBatch{rows: rows, err: err}, true
		}
	}
	batches := readAhead(ctx, snap)
	return func() (rowBatch, bool) {
		b, ok := <-batches
		return b, ok
	}
}

// readAhead reads the snapshot in its own goroutine, so that reading the
// source and encoding and writing the lake use a core each. The channel
// is closed after a batch with an error (io.EOF at the end).
func readAhead(ctx context.Context, snap lakelink.Snapshot) <-chan rowBatch {
	out := make(chan rowBatch, 4)
	go func() {
		defer close(out)
		const size = 1024
		for {
			b := rowBatch{rows: make([][]lakelink.Value, 0, size)}
			for len(b.rows) < size {
				row, err := snap.Next()
				if err != nil {
					b.err = err
					break
				}
				b.rows = append(b.rows, append([]lakelink.Value(nil), row...))
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return out
}

// copyFailed stops a table whose copy met a value it can't export; the
// other tables go on.
func (e *Exporter) copyFailed(ctx context.Context, st *State, t *table, cause error) error {
	e.log.Error("table stopped", slog.String("table", t.st.Source), slog.Any("err", cause))
	t.st.Error = cause.Error() + fmt.Sprintf("; once the source is fixed, run lakelink resync --lake LAKE --table %s", t.st.Source)
	t.st.InitialSync = SyncFailed
	if err := writeState(ctx, e.lake, st); err != nil {
		return err
	}
	return e.writeModel(ctx, st)
}
