// Package azure is the lake in an Azure Blob Storage or ADLS Gen2
// container, written through the Blob API (which also serves accounts with a
// hierarchical namespace, and the Azurite emulator).
//
// Every object is a block blob named PREFIX/PATH. Objects become visible
// only when complete: a small object is one Put Blob at Close; a larger one
// is staged in blocks of BlockSize as it is written, and committed with one
// Put Block List at Close. Append keeps the committed blocks that hold the
// first size bytes and commits them with new blocks, so a file grows without
// being rewritten (a last block under 1 MiB is read back and joined with the
// new bytes, so that small appends don't use up the 50,000 blocks a blob may
// have; past that limit Append fails with ErrTooManyBlocks). Writes that
// must not lose a race use CreateIfAbsent and CreateIfVersion (If-None-Match
// and If-Match); Append's commit is conditional on the blob's ETag. Copy stages the source's bytes server-side (Put Block From
// URL) when the lake has an account key, and streams them through lakelink
// otherwise.
package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/lakelink/lakelink"
)

// Lake is a lake in an Azure blob container. It is safe for concurrent use.
type Lake struct {
	cfg    resolved // without Key and ConnectionString, which only the client holds
	cc     *container.Client
	prefix string // cfg.Prefix + "/", or empty
	shared bool   // the client signs with an account key, so it can make SAS URLs
	// scrub removes the account key from a message. A func, so that even
	// fmt.Printf("%+v", lake) can't show the key.
	scrub func(string) string
}

var (
	_ lakelink.Lake     = (*Lake)(nil)
	_ lakelink.Appender = (*Lake)(nil)
	_ lakelink.Copier   = (*Lake)(nil)
)

const (
	// BlockSize is the size of the blocks a writer stages, and the most
	// bytes it holds in memory.
	BlockSize = 8 << 20
	// MaxBlocks is how many committed blocks Azure allows in one blob.
	MaxBlocks = 50_000
	// coalesceBelow is the size under which Append rewrites a blob's last
	// block together with the new bytes rather than add a block after it.
	// So a blob appended to in small steps reaches MaxBlocks only past
	// about 48 GiB, for at most this many bytes read per Append.
	coalesceBelow = 1 << 20
	// copyBlock is the most bytes one Put Block From URL copies.
	copyBlock = 100 << 20
	// idLen is the length in bytes of the block IDs lakelink makes (before
	// base64): a random nonce per writer and a counter.
	idLen       = 24
	probePrefix = ".lakelink-probe-"
)

// ErrTooManyBlocks is returned (wrapped) by an Append whose commit would
// give the blob more than MaxBlocks blocks. The caller should start a new
// file.
var ErrTooManyBlocks = errors.New("too many blocks")

// Open returns the lake cfg names, filling what cfg leaves empty from the
// environment: the endpoint from AZURE_BLOB_ENDPOINT and an account key
// from AZURE_STORAGE_KEY (both when AZURE_STORAGE_ACCOUNT is unset or names
// the same account), else both from AZURE_STORAGE_CONNECTION_STRING (when
// its AccountName is the account); without a key, cfg.Credential or the
// default credential chain.
//
// Open probes the lake with a small write and delete under the prefix, so a
// wrong account, container or credential, or a missing permission, fails
// here with an error that says which. A missing container wraps
// lakelink.ErrNotExist; Open does not create it.
func Open(ctx context.Context, cfg Config) (*Lake, error) {
	r, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	cc, shared, err := newClient(r)
	if err != nil {
		return nil, err
	}
	key := string(r.Key)
	r.Key, r.ConnectionString = "", ""
	l := &Lake{cfg: r, cc: cc, shared: shared, scrub: func(msg string) string { return scrub(msg, key) }}
	if r.Prefix != "" {
		l.prefix = r.Prefix + "/"
	}
	if err := l.probe(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// newClient makes the container client, reporting whether it signs with an
// account key.
func newClient(r resolved) (*container.Client, bool, error) {
	u := r.serviceURL + r.Container
	if r.Key != "" {
		cred, err := container.NewSharedKeyCredential(r.Account, string(r.Key))
		if err != nil {
			// The error would quote nothing secret, but say it plainly.
			return nil, false, fmt.Errorf("azure: the account key from %s is not valid base64", r.credFrom)
		}
		cc, err := container.NewClientWithSharedKeyCredential(u, cred, nil)
		if err != nil {
			return nil, false, fmt.Errorf("azure: %s: %w", r.Config, err)
		}
		return cc, true, nil
	}
	cred := r.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, false, fmt.Errorf("azure: no credentials for account %q: set %s or %s, or sign in for the default Azure credential chain: %v",
				r.Account, EnvKey, EnvConnectionString, scrub(err.Error(), ""))
		}
		cred = c
	}
	cc, err := container.NewClient(u, tokenCred{cred}, nil)
	if err != nil {
		return nil, false, fmt.Errorf("azure: %s: %w", r.Config, err)
	}
	return cc, false, nil
}

// tokenCred marks the errors of a token credential, so that a failure to
// get a token is told apart from a failure to reach the service.
type tokenCred struct{ azcore.TokenCredential }

// credError is a token credential's failure.
type credError struct{ err error }

func (e *credError) Error() string { return e.err.Error() }
func (e *credError) Unwrap() error { return e.err }

func (c tokenCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	t, err := c.TokenCredential.GetToken(ctx, o)
	if err != nil {
		return t, &credError{err}
	}
	return t, nil
}

// CreateContainer creates the container cfg names, with credentials and
// endpoint found as Open finds them. A container that exists is not an
// error. It is meant for tests and setup tools; Open never creates one.
func CreateContainer(ctx context.Context, cfg Config) error {
	r, err := resolve(cfg)
	if err != nil {
		return err
	}
	cc, _, err := newClient(r)
	if err != nil {
		return err
	}
	if _, err := cc.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return failure(fmt.Sprintf("create container %q", r.Container), err, string(r.Key))
	}
	return nil
}

// DeleteContainer deletes the container cfg names and everything in it. A
// missing container is not an error. It is meant for tests.
func DeleteContainer(ctx context.Context, cfg Config) error {
	r, err := resolve(cfg)
	if err != nil {
		return err
	}
	cc, _, err := newClient(r)
	if err != nil {
		return err
	}
	if _, err := cc.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return failure(fmt.Sprintf("delete container %q", r.Container), err, string(r.Key))
	}
	return nil
}

// probe writes and deletes a small blob under the prefix.
func (l *Lake) probe(ctx context.Context) error {
	if l.cfg.ReadOnly {
		opts := &container.ListBlobsFlatOptions{MaxResults: to.Ptr(int32(1))}
		if l.prefix != "" {
			opts.Prefix = &l.prefix
		}
		if _, err := l.cc.NewListBlobsFlatPager(opts).NextPage(ctx); err != nil {
			return l.probeError("can't list", err)
		}
		return nil
	}
	name := l.prefix + probePrefix + strconv.FormatUint(rand.Uint64(), 36)
	bb := l.cc.NewBlockBlobClient(name)
	_, err := bb.Upload(ctx, streaming.NopCloser(strings.NewReader("lakelink write probe\n")), nil)
	if err != nil {
		return l.probeError("can't write to", err)
	}
	if _, err := bb.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return l.probeError("can write to, but can't delete from,", err)
	}
	return nil
}

// probeError explains why the probe failed and what to fix.
func (l *Lake) probeError(what string, err error) error {
	where := l.cfg.Config.String()
	base := l.fail("probe", err)
	var hint string
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("azure: %s: container %q does not exist in account %q; create it, or fix the container name: %w",
			where, l.cfg.Container, l.cfg.Account, lakelink.ErrNotExist)
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation):
		hint = "the account rejected the credentials from " + l.cfg.credFrom + "; check the account name and key"
	case l.shared && bloberror.HasCode(err, bloberror.AuthorizationFailure):
		// What Azurite answers to a wrong key; Azure, to an account
		// whose network rules keep lakelink out.
		hint = "the account rejected the credentials from " + l.cfg.credFrom + "; check the account name and key, and the account's network rules"
	case bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationFailure,
		bloberror.InsufficientAccountPermissions, bloberror.AuthorizationSourceIPMismatch, bloberror.AuthorizationProtocolMismatch):
		role := "Storage Blob Data Contributor"
		if l.cfg.ReadOnly {
			role = "Storage Blob Data Reader"
		}
		hint = "the identity (credentials from " + l.cfg.credFrom + ") lacks permission; grant it " + role + " on the container"
	case bloberror.HasCode(err, bloberror.ResourceNotFound, bloberror.AccountIsDisabled):
		hint = "check the account name and the endpoint"
	case errors.As(err, new(*credError)):
		hint = "no token from " + l.cfg.credFrom + "; sign in (az login, managed identity, AZURE_CLIENT_ID...), or set " + EnvKey + " or " + EnvConnectionString
	case !l.shared && strings.Contains(err.Error(), "non-TLS"):
		hint = "a token credential needs an https endpoint; for an emulator set " + EnvKey + " or " + EnvConnectionString
	default:
		var re *azcore.ResponseError
		if !errors.As(err, &re) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			hint = "can't reach " + l.cfg.serviceURL + "; check the account name, the endpoint and the network"
		}
	}
	if hint != "" {
		return fmt.Errorf("azure: %s %s: %w; %s", what, where, base, hint)
	}
	return fmt.Errorf("azure: %s %s: %w", what, where, base)
}

// URL returns where model.json says the object at path is:
// https://ACCOUNT.dfs.core.windows.net:443/CONTAINER/PREFIX/PATH, or under
// the endpoint when one is set (an emulator).
func (l *Lake) URL(path string) string {
	u := &url.URL{Scheme: "https", Host: l.cfg.Account + ".dfs.core.windows.net:443"}
	if l.cfg.Endpoint != "" {
		if e, err := url.Parse(l.cfg.Endpoint); err == nil {
			u = e
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + l.cfg.Container + "/" + l.prefix + path
	u.RawPath = ""
	return u.String()
}

// String returns the lake's URL, without credentials.
func (l *Lake) String() string { return l.cfg.Config.String() }

// Close releases the lake; it holds no connection of its own.
func (l *Lake) Close() error { return nil }

// blob returns the client of the blob that holds the object at path.
func (l *Lake) blob(path string) *blockblob.Client { return l.cc.NewBlockBlobClient(l.prefix + path) }

// fail turns an SDK error into a lake error: see failure.
func (l *Lake) fail(op string, err error) error {
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return &lakeError{
			msg:  fmt.Sprintf("azure: %s: container %q of account %q does not exist", op, l.cfg.Container, l.cfg.Account),
			errs: []error{lakelink.ErrNotExist, err},
		}
	}
	e := failure(op, err, "")
	e.msg = l.scrub(e.msg)
	return e
}

// lakeError is an error whose message is written by this package, so it
// never carries a request URL, a response body or a secret; the SDK error
// is still there for errors.As.
type lakeError struct {
	msg  string
	errs []error
}

func (e *lakeError) Error() string   { return e.msg }
func (e *lakeError) Unwrap() []error { return e.errs }

// failure makes the error of a failed operation: "azure: OP: CODE (HTTP
// STATUS)". It wraps lakelink.ErrNotExist for a missing blob, and
// lakelink.ErrTransient for what is worth retrying.
func failure(op string, err error, key string) *lakeError {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		cause := context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			cause = context.DeadlineExceeded
		}
		return &lakeError{msg: fmt.Sprintf("azure: %s: %v", op, cause), errs: []error{cause, err}}
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = http.StatusText(re.StatusCode)
		}
		e := &lakeError{msg: fmt.Sprintf("azure: %s: %s (HTTP %d)", op, code, re.StatusCode), errs: []error{err}}
		switch {
		case re.StatusCode == http.StatusNotFound && !bloberror.HasCode(err, bloberror.ContainerNotFound):
			e.errs = append(e.errs, lakelink.ErrNotExist)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout:
			e.errs = append(e.errs, lakelink.ErrTransient)
		}
		return e
	}
	// A network error: the message may name the request URL, never a key,
	// but scrub it anyway.
	return &lakeError{msg: fmt.Sprintf("azure: %s: %s", op, scrub(err.Error(), key)), errs: []error{err, lakelink.ErrTransient}}
}

var secretParam = regexp.MustCompile(`(?i)\b(sig|accountkey|sharedaccesssignature)=[^&;\s"']+`)

// scrub removes what may be a secret from an error message.
func scrub(msg, key string) string {
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "REDACTED")
	}
	return secretParam.ReplaceAllString(msg, "$1=REDACTED")
}

// checkPath returns an error unless p is a valid object path.
func checkPath(p string) error {
	if err := lakelink.CheckPath(p); err != nil {
		return fmt.Errorf("azure: %w", err)
	}
	if isProbe(p) {
		return fmt.Errorf("azure: bad object path %q: names starting with %q are kept for the probe", p, probePrefix)
	}
	return nil
}

// checkWrite is checkPath for a path about to be written.
func (l *Lake) checkWrite(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if l.cfg.ReadOnly {
		return fmt.Errorf("azure: write %q: the lake %s was opened read-only", p, l)
	}
	return nil
}

func isProbe(p string) bool {
	return strings.HasPrefix(p[strings.LastIndexByte(p, '/')+1:], probePrefix)
}

// isFolder reports whether blob metadata marks a directory of an account
// with a hierarchical namespace, which is not an object.
func isFolder(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// Create starts writing the object at path. Bytes are buffered up to
// BlockSize; a larger object is staged in blocks as it is written, which
// are invisible until Close commits them. See lakelink.Lake.
func (l *Lake) Create(ctx context.Context, path string) (io.WriteCloser, error) {
	if err := l.checkWrite(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: create %q: %w", path, err)
	}
	w := l.newWriter(ctx, fmt.Sprintf("create %q", path), path)
	w.putBlob = true
	return w, nil
}

// Open reads the object at path. A broken connection is resumed where it
// broke, as long as the blob is unchanged. See lakelink.Lake.
func (l *Lake) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	resp, err := l.blob(path).DownloadStream(ctx, nil)
	if err != nil {
		return nil, l.fail(fmt.Sprintf("open %q", path), err)
	}
	if isFolder(resp.Metadata) {
		resp.Body.Close()
		return nil, fmt.Errorf("azure: open %q: a folder, not an object: %w", path, lakelink.ErrNotExist)
	}
	return &reader{r: resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}), l: l, path: path}, nil
}

// reader translates read errors.
type reader struct {
	r    io.ReadCloser
	l    *Lake
	path string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.l.fail(fmt.Sprintf("read %q", r.path), err)
	}
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

// Stat describes the object at path. See lakelink.Lake.
func (l *Lake) Stat(ctx context.Context, path string) (lakelink.ObjectInfo, error) {
	if err := checkPath(path); err != nil {
		return lakelink.ObjectInfo{}, err
	}
	props, err := l.blob(path).GetProperties(ctx, nil)
	if err != nil {
		return lakelink.ObjectInfo{}, l.fail(fmt.Sprintf("stat %q", path), err)
	}
	if isFolder(props.Metadata) {
		return lakelink.ObjectInfo{}, fmt.Errorf("azure: stat %q: a folder, not an object: %w", path, lakelink.ErrNotExist)
	}
	return lakelink.ObjectInfo{Path: path, Size: deref(props.ContentLength), ModTime: deref(props.LastModified)}, nil
}

// List returns every object whose path starts with prefix, sorted by path.
// Only committed blobs are listed. See lakelink.Lake.
func (l *Lake) List(ctx context.Context, prefix string) ([]lakelink.ObjectInfo, error) {
	if err := lakelink.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if full := l.prefix + prefix; full != "" {
		opts.Prefix = &full
	}
	var out []lakelink.ObjectInfo
	pager := l.cc.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, l.fail(fmt.Sprintf("list %q", prefix), err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil || it.Properties == nil {
				continue
			}
			p, ok := strings.CutPrefix(*it.Name, l.prefix)
			if !ok || lakelink.CheckPath(p) != nil || isProbe(p) || isFolder(it.Metadata) {
				continue // not an object lakelink could name
			}
			out = append(out, lakelink.ObjectInfo{Path: p, Size: deref(it.Properties.ContentLength), ModTime: deref(it.Properties.LastModified)})
		}
	}
	slices.SortFunc(out, func(a, b lakelink.ObjectInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Delete removes the object at path, with its snapshots; a missing object
// is not an error. See lakelink.Lake.
func (l *Lake) Delete(ctx context.Context, path string) error {
	if err := l.checkWrite(path); err != nil {
		return err
	}
	_, err := l.blob(path).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return l.fail(fmt.Sprintf("delete %q", path), err)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// body wraps a byte slice for an SDK upload.
func body(b []byte) io.ReadSeekCloser { return streaming.NopCloser(bytes.NewReader(b)) }

// SplitSize is the size past which lakelink continues an append-only
// partition in an overflow split (<partition>_001.csv), well before a blob
// appended to in small steps nears MaxBlocks (about 48 GiB, see
// coalesceBelow).
func (l *Lake) SplitSize() int64 { return 32 << 30 }
