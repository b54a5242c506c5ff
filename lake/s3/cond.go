package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakelink/lakelink"
)

// ErrChanged is what a write conditional on an object's version fails
// with when the object has another version, or is gone: lakelink.ErrChanged.
var ErrChanged = lakelink.ErrChanged

// CreateIfAbsent is Create, but the write is conditional (If-None-Match:
// *): when an object is at path by the time Close runs, Close returns an
// error wrapping lakelink.ErrExist and nothing changes. Of racing writers,
// one wins. It is how a lease or a first state record is taken.
func (l *Lake) CreateIfAbsent(ctx context.Context, path string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: create %q: %w", path, err)
	}
	w := l.newWriter(ctx, "create", path)
	w.ifNoneMatch = aws.String("*")
	return w, nil
}

// Version returns the current version (ETag) of the object at path; a
// missing object wraps lakelink.ErrNotExist.
func (l *Lake) Version(ctx context.Context, path string) (string, error) {
	if err := checkPath(path); err != nil {
		return "", err
	}
	out, err := l.head(ctx, path)
	if err != nil {
		return "", l.fail("stat", path, err)
	}
	return aws.ToString(out.ETag), nil
}

// CreateIfVersion is Create, but the write is conditional (If-Match): when
// the object at path no longer has the version Version returned, Close
// returns an error wrapping ErrChanged and nothing changes. It is how a
// lease is renewed, or model.json and the state record replaced, by
// compare-and-swap.
func (l *Lake) CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if version == "" {
		return nil, fmt.Errorf("s3: create %q: empty version; use CreateIfAbsent for an object that must not exist", path)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: create %q: %w", path, err)
	}
	w := l.newWriter(ctx, "create", path)
	w.ifMatch = aws.String(version)
	return w, nil
}

// OpenVersion is Open, and the version (ETag) of the object it reads, from
// one request: the bytes read are those of that version. A missing object
// wraps lakelink.ErrNotExist. It is how a lease is read before a
// compare-and-swap.
func (l *Lake) OpenVersion(ctx context.Context, path string) (io.ReadCloser, string, error) {
	if err := checkPath(path); err != nil {
		return nil, "", err
	}
	out, err := l.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.bucket, Key: aws.String(l.key(path))})
	if err != nil {
		return nil, "", l.fail("open", path, err)
	}
	if aws.ToString(out.ETag) == "" {
		out.Body.Close()
		return nil, "", fmt.Errorf("s3: open %q: the server sent no ETag", path)
	}
	return out.Body, aws.ToString(out.ETag), nil
}
