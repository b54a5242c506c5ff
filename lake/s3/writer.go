package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/lakelink/lakelink"
)

// writer is an object being written: bytes gather in buf up to the part
// size; a full buf goes up as a part of a multipart upload, started then.
// Close puts a small object with one PutObject, or uploads the last part
// and completes the upload. Until Close returns nil, nothing is visible.
type writer struct {
	l        *Lake
	ctx      context.Context
	verb     string // create, append, copy to: for errors
	op       string // verb "path", for errors
	path     string
	key      string
	buf      []byte // bytes not uploaded yet; at most the part size
	uploadID string // of the multipart upload, once started
	parts    []types.CompletedPart
	err      error           // the first error; it sticks
	pending  chan partResult // the part in flight, or nil
	spare    []byte          // the buffer of the last part uploaded, for the next
	// ifNoneMatch and ifMatch make Close conditional: "*" for no object
	// there, or the ETag the object must still have.
	ifNoneMatch, ifMatch *string
	closed               bool
}

func (l *Lake) newWriter(ctx context.Context, verb, path string) *writer {
	return &writer{l: l, ctx: ctx, verb: verb, op: fmt.Sprintf("%s %q", verb, path), path: path, key: l.key(path)}
}

// startUpload returns a writer with its multipart upload started.
func (l *Lake) startUpload(ctx context.Context, verb, path string) (*writer, error) {
	w := l.newWriter(ctx, verb, path)
	if err := w.start(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *writer) start() error {
	out, err := w.l.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{Bucket: &w.l.bucket, Key: &w.key})
	if err != nil {
		return w.l.fail(w.verb+": start upload of", w.path, err)
	}
	w.uploadID = aws.ToString(out.UploadId)
	return nil
}

// partSize is the size of the next part: the lake's, doubled after every
// thousand parts up to 8 times, so that one upload can hold 10,000 parts
// of objects far larger than 10,000 times the part size.
func (w *writer) partSize() int {
	n := w.l.partSize << min(len(w.parts)/1000, 3)
	return int(min(n, MaxPartSize))
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("s3: %s: write after Close", w.op)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.setErr(err)
		return 0, w.err
	}
	done := 0
	for done < len(p) {
		size := w.partSize()
		n := min(len(p)-done, size-len(w.buf))
		if need := len(w.buf) + n; need > cap(w.buf) && need > 1<<20 {
			// Past 1 MiB the object will likely fill a part: take a whole
			// part's buffer at once rather than grow by doubling.
			w.buf = append(make([]byte, 0, size), w.buf...)
		}
		w.buf = append(w.buf, p[done:done+n]...)
		done += n
		if len(w.buf) >= size {
			if err := w.flush(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// partResult is what the upload of one part ends with.
type partResult struct {
	part types.CompletedPart
	buf  []byte // the part's buffer, free again
	err  error
}

// flush starts uploading buf as the next part, in the background, starting
// the multipart upload if need be. At most one part is in flight: flush
// first waits for the one before, so a writer holds at most two parts.
func (w *writer) flush() error {
	if w.uploadID == "" {
		if err := w.start(); err != nil {
			w.err = err
			return err
		}
	}
	if err := w.wait(); err != nil {
		return err
	}
	num := int32(len(w.parts) + 1)
	if num > maxParts {
		w.setErr(fmt.Errorf("object larger than %d parts", maxParts))
		return w.err
	}
	ctx, client, in := w.ctx, w.l.client, &s3.UploadPartInput{
		Bucket: &w.l.bucket, Key: &w.key, UploadId: aws.String(w.uploadID), PartNumber: aws.Int32(num),
		Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
	}
	done, buf := make(chan partResult, 1), w.buf
	go func() {
		out, err := client.UploadPart(ctx, in)
		r := partResult{buf: buf[:0], err: err}
		if err == nil {
			r.part = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}
		}
		done <- r
	}()
	w.pending = done
	w.buf, w.spare = w.spare, nil
	return nil
}

// wait waits for the part in flight, if any, and records it, or the
// writer's error.
func (w *writer) wait() error {
	if w.pending == nil {
		return nil
	}
	r := <-w.pending
	w.pending = nil
	w.spare = r.buf
	if r.err != nil {
		w.err = w.l.fail(w.verb+": upload part of", w.path, r.err)
		w.abort()
		return w.err
	}
	w.parts = append(w.parts, r.part)
	return nil
}

// setErr records err as the writer's error, with its operation, and aborts
// the upload.
func (w *writer) setErr(err error) {
	w.err = fmt.Errorf("s3: %s: %w", w.op, err)
	w.abort()
}

// abort drops the multipart upload, if any, so that its parts don't linger
// (and cost). It runs even when ctx is canceled.
func (w *writer) abort() {
	if w.pending != nil {
		<-w.pending // its result no longer matters, but it must not land after the abort
		w.pending = nil
	}
	w.buf, w.spare = nil, nil
	if w.uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	// An abort that fails leaves parts that a bucket lifecycle rule for
	// incomplete uploads removes; the object itself was never visible.
	w.l.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &w.l.bucket, Key: &w.key, UploadId: &w.uploadID})
	w.uploadID = ""
}

// Close makes the object visible, whole, or aborts and returns why not.
func (w *writer) Close() (err error) {
	if w.closed {
		return fmt.Errorf("s3: %s: Close called twice", w.op)
	}
	w.closed = true
	if w.err != nil {
		w.abort()
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.abort()
		return fmt.Errorf("s3: %s abandoned: %w", w.op, err)
	}
	if w.uploadID == "" {
		_, err := w.l.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket: &w.l.bucket, Key: &w.key, Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
			IfNoneMatch: w.ifNoneMatch, IfMatch: w.ifMatch,
		})
		w.buf = nil
		if err != nil {
			return w.failClose(err)
		}
		return nil
	}
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	if len(w.buf) > 0 || len(w.parts) == 0 && w.pending == nil {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if err := w.wait(); err != nil {
		return err
	}
	_, err = w.l.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &w.l.bucket, Key: &w.key, UploadId: &w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
		IfNoneMatch:     w.ifNoneMatch, IfMatch: w.ifMatch,
	})
	if err != nil {
		return w.failClose(err)
	}
	w.uploadID = ""
	w.buf, w.spare = nil, nil
	return nil
}

// failClose is the error of a final PutObject or CompleteMultipartUpload.
func (w *writer) failClose(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("s3: %s abandoned: %w", w.op, err)
	case w.ifNoneMatch != nil && isConditionFailed(err):
		return fmt.Errorf("s3: %s: an object is there already: %w", w.op, lakelink.ErrExist)
	case w.ifMatch != nil && isConditionFailed(err):
		return fmt.Errorf("s3: %s: the object changed since version %s: %w", w.op, aws.ToString(w.ifMatch), ErrChanged)
	case w.ifMatch != nil && isNotFound(err):
		return fmt.Errorf("s3: %s: the object at version %s is gone: %w", w.op, aws.ToString(w.ifMatch), ErrChanged)
	}
	return w.l.fail(w.verb, w.path, err)
}

// isConditionFailed reports whether err is S3 refusing a conditional write:
// 412, or 409 when a concurrent conditional write was in flight.
func isConditionFailed(err error) bool {
	switch errorCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return httpStatus(err) == 412
}
