package lakelink_test

import (
	"testing"

	"github.com/lakelink/lakelink"
)

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path   string
		ok     bool
		prefix bool // also valid as a List prefix
	}{
		{"model.json", true, true},
		{"account/2021.csv", true, true},
		{"a b/é 🎉.csv", true, true},
		{"account/", false, true},
		{"", false, true},
		{"/abs", false, false},
		{"a//b", false, false},
		{"a/../b", false, false},
		{"./a", false, false},
		{"a\\b", false, false},
		{"a\x00b", false, false},
	} {
		if err := lakelink.CheckPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if err := lakelink.CheckPrefix(tc.path); (err == nil) != tc.prefix {
			t.Errorf("CheckPrefix(%q) = %v, want ok=%v", tc.path, err, tc.prefix)
		}
	}
}
