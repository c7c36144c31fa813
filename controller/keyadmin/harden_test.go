package keyadmin

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/vkey"
)

// TestAdminInputHardening covers the admin API findings of the 2026-12-06
// probe (#9, #13): mass deletion by an empty alias, duplicate aliases,
// silently ignored fields, control characters in names, soft above max
// budget, unbounded lists and metadata, and keys in query strings.
func TestAdminInputHardening(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			store, sr, _ := b.store(t)
			h, err := New(master, store, sr)
			if err != nil {
				t.Fatal(err)
			}
			for _, setup := range []struct{ path, body string }{
				{"/team/new", `{"team_id":"t1"}`},
				{"/team/new", `{"team_id":"t2"}`},
				{"/user/new", `{"user_id":"u1","auto_create_key":false}`},
			} {
				if code, res := do(t, h, "POST", setup.path, setup.body); code != 200 {
					t.Fatalf("%s: %d %s", setup.path, code, res.Raw)
				}
			}
			// Two keys without an alias, one with.
			var secrets []string
			for _, body := range []string{`{}`, `{"team_id":"t1"}`, `{"key_alias":"app","team_id":"t1","max_budget":3}`} {
				code, res := do(t, h, "POST", "/key/generate", body)
				if code != 200 {
					t.Fatalf("generate %s: %d %s", body, code, res.Raw)
				}
				secrets = append(secrets, res.Get("key").Str)
			}
			aliased := secrets[2]
			hash := func(s string) string { sec, _ := vkey.FromHeaders("", s); return sec.Hash().String() }

			long := func(n int) string { return strings.Repeat("m", n) }
			many := func(n int, f func(i int) string) string {
				parts := make([]string, n)
				for i := range parts {
					parts[i] = f(i)
				}
				return strings.Join(parts, ",")
			}
			tests := []struct {
				name, method, path, body string
				status                   int
				msg                      []string // substrings of error.message
			}{
				// #9: an empty alias named every key without one.
				{"delete empty alias", "POST", "/key/delete", `{"key_aliases":[""]}`, 400, []string{"key_aliases"}},
				{"delete blank alias", "POST", "/key/delete", `{"key_aliases":["  "]}`, 400, []string{"key_aliases"}},
				{"delete empty alias among others", "POST", "/key/delete", `{"key_aliases":["app",""]}`, 400, nil},
				// Aliases are unique per owner (team_id, user_id).
				{"alias taken by the same owner", "POST", "/key/generate", `{"key_alias":"app","team_id":"t1"}`, 409, []string{`"app"`}},
				{"alias free for another team", "POST", "/key/generate", `{"key_alias":"app","team_id":"t2"}`, 200, nil},
				{"alias free for another owner", "POST", "/key/generate", `{"key_alias":"app"}`, 200, nil},
				{"update to a taken alias", "POST", "/key/update", `{"key":"` + secrets[1] + `","key_alias":"app"}`, 409, []string{`"app"`}},
				{"move into a team whose alias is taken", "POST", "/key/update", `{"key":"` + secrets[0] + `","key_alias":"app","team_id":"t2"}`, 409, nil},
				{"ambiguous delete by alias", "POST", "/key/delete", `{"key_aliases":["app"]}`, 400, []string{"team_id"}},

				// #13: unknown fields are named, on every endpoint.
				{"generate expires", "POST", "/key/generate", `{"expires":"2000-01-01T00:00:00Z"}`, 400, []string{`"expires"`}},
				{"generate permissions", "POST", "/key/generate", `{"models":["x"],"permissions":{"a":1},"zzz":1}`, 400, []string{`"permissions"`, `"zzz"`}},
				{"update unknown", "POST", "/key/update", `{"key":"` + aliased + `","expires":"2000-01-01T00:00:00Z"}`, 400, []string{`"expires"`}},
				{"block unknown", "POST", "/key/block", `{"key":"` + aliased + `","reason":"x"}`, 400, []string{`"reason"`}},
				{"unblock unknown", "POST", "/key/unblock", `{"key":"` + aliased + `","reason":"x"}`, 400, []string{`"reason"`}},
				{"delete unknown", "POST", "/key/delete", `{"keys":["` + secrets[0] + `"],"force":true}`, 400, []string{`"force"`}},
				{"team new unknown", "POST", "/team/new", `{"team_id":"t9","members":[]}`, 400, []string{`"members"`}},
				{"team update unknown", "POST", "/team/update", `{"team_id":"t1","members":[]}`, 400, []string{`"members"`}},
				{"team block unknown", "POST", "/team/block", `{"team_id":"t1","why":1}`, 400, []string{`"why"`}},
				{"user new unknown", "POST", "/user/new", `{"user_id":"u9","send_invite_email":true}`, 400, []string{`"send_invite_email"`}},
				{"user update unknown", "POST", "/user/update", `{"user_id":"u1","duration":"1d"}`, 400, []string{`"duration"`}},
				{"unknown inside model_limits", "POST", "/key/generate", `{"model_limits":{"m":{"rpm":5}}}`, 400, []string{`"rpm"`}},

				{"negative model_limits rpm", "POST", "/key/generate", `{"model_limits":{"gpt-4o-mini":{"rpm_limit":-1}}}`, 400, nil},
				{"negative model_limits budget", "POST", "/team/new", `{"model_limits":{"gpt-4o-mini":{"max_budget":-1}}}`, 400, nil},

				// Control characters in names, ids and aliases.
				{"alias NUL", "POST", "/key/generate", `{"key_alias":"a\u0000b"}`, 400, []string{"key_alias", "control"}},
				{"alias ESC", "POST", "/key/generate", `{"key_alias":"a\u001b[31m"}`, 400, nil},
				{"alias CRLF", "POST", "/key/generate", `{"key_alias":"a\r\nb"}`, 400, nil},
				{"alias DEL", "POST", "/key/generate", `{"key_alias":"a\u007f"}`, 400, nil},
				{"alias C1", "POST", "/key/generate", `{"key_alias":"a\u0085"}`, 400, nil},
				{"alias bidi override", "POST", "/key/generate", `{"key_alias":"gpt\u202Egnp.exe"}`, 400, nil},
				{"alias bidi isolate", "POST", "/key/generate", `{"key_alias":"a\u2066b"}`, 400, nil},
				{"user_id control", "POST", "/key/generate", `{"user_id":"u\n1"}`, 400, []string{"user_id"}},
				{"model control", "POST", "/key/generate", `{"models":["gpt\u0000"]}`, 400, []string{"models"}},
				{"tag control", "POST", "/key/generate", `{"tags":["a\tb"]}`, 400, nil},
				{"metadata key control", "POST", "/key/generate", `{"metadata":{"a\u001bb":"x"}}`, 400, nil},
				{"model_limits key control", "POST", "/key/generate", `{"model_limits":{"m\u202e":{"rpm_limit":1}}}`, 400, nil},
				{"alias target control", "POST", "/key/generate", `{"aliases":{"fast":"gpt\r"}}`, 400, nil},
				{"team_id control", "POST", "/team/new", `{"team_id":"t\u0000"}`, 400, []string{"team_id"}},
				{"team_alias control", "POST", "/team/new", `{"team_alias":"x\u202e"}`, 400, nil},
				{"organization_id control", "POST", "/team/new", `{"organization_id":"o\u0007"}`, 400, nil},
				{"user_email control", "POST", "/user/new", `{"user_email":"a@b\r\nBcc: c"}`, 400, nil},
				{"delete alias control", "POST", "/key/delete", `{"key_aliases":["a\u0000"]}`, 400, nil},
				{"unicode names are fine", "POST", "/key/generate", `{"key_alias":"équipe 東京 ✓","tags":["ü"]}`, 200, nil},

				// soft_budget may not exceed max_budget.
				{"soft above max", "POST", "/key/generate", `{"max_budget":1,"soft_budget":2}`, 400, []string{"soft_budget"}},
				{"soft above stored max", "POST", "/key/update", `{"key":"` + aliased + `","soft_budget":5}`, 400, []string{"soft_budget"}},
				{"soft above max in model_limits", "POST", "/team/new", `{"model_limits":{"m":{"max_budget":1,"soft_budget":2}}}`, 400, nil},
				{"soft without max", "POST", "/key/generate", `{"soft_budget":2}`, 200, nil},
				{"soft equal max", "POST", "/user/new", `{"max_budget":2,"soft_budget":2,"auto_create_key":false}`, 200, nil},

				// Sizes.
				{"too many models", "POST", "/key/generate", `{"models":[` + many(maxListLen+1, func(i int) string { return `"m` + strconv.Itoa(i) + `"` }) + `]}`, 400, []string{"models"}},
				{"models at the limit", "POST", "/key/generate", `{"models":[` + many(maxListLen, func(int) string { return `"m"` }) + `]}`, 200, nil},
				{"name too long", "POST", "/key/generate", `{"key_alias":"` + long(maxNameLen+1) + `"}`, 400, []string{"key_alias"}},
				{"metadata too big", "POST", "/key/generate", `{"metadata":{"a":"` + long(maxMetadataBytes) + `"}}`, 400, []string{"metadata"}},
				{"too many model limits", "POST", "/team/new", `{"model_rpm_limit":{` + many(maxListLen+1, func(i int) string { return `"m` + strconv.Itoa(i) + `":1` }) + `}}`, 400, nil},

				// Keys never travel in query strings.
				{"key in info query", "GET", "/key/info?key=" + aliased, "", 400, []string{"query", "POST"}},
				{"key in spend query", "GET", "/spend/logs?api_key=" + aliased, "", 400, []string{"query"}},
				{"key in list query", "GET", "/key/list?key_alias=" + aliased, "", 400, []string{"query"}},
				{"key as a query name", "GET", "/key/list?" + aliased, "", 400, []string{"query"}},
				{"info by hash in query", "GET", "/key/info?key=" + hash(aliased), "", 200, nil},
				{"info by key in body", "POST", "/key/info", `{"key":"` + aliased + `"}`, 200, nil},
				{"info by token in body", "POST", "/key/info", `{"token":"` + hash(aliased) + `"}`, 200, nil},
				{"info body unknown", "POST", "/key/info", `{"key":"` + aliased + `","x":1}`, 400, []string{`"x"`}},
			}
			for _, tc := range tests {
				code, res := do(t, h, tc.method, tc.path, tc.body)
				if code != tc.status {
					t.Errorf("%s: %d, want %d: %.300s", tc.name, code, tc.status, res.Raw)
					continue
				}
				if strings.Contains(res.Raw, aliased) {
					t.Errorf("%s: the answer echoes the key: %s", tc.name, res.Raw)
				}
				for _, s := range tc.msg {
					if m := res.Get("error.message").Str; !strings.Contains(m, s) {
						t.Errorf("%s: message %q does not contain %q", tc.name, m, s)
					}
				}
			}
			// The refused deletions removed nothing.
			if _, l := do(t, h, "GET", "/key/list", ""); l.Get("total_count").Int() < 3 {
				t.Fatalf("keys were deleted: %s", l.Raw)
			}
			for _, s := range secrets {
				if code, res := do(t, h, "POST", "/key/info", `{"key":"`+s+`"}`); code != 200 {
					t.Fatalf("key %s gone: %d %s", vkey.DisplayPrefix(s), code, res.Raw)
				}
			}
			// Deleting by alias with its owner removes exactly that key.
			code, res := do(t, h, "POST", "/key/delete", `{"key_aliases":["app"],"team_id":"t1"}`)
			if code != 200 || res.Get("deleted_keys.#").Int() != 1 || res.Get("deleted_keys.0").Str != hash(aliased) {
				t.Fatalf("delete by alias and owner: %d %s", code, res.Raw)
			}
			// The alias is free again for that owner.
			if code, res := do(t, h, "POST", "/key/generate", `{"key_alias":"app","team_id":"t1"}`); code != 200 {
				t.Fatalf("alias not freed by delete: %d %s", code, res.Raw)
			}
			// Renaming frees the old alias.
			code, gen := do(t, h, "POST", "/key/generate", `{"key_alias":"old","user_id":"u1"}`)
			if code != 200 {
				t.Fatal(gen.Raw)
			}
			if code, res := do(t, h, "POST", "/key/update", `{"key":"`+gen.Get("key").Str+`","key_alias":"new"}`); code != 200 {
				t.Fatalf("rename: %d %s", code, res.Raw)
			}
			if code, res := do(t, h, "POST", "/key/generate", `{"key_alias":"old","user_id":"u1"}`); code != 200 {
				t.Fatalf("alias not freed by rename: %d %s", code, res.Raw)
			}
		})
	}
}

func TestMasterKeyStrength(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"", false},
		{"sk-master-test-1234", false},                 // 19 characters
		{strings.Repeat("a", 40), false},               // one character
		{strings.Repeat("ab", 20), false},              // two
		{strings.Repeat("0123456789abcdef", 2), false}, // a repeated block
		{"mk-" + strings.Repeat("abc", 11), false},     // three characters after a prefix
		{"mk-9f86d081884c7d659a2feaa0c55ad015", true},  // mk-$(openssl rand -hex 16)
		{master, true},
	} {
		_, err := New(tc.key, keystore.NewMemory(), nil)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q): %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err := CheckMasterKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("CheckMasterKey(%q): %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), tc.key) && tc.key != "" {
			t.Errorf("the error repeats the master key: %v", err)
		}
	}
}

// interleave is a KeyStore whose first GetKey of a key blocks after
// reading until release is closed: the read-modify-write of one update
// then spans another update, the interleaving that lost updates.
type interleave struct {
	keystore.Store
	once    sync.Once
	read    chan struct{}
	release chan struct{}
}

func (s *interleave) GetKey(ctx context.Context, h vkey.Hash) (*keystore.KeyRecord, error) {
	k, err := s.Store.GetKey(ctx, h)
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.read)
		<-s.release
	}
	return k, err
}

// TestConcurrentKeyUpdates: two updates of different fields of one key,
// the first reading before the second writes and writing after it. Both
// land (the store's compare-and-set fails the first write, which the
// handler redoes on a fresh read); a client that names the revision it
// read gets 409 instead.
func TestConcurrentKeyUpdates(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			base, sr, _ := b.store(t)
			ctx := context.Background()
			plain, err := New(master, base, sr)
			if err != nil {
				t.Fatal(err)
			}
			code, gen := do(t, plain, "POST", "/key/generate", `{"key_alias":"k","max_budget":1}`)
			if code != 200 {
				t.Fatal(gen.Raw)
			}
			secret := gen.Get("key").Str
			rev := gen.Get("revision").Int()
			if rev < 1 {
				t.Fatalf("no revision in %s", gen.Raw)
			}

			st := &interleave{Store: base, read: make(chan struct{}), release: make(chan struct{})}
			slow, err := New(master, st, sr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan gjson.Result)
			go func() {
				code, res := do(t, slow, "POST", "/key/update", `{"key":"`+secret+`","max_budget":20}`)
				if code != 200 {
					t.Errorf("first update: %d %s", code, res.Raw)
				}
				done <- res
			}()
			<-st.read
			if code, res := do(t, plain, "POST", "/key/update", `{"key":"`+secret+`","rpm_limit":7}`); code != 200 {
				t.Fatalf("second update: %d %s", code, res.Raw)
			}
			close(st.release)
			<-done

			sec, _ := vkey.FromHeaders("", secret)
			k, err := base.GetKey(ctx, sec.Hash())
			if err != nil {
				t.Fatal(err)
			}
			if k.MaxBudget != 20 || k.RPM != 7 {
				t.Fatalf("an update was lost: max_budget %v rpm %v", k.MaxBudget, k.RPM)
			}
			if k.Revision != rev+2 {
				t.Fatalf("revision %d, want %d", k.Revision, rev+2)
			}

			// A stale revision from the client is a 409; the current one works.
			code, res := do(t, plain, "POST", "/key/update", `{"key":"`+secret+`","revision":`+itoa(rev)+`,"tpm_limit":5}`)
			if code != 409 || res.Get("error.code").Str != "conflict" {
				t.Fatalf("stale revision: %d %s", code, res.Raw)
			}
			code, res = do(t, plain, "POST", "/key/update", `{"key":"`+secret+`","revision":`+itoa(k.Revision)+`,"tpm_limit":5}`)
			if code != 200 || res.Get("revision").Int() != k.Revision+1 || res.Get("tpm_limit").Int() != 5 {
				t.Fatalf("current revision: %d %s", code, res.Raw)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
