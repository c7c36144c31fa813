package fakeprovider

import "testing"

// TestResponsesPreviousID: the Responses fake stores what it answers
// (unless store is false) and honours previous_response_id only for an id
// it stored, as OpenAI does.
func TestResponsesPreviousID(t *testing.T) {
	_, url := newTest(t, OpenAI)
	first := do(t, OpenAI, "POST", url+"/v1/responses", `{"model":"gpt-4o-mini","input":"hi"}`, nil).json(t)
	id, _ := first["id"].(string)
	unstored := do(t, OpenAI, "POST", url+"/v1/responses", `{"model":"gpt-4o-mini","input":"hi","store":false}`, nil).json(t)
	tests := []struct {
		name, prev string
		want       int
	}{
		{"stored", id, 200},
		{"not stored", unstored["id"].(string), 400},
		{"unknown", "resp_nope", 400},
	}
	for _, tt := range tests {
		r := do(t, OpenAI, "POST", url+"/v1/responses", `{"model":"gpt-4o-mini","input":"again","previous_response_id":"`+tt.prev+`"}`, nil)
		if r.Status != tt.want {
			t.Errorf("%s: status %d, want %d: %s", tt.name, r.Status, tt.want, r.Body)
			continue
		}
		m := r.json(t)
		if tt.want == 200 && m["previous_response_id"] != tt.prev {
			t.Errorf("%s: previous_response_id %v", tt.name, m["previous_response_id"])
		}
		if tt.want == 400 && get(t, m, "error", "code") != "previous_response_not_found" {
			t.Errorf("%s: %s", tt.name, r.Body)
		}
	}
}
