package spend_test

import (
	"testing"

	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/spendtest"
)

func TestQueueExactlyOnce(t *testing.T) {
	q := spend.NewQueue()
	spendtest.RunExactlyOnce(t, q, func() spend.Source { return q }, q.Len)
}
