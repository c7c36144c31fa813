package extproc

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/vkey"
)

// models answers GET /v1/models and /v1/models/{id}. Without a key (open
// mode, or an optional path) it lists the config's models and aliases.
// With one, as OpenAI and LiteLLM do, it lists only the names the key may
// send, so a list never shows a restricted key the config's other names
// (aliases often name a backend); in keys mode a key is required, and
// refused as for any request. A name the key may not use is a 404, the
// same answer as for a name that does not exist.
func (r *routerStream) models() *extprocv3.ProcessingResponse {
	q := &r.req
	var k *vkey.Key
	p := r.rt.Policy
	if p != nil && p.Active(r.s.gate) {
		var err error
		if k, err = r.s.gate.Identify(p, q.Authorization, q.APIKey, q.Path); err != nil {
			q.Ticket.Key = k // for the refusal's log line
			return r.fail(err)
		}
	}
	id, one := strings.CutPrefix(q.Path, "/v1/models/")
	var body []byte
	switch {
	case k == nil && !one:
		body = r.rt.ModelsJSON
	case k == nil:
		body, _ = r.rt.ModelJSON(id)
	default:
		list := r.keyModels(p, k)
		if !one {
			body = append([]byte(`{"object":"list","data":[`), bytes.Join(list.objs, []byte(","))...)
			body = append(body, "]}"...)
		} else if i := slices.Index(list.ids, id); i >= 0 {
			body = list.objs[i]
		}
	}
	if body == nil {
		return r.fail(fmt.Errorf("%w: the model %q does not exist or you do not have access to it", errs.ErrModelNotFound, id))
	}
	r.resp.Status, r.resp.Done = 200, true
	return immediateBody(200, &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{contentTypeJSON}}, body, "weir_models")
}

// modelList is a key's model list: ids and their rendered objects.
type modelList struct {
	ids  []string
	objs [][]byte
}

func (l *modelList) add(id string, obj []byte) {
	if !slices.Contains(l.ids, id) {
		l.ids, l.objs = append(l.ids, id), append(l.objs, obj)
	}
}

// keyModels lists the names k may send, each checked by the rules a
// request is ([admission.Gate.Permits]): the config's names and aliases
// in config order; then k's own aliases, sorted, of a model that routes;
// then exact names in k's models that route only through a wildcard
// ("openai/gpt-4.1" under "openai/*"). Patterns are never listed.
func (r *routerStream) keyModels(p *admission.Policy, k *vkey.Key) *modelList {
	g, rt := r.s.gate, r.rt
	l := &modelList{}
	for _, name := range rt.ModelNames() {
		if _, ok := k.Aliases[name]; ok {
			continue // the key's alias wins, listed below
		}
		if g.Permits(p, k, name) {
			obj, _ := rt.ModelJSON(name)
			l.add(name, obj)
		}
	}
	aliases := make([]string, 0, len(k.Aliases))
	for a := range k.Aliases {
		aliases = append(aliases, a)
	}
	slices.Sort(aliases)
	for _, a := range aliases {
		if t, ok := rt.Routes.Resolve(k.Aliases[a]); ok && g.Permits(p, k, a) {
			l.add(a, rt.RenderModel(a, t.Model))
		}
	}
	for _, m := range k.Models {
		if strings.HasSuffix(m, "*") {
			continue
		}
		if t, ok := rt.Routes.Resolve(m); ok && g.Permits(p, k, m) {
			l.add(m, rt.RenderModel(m, t.Model))
		}
	}
	return l
}
