package s3

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/lakelink/lakelink"
)

// Config says which bucket and prefix a Lake is, and how to reach it.
// Credentials are not part of a lake URL: they come from Credentials, or
// from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files, an IAM role).
type Config struct {
	Bucket string // the bucket's name
	Prefix string // "" or a path without leading or trailing slash; objects live below it
	// Endpoint is the S3 service's base URL, e.g. http://127.0.0.1:7070 for
	// a local S3-compatible server; empty means AWS.
	Endpoint string
	// Region is the bucket's region; empty takes the SDK's (AWS_REGION,
	// the profile), and us-east-1 with an Endpoint when that is empty too.
	Region string
	// PathStyle addresses the bucket in the URL path (endpoint/bucket/key)
	// rather than in the host name (bucket.endpoint/key). S3-compatible
	// servers usually need it.
	PathStyle bool
	// Credentials, when not nil, replaces the SDK's default credential chain.
	Credentials aws.CredentialsProvider
	// ReadOnly makes Open probe with a list rather than a write and
	// delete, for commands that only read (credentials may be read-only).
	// Writes are still tried when asked for.
	ReadOnly bool
	// PartSize is the size of the parts a large object is uploaded in, and
	// so the memory one writer holds; 0 means DefaultPartSize. It must be
	// between MinPartSize and 5 GiB.
	PartSize int64
}

// String describes the configuration without its credentials, so that a
// Config printed with %v or %+v never shows a secret.
func (c Config) String() string {
	s := "s3://" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	var q []string
	if c.Endpoint != "" {
		q = append(q, "endpoint="+redactEndpoint(c.Endpoint))
	}
	if c.Region != "" {
		q = append(q, "region="+c.Region)
	}
	if c.PathStyle {
		q = append(q, "path-style=true")
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// GoString is String, for %#v.
func (c Config) GoString() string { return "s3.Config(" + c.String() + ")" }

// ParseURL returns the Config that a lake URL names:
//
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path-style=true|false&part-size-mib=N]
//
// The prefix is percent-decoded and must be a valid lake path. A URL with
// credentials in it (s3://KEY:SECRET@bucket) is refused without echoing
// them: credentials come from the SDK's chain. path-style defaults to true
// when the endpoint's host is an IP address or localhost, where
// virtual-hosted addressing can't work, and to false otherwise.
func ParseURL(u string) (Config, error) {
	const form = "write s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path-style=true]"
	if u == "" {
		return Config{}, errors.New("s3: empty lake URL; " + form)
	}
	p, err := url.Parse(u)
	if err != nil {
		// url.Error quotes the whole URL, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("s3: lake URL does not parse: %v; %s", err, form)
	}
	if !strings.EqualFold(p.Scheme, "s3") {
		return Config{}, fmt.Errorf("s3: lake URL scheme %q is not s3; %s", p.Scheme, form)
	}
	if p.User != nil {
		return Config{}, errors.New("s3: lake URL holds credentials (user info before @), which lakelink does not take from a URL; " +
			"remove them and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
	}
	if p.Opaque != "" || p.Host == "" {
		return Config{}, fmt.Errorf("s3: lake URL %q names no bucket; %s", u, form)
	}
	if p.Fragment != "" || strings.HasSuffix(u, "#") {
		return Config{}, fmt.Errorf("s3: lake URL %q: a #fragment is not allowed; %s", u, form)
	}
	c := Config{Bucket: p.Host}
	if err := checkBucket(c.Bucket); err != nil {
		return Config{}, err
	}
	if prefix := strings.Trim(p.Path, "/"); prefix != "" {
		if err := lakelink.CheckPath(prefix); err != nil {
			return Config{}, fmt.Errorf("s3: lake URL %q: prefix: %w", u, err)
		}
		c.Prefix = prefix
	}
	q, err := url.ParseQuery(p.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("s3: lake URL %q: query: %v", u, err)
	}
	pathStyle := ""
	for k, vs := range q {
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("s3: lake URL: parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			if err := checkEndpoint(v); err != nil {
				return Config{}, err
			}
			c.Endpoint = strings.TrimSuffix(v, "/")
		case "region":
			if v == "" || strings.ContainsAny(v, "/:@ ") {
				return Config{}, fmt.Errorf("s3: lake URL: region %q is not a region name such as us-east-1", v)
			}
			c.Region = v
		case "path-style":
			pathStyle = v
		case "part-size-mib":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < MinPartSize>>20 || n > MaxPartSize>>20 {
				return Config{}, fmt.Errorf("s3: lake URL: part-size-mib %q: give a whole number from %d to %d", v, MinPartSize>>20, MaxPartSize>>20)
			}
			c.PartSize = n << 20
		default:
			// Don't echo the value: a misspelt parameter may hold a secret.
			return Config{}, fmt.Errorf("s3: lake URL: parameter %q not known; use endpoint, region, path-style or part-size-mib", k)
		}
	}
	switch pathStyle {
	case "":
		c.PathStyle = c.Endpoint != "" && literalHost(c.Endpoint)
	default:
		b, err := strconv.ParseBool(pathStyle)
		if err != nil {
			return Config{}, fmt.Errorf("s3: lake URL: path-style %q: use true or false", pathStyle)
		}
		c.PathStyle = b
	}
	return c, nil
}

// checkEndpoint refuses an endpoint that is not an http(s) base URL, or that
// holds credentials.
func checkEndpoint(e string) error {
	p, err := url.Parse(e)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("s3: endpoint %q: give an http:// or https:// URL such as http://127.0.0.1:7070", redactEndpoint(e))
	}
	if p.User != nil {
		return errors.New("s3: endpoint holds credentials (user info before @); remove them and use the SDK's credential chain")
	}
	if p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("s3: endpoint %q: no query or fragment allowed", redactEndpoint(e))
	}
	return nil
}

// redactEndpoint returns an endpoint without user info, for messages.
func redactEndpoint(e string) string {
	p, err := url.Parse(e)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	return p.String()
}

// literalHost reports whether an endpoint's host is an IP address or
// localhost, where a bucket can't be put in the host name.
func literalHost(endpoint string) bool {
	p, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := p.Hostname()
	return h == "localhost" || net.ParseIP(h) != nil
}

// checkBucket refuses a name S3 would: 3 to 63 lower-case letters, digits,
// dots and hyphens, starting and ending with a letter or digit.
func checkBucket(b string) error {
	const hint = "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("s3: bucket %q: %s", b, hint)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return fmt.Errorf("s3: bucket %q: %s", b, hint)
		}
	}
	return nil
}
