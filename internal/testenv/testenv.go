// Package testenv gives tests the endpoints of the real test servers
// (PostgreSQL, Azurite, MinIO...) from the environment. Without one a test
// skips locally, but fails under CI, so that a server that did not start can
// never pass as green.
package testenv

import (
	"os"
	"testing"
)

// Need returns the value of the environment variable name, such as
// "PG_TEST_DSN". When it is unset or empty the test is skipped, unless the
// environment variable CI is set (non-empty): there a missing server must
// fail the run, so Need calls t.Fatalf naming the variable.
func Need(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("testenv: %s is not set, and CI is: .ci/run should have started the server and set %s", name, name)
		return ""
	}
	t.Skipf("testenv: %s is not set; set it to run this test against a real server", name)
	return ""
}

// Slow skips the test under -short.
func Slow(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: slow test, skipped under -short")
	}
}
