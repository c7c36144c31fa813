// Package runtime compiles a validated [config.Config] into the immutable
// structures the hot path reads: translators per backend, the model table
// and pre-rendered responses. A new config compiles into a new Runtime that
// the server swaps in atomically, so no request ever sees half a config and
// no lock is taken per request.
package runtime

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/tidwall/sjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/provider/registry"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/storedid"
)

// Backend is a compiled backend.
type Backend struct {
	Config     *config.Backend
	Translator provider.Translator
	// Authority is the host[:port] to send as :authority.
	Authority string
	// PathPrefix is the base URL's path without a trailing slash.
	PathPrefix string
	// Headers are the backend's extra headers, resolved.
	Headers []provider.Header
	// Forward is the client request headers this backend gets: its
	// provider's default allow-list and the config's forward_headers.
	Forward HeaderSet
	// Expose is the provider response headers the config's expose_headers
	// pass to clients besides the gateway-wide default.
	Expose HeaderSet

	// Prebuilt once per config so the request path does not rebuild them.
	// They are shared by every request and must never be modified.
	//
	// BackendHeader sets config.HeaderBackend to the backend's name (the
	// router-level reply that picks the cluster).
	BackendHeader *corev3.HeaderValueOption
	// UpstreamHeaders are the upstream-level sets that do not depend on
	// the request: :authority, content-type and Headers.
	UpstreamHeaders []*corev3.HeaderValueOption
	// MetaName is the backend's name as a dynamic metadata value.
	MetaName *structpb.Value
	// headers interns the header entries requests to this backend repeat
	// (its credential, API version, :path), so the request path does not
	// build the same proto entries again.
	headers [8]atomic.Pointer[corev3.HeaderValueOption]
	// HeaderNames lists, comma-separated, the header names every request
	// prepared for this backend sets (:path, :authority, content-type,
	// Headers), for the weir.dev "headers" metadata. content-length is not among them: it
	// always describes the body Envoy holds, which a later attempt replays.
	HeaderNames string
}

// HeaderSet is a set of lower-case header names, read concurrently and
// never modified after Compile.
type HeaderSet map[string]struct{}

// Has reports whether name is in the set.
func (s HeaderSet) Has(name string) bool {
	_, ok := s[name]
	return ok
}

func newHeaderSet(lists ...[]string) HeaderSet {
	s := HeaderSet{}
	for _, l := range lists {
		for _, n := range l {
			s[n] = struct{}{}
		}
	}
	return s
}

// HeaderOption builds a header mutation entry with only raw_value set
// (Envoy reads raw_value, and setting both is an error).
func HeaderOption(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
}

// Runtime is one compiled config.
type Runtime struct {
	Config   *config.Config
	Backends map[string]*Backend
	Routes   *route.Table
	// MaxBody is the request body limit in bytes.
	MaxBody int64
	// ModelsJSON is the pre-rendered GET /v1/models body.
	ModelsJSON []byte
	models     map[string][]byte // GET /v1/models/{id} bodies
	// modelNames are the listed names in list order; created is their
	// "created" time.
	modelNames []string
	created    int64
	// Hash identifies the config content, for logs and metrics.
	Hash string
	// Policy is the compiled auth and limits config.
	Policy *admission.Policy
	// creds holds the credential sources the translators use.
	creds *credsource.Lease
	// StoredIDs binds Responses API ids to keys; nil without
	// responses.id_secret.
	StoredIDs *storedid.Sealer
}

// Compile builds a Runtime. cfg must already be validated. Translators take
// their credential sources from creds, which keeps them across compiles
// while a backend's credential is unchanged; nil gives each compile its
// own. The caller calls [Runtime.Release] once the Runtime is replaced or
// not used; a failed compile releases what it took.
func Compile(cfg *config.Config, raw []byte, creds *credsource.Pool) (_ *Runtime, err error) {
	rt := &Runtime{
		Config:   cfg,
		Backends: make(map[string]*Backend, len(cfg.Backends)),
		Routes:   route.New(cfg.Models),
		MaxBody:  cfg.MaxBody(),
		models:   make(map[string][]byte),
	}
	pol, err := admission.Compile(&cfg.Auth, &cfg.Limits, cfg.Pricing)
	if err != nil {
		return nil, err
	}
	rt.Policy = pol
	if sec := cfg.Responses.IDSecret; sec != "" {
		rt.StoredIDs = storedid.New(sec.Reveal())
	}
	sum := sha256.Sum256(raw)
	rt.Hash = hex.EncodeToString(sum[:6])
	if creds == nil {
		creds = credsource.NewPool()
	}
	rt.creds = creds.Lease()
	defer func() {
		if err != nil {
			rt.creds.Release()
		}
	}()
	for i := range cfg.Backends {
		b := &cfg.Backends[i]
		t, err := registry.New(b, rt.creds)
		if err != nil {
			return nil, fmt.Errorf("%w: backends[%d].provider: %w", config.ErrInvalid, i, err)
		}
		u, err := url.Parse(b.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("%w: backends[%d].base_url: %w", config.ErrInvalid, i, err)
		}
		cb := &Backend{
			Config:     b,
			Translator: t,
			Authority:  u.Host,
			PathPrefix: strings.TrimRight(u.Path, "/"),
			Forward:    newHeaderSet(registry.ForwardHeaders(b.Provider), b.ForwardHeaders),
			Expose:     newHeaderSet(b.ExposeHeaders),
		}
		keys := make([]string, 0, len(b.Headers))
		for k := range b.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			cb.Headers = append(cb.Headers, provider.Header{Key: k, Value: b.Headers[k].Reveal()})
		}
		cb.BackendHeader = HeaderOption(config.HeaderBackend, b.Name)
		cb.UpstreamHeaders = append(cb.UpstreamHeaders, HeaderOption(":authority", cb.Authority), HeaderOption("content-type", "application/json"))
		for _, h := range cb.Headers {
			cb.UpstreamHeaders = append(cb.UpstreamHeaders, HeaderOption(h.Key, h.Value))
		}
		cb.MetaName = structpb.NewStringValue(b.Name)
		names := []string{":path", ":authority", "content-type"}
		for _, h := range cb.Headers {
			names = append(names, h.Key)
		}
		cb.HeaderNames = strings.Join(names, ",")
		rt.Backends[b.Name] = cb
	}
	rt.renderModels(time.Now().Unix())
	return rt, nil
}

// Release gives back the Runtime's credential sources: those no other
// Runtime uses stop refreshing. Streams still running on it keep working
// while what the sources cached lasts (an OAuth2 token until it expires).
// It is idempotent.
func (rt *Runtime) Release() { rt.creds.Release() }

// renderModels pre-renders the model list: names and aliases, not
// wildcard patterns, which are not models a client can pick from a list.
func (rt *Runtime) renderModels(created int64) {
	rt.created = created
	// Appended by hand: sjson's "data.-1" copies the whole list per model,
	// quadratic in the models (a third of a second at 2,000, on every
	// config push).
	list := []byte(`{"object":"list","data":[`)
	n := 0
	for i := range rt.Config.Models {
		m := &rt.Config.Models[i]
		if m.IsWildcard() {
			continue
		}
		for _, name := range append([]string{m.Name}, m.Aliases...) {
			obj := rt.RenderModel(name, m)
			rt.models[name] = obj
			rt.modelNames = append(rt.modelNames, name)
			if n > 0 {
				list = append(list, ',')
			}
			list = append(list, obj...)
			n++
		}
	}
	rt.ModelsJSON = append(list, "]}"...)
}

// ModelNames are the names GET /v1/models lists, in order: each config
// model's name and aliases, no wildcard patterns. The slice is shared.
func (rt *Runtime) ModelNames() []string { return rt.modelNames }

// RenderModel renders the model object of name, a name for the config
// model m (its own, an alias, or a name under its wildcard).
func (rt *Runtime) RenderModel(name string, m *config.Model) []byte {
	owner := m.OwnedBy
	if owner == "" {
		owner = "weir"
	}
	obj := []byte(`{"id":"","object":"model","created":0,"owned_by":""}`)
	obj, _ = sjson.SetBytes(obj, "id", name)
	obj, _ = sjson.SetBytes(obj, "created", rt.created)
	obj, _ = sjson.SetBytes(obj, "owned_by", owner)
	return obj
}

// ModelJSON returns the GET /v1/models/{id} body.
func (rt *Runtime) ModelJSON(id string) ([]byte, bool) {
	b, ok := rt.models[id]
	return b, ok
}

// Header returns a header mutation entry setting key to value. Entries are
// shared by every request and must never be modified. Each key keeps its
// own slot; a value that differs from the slot's (a SigV4 signature, say)
// gets a fresh entry, which then takes the slot. Slots are compared and
// swapped lock-free; keys beyond the slots are not interned.
func (b *Backend) Header(key, value string) *corev3.HeaderValueOption {
	free := -1
	for i := range b.headers {
		o := b.headers[i].Load()
		if o == nil {
			if free < 0 {
				free = i
			}
			continue
		}
		if o.Header.Key != key {
			continue
		}
		if string(o.Header.RawValue) == value {
			return o
		}
		free = i
		break
	}
	o := HeaderOption(key, value)
	if free >= 0 {
		b.headers[free].Store(o)
	}
	return o
}

// UpstreamPath joins the backend's base path with a provider path.
func (b *Backend) UpstreamPath(p string) string {
	return b.PathPrefix + p
}

// String is for logs.
func (b *Backend) String() string {
	return b.Config.Name + "(" + string(b.Config.Provider) + ", " + strconv.Quote(b.Authority) + ")"
}

// Unpriced is a routable model that the pricing table has no price for.
type Unpriced struct {
	Model    string // config model name
	Backend  string
	Upstream string // empty for a wildcard: the names under it vary
	Wildcard bool
}

// Unpriced lists the routable models without a price of their own, once
// per model (its first backend without one). A wildcard is listed unless
// every name under it is priced by a backend-wide override: the table
// cannot know which names clients will send. Config load logs them: a
// budgeted request for such a model is refused, or charged the fallback
// price when one is configured.
func (rt *Runtime) Unpriced() []Unpriced {
	if rt.Policy == nil || rt.Policy.Prices == nil {
		return nil
	}
	var out []Unpriced
	for i := range rt.Config.Models {
		m := &rt.Config.Models[i]
		for _, name := range m.Backends {
			b := rt.Backends[name]
			if b == nil {
				continue
			}
			prov := string(b.Config.Provider)
			if m.IsWildcard() && m.ProviderModel == "" {
				// A backend-wide override prices any name; probe with a
				// name no table holds.
				if !rt.Policy.Prices.Known(name, prov, "\x00") {
					out = append(out, Unpriced{Model: m.Name, Backend: name, Wildcard: true})
					break
				}
				continue
			}
			up := cmp.Or(m.ProviderModel, m.Name)
			if !rt.Policy.Prices.Known(name, prov, up) {
				out = append(out, Unpriced{Model: m.Name, Backend: name, Upstream: up})
				break
			}
		}
	}
	return out
}
