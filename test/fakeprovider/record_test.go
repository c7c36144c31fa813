package fakeprovider_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/weir-ai/weir/test/fakeprovider"
)

// TestRecordLimit: a fake bounded as `weir dev` bounds it keeps only the
// most recent requests, by count and by body bytes, never fewer than the
// newest one.
func TestRecordLimit(t *testing.T) {
	tests := []struct {
		name   string
		limit  fakeprovider.RecordLimit
		bodies []string
		want   []string // the bodies kept
	}{
		{"unlimited", fakeprovider.RecordLimit{}, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"by count", fakeprovider.RecordLimit{Requests: 2}, []string{"a", "b", "c", "d"}, []string{"c", "d"}},
		{"by bytes", fakeprovider.RecordLimit{BodyBytes: 10}, []string{"aaaa", "bbbb", "cccc", "dddd"}, []string{"cccc", "dddd"}},
		{"a body above the byte limit", fakeprovider.RecordLimit{BodyBytes: 10}, []string{"aaaa", strings.Repeat("x", 20)}, []string{strings.Repeat("x", 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeprovider.New(fakeprovider.OpenAI)
			f.SetRecordLimit(tt.limit)
			for _, b := range tt.bodies {
				f.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/unknown", strings.NewReader(b)))
			}
			var got []string
			for _, r := range f.Requests() {
				got = append(got, string(r.Body))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("kept %q, want %q", got, tt.want)
			}
		})
	}
}
