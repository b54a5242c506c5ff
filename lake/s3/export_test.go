package s3

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SetListPageSize makes List read pages of n objects until the test ends.
func SetListPageSize(t testing.TB, n int32) {
	old := listPageSize
	listPageSize = &n
	t.Cleanup(func() { listPageSize = old })
}

// Client returns the lake's S3 client, for tests that look behind the Lake.
func (l *Lake) Client() *s3.Client { return l.client }

// Bucket returns the lake's bucket.
func (l *Lake) Bucket() string { return l.bucket }

// Key returns the object key of a lake path.
func (l *Lake) Key(path string) string { return l.key(path) }
