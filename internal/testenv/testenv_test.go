package testenv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lakelink/lakelink/internal/testenv"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of ending
// the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestNeed(t *testing.T) {
	const name = "LAKELINK_TESTENV_TEST_DSN"
	for _, tt := range []struct {
		desc, value, ci string
		want            string
		fatal, skip     bool
	}{
		{desc: "set", value: "postgres://x", want: "postgres://x"},
		{desc: "set under CI", value: "postgres://x", ci: "true", want: "postgres://x"},
		{desc: "unset locally", skip: true},
		{desc: "unset under CI", ci: "1", fatal: true},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Setenv(name, tt.value)
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			got := testenv.Need(r, name)
			if got != tt.want {
				t.Errorf("Need = %q, want %q", got, tt.want)
			}
			if (r.fatal != "") != tt.fatal || (r.skip != "") != tt.skip {
				t.Errorf("Need: Fatalf %q, Skipf %q; want fatal %v, skip %v", r.fatal, r.skip, tt.fatal, tt.skip)
			}
			if msg := r.fatal + r.skip; msg != "" && !strings.Contains(msg, name) {
				t.Errorf("message %q does not name %s", msg, name)
			}
			if tt.fatal && !strings.Contains(r.fatal, ".ci/run") {
				t.Errorf("Fatalf message %q does not point at .ci/run", r.fatal)
			}
		})
	}
}

func TestSlow(t *testing.T) {
	testenv.Slow(t)
	if testing.Short() {
		t.Fatal("Slow did not skip under -short")
	}
}
