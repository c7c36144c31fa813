package admission

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/vkey"
)

// TestKeysLoading: until the admin store's keys have loaded, a
// well-formed key the gateway does not know may be one of them, so it is
// told to come back (503 with Retry-After), not that it is invalid (401,
// which SDKs do not retry). Config keys authenticate throughout; a
// malformed or missing key is a 401 either way; once loaded, an unknown
// key is a 401 again. Authenticate and Identify (GET /v1/models) agree.
func TestKeysLoading(t *testing.T) {
	cfgSec, _ := vkey.Generate()
	storeSec, _ := vkey.Generate()
	unknownSec, _ := vkey.Generate()
	cfgKey := &vkey.Key{Hash: cfgSec.Hash()}
	storeKey := &vkey.Key{Hash: storeSec.Hash()}
	keysMode, err := Compile(&config.Auth{Mode: "keys"}, &config.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	open, err := Compile(&config.Auth{}, &config.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(s vkey.Secret) [2]string { return [2]string{"Bearer " + s.Reveal(), ""} }
	xAPIKey := func(s vkey.Secret) [2]string { return [2]string{"", s.Reveal()} }
	type want struct {
		key    *vkey.Key // admitted with this key (nil: anonymous or refused)
		status int       // 0: admitted
		code   string
		rule   errs.Rule
		retry  time.Duration // 0: no Retry-After
	}
	admitted := func(k *vkey.Key) want { return want{key: k} }
	loading := want{status: 503, code: "unavailable", rule: errs.RuleKeysLoading, retry: KeysLoadingRetry}
	unknown := want{status: 401, code: "invalid_api_key", rule: errs.RuleKeyUnknown}
	missing := want{status: 401, code: "invalid_api_key", rule: errs.RuleKeyMissing}
	tests := []struct {
		name    string
		policy  *Policy
		noStore bool // no admin API store at all (Gate.Extra nil)
		loaded  bool
		creds   [2]string // Authorization, x-api-key
		want    want
	}{
		{"not loaded, config key", keysMode, false, false, bearer(cfgSec), admitted(cfgKey)},
		{"not loaded, config key in x-api-key", keysMode, false, false, xAPIKey(cfgSec), admitted(cfgKey)},
		{"not loaded, store key", keysMode, false, false, bearer(storeSec), loading},
		{"not loaded, unknown key", keysMode, false, false, bearer(unknownSec), loading},
		{"not loaded, unknown key in x-api-key (Anthropic)", keysMode, false, false, xAPIKey(unknownSec), loading},
		{"not loaded, malformed key", keysMode, false, false, [2]string{"Bearer sk-weir-short", ""}, unknown},
		{"not loaded, not a sk-weir- key", keysMode, false, false, [2]string{"Bearer sk-proj-" + strings.Repeat("a", 43), ""}, unknown},
		{"not loaded, not a bearer", keysMode, false, false, [2]string{"Basic " + unknownSec.Reveal(), ""}, unknown},
		{"not loaded, no key", keysMode, false, false, [2]string{}, missing},
		{"not loaded, open mode ignores the key", open, false, false, bearer(unknownSec), admitted(nil)},
		{"no admin store, unknown key", keysMode, true, false, bearer(unknownSec), unknown},
		{"loaded, config key", keysMode, false, true, bearer(cfgSec), admitted(cfgKey)},
		{"loaded, store key", keysMode, false, true, bearer(storeSec), admitted(storeKey)},
		{"loaded, store key in x-api-key", keysMode, false, true, xAPIKey(storeSec), admitted(storeKey)},
		{"loaded, unknown key", keysMode, false, true, bearer(unknownSec), unknown},
		{"loaded, unknown key in x-api-key", keysMode, false, true, xAPIKey(unknownSec), unknown},
		{"loaded, malformed key", keysMode, false, true, [2]string{"Bearer sk-weir-short", ""}, unknown},
		{"loaded, no key", keysMode, false, true, [2]string{}, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Gate{Keys: vkey.NewKeyring(cfgKey), Clock: time.Now}
			if !tt.noStore {
				// What the syncer does: the ring fills at the first load,
				// then the gate is told.
				g.Extra = vkey.NewKeyring()
				if tt.loaded {
					g.Extra.Replace([]*vkey.Key{storeKey})
					g.MarkExtraLoaded()
				}
			}
			check := func(via string, k *vkey.Key, err error) {
				t.Helper()
				if tt.want.status == 0 {
					if err != nil || k != tt.want.key {
						t.Errorf("%s: key %v, err %v; want admitted with %v", via, k, err, tt.want.key)
					}
					return
				}
				kind, _ := errs.KindOf(err)
				ra, hasRA := errs.RetryAfter(err)
				if err == nil || kind.Status != tt.want.status || kind.Code != tt.want.code || errs.RuleOf(err) != tt.want.rule ||
					ra != tt.want.retry || hasRA != (tt.want.retry > 0) {
					t.Errorf("%s: err %v: status %d code %q rule %q Retry-After %v (%v); want %d %q %q %v",
						via, err, kind.Status, kind.Code, errs.RuleOf(err), ra, hasRA, tt.want.status, tt.want.code, tt.want.rule, tt.want.retry)
				}
				if tt.want.status == 503 && !strings.Contains(string(errs.Body(err)), "keys are still loading") {
					t.Errorf("%s: body %s does not say the keys are loading", via, errs.Body(err))
				}
			}
			k, _, err := g.Authenticate(tt.policy, tt.creds[0], tt.creds[1], "/v1/chat/completions", "gpt-4o-mini")
			check("Authenticate", k, err)
			k, err = g.Identify(tt.policy, tt.creds[0], tt.creds[1], "/v1/models")
			check("Identify", k, err)
		})
	}
}
