package limits_test

import (
	"context"
	"testing"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
)

func TestMemory(t *testing.T) {
	limitstest.Run(t, func(t *testing.T, clock budget.Clock) limitstest.Stores {
		m := limits.NewMemory(clock)
		return limitstest.Stores{A: m, B: m, Get: m.Get, Records: func(context.Context) (int, error) { return m.Reservations(), nil }}
	})
}
