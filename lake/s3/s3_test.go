package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/internal/testenv"
	"github.com/lakelink/lakelink/lake/laketest"
	"github.com/lakelink/lakelink/lake/s3"
)

// testBucket is the bucket the tests share, each under its own prefix.
const testBucket = "lakelink-test"

var bucketOnce sync.Map // endpoint → error of creating testBucket

// config returns the Config of a fresh, empty lake under a random prefix of
// testBucket on the server at S3_ENDPOINT, with the SDK's credential chain
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
func config(t testing.TB) s3.Config {
	t.Helper()
	endpoint := testenv.Need(t, "S3_ENDPOINT")
	cfg := s3.Config{Bucket: testBucket, Endpoint: endpoint, PathStyle: true, Region: os.Getenv("AWS_REGION")}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	v, _ := bucketOnce.LoadOrStore(endpoint, sync.OnceValue(func() error {
		return s3.CreateBucket(context.Background(), cfg)
	}))
	if err := v.(func() error)(); err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = fmt.Sprintf("t%d-%x", time.Now().Unix(), rand.Uint64())
	return cfg
}

// open opens a lake on cfg, emptied again at the end of the test.
func open(t testing.TB, cfg s3.Config) *s3.Lake {
	t.Helper()
	l, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		infos, err := l.List(ctx, "")
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, fi := range infos {
			if err := l.Delete(ctx, fi.Path); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		l.Close()
	})
	return l
}

func newLake(t testing.TB) *s3.Lake { return open(t, config(t)) }

func TestConformance(t *testing.T) {
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return newLake(t) })
}

func TestConformanceFaulty(t *testing.T) {
	testenv.Slow(t)
	laketest.Run(t, func(t testing.TB) lakelink.Lake { return laketest.NewFaulty(newLake(t)) })
}

func TestConformanceBucketRoot(t *testing.T) {
	testenv.Slow(t)
	cfg := config(t)
	cfg.Bucket, cfg.Prefix = fmt.Sprintf("lakelink-root-%x", rand.Uint32()), ""
	if err := s3.CreateBucket(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s3.DeleteBucket(context.Background(), cfg); err != nil {
			t.Error(err)
		}
	})
	l := open(t, cfg)
	laketest.Put(t, l, "model.json", "{}")
	ro := cfg
	ro.ReadOnly = true
	if l, err := s3.Open(t.Context(), ro); err != nil {
		t.Errorf("Open read-only: %v", err)
	} else {
		l.Close()
	}
	laketest.Put(t, l, "tbl/2021.csv", "1,a\n")
	if got := laketest.Paths(t, l, ""); strings.Join(got, " ") != "model.json tbl/2021.csv" {
		t.Errorf("List = %q", got)
	}
	if got, want := l.URL("tbl/2021.csv"), "s3://"+cfg.Bucket+"/tbl/2021.csv"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

// TestListPages lists more objects than fit in a page.
func TestListPages(t *testing.T) {
	l := newLake(t)
	s3.SetListPageSize(t, 3)
	var want []string
	for i := range 10 {
		p := fmt.Sprintf("tbl/%02d.csv", 9-i)
		laketest.Put(t, l, p, p)
		want = append([]string{p}, want...)
	}
	laketest.Put(t, l, "other.csv", "x")
	if got := laketest.Paths(t, l, "tbl/"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("List(tbl/) over pages of 3 = %q, want %q", got, want)
	}
	if got := laketest.Paths(t, l, ""); len(got) != 11 {
		t.Errorf("List over pages of 3 has %d objects, want 11", len(got))
	}
}

func TestURLAndString(t *testing.T) {
	cfg := config(t)
	l := open(t, cfg)
	for _, tt := range []struct{ path, want string }{
		{"", "s3://" + testBucket + "/" + cfg.Prefix + "/"},
		{"model.json", "s3://" + testBucket + "/" + cfg.Prefix + "/model.json"},
		{"tbl/é 1.csv", "s3://" + testBucket + "/" + cfg.Prefix + "/tbl/%C3%A9%201.csv"},
		{"a#b?c.csv", "s3://" + testBucket + "/" + cfg.Prefix + "/a%23b%3Fc.csv"},
	} {
		if got := l.URL(tt.path); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got, want := l.String(), "s3://"+testBucket+"/"+cfg.Prefix+" at "+cfg.Endpoint; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want s3.Config
		err  string // a part of the error, when one is wanted
	}{
		{in: "s3://bucket", want: s3.Config{Bucket: "bucket"}},
		{in: "s3://bucket/", want: s3.Config{Bucket: "bucket"}},
		{in: "S3://my.bucket-1/a/b/", want: s3.Config{Bucket: "my.bucket-1", Prefix: "a/b"}},
		{in: "s3://bucket/my%20lake/x", want: s3.Config{Bucket: "bucket", Prefix: "my lake/x"}},
		{in: "s3://bucket/lake?endpoint=http://127.0.0.1:7070&region=us-east-1&path-style=true",
			want: s3.Config{Bucket: "bucket", Prefix: "lake", Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", PathStyle: true}},
		{in: "s3://bucket?endpoint=http://127.0.0.1:7070/", // path style by default on an IP
			want: s3.Config{Bucket: "bucket", Endpoint: "http://127.0.0.1:7070", PathStyle: true}},
		{in: "s3://bucket?endpoint=http://localhost:9000&path-style=false",
			want: s3.Config{Bucket: "bucket", Endpoint: "http://localhost:9000"}},
		{in: "s3://bucket?endpoint=https://s3.example.com", want: s3.Config{Bucket: "bucket", Endpoint: "https://s3.example.com"}},
		{in: "s3://bucket?region=eu-west-1&part-size-mib=16", want: s3.Config{Bucket: "bucket", Region: "eu-west-1", PartSize: 16 << 20}},
		{in: "", err: "empty"},
		{in: "file:///srv/lake", err: "not s3"},
		{in: "s3:bucket", err: "no bucket"},
		{in: "s3:///prefix", err: "no bucket"},
		{in: "s3://Bucket", err: "bucket names"},
		{in: "s3://ab", err: "bucket names"},
		{in: "s3://-bucket", err: "bucket names"},
		{in: "s3://bucket_1", err: "bucket names"},
		{in: "s3://bucket:9000/x", err: "bucket names"},
		{in: "s3://bucket/a/../b", err: "prefix"},
		{in: "s3://bucket/a//b", err: "prefix"},
		{in: "s3://bucket/x#frag", err: "fragment"},
		{in: "s3://bucket?endpoint=ftp://host", err: "http"},
		{in: "s3://bucket?endpoint=127.0.0.1:7070", err: "http"},
		{in: "s3://bucket?path-style=maybe", err: "path-style"},
		{in: "s3://bucket?region=", err: "region"},
		{in: "s3://bucket?part-size-mib=1", err: "part-size-mib"},
		{in: "s3://bucket?region=a&region=b", err: "2 times"},
		{in: "s3://bucket?secret_key=hunter2", err: "not known"},
		{in: "s3://AKIAEXAMPLE:hunter2@bucket/x", err: "credentials"},
		{in: "s3://bucket?endpoint=http://AKIAEXAMPLE:hunter2@127.0.0.1:7070", err: "credentials"},
		{in: "s3://AKIA:hunter2%zz@bucket", err: "does not parse"},
	} {
		got, err := s3.ParseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseURL(%q) = %v, %v, want an error about %q", tt.in, got, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("ParseURL(%q) error = %q, which shows the secret", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigHidesCredentials(t *testing.T) {
	cfg := s3.Config{Bucket: "bucket", Endpoint: "http://127.0.0.1:7070",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "hunter2-secret", "session-token")}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, cfg); strings.Contains(s, "hunter2") || strings.Contains(s, "session-token") {
			t.Errorf("Sprintf(%q, cfg) = %q, which shows a secret", format, s)
		}
	}
}

// TestOpenErrors checks that a lake that can't work fails at Open, saying
// what is wrong, and never showing the secret key.
func TestOpenErrors(t *testing.T) {
	good := config(t)
	secret := fmt.Sprintf("wrong-secret-%x", rand.Uint64())
	realSecret := os.Getenv("AWS_SECRET_ACCESS_KEY")
	for _, tt := range []struct {
		name string
		edit func(c *s3.Config)
		want string
	}{
		{"missing bucket", func(c *s3.Config) { c.Bucket = "lakelink-no-such-bucket" }, `bucket "lakelink-no-such-bucket" does not exist`},
		{"wrong secret", func(c *s3.Config) {
			id := os.Getenv("AWS_ACCESS_KEY_ID")
			c.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		}, "secret key does not match"},
		{"unknown key", func(c *s3.Config) {
			c.Credentials = credentials.NewStaticCredentialsProvider("AKIANOSUCHKEY", secret, "")
		}, "access key ID is not known"},
		{"missing bucket, read-only", func(c *s3.Config) { c.Bucket, c.ReadOnly = "lakelink-no-such-bucket", true }, `bucket "lakelink-no-such-bucket" does not exist`},
		{"unreachable", func(c *s3.Config) { c.Endpoint = "http://127.0.0.1:1" }, "could not be reached"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			l, err := s3.Open(ctx, cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Open(%v) succeeded, want an error", cfg)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Open error = %q, want it to say %q", msg, tt.want)
			}
			if strings.Contains(msg, secret) || realSecret != "" && strings.Contains(msg, realSecret) {
				t.Errorf("Open error = %q, which shows the secret key", msg)
			}
		})
	}
}

// TestAppendPartCopy appends to an object large enough for the server-side
// part copy, over a torn tail, and checks every byte.
func TestAppendPartCopy(t *testing.T) {
	l := newLake(t)
	ctx := t.Context()
	const base = 6 << 20 // past MinPartSize
	w, err := l.Create(ctx, "tbl/1.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(3), base+100)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The last 100 bytes are a torn tail; the object's committed size is base.
	size := int64(base)
	want := sha256.New()
	io.Copy(want, io.LimitReader(laketest.NewGenerator(3), base))
	for i := range 3 {
		tail := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		a, err := l.Append(ctx, "tbl/1.csv", size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(tail); err != nil {
			t.Fatal(err)
		}
		// Until Close, readers see the old object.
		if fi, err := l.Stat(ctx, "tbl/1.csv"); err != nil || i > 0 && fi.Size != size {
			t.Errorf("before Close, Stat = %+v, %v, want the old size %d", fi, err, size)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		want.Write(tail)
		size += int64(len(tail))
	}
	if fi, err := l.Stat(ctx, "tbl/1.csv"); err != nil || fi.Size != size {
		t.Errorf("after appends, Stat = %+v, %v, want size %d", fi, err, size)
	}
	if got := laketest.Hash(t, l, "tbl/1.csv"); !bytes.Equal(got, want.Sum(nil)) {
		t.Errorf("after appends the object differs from what was written")
	}
	// A canceled Append leaves the object as it was, and no upload behind.
	cctx, cancel := context.WithCancel(ctx)
	a, err := l.Append(cctx, "tbl/1.csv", size)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("never"))
	cancel()
	if err := a.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel = %v, want context.Canceled", err)
	}
	if got := laketest.Hash(t, l, "tbl/1.csv"); !bytes.Equal(got, want.Sum(nil)) {
		t.Errorf("after a canceled append the object changed")
	}
	noUploads(t, l)
}

// TestCopyPrefixPartCopy copies a prefix of at least MinPartSize, which
// goes by server-side part copy.
func TestCopyPrefixPartCopy(t *testing.T) {
	l := newLake(t)
	ctx := t.Context()
	size := int64(7<<20 + 3)
	w, err := l.Create(ctx, "src.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(w, io.LimitReader(laketest.NewGenerator(5), size))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{size, 6 << 20, 1 << 20} {
		if err := l.Copy(ctx, "src.csv", "snap/dst.csv", n); err != nil {
			t.Fatalf("Copy %d bytes: %v", n, err)
		}
		want := sha256.New()
		io.Copy(want, io.LimitReader(laketest.NewGenerator(5), n))
		if got := laketest.Hash(t, l, "snap/dst.csv"); !bytes.Equal(got, want.Sum(nil)) {
			t.Errorf("Copy of %d bytes differs from the source's first %d bytes", n, n)
		}
	}
	noUploads(t, l)
}

// TestAbortMultipart cancels a Create that has uploaded parts: nothing is
// visible, and the multipart upload is gone.
func TestAbortMultipart(t *testing.T) {
	l := newLake(t)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := l.Create(ctx, "big.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(laketest.NewGenerator(9), 17<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel = %v, want context.Canceled", err)
	}
	if _, err := l.Stat(t.Context(), "big.csv"); !errors.Is(err, lakelink.ErrNotExist) {
		t.Errorf("after an abandoned Create, Stat error = %v, want ErrNotExist", err)
	}
	noUploads(t, l)
}

// noUploads fails the test if a multipart upload is left under the lake.
func noUploads(t testing.TB, l *s3.Lake) {
	t.Helper()
	out, err := l.Client().ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{
		Bucket: aws.String(l.Bucket()), Prefix: aws.String(l.Key("")),
	})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload of %s left behind", aws.ToString(u.Key))
	}
}

// TestDeleteFolder deletes a "folder", which is not an object: nothing
// happens to the objects below it.
func TestDeleteFolder(t *testing.T) {
	l := newLake(t)
	laketest.Put(t, l, "dir/sub/a.csv", "a")
	for _, p := range []string{"dir", "dir/sub"} {
		if err := l.Delete(t.Context(), p); err != nil {
			t.Errorf("Delete(%q), a folder, = %v, want nil", p, err)
		}
	}
	if got := laketest.Paths(t, l, ""); strings.Join(got, " ") != "dir/sub/a.csv" {
		t.Errorf("after deleting folders, List = %q, want [dir/sub/a.csv]", got)
	}
}
