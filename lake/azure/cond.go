package azure

import (
	"context"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
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
	if err := l.checkWrite(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: create %q: %w", path, err)
	}
	w := l.newWriter(ctx, fmt.Sprintf("create %q", path), path)
	w.putBlob = true
	w.cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	return w, nil
}

// Version returns the current version (ETag) of the object at path; a
// missing object wraps lakelink.ErrNotExist.
func (l *Lake) Version(ctx context.Context, path string) (string, error) {
	if err := checkPath(path); err != nil {
		return "", err
	}
	props, err := l.blob(path).GetProperties(ctx, nil)
	if err != nil {
		return "", l.fail(fmt.Sprintf("stat %q", path), err)
	}
	if props.ETag == nil {
		return "", fmt.Errorf("azure: stat %q: the service sent no ETag", path)
	}
	return string(*props.ETag), nil
}

// CreateIfVersion is Create, but the write is conditional (If-Match): when
// the object at path no longer has the version Version returned, Close
// returns an error wrapping ErrChanged and nothing changes. It is how a
// lease is renewed, or model.json and the state record replaced, by
// compare-and-swap.
func (l *Lake) CreateIfVersion(ctx context.Context, path, version string) (io.WriteCloser, error) {
	if err := l.checkWrite(path); err != nil {
		return nil, err
	}
	if version == "" {
		return nil, fmt.Errorf("azure: create %q: empty version; use CreateIfAbsent for an object that must not exist", path)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: create %q: %w", path, err)
	}
	w := l.newWriter(ctx, fmt.Sprintf("create %q", path), path)
	w.putBlob = true
	w.cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(version))}}
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
	resp, err := l.blob(path).DownloadStream(ctx, nil)
	if err != nil {
		return nil, "", l.fail(fmt.Sprintf("open %q", path), err)
	}
	if isFolder(resp.Metadata) {
		resp.Body.Close()
		return nil, "", fmt.Errorf("azure: open %q: a folder, not an object: %w", path, lakelink.ErrNotExist)
	}
	if resp.ETag == nil {
		resp.Body.Close()
		return nil, "", fmt.Errorf("azure: open %q: the service sent no ETag", path)
	}
	// A broken download resumes only while the blob keeps this ETag.
	r := &reader{r: resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}), l: l, path: path}
	return r, string(*resp.ETag), nil
}
