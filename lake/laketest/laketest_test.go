package laketest_test

import (
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/lake/laketest"
)

func TestMemory(t *testing.T) {
	laketest.Run(t, func(testing.TB) lakelink.Lake { return laketest.NewMemory() })
}

func TestFaultyWithoutFaults(t *testing.T) {
	laketest.Run(t, func(testing.TB) lakelink.Lake { return laketest.NewFaulty(laketest.NewMemory()) })
}

func TestBasic(t *testing.T) {
	laketest.Run(t, func(testing.TB) lakelink.Lake { return laketest.Basic(laketest.NewMemory()) })
}
