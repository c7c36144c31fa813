package spend_test

import (
	"fmt"
	"testing"

	"github.com/weir-ai/weir/extproc/spend"
)

func TestSeenIsBounded(t *testing.T) {
	s := &spend.Seen{Window: 3}
	for i := range 10 {
		s.Add(fmt.Sprint(i))
	}
	tests := []struct {
		id   string
		want bool
	}{{"9", true}, {"8", true}, {"6", true}, {"5", false}, {"0", false}}
	for _, tt := range tests {
		if got := s.Has(tt.id); got != tt.want {
			t.Errorf("Has(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
