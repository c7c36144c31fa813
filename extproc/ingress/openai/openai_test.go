package openai

import (
	"fmt"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
)

func TestAdapter(t *testing.T) {
	a := Adapter{}
	body := []byte(`{"model":"m","messages":[],"unknown_field":{"kept":true}}`)
	if out, err := a.Canonical(body); err != nil || string(out) != string(body) {
		t.Errorf("Canonical changed the body: %s, %v", out, err)
	}
	if out, err := a.Response(body, "m"); out != nil || err != nil {
		t.Errorf("Response = %s, %v; want nil (unchanged)", out, err)
	}
	if a.NewStream("m", "id") != nil {
		t.Error("NewStream: an OpenAI stream needs no reshaping")
	}
	if got := a.ErrorBody(400, []byte(`{"error":{}}`)); string(got) != `{"error":{}}` {
		t.Errorf("ErrorBody = %s", got)
	}
	got := string(a.AppendStreamError([]byte("data: x\n\n"), fmt.Errorf("%w: cut", errs.ErrUpstreamBadReply)))
	want := "data: x\n\ndata: " + string(errs.Body(fmt.Errorf("%w: cut", errs.ErrUpstreamBadReply))) + "\n\ndata: [DONE]\n\n"
	if got != want {
		t.Errorf("AppendStreamError =\n%q\nwant\n%q", got, want)
	}
}
