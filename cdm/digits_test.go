package cdm

import (
	"fmt"
	"testing"
)

func TestPutDigits(t *testing.T) {
	for _, tt := range []struct {
		n, width int
		want     string
	}{
		{0, 1, "0"}, {7, 1, "7"}, {7, 2, "07"}, {42, 2, "42"}, {1, 4, "0001"}, {2024, 4, "2024"},
		{9999, 4, "9999"}, {0, 7, "0000000"}, {1234567, 7, "1234567"}, {5, 7, "0000005"}, {1000000, 7, "1000000"},
		{123456789, 9, "123456789"}, {12345, 3, "345"}, // wider numbers keep their last digits
	} {
		b := make([]byte, tt.width)
		putDigits(b, tt.n)
		if got := string(b); got != tt.want {
			t.Errorf("putDigits(%d, width %d) = %q, want %q", tt.n, tt.width, got, tt.want)
		}
		if got := string(appendDigits([]byte("x"), tt.n, tt.width)); got != "x"+tt.want {
			t.Errorf("appendDigits(%d, %d) = %q", tt.n, tt.width, got)
		}
	}
	for n := 0; n < 10000; n++ {
		b := make([]byte, 4)
		putDigits(b, n)
		if want := fmt.Sprintf("%04d", n); string(b) != want {
			t.Fatalf("putDigits(%d, 4) = %q, want %q", n, b, want)
		}
	}
}
