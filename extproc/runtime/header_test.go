package runtime

import (
	"fmt"
	"sync"
	"testing"
)

func TestBackendHeaderInterns(t *testing.T) {
	b := &Backend{}
	tests := []struct {
		key, value string
		sameAsPrev bool // the entry returned for the previous row's key and value
	}{
		{"x-api-key", "k1", false},
		{"x-api-key", "k1", true},
		{":path", "/v1/messages", false},
		{":path", "/v1/messages", true},
		{"x-api-key", "k1", false}, // a different key came between
		{"x-api-key", "k2", false},
	}
	prev := b.Header("seed", "0")
	for i, tt := range tests {
		o := b.Header(tt.key, tt.value)
		if o.GetHeader().GetKey() != tt.key || string(o.GetHeader().GetRawValue()) != tt.value || o.GetHeader().GetValue() != "" {
			t.Fatalf("row %d: entry %v", i, o)
		}
		if (o == prev) != tt.sameAsPrev {
			t.Errorf("row %d: reused = %v, want %v", i, o == prev, tt.sameAsPrev)
		}
		prev = o
	}
	if b.Header("x-api-key", "k2") != b.Header("x-api-key", "k2") {
		t.Error("a repeated key and value must reuse its entry")
	}
	// More keys than slots still get correct entries.
	for i := range 3 * len(b.headers) {
		k := fmt.Sprintf("x-%d", i)
		if o := b.Header(k, "v"); o.GetHeader().GetKey() != k {
			t.Fatalf("entry for %s = %v", k, o)
		}
	}
}

// TestBackendHeaderConcurrent runs under -race: requests share entries.
func TestBackendHeaderConcurrent(t *testing.T) {
	b := &Backend{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := fmt.Sprint(i % (g + 1))
				if o := b.Header("authorization", v); string(o.GetHeader().GetRawValue()) != v {
					t.Errorf("got %q want %q", o.GetHeader().GetRawValue(), v)
					return
				}
			}
		})
	}
	wg.Wait()
}
