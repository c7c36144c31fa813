// Package route resolves the model a client asks for to a configured model
// and the backends that serve it.
package route

import (
	"sort"
	"strings"

	"github.com/weir-ai/weir/config"
)

// Target is where a model name resolves.
type Target struct {
	// Model is the configured entry that matched (for a wildcard, the
	// pattern), used as a bounded-cardinality metrics label.
	Model *config.Model
	// Backends in preference order.
	Backends []string
	// UpstreamModel is the name to send to the provider.
	UpstreamModel string
}

// LimitName is the model name that per-model limits and budgets
// (model_limits, model_max_budget, model_rpm_limit, ...) match, whatever
// the client's spelling: the config model's name for an exact name or any
// of its aliases ("fake-openai" is "gpt-4o-mini"), and the upstream model
// for a wildcard route ("openai/gpt-4o-mini" is "gpt-4o-mini"). So a limit
// on "gpt-4o-mini" catches all three spellings.
func (t *Target) LimitName() string {
	if t.Model == nil {
		return ""
	}
	if t.Model.IsWildcard() {
		return t.UpstreamModel
	}
	return t.Model.Name
}

// Table resolves model names. It is immutable after [New] and safe for
// concurrent use without locks.
type Table struct {
	exact     map[string]*config.Model
	wildcards []*config.Model // longest prefix first
}

// New builds a table from validated models.
func New(models []config.Model) *Table {
	t := &Table{exact: make(map[string]*config.Model, len(models))}
	for i := range models {
		m := &models[i]
		if m.IsWildcard() {
			t.wildcards = append(t.wildcards, m)
			continue
		}
		t.exact[m.Name] = m
		for _, a := range m.Aliases {
			t.exact[a] = m
		}
	}
	// Longest prefix wins, so "openai/gpt-4o*" beats "openai/*".
	sort.SliceStable(t.wildcards, func(i, j int) bool {
		return len(t.wildcards[i].Name) > len(t.wildcards[j].Name)
	})
	return t
}

// Resolve finds the target for a requested model name.
func (t *Table) Resolve(name string) (Target, bool) {
	if m, ok := t.exact[name]; ok {
		up := m.ProviderModel
		if up == "" {
			up = m.Name
		}
		return Target{Model: m, Backends: m.Backends, UpstreamModel: up}, true
	}
	for _, m := range t.wildcards {
		prefix := m.Name[:len(m.Name)-1]
		if rest, ok := strings.CutPrefix(name, prefix); ok && rest != "" {
			up := m.ProviderModel
			if up == "" {
				// Strip the routing namespace ("openai/"), keep the rest of
				// the name: "openai/o1*" sends "o1-mini", "gpt-*" sends
				// "gpt-4o" unchanged.
				up = name[strings.LastIndexByte(prefix, '/')+1:]
			}
			return Target{Model: m, Backends: m.Backends, UpstreamModel: up}, true
		}
	}
	return Target{}, false
}
