package azure

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/lakelink/lakelink"
)

// writer writes one blob: it buffers up to BlockSize bytes, stages each
// full buffer as a block, and at Close commits kept + staged blocks (or, for
// a Create that never filled a block, puts the blob in one request).
type writer struct {
	l    *Lake
	ctx  context.Context
	what string // the operation, for errors: create "path"
	bb   *blockblob.Client

	kept    []string               // committed blocks to keep, in order (Append)
	ids     []string               // blocks staged by this writer, in order
	nonce   []byte                 // random start of this writer's block IDs
	next    uint64                 // counter, the end of the next block ID
	buf     []byte                 // bytes not yet staged
	cond    *blob.AccessConditions // on the commit
	putBlob bool                   // may put the blob whole when nothing is staged
	err     error                  // the first error; it sticks
	closed  bool
}

func (l *Lake) newWriter(ctx context.Context, what, path string) *writer {
	w := &writer{l: l, ctx: ctx, what: what, bb: l.blob(path)}
	w.setIDLen(idLen)
	return w
}

// setIDLen makes the writer's block IDs n bytes long (all block IDs of a
// blob must have one length).
func (w *writer) setIDLen(n int) {
	w.nonce = make([]byte, n-8)
	rand.Read(w.nonce)
}

// newID returns a new base64 block ID, unique to this writer.
func (w *writer) newID() string {
	b := binary.BigEndian.AppendUint64(append([]byte(nil), w.nonce...), w.next)
	w.next++
	return base64.StdEncoding.EncodeToString(b)
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("azure: %s: write after Close", w.what)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("azure: %s: %w", w.what, err)
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == BlockSize {
			if err := w.stage(); err != nil {
				w.err = err
				return n, err
			}
		}
		m := min(len(p), BlockSize-len(w.buf))
		if w.buf == nil && (len(p) >= BlockSize || len(w.ids) > 0) {
			w.buf = make([]byte, 0, BlockSize)
		}
		w.buf = append(w.buf, p[:m]...)
		p = p[m:]
		n += m
	}
	return n, nil
}

// stage stages the buffered bytes as one block.
func (w *writer) stage() error {
	if len(w.kept)+len(w.ids)+1 > MaxBlocks {
		return fmt.Errorf("azure: %s: the blob would have more than %d blocks: %w", w.what, MaxBlocks, ErrTooManyBlocks)
	}
	id := w.newID()
	if _, err := w.bb.StageBlock(w.ctx, id, body(w.buf), nil); err != nil {
		return w.l.fail(w.what+": stage block", err)
	}
	w.ids = append(w.ids, id)
	w.buf = w.buf[:0]
	return nil
}

// Close commits the blob, or returns why not; a canceled ctx commits
// nothing. Blocks staged but not committed are discarded by Azure at the
// blob's next commit, or after a week.
func (w *writer) Close() error {
	if w.closed {
		return fmt.Errorf("azure: %s: Close called twice", w.what)
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("azure: %s abandoned: %w", w.what, err)
	}
	if w.putBlob && len(w.ids) == 0 {
		_, err := w.bb.Upload(w.ctx, body(w.buf), &blockblob.UploadOptions{AccessConditions: w.cond})
		w.buf = nil
		if err != nil {
			return w.commitError(err)
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.stage(); err != nil {
			return err
		}
	}
	w.buf = nil
	list := append(w.kept[:len(w.kept):len(w.kept)], w.ids...)
	if _, err := w.bb.CommitBlockList(w.ctx, list, &blockblob.CommitBlockListOptions{AccessConditions: w.cond}); err != nil {
		return w.commitError(err)
	}
	return nil
}

func (w *writer) commitError(err error) error {
	e := w.l.fail(w.what, err)
	var mac *blob.ModifiedAccessConditions
	if w.cond != nil {
		mac = w.cond.ModifiedAccessConditions
	}
	switch {
	case mac != nil && mac.IfNoneMatch != nil && bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return fmt.Errorf("%w: an object is there already: %w", e, lakelink.ErrExist)
	case mac != nil && mac.IfMatch != nil && bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobNotFound):
		return fmt.Errorf("%w: the object changed since its version was read: %w", e, ErrChanged)
	case bloberror.HasCode(err, bloberror.InvalidBlockList):
		return fmt.Errorf("%w: the blob was committed by another writer while this one staged its blocks: %w", e, ErrChanged)
	}
	return e
}

// Append opens the object at path for writing after its first size bytes.
// See lakelink.Appender.
//
// It reads the blob's committed block list and keeps the blocks that lie
// wholly within the first size bytes; if size falls inside a block, that
// block's first bytes are staged again as a new block (server-side with an
// account key, else read and re-sent: at most one block's bytes). A last
// kept block under 1 MiB is read back into the buffer instead, so that it
// and the new bytes make one block. New bytes are staged as blocks of
// BlockSize, and Close commits the new list, on condition that the blob has
// not changed since Append read it (else the error wraps ErrChanged). A
// missing object is created at size 0, on condition that it is still
// missing at Close. A commit that would exceed MaxBlocks fails with
// ErrTooManyBlocks.
func (l *Lake) Append(ctx context.Context, path string, size int64) (_ io.WriteCloser, err error) {
	if err := l.checkWrite(path); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("azure: append %q at %d: negative size", path, size)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: append %q: %w", path, err)
	}
	what := fmt.Sprintf("append %q", path)
	w := l.newWriter(ctx, what, path)
	// A blob with only uncommitted blocks has a block list but no
	// properties: it is missing.
	props, err := w.bb.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		if size > 0 {
			return nil, fmt.Errorf("azure: append %q at %d: the object is missing: %w", path, size, lakelink.ErrNotExist)
		}
		w.cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
		return w, nil
	}
	if err != nil {
		return nil, l.fail(what, err)
	}
	if isFolder(props.Metadata) {
		return nil, fmt.Errorf("azure: %s: a folder, not an object", what)
	}
	if props.BlobType != nil && *props.BlobType != blob.BlobTypeBlockBlob {
		return nil, fmt.Errorf("azure: %s: a %s blob; lakelink appends to block blobs only", what, *props.BlobType)
	}
	list, err := w.bb.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		return nil, l.fail(what, err)
	}
	if props.ETag == nil || list.ETag == nil || *props.ETag != *list.ETag {
		return nil, fmt.Errorf("azure: %s: the blob changed while its block list was read; try again: %w", what, lakelink.ErrTransient)
	}
	etag := *list.ETag
	w.cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}
	total := deref(props.ContentLength)
	if total < size {
		return nil, fmt.Errorf("azure: append %q at %d: the object has only %d bytes, so the lake lost committed bytes", path, size, total)
	}
	// Keep the blocks within the first size bytes; off is where they end.
	var off, last int64
	for i, b := range list.CommittedBlocks {
		if b == nil || b.Name == nil || b.Size == nil {
			return nil, fmt.Errorf("azure: %s: block %d of the list has no name or size", what, i)
		}
		if i == 0 {
			raw, err := base64.StdEncoding.DecodeString(*b.Name)
			if err != nil || len(raw) < 16 {
				return nil, fmt.Errorf("azure: %s: the blob's block IDs are %d bytes long, too short for lakelink to add its own; rewrite the object", what, len(raw))
			}
			w.setIDLen(len(raw))
		}
		if off+*b.Size > size {
			break
		}
		w.kept = append(w.kept, *b.Name)
		off += *b.Size
		last = *b.Size
	}
	// Each Append adds a block, and a blob has at most MaxBlocks: a small
	// last block is read back and staged again with the new bytes, so that
	// blocks grow to at least coalesceBelow.
	if n := len(w.kept); n > 0 && last < coalesceBelow {
		w.kept = w.kept[:n-1]
		off -= last
	}
	if len(w.kept) > MaxBlocks-1 {
		return nil, fmt.Errorf("azure: %s: the blob has %d blocks, Azure's limit: %w", what, len(w.kept), ErrTooManyBlocks)
	}
	// A blob put whole has no blocks; a cut inside a block leaves a piece.
	// A small piece is read into the buffer, to share a block with the new
	// bytes.
	if off < size {
		if err := l.stageRange(ctx, w, w.bb, etag, off, size-off, size-off < coalesceBelow); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Copy makes dst a copy of the first n bytes of src, committed at once
// when complete. With an account key the service copies the bytes (Put
// Block From URL, with a short-lived read-only SAS of src, in blocks of up
// to 100 MiB); otherwise they are streamed through lakelink, one block in
// memory at a time. See lakelink.Copier.
func (l *Lake) Copy(ctx context.Context, src, dst string, n int64) error {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := l.checkWrite(dst); err != nil {
		return err
	}
	what := fmt.Sprintf("copy %q to %q", src, dst)
	if n < 0 {
		return fmt.Errorf("azure: %s: negative length %d", what, n)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azure: %s: %w", what, err)
	}
	sb := l.blob(src)
	props, err := sb.GetProperties(ctx, nil)
	if err != nil {
		return l.fail(what, err)
	}
	if isFolder(props.Metadata) {
		return fmt.Errorf("azure: %s: source is a folder, not an object: %w", what, lakelink.ErrNotExist)
	}
	if size := deref(props.ContentLength); size < n {
		return fmt.Errorf("azure: %s: source has %d bytes, fewer than the %d to copy", what, size, n)
	}
	if props.ETag == nil {
		return fmt.Errorf("azure: %s: the service sent no ETag", what)
	}
	w := l.newWriter(ctx, what, dst)
	if n > 0 {
		if err := l.stageRange(ctx, w, sb, *props.ETag, 0, n, false); err != nil {
			return err
		}
	}
	return w.Close()
}

// forceStream makes stageRange read and re-send bytes even with an account
// key; tests set it to cover that path.
var forceStream = false

// stageRange adds the bytes [off, off+n) of the blob src, as it is at etag,
// to w: staged server-side when the lake signs with an account key and
// stream is false, else read and written through w. Bytes read may stay in
// w's buffer.
func (l *Lake) stageRange(ctx context.Context, w *writer, src *blockblob.Client, etag azcore.ETag, off, n int64, stream bool) error {
	if l.shared && !stream && !forceStream {
		sasURL, err := src.BlobClient().GetSASURL(sas.BlobPermissions{Read: true}, time.Now().Add(2*time.Hour),
			&blob.GetSASURLOptions{StartTime: to.Ptr(time.Now().Add(-15 * time.Minute))})
		if err != nil {
			return fmt.Errorf("azure: %s: make a SAS for the source: %w", w.what, err)
		}
		for end := off + n; off < end; {
			m := min(int64(copyBlock), end-off)
			if len(w.kept)+len(w.ids)+1 > MaxBlocks {
				return fmt.Errorf("azure: %s: the blob would have more than %d blocks: %w", w.what, MaxBlocks, ErrTooManyBlocks)
			}
			id := w.newID()
			_, err := w.bb.StageBlockFromURL(ctx, id, sasURL, &blockblob.StageBlockFromURLOptions{
				Range:                          blob.HTTPRange{Offset: off, Count: m},
				SourceModifiedAccessConditions: &blob.SourceModifiedAccessConditions{SourceIfMatch: &etag},
			})
			if err != nil {
				return w.l.fail(w.what+": stage block from URL", err)
			}
			w.ids = append(w.ids, id)
			off += m
		}
		return nil
	}
	resp, err := src.DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range:            blob.HTTPRange{Offset: off, Count: n},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}},
	})
	if err != nil {
		return l.fail(w.what+": read the source", err)
	}
	r := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	defer r.Close()
	m, err := io.Copy(w, r)
	if err != nil {
		var le *lakeError
		if !errors.As(err, &le) {
			err = l.fail(w.what+": read the source", err)
		}
		return err
	}
	if m != n {
		return fmt.Errorf("azure: %s: the source gave %d bytes, not %d", w.what, m, n)
	}
	return nil
}
