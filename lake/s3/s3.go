// Package s3 is the lake in an S3 bucket (AWS, or an S3-compatible server),
// under an optional prefix, over github.com/aws/aws-sdk-go-v2/service/s3.
//
// Objects become visible only when complete: a small object is one
// PutObject at Close, a large one a multipart upload that Close completes
// and a canceled or failed write aborts. Append composes the new object
// from the old one by server-side part copy (UploadPartCopy) when the part
// kept is at least MinPartSize, and rewrites the object otherwise; Copy is
// a server-side CopyObject, or a part copy of a byte range.
//
// Probe objects, named .lakelink-probe-<random>, are written and deleted by
// Open; List skips one left behind, and paths of that name are refused.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/lakelink/lakelink"
)

// Sizes of parts.
const (
	// MinPartSize is the smallest part S3 takes in a multipart upload, but
	// for the last: an Append keeping fewer bytes rewrites the object.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part, uploaded or copied.
	MaxPartSize = 5 << 30
	// DefaultPartSize is the part size of uploads, and the most a writer
	// holds in memory.
	DefaultPartSize = 8 << 20
	// maxParts is how many parts one multipart upload may have.
	maxParts = 10000
)

// listPageSize is how many objects List asks for per page; nil leaves it
// to the server (1,000 on AWS). Tests make it small.
var listPageSize *int32

const (
	probePrefix  = ".lakelink-probe-"
	abortTimeout = 30 * time.Second
)

// Lake is a lake in an S3 bucket, below an optional prefix. It is safe for
// concurrent use.
type Lake struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int64
	desc     string // for String: no credentials
}

var (
	_ lakelink.Lake     = (*Lake)(nil)
	_ lakelink.Appender = (*Lake)(nil)
	_ lakelink.Copier   = (*Lake)(nil)
)

// newClient returns an S3 client for cfg, with the SDK's credential chain
// unless cfg has Credentials.
func newClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	if err := checkBucket(cfg.Bucket); err != nil {
		return nil, err
	}
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, err
		}
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if ac.Region == "" {
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("s3: no region for bucket %q; add ?region=REGION to the lake URL or set AWS_REGION", cfg.Bucket)
		}
		ac.Region = "us-east-1"
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Checksums only where S3 requires them: the default (CRC32 on
		// every upload, aws-chunked bodies) is not taken by every
		// S3-compatible server, and mixes badly with part copies.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// Open returns the lake that cfg names. It probes the bucket with a small
// write, list and delete under the prefix (only a list when cfg.ReadOnly),
// so that a wrong bucket name, a wrong endpoint, missing or wrong
// credentials or a missing permission fail here, with an error that says
// which, rather than at the first commit. Open does not create the bucket.
func Open(ctx context.Context, cfg Config) (*Lake, error) {
	if cfg.Prefix != "" {
		if err := lakelink.CheckPath(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize {
		return nil, fmt.Errorf("s3: part size %d: give %d to %d bytes", cfg.PartSize, MinPartSize, MaxPartSize)
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Lake{client: client, bucket: cfg.Bucket, partSize: cfg.PartSize}
	if cfg.Prefix != "" {
		l.prefix = cfg.Prefix + "/"
	}
	l.desc = "s3://" + cfg.Bucket + "/" + cfg.Prefix
	if cfg.Endpoint != "" {
		l.desc += " at " + redactEndpoint(cfg.Endpoint)
	}
	if err := l.probe(ctx, cfg.ReadOnly); err != nil {
		return nil, err
	}
	return l, nil
}

// probe writes, lists and deletes a small object under the prefix; with
// readOnly it only lists.
func (l *Lake) probe(ctx context.Context, readOnly bool) error {
	if readOnly {
		_, err := l.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &l.bucket, Prefix: aws.String(l.prefix), MaxKeys: aws.Int32(1)})
		if err != nil {
			return l.probeError("list objects", "s3:ListBucket", err)
		}
		return nil
	}
	key := l.prefix + probePrefix + strconv.FormatUint(rand.Uint64(), 36)
	_, err := l.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &l.bucket, Key: &key, Body: strings.NewReader("lakelink write probe\n"),
	})
	if err != nil {
		return l.probeError("write a probe object", "s3:PutObject", err)
	}
	_, err = l.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &l.bucket, Prefix: aws.String(l.prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		l.client.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: &l.bucket, Key: &key})
		return l.probeError("list objects", "s3:ListBucket", err)
	}
	if _, err := l.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &l.bucket, Key: &key}); err != nil {
		return l.probeError("delete a probe object", "s3:DeleteObject", err)
	}
	return nil
}

// probeError says what a failed probe means and what to fix.
func (l *Lake) probeError(what, perm string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3: open %s: %w", l, err)
	}
	var hint string
	switch code := errorCode(err); {
	case code == "NoSuchBucket":
		hint = fmt.Sprintf("bucket %q does not exist; create it, or fix the bucket name (and region) in the lake URL", l.bucket)
	case code == "InvalidAccessKeyId" || code == "XAdminUserNotFound":
		hint = "the access key ID is not known to the server; check AWS_ACCESS_KEY_ID or the profile"
	case code == "SignatureDoesNotMatch":
		hint = "the secret key does not match the access key ID; check AWS_SECRET_ACCESS_KEY or the profile"
	case code == "AccessDenied" || code == "Forbidden" || httpStatus(err) == 403:
		hint = fmt.Sprintf("access denied: the credentials need %s (and s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject) on %s", perm, l.where())
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException":
		hint = "the bucket is in another region; add ?region=REGION to the lake URL"
	case strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role found"):
		hint = "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an IAM role applies"
	case httpStatus(err) == 0:
		hint = "the S3 service could not be reached; check the endpoint and the network"
	default:
		hint = "check the bucket, region, endpoint and the credentials' permissions"
	}
	return fmt.Errorf("s3: open %s: can't %s: %s: %w", l, what, hint, err)
}

// where names the lake's location for messages: s3://bucket/prefix.
func (l *Lake) where() string { return "s3://" + l.bucket + "/" + l.prefix }

// String describes the lake, s3://BUCKET/PREFIX and the endpoint when not
// AWS's, without credentials.
func (l *Lake) String() string { return l.desc }

// URL returns s3://BUCKET/PREFIX/path, with the path percent-escaped.
func (l *Lake) URL(path string) string {
	return (&url.URL{Scheme: "s3", Host: l.bucket, Path: "/" + l.prefix + path}).String()
}

// Close releases the lake; the client holds only idle connections.
func (l *Lake) Close() error { return nil }

// key returns the object key of a lake path.
func (l *Lake) key(path string) string { return l.prefix + path }

// Create starts writing the object at path. Bytes are held in memory up to
// the part size; a small object is uploaded at Close with one PutObject, a
// larger one goes up as a multipart upload that Close completes, one part
// in flight while the next fills (so a writer holds at most two parts). Canceling
// ctx before Close, or a failed Write, aborts the upload: nothing changes.
// See lakelink.Lake.
func (l *Lake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: create %q: %w", path, err)
	}
	return l.newWriter(ctx, "create", path), nil
}

// Open reads the object at path, streaming. See lakelink.Lake.
func (l *Lake) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	out, err := l.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.bucket, Key: aws.String(l.key(path))})
	if err != nil {
		return nil, l.fail("open", path, err)
	}
	return out.Body, nil
}

// Stat describes the object at path. See lakelink.Lake.
func (l *Lake) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	if err := checkPath(path); err != nil {
		return lakelink.ObjectInfo{}, err
	}
	out, err := l.head(ctx, path)
	if err != nil {
		return lakelink.ObjectInfo{}, l.fail("stat", path, err)
	}
	return lakelink.ObjectInfo{Path: path, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

func (l *Lake) head(ctx context.Context, path string) (*s3.HeadObjectOutput, error) {
	return l.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &l.bucket, Key: aws.String(l.key(path))})
}

// List returns every object whose path starts with prefix, sorted by path,
// reading as many pages as there are. See lakelink.Lake.
func (l *Lake) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var out []lakelink.ObjectInfo
	pages := s3.NewListObjectsV2Paginator(l.client, &s3.ListObjectsV2Input{Bucket: &l.bucket, Prefix: aws.String(l.key(prefix)), MaxKeys: listPageSize})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, l.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			p, ok := strings.CutPrefix(aws.ToString(o.Key), l.prefix)
			if !ok || p == "" || strings.HasSuffix(p, "/") || isProbe(p) {
				continue // a folder marker, or a probe a crash left
			}
			out = append(out, lakelink.ObjectInfo{Path: p, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	// S3 lists in UTF-8 byte order, which is Go's; some servers don't.
	slices.SortFunc(out, func(a, b lakelink.ObjectInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Delete removes the object at path; a missing object is not an error. See
// lakelink.Lake.
func (l *Lake) Delete(ctx context.Context, path string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	_, err := l.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &l.bucket, Key: aws.String(l.key(path))})
	if err != nil && !isNotFound(err) {
		return l.fail("delete", path, err)
	}
	return nil
}

// fail wraps an SDK error with the operation and path, mapping a missing
// object to lakelink.ErrNotExist and a passing failure to
// lakelink.ErrTransient.
func (l *Lake) fail(op, path string, err error) error {
	switch {
	case isNotFound(err):
		return fmt.Errorf("s3: %s %q: no such object in %s: %w", op, path, l.where(), lakelink.ErrNotExist)
	case errorCode(err) == "NoSuchBucket":
		return fmt.Errorf("s3: %s %q: bucket %q is gone: %w", op, path, l.bucket, err)
	case isTransient(err):
		return fmt.Errorf("s3: %s %q: %w (%w)", op, path, err, lakelink.ErrTransient)
	}
	return fmt.Errorf("s3: %s %q: %w", op, path, err)
}

// checkPath refuses a path no lake takes, and the probes' names.
func checkPath(p string) error {
	if err := lakelink.CheckPath(p); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	if isProbe(p) {
		return fmt.Errorf("s3: bad object path %q: names starting with %q are kept for probes", p, probePrefix)
	}
	return nil
}

func checkPrefix(p string) error {
	if err := lakelink.CheckPrefix(p); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	return nil
}

// isProbe reports whether the last element of a path is a probe's name.
func isProbe(p string) bool {
	return strings.HasPrefix(p[strings.LastIndexByte(p, '/')+1:], probePrefix)
}

// putBytes uploads b as the whole object at key.
func (l *Lake) putBytes(ctx context.Context, key string, b []byte) error {
	_, err := l.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &l.bucket, Key: &key, Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	return err
}

// readPrefix returns the first n bytes (n > 0, small) of the object at key,
// as it was at etag.
func (l *Lake) readPrefix(ctx context.Context, key, etag string, n int64) ([]byte, error) {
	out, err := l.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &l.bucket, Key: &key, IfMatch: nonEmpty(etag), Range: aws.String(fmt.Sprintf("bytes=0-%d", n-1)),
	})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(out.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// copyParts uploads the first n bytes (n > 0) of the object at srcKey, as
// it was at etag, as parts first, first+1... of a multipart upload, by
// server-side copy. Every part but possibly the last is at least
// MinPartSize as long as n is.
func (l *Lake) copyParts(ctx context.Context, dstKey, uploadID, srcKey, etag string, n int64, first int32) ([]types.CompletedPart, error) {
	count := (n + MaxPartSize - 1) / MaxPartSize
	size := (n + count - 1) / count // equal parts, each at least n/count
	var parts []types.CompletedPart
	for off, num := int64(0), first; off < n; off, num = off+size, num+1 {
		end := min(off+size, n) - 1
		out, err := l.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &l.bucket, Key: &dstKey, UploadId: &uploadID, PartNumber: aws.Int32(num),
			CopySource:        aws.String(copySource(l.bucket, srcKey)),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			CopySourceIfMatch: nonEmpty(etag),
		})
		if err != nil {
			return nil, err
		}
		var tag *string
		if out.CopyPartResult != nil {
			tag = out.CopyPartResult.ETag
		}
		parts = append(parts, types.CompletedPart{ETag: tag, PartNumber: aws.Int32(num)})
	}
	return parts, nil
}

// copySource is the x-amz-copy-source of an object: bucket/key, with every
// byte of the key but unreserved ones and slashes percent-escaped (S3 would
// read a "+" as a space, and "?" as the start of a version).
func copySource(bucket, key string) string {
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Copy makes dst a copy of the first n bytes of src, without the bytes
// passing through lakelink when it can: the whole of an object up to
// 5 GiB is one CopyObject; a prefix of at least MinPartSize is a multipart
// upload of server-side part copies; a smaller prefix is read and written.
// dst becomes visible only once complete. See lakelink.Copier.
func (l *Lake) Copy(ctx context.Context, src, dst string, n int64) error {
	if err := checkPath(src); err != nil {
		return err
	}
	if err := checkPath(dst); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("s3: copy %q to %q: negative length %d", src, dst, n)
	}
	op := fmt.Sprintf("copy %q to %q", src, dst)
	hd, err := l.head(ctx, src)
	if err != nil {
		return l.fail("copy from", src, err)
	}
	size, etag := aws.ToInt64(hd.ContentLength), aws.ToString(hd.ETag)
	if size < n {
		return fmt.Errorf("s3: %s: source has %d bytes, fewer than the %d to copy", op, size, n)
	}
	srcKey, dstKey := l.key(src), l.key(dst)
	switch {
	case n == 0:
		err = l.putBytes(ctx, dstKey, nil)
	case n == size && n <= MaxPartSize:
		_, err = l.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: &l.bucket, Key: &dstKey, CopySource: aws.String(copySource(l.bucket, srcKey)), CopySourceIfMatch: nonEmpty(etag),
		})
	case n < MinPartSize:
		var b []byte
		if b, err = l.readPrefix(ctx, srcKey, etag, n); err == nil {
			err = l.putBytes(ctx, dstKey, b)
		}
	default:
		w, werr := l.startUpload(ctx, "copy to", dst)
		if werr != nil {
			return werr
		}
		if w.parts, err = l.copyParts(ctx, dstKey, w.uploadID, srcKey, etag, n, 1); err != nil {
			w.abort()
			return l.fail("copy to "+strconv.Quote(dst)+" from", src, err)
		}
		return w.Close()
	}
	if err != nil {
		return fmt.Errorf("s3: %s: %w", op, err)
	}
	return nil
}

// Append opens the object at path for writing after its first size bytes;
// bytes past size are dropped. The new object replaces the old one at
// Close, which readers see whole: until then they read the old object.
// When size is at least MinPartSize, the old bytes are copied server-side
// (UploadPartCopy) into a multipart upload that the new bytes complete;
// below, they are read back and rewritten with the new ones. The new
// object is written only if the old one is still the one Append saw
// (If-Match): if another writer replaced it meanwhile, Close returns an
// error wrapping ErrChanged and the other writer's object stays. See
// lakelink.Appender.
func (l *Lake) Append(ctx context.Context, path string, size int64) (_ io.WriteCloser, err error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("s3: append %q at %d: negative size", path, size)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: append %q: %w", path, err)
	}
	const op = "append"
	hd, err := l.head(ctx, path)
	switch {
	case isNotFound(err) && size == 0:
		return l.newWriter(ctx, op, path), nil
	case isNotFound(err):
		return nil, fmt.Errorf("s3: append %q at %d: the object is missing: %w", path, size, lakelink.ErrNotExist)
	case err != nil:
		return nil, l.fail("append", path, err)
	}
	have, etag := aws.ToInt64(hd.ContentLength), aws.ToString(hd.ETag)
	if have < size {
		return nil, fmt.Errorf("s3: append %q at %d: the object has only %d bytes, so the lake lost committed bytes", path, size, have)
	}
	key := l.key(path)
	switch {
	case size == 0:
		w := l.newWriter(ctx, op, path)
		w.ifMatch = nonEmpty(etag)
		return w, nil
	case size < MinPartSize:
		b, err := l.readPrefix(ctx, key, etag, size)
		if err != nil {
			return nil, l.fail("append", path, err)
		}
		w := l.newWriter(ctx, op, path)
		w.buf = b
		w.ifMatch = nonEmpty(etag)
		return w, nil
	}
	w, err := l.startUpload(ctx, op, path)
	if err != nil {
		return nil, err
	}
	w.ifMatch = nonEmpty(etag)
	if w.parts, err = l.copyParts(ctx, key, w.uploadID, key, etag, size, 1); err != nil {
		w.abort()
		return nil, l.fail("append: copy the committed bytes of", path, err)
	}
	return w, nil
}

// nonEmpty returns a pointer to s, or nil for "".
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// errorCode returns the S3 error code of err, or "".
func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of the response err came with, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNotFound reports whether err says the object is not there.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return httpStatus(err) == 404 && errorCode(err) != "NoSuchBucket" && errorCode(err) != "NoSuchUpload"
}

// isTransient reports whether err is worth retrying later: a server error,
// throttling, or no response at all.
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	s := httpStatus(err)
	return s == 0 || s == 429 || s >= 500
}

// CreateBucket creates the bucket cfg names, for tests and first-time
// setup; a bucket that is already there and owned by the caller is not an
// error. Open never creates a bucket.
func CreateBucket(ctx context.Context, cfg Config) error {
	client, err := newClient(ctx, cfg)
	if err != nil {
		return err
	}
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &cfg.Bucket})
	switch errorCode(err) {
	case "", "BucketAlreadyOwnedByYou":
		return nil
	}
	return fmt.Errorf("s3: create bucket %q: %w", cfg.Bucket, err)
}

// DeleteBucket deletes the bucket cfg names, which must be empty, for
// tests. A missing bucket is not an error.
func DeleteBucket(ctx context.Context, cfg Config) error {
	client, err := newClient(ctx, cfg)
	if err != nil {
		return err
	}
	_, err = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &cfg.Bucket})
	switch errorCode(err) {
	case "", "NoSuchBucket":
		return nil
	}
	return fmt.Errorf("s3: delete bucket %q: %w", cfg.Bucket, err)
}

// SplitSize is the size past which lakelink continues an append-only
// partition in an overflow split (<partition>_001.csv): S3 can't append, so
// each append copies the committed object server-side, and bounding the
// object bounds that copy.
func (l *Lake) SplitSize() int64 { return 16 << 20 }
