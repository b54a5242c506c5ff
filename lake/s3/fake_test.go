package s3_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/lakelink/lakelink/lake/s3"
)

// TestOpenRefused runs Open against a fake S3 that refuses every request
// with a given error, and checks that the error says what to fix, and
// never shows the secret key. It needs no server.
func TestOpenRefused(t *testing.T) {
	const secret = "fake-secret-never-shown"
	for _, tt := range []struct {
		status     int
		code, want string
	}{
		{403, "AccessDenied", "access denied: the credentials need s3:PutObject"},
		{404, "NoSuchBucket", `bucket "lake" does not exist`},
		{403, "SignatureDoesNotMatch", "secret key does not match"},
		{403, "InvalidAccessKeyId", "access key ID is not known"},
		{301, "PermanentRedirect", "another region"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tt.status)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + tt.code +
					`</Code><Message>refused by the fake</Message><RequestId>1</RequestId></Error>`))
			}))
			defer srv.Close()
			cfg, err := s3.ParseURL("s3://lake/pre/fix?region=us-east-1&endpoint=" + srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIAFAKE", secret, "")
			l, err := s3.Open(t.Context(), cfg)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded against a server that refuses everything")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "s3://lake/pre/fix") {
				t.Errorf("Open error = %q, want it to name the lake and say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open error = %q, which shows the secret key", err)
			}
		})
	}
}

func TestOpenBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{Bucket: "x"}, "bucket names"},
		{s3.Config{Bucket: "lake", Prefix: "../up", Endpoint: "http://127.0.0.1:1"}, "prefix"},
		{s3.Config{Bucket: "lake", Endpoint: "127.0.0.1:7070"}, "http"},
		{s3.Config{Bucket: "lake", Endpoint: "http://127.0.0.1:1", PartSize: 1 << 20}, "part size"},
	} {
		l, err := s3.Open(t.Context(), tt.cfg)
		if err == nil {
			l.Close()
			t.Errorf("Open(%v) succeeded, want an error", tt.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%v) error = %q, want it to say %q", tt.cfg, err, tt.want)
		}
	}
}
