package keyadmin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/spend/redisstream"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

const master = "mk-test-3f9a1c7e5b2d48f6a0c9e1b7d3f5a8c2"

type backend struct {
	name  string
	store func(t *testing.T) (keystore.Store, book.Reader, spend.Sink)
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) (keystore.Store, book.Reader, spend.Sink) {
			b := &book.Memory{}
			return keystore.NewMemory(), b, b
		}},
		{"redis", func(t *testing.T) (keystore.Store, book.Reader, spend.Sink) {
			srv := redistest.Start(t)
			c := srv.Client()
			t.Cleanup(func() { c.Close() })
			b := book.NewRedis(c, "")
			st := redisstream.New(c, "{weir}:spend", "writers", "w1")
			if err := st.Init(context.Background()); err != nil {
				t.Fatal(err)
			}
			return keystore.NewRedis(c, ""), b, &streamSink{book: b, stream: st, ids: map[string]string{}}
		}},
	}
}

// streamSink feeds the Redis book as the spend writer does: a new record
// is appended to the stream, read and committed; a record written again
// is its stream entry delivered again.
type streamSink struct {
	book   *book.Redis
	stream *redisstream.Stream
	ids    map[string]string // request id → stream entry id
}

func (s *streamSink) Write(ctx context.Context, recs []spend.Record) error {
	var again []spend.Message
	fresh := 0
	for _, r := range recs {
		if id, ok := s.ids[r.RequestID]; ok {
			again = append(again, spend.Message{ID: id, Record: r})
			continue
		}
		if err := s.stream.Append(ctx, r); err != nil {
			return err
		}
		fresh++
	}
	msgs := again
	if fresh > 0 {
		read, err := s.stream.Read(ctx, fresh)
		if err != nil {
			return err
		}
		for _, m := range read {
			s.ids[m.Record.RequestID] = m.ID
		}
		msgs = append(msgs, read...)
	}
	return s.book.Commit(ctx, s.stream, msgs)
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr ...string) (int, gjson.Result) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+master)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content-type %q", method, path, ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s %s: invalid JSON %q", method, path, rec.Body.String())
	}
	res := gjson.ParseBytes(rec.Body.Bytes())
	if rec.Code != 200 && (res.Get("error.message").Type != gjson.String || res.Get("error.type").Type != gjson.String) {
		t.Fatalf("%s %s: %d without an OpenAI-shaped error: %s", method, path, rec.Code, rec.Body)
	}
	return rec.Code, res
}

func TestHandler(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			store, sr, sink := b.store(t)
			h, err := New(master, store, sr)
			if err != nil {
				t.Fatal(err)
			}
			h.GlobalMaxBudget = 1000
			ctx := context.Background()

			// Auth: no key, wrong key, wrong scheme, and internal-looking
			// headers or Host change nothing.
			for _, hdr := range [][]string{
				{"Authorization", ""},
				{"Authorization", "Bearer wrong"},
				{"Authorization", "Basic " + master},
				{"Authorization", "", "X-Forwarded-For", "127.0.0.1", "X-Weir-Admin", "1", "Host", "localhost"},
				{"Authorization", "Bearer " + master + "x"},
			} {
				if code, res := do(t, h, "GET", "/global/spend", "", hdr...); code != 401 || res.Get("error.code").Str != "invalid_api_key" {
					t.Errorf("auth %v: %d %s", hdr, code, res.Raw)
				}
			}

			// Team, then a key in it.
			code, team := do(t, h, "POST", "/team/new", `{"team_id":"t1","team_alias":"Team One","max_budget":50,"budget_duration":"1mo","rpm_limit":100}`)
			if code != 200 || team.Get("team_id").Str != "t1" || team.Get("max_budget").Num != 50 {
				t.Fatalf("team/new: %d %s", code, team.Raw)
			}
			code, gen := do(t, h, "POST", "/key/generate", `{"key_alias":"app","models":["gpt-4o","openai/*"],"max_budget":10.5,
				"budget_duration":"1d","tpm_limit":1000,"rpm_limit":10,"max_parallel_requests":2,"team_id":"t1","user_id":"u1",
				"duration":"30d","metadata":{"env":"prod","n":3},"tags":["a"],"aliases":{"fast":"gpt-4o-mini"},
				"model_max_budget":{"gpt-4o":5},"model_rpm_limit":{"gpt-4o":3}}`)
			if code != 200 {
				t.Fatalf("key/generate: %d %s", code, gen.Raw)
			}
			secret := gen.Get("key").Str
			sec, err := vkey.FromHeaders("", secret)
			if err != nil {
				t.Fatalf("generated key %q: %v", vkey.DisplayPrefix(secret), err)
			}
			token := gen.Get("token").Str
			if token != sec.Hash().String() || gen.Get("key_name").Str != sec.Prefix() {
				t.Fatalf("token/key_name: %s", gen.Raw)
			}
			for path, want := range map[string]any{
				"key_alias": "app", "max_budget": 10.5, "tpm_limit": 1000.0, "team_id": "t1", "metadata.n": "3",
				"metadata.env": "prod", "aliases.fast": "gpt-4o-mini", "model_limits.gpt-4o.max_budget": 5.0,
				"model_limits.gpt-4o.rpm_limit": 3.0, "budget_duration": "1d",
			} {
				if got := gen.Get(path).Value(); got != want {
					t.Errorf("generate %s = %v, want %v", path, got, want)
				}
			}
			exp, err := time.Parse(time.RFC3339, gen.Get("expires").Str)
			if err != nil || exp.Sub(time.Now()) < 29*24*time.Hour {
				t.Errorf("expires %q", gen.Get("expires").Str)
			}

			// The store never holds the key itself.
			stored, err := store.GetKey(ctx, sec.Hash())
			if err != nil {
				t.Fatal(err)
			}
			if raw, _ := json.Marshal(stored); strings.Contains(string(raw), secret) {
				t.Fatal("the store holds the plaintext key")
			}

			// info, by key (in a body) and by token; the key is not echoed.
			for _, req := range [][2]string{{"POST", `{"key":"` + secret + `"}`}, {"POST", `{"token":"` + token + `"}`}, {"GET", token}} {
				path, body := "/key/info", req[1]
				if req[0] == "GET" {
					path, body = "/key/info?key="+req[1], ""
				}
				code, info := do(t, h, req[0], path, body)
				if code != 200 || info.Get("info.key_alias").Str != "app" || strings.Contains(info.Raw, secret) {
					t.Fatalf("key/info: %d %s", code, info.Raw)
				}
			}

			// update: partial, other fields kept.
			code, upd := do(t, h, "POST", "/key/update", `{"key":"`+secret+`","max_budget":20,"models":["gpt-4o-mini"]}`)
			if code != 200 || upd.Get("max_budget").Num != 20 || upd.Get("key_alias").Str != "app" ||
				upd.Get("models.0").Str != "gpt-4o-mini" || upd.Get("key").Exists() {
				t.Fatalf("key/update: %d %s", code, upd.Raw)
			}

			// block / unblock, seen through a keyring.
			ring := vkey.NewKeyring()
			sy := &keystore.Syncer{Store: store, Ring: ring}
			if code, res := do(t, h, "POST", "/key/block", `{"key":"`+token+`"}`); code != 200 || !res.Get("blocked").Bool() {
				t.Fatalf("block: %d %s", code, res.Raw)
			}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			k, err := ring.Authenticate(sec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Check("gpt-4o-mini", time.Now()); !errors.Is(err, vkey.ErrBlocked) {
				t.Fatalf("blocked key: %v", err)
			}
			do(t, h, "POST", "/key/unblock", `{"key":"`+secret+`"}`)
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			k, _ = ring.Authenticate(sec)
			if _, err := k.Check("gpt-4o-mini", time.Now()); err != nil {
				t.Fatalf("unblocked key: %v", err)
			}

			// user/new issues a key too.
			code, user := do(t, h, "POST", "/user/new", `{"user_id":"u1","user_email":"a@b.c","teams":["t1"],"max_budget":3}`)
			if code != 200 || user.Get("user_id").Str != "u1" || !strings.HasPrefix(user.Get("key").Str, vkey.Prefix) ||
				user.Get("max_budget").Num != 3 {
				t.Fatalf("user/new: %d %s", code, user.Raw)
			}

			// list: two keys; filters and pages.
			if code, l := do(t, h, "GET", "/key/list", ""); code != 200 || l.Get("total_count").Int() != 2 || l.Get("keys.#").Int() != 2 {
				t.Fatalf("key/list: %d %s", code, l.Raw)
			}
			if _, l := do(t, h, "GET", "/key/list?key_alias=app&return_full_object=true", ""); l.Get("keys.0.token").Str != token {
				t.Fatalf("key/list filter: %s", l.Raw)
			}
			if _, l := do(t, h, "GET", "/key/list?size=1&page=2", ""); l.Get("keys.#").Int() != 1 || l.Get("total_pages").Int() != 2 {
				t.Fatalf("key/list page: %s", l.Raw)
			}

			// Spend: two records (one delivered twice) for the key.
			rec := spend.Record{RequestID: "r1", Time: time.Now().UTC(), KeyPrefix: sec.Hash().Short(), TeamID: "t1", UserID: "u1",
				Model: "gpt-4o", PromptTokens: 10, CompletionTokens: 5, CostMicroUSD: 1_500_000, Status: 200}
			rec2 := rec
			rec2.RequestID, rec2.CostMicroUSD, rec2.Model = "r2", 250_000, "gpt-4o-mini"
			for _, batch := range [][]spend.Record{{rec}, {rec, rec2}} {
				if err := sink.Write(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if _, g := do(t, h, "GET", "/global/spend", ""); g.Get("spend").Num != 1.75 || g.Get("max_budget").Num != 1000 {
				t.Fatalf("global/spend: %s", g.Raw)
			}
			if _, info := do(t, h, "GET", "/key/info?key="+token, ""); info.Get("info.spend").Num != 1.75 {
				t.Fatalf("key spend: %s", info.Raw)
			}
			if _, ti := do(t, h, "GET", "/team/info?team_id=t1", ""); ti.Get("team_info.spend").Num != 1.75 || ti.Get("keys.#").Int() != 2 {
				t.Fatalf("team/info: %s", ti.Raw)
			}
			if code, logs := do(t, h, "GET", "/spend/logs?api_key="+token, ""); code != 200 || logs.Get("#").Int() != 2 ||
				logs.Get("0.request_id").Str != "r2" || logs.Get("1.spend").Num != 1.5 {
				t.Fatalf("spend/logs: %d %s", code, logs.Raw)
			}
			if _, logs := do(t, h, "GET", "/spend/logs?request_id=r1", ""); logs.Get("#").Int() != 1 {
				t.Fatalf("spend/logs by request: %s", logs.Raw)
			}
			if _, logs := do(t, h, "GET", "/spend/logs?start_date=2000-01-01&end_date=2000-01-02", ""); logs.Get("#").Int() != 0 {
				t.Fatalf("spend/logs by date: %s", logs.Raw)
			}
			if total, _ := sr.Total(ctx, book.ScopeModel, "gpt-4o"); total != 1_500_000 {
				t.Fatalf("model total %d", total)
			}

			// Errors, table-driven.
			for _, tc := range []struct {
				method, path, body string
				status             int
			}{
				{"POST", "/key/generate", `{`, 400},
				{"POST", "/key/generate", `[]`, 400},
				{"POST", "/key/generate", `null`, 400},
				{"POST", "/key/generate", `{"max_budget":"ten"}`, 400},
				{"POST", "/key/generate", `{"max_budget":-1}`, 400},
				{"POST", "/key/generate", `{"budget_duration":"2y"}`, 400},
				{"POST", "/key/generate", `{"duration":"forever"}`, 400},
				{"POST", "/key/generate", `{"team_id":"nope"}`, 400},
				{"POST", "/key/generate", `{"key":"sk-weir-custom"}`, 400},
				{"POST", "/key/generate", `{"rpm_limit":-5}`, 400},
				{"GET", "/key/generate", ``, 405},
				{"POST", "/key/update", `{}`, 400},
				{"POST", "/key/update", `{"key":"sk-weir-unknown"}`, 404},
				{"POST", "/key/update", `{"key":"` + strings.Repeat("ab", 32) + `"}`, 404},
				{"POST", "/key/update", `{"key":"zz"}`, 400},
				{"POST", "/key/block", `{"key":123}`, 400},
				{"POST", "/key/delete", `{}`, 400},
				{"POST", "/key/delete", `{"keys":["` + strings.Repeat("cd", 32) + `"]}`, 404},
				{"POST", "/key/delete", `{"key_aliases":["none"]}`, 404},
				{"GET", "/key/info", ``, 400},
				{"GET", "/key/info?key=" + strings.Repeat("ef", 32), ``, 404},
				{"GET", "/key/list?page=0", ``, 400},
				{"POST", "/team/new", `{"team_id":"t1"}`, 400},
				{"GET", "/team/info", ``, 400},
				{"GET", "/team/info?team_id=none", ``, 404},
				{"POST", "/user/new", `{"user_id":"u1"}`, 400},
				{"POST", "/user/new", `{"teams":["none"]}`, 400},
				{"GET", "/spend/logs?start_date=yesterday", ``, 400},
				{"GET", "/nope", ``, 404},
				{"POST", "/key/generate", `{"key_alias":"` + strings.Repeat("x", maxBody) + `"}`, 413},
			} {
				if code, res := do(t, h, tc.method, tc.path, tc.body); code != tc.status {
					t.Errorf("%s %s %.60s: %d, want %d: %s", tc.method, tc.path, tc.body, code, tc.status, res.Raw)
				}
			}

			// delete, by key and by alias.
			if code, d := do(t, h, "POST", "/key/delete", `{"keys":["`+secret+`"]}`); code != 200 || d.Get("deleted_keys.0").Str != token {
				t.Fatalf("key/delete: %d %s", code, d.Raw)
			}
			if code, _ := do(t, h, "POST", "/key/info", `{"key":"`+secret+`"}`); code != 404 {
				t.Fatalf("deleted key still there: %d", code)
			}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := ring.Authenticate(sec); !errors.Is(err, vkey.ErrUnknown) {
				t.Fatalf("deleted key authenticates: %v", err)
			}
		})
	}
}

func TestNewRejectsShortMaster(t *testing.T) {
	if _, err := New("", keystore.NewMemory(), nil); err == nil {
		t.Fatal("empty master key accepted")
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"30s": 30 * time.Second, "10m": 10 * time.Minute, "12h": 12 * time.Hour,
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1mo": 30 * 24 * time.Hour} {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("%s: %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "d", "0d", "-1d", "1y", "99999999999999d", "1.5h"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// FuzzHandler sends arbitrary bodies to every endpoint: the handler never
// panics, and always answers JSON, either a success or an OpenAI-shaped
// error with a 4xx status.
func FuzzHandler(f *testing.F) {
	for i, b := range []string{
		`{"key_alias":"a","models":["x"],"max_budget":1,"duration":"1d","metadata":{"a":[1]}}`,
		`{"key":"sk-weir-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","blocked":true}`,
		`{"keys":["00"],"key_aliases":[""]}`,
		`{"team_id":"t","model_max_budget":{"m":-1},"model_rpm_limit":{"m":1e30}}`,
		`{"user_id":"u","teams":[],"auto_create_key":false}`,
		`{"model_limits":{"m":{"budget_duration":"x"}}}`,
		`null`, `[]`, `"s"`, ``, `{"max_budget":1e400}`,
		// Hostile: unknown fields, controls, bidi, huge numbers, nesting.
		`{"expires":"2000-01-01T00:00:00Z","permissions":{"admin":true}}`,
		`{"key_alias":"a\u0000\u001b[2J\u202e","tags":["\r\n"],"metadata":{"\u0085":1}}`,
		`{"model_limits":{"m":{"rpm_limit":-1,"soft_budget":5,"max_budget":1,"x":1}}}`,
		`{"models":[[[[[[[[[[[]]]]]]]]]]],"revision":-1,"__proto__":{}}`,
		`{"revision":9223372036854775807,"rpm_limit":9223372036854775808}`,
	} {
		f.Add(uint8(i), []byte(b))
	}
	// The update endpoints come after the others in eps.
	for _, s := range []struct {
		ep   uint8
		body string
	}{
		{11, `{"team_id":"t","models":["gpt-4o","openai/*"],"blocked":true,"rpm_limit":1,"model_limits":{"m":{"rpm_limit":-1}}}`},
		{11, `{"team_id":"ghost"}`},
		{12, `{"team_id":"t"}`},
		{12, `{"team_id":["t"]}`},
		{13, `{"team_id":"t","team_id":"u"}`},
		{13, `{"team_id":""}`},
		{14, `{"user_id":"u","models":[],"teams":["t"],"max_budget":-1}`},
		{14, `{"user_id":"u","teams":["ghost"],"model_tpm_limit":{"m":-1}}`},
		{14, `{"user_id":null}`},
	} {
		f.Add(s.ep, []byte(s.body))
	}
	type ep struct{ method, path string }
	eps := []ep{
		{"POST", "/key/generate"}, {"POST", "/key/update"}, {"POST", "/key/delete"}, {"POST", "/key/block"},
		{"POST", "/key/unblock"}, {"POST", "/team/new"}, {"POST", "/user/new"},
		{"GET", "/key/info?key="}, {"GET", "/key/list?page="}, {"GET", "/team/info?team_id="}, {"GET", "/spend/logs?start_date="},
		{"POST", "/team/update"}, {"POST", "/team/block"}, {"POST", "/team/unblock"}, {"POST", "/user/update"},
		{"POST", "/key/info"},
	}
	store := keystore.NewMemory()
	h, err := New(master, store, nil)
	if err != nil {
		f.Fatal(err)
	}
	// A team and a key exist, so updates can succeed.
	_ = store.PutTeam(context.Background(), &keystore.Team{TeamID: "t"}, true)
	_ = store.PutUser(context.Background(), &keystore.User{UserID: "u"}, true)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e := eps[int(which)%len(eps)]
		path := e.path
		var req *http.Request
		if e.method == "GET" {
			req = httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery, _ = strings.Cut(path, "?")
			q := req.URL.Query()
			for k := range q {
				q.Set(k, string(body))
			}
			req.URL.RawQuery = q.Encode()
		} else {
			req = httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		}
		req.Header.Set("Authorization", "Bearer "+master)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON %q", e.method, path, rec.Body)
		}
		if rec.Code == 200 {
			return
		}
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", e.method, path, body, rec.Code, rec.Body)
		}
		if gjson.GetBytes(rec.Body.Bytes(), "error.message").Type != gjson.String {
			t.Fatalf("not an OpenAI error: %s", rec.Body)
		}
	})
}

// TestTeamAndUserUpdates covers /team/update, /team/block, /team/unblock
// and /user/update: LiteLLM's shapes, fields left alone when absent,
// validation that leaves the stored record as it was, and the change
// reaching a replica's sync.
func TestTeamAndUserUpdates(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			store, sr, _ := b.store(t)
			h, err := New(master, store, sr)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, setup := range []struct{ path, body string }{
				{"/team/new", `{"team_id":"t1","team_alias":"One","models":["gpt-4o-mini"],"rpm_limit":10}`},
				{"/team/new", `{"team_id":"t2"}`},
				{"/user/new", `{"user_id":"u1","models":["gpt-4o-mini"],"auto_create_key":false}`},
			} {
				if code, res := do(t, h, "POST", setup.path, setup.body); code != 200 {
					t.Fatalf("%s: %d %s", setup.path, code, res.Raw)
				}
			}
			steps := []struct {
				name, path, body string
				status           int
				want             map[string]any // gjson path → value in the response
			}{
				{"team update", "/team/update", `{"team_id":"t1","models":["gpt-4o","openai/*"],"tpm_limit":500,"model_rpm_limit":{"gpt-4o":2}}`, 200,
					map[string]any{"team_id": "t1", "data.team_id": "t1", "data.models.0": "gpt-4o", "data.models.1": "openai/*",
						"data.tpm_limit": 500.0, "data.rpm_limit": 10.0, "data.team_alias": "One", "data.model_limits.gpt-4o.rpm_limit": 2.0}},
				{"team update blocks", "/team/update", `{"team_id":"t2","blocked":true}`, 200, map[string]any{"data.blocked": true}},
				{"team unblock", "/team/unblock", `{"team_id":"t2"}`, 200, map[string]any{"team_id": "t2", "blocked": nil}},
				{"team block", "/team/block", `{"team_id":"t1"}`, 200, map[string]any{"team_id": "t1", "blocked": true, "models.0": "gpt-4o"}},
				{"user update", "/user/update", `{"user_id":"u1","models":["claude-*","gpt-4o"],"teams":["t1"],"max_budget":3}`, 200,
					map[string]any{"user_id": "u1", "data.models.1": "gpt-4o", "data.teams.0": "t1", "data.max_budget": 3.0}},
				{"user update empties models", "/user/update", `{"user_id":"u1","models":[]}`, 200, map[string]any{"data.models": nil, "data.max_budget": 3.0}},

				{"unknown team update", "/team/update", `{"team_id":"ghost","blocked":true}`, 404, map[string]any{"error.type": "invalid_request_error", "error.code": "not_found"}},
				{"unknown team block", "/team/block", `{"team_id":"ghost"}`, 404, map[string]any{"error.code": "not_found"}},
				{"unknown team unblock", "/team/unblock", `{"team_id":"ghost"}`, 404, nil},
				{"unknown user", "/user/update", `{"user_id":"ghost","models":[]}`, 404, map[string]any{"error.code": "not_found"}},
				{"team update without id", "/team/update", `{"blocked":true}`, 400, nil},
				{"team block without id", "/team/block", `{}`, 400, nil},
				{"team block with empty id", "/team/block", `{"team_id":""}`, 400, nil},
				{"team block id not a string", "/team/block", `{"team_id":1}`, 400, nil},
				{"user update without id", "/user/update", `{"models":[]}`, 400, nil},
				{"negative team rpm", "/team/update", `{"team_id":"t1","models":["x"],"rpm_limit":-1}`, 400, map[string]any{"error.message": "invalid request: rpm_limit must not be negative"}},
				{"negative team budget", "/team/update", `{"team_id":"t1","max_budget":-100}`, 400, nil},
				{"negative team model_limits", "/team/update", `{"team_id":"t1","model_limits":{"gpt-4o":{"rpm_limit":-1}}}`, 400, nil},
				{"negative user tpm", "/user/update", `{"user_id":"u1","tpm_limit":-1}`, 400, nil},
				{"negative user model budget", "/user/update", `{"user_id":"u1","model_max_budget":{"gpt-4o":-1}}`, 400, nil},
				{"user update unknown team", "/user/update", `{"user_id":"u1","teams":["ghost"]}`, 400, nil},
				{"models not a list", "/team/update", `{"team_id":"t1","models":"gpt-4o"}`, 400, nil},
				{"blocked not a bool", "/team/update", `{"team_id":"t1","blocked":"yes"}`, 400, nil},
				{"not JSON", "/team/block", `{`, 400, nil},
			}
			for _, s := range steps {
				code, res := do(t, h, "POST", s.path, s.body)
				if code != s.status {
					t.Errorf("%s: %d, want %d: %s", s.name, code, s.status, res.Raw)
					continue
				}
				for p, want := range s.want {
					got := res.Get(p).Value()
					if want == nil && got != nil || want != nil && got != want {
						t.Errorf("%s: %s = %v, want %v (%s)", s.name, p, got, want, res.Raw)
					}
				}
			}
			for _, m := range []string{"GET"} {
				for _, p := range []string{"/team/update", "/team/block", "/team/unblock", "/user/update"} {
					if code, _ := do(t, h, m, p, ""); code != 405 {
						t.Errorf("%s %s: %d, want 405", m, p, code)
					}
				}
			}
			// Refused updates left the records as the accepted ones made them.
			t1, err := store.GetTeam(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if !t1.Blocked || strings.Join(t1.Models, ",") != "gpt-4o,openai/*" || t1.RPM != 10 || t1.MaxBudget != 0 || t1.ModelLimits["gpt-4o"].RPM != 2 {
				t.Errorf("t1 after refused updates: %+v", t1)
			}
			if _, err := store.GetTeam(ctx, "ghost"); !keystore.IsNotFound(err) {
				t.Errorf("an update created team ghost: %v", err)
			}
			u1, err := store.GetUser(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if len(u1.Models) != 0 || u1.MaxBudget != 3 || u1.TPM != 0 || strings.Join(u1.Teams, ",") != "t1" {
				t.Errorf("u1 after refused updates: %+v", u1)
			}

			// A replica's sync hands the changed teams and users to admission.
			var teams []*keystore.Team
			var users []*keystore.User
			sy := &keystore.Syncer{Store: store, Ring: vkey.NewKeyring(), OnSubjects: func(ts []*keystore.Team, us []*keystore.User) { teams, users = ts, us }}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if len(teams) != 2 || !teams[0].Blocked || teams[1].Blocked || len(users) != 1 || len(users[0].Models) != 0 {
				t.Fatalf("synced teams %+v users %+v", teams, users)
			}
			if code, res := do(t, h, "POST", "/team/unblock", `{"team_id":"t1"}`); code != 200 {
				t.Fatalf("unblock: %d %s", code, res.Raw)
			}
			if ok, err := sy.Sync(ctx); err != nil || !ok {
				t.Fatalf("sync after unblock: %v %v", ok, err)
			}
			if teams[0].TeamID != "t1" || teams[0].Blocked {
				t.Fatalf("t1 after unblock: %+v", teams[0])
			}
		})
	}
}

// FuzzUnknownFields sends each body endpoint one field, of any name and
// JSON value, beside the fields it needs to find its record. A name the
// endpoint does not accept is always a 400 that names it; any other
// answer is JSON, a success or an OpenAI-shaped 4xx; nothing panics.
func FuzzUnknownFields(f *testing.F) {
	for _, s := range []struct {
		ep          uint8
		name, value string
	}{
		{0, "expires", `"2000-01-01T00:00:00Z"`}, {0, "permissions", `{"a":1}`}, {0, "key_alias", `"a\u202e"`},
		{1, "revision", `0`}, {2, "key_aliases", `[""]`}, {3, "team_id", `"t\u0000"`}, {4, "models", `["x"]`},
		{5, "max_budget", `-1`}, {6, "model_limits", `{"m":{"rpm":1}}`}, {7, "__proto__", `null`}, {0, "", `1`},
		{0, "key_alias\u0000", `"x"`}, {1, "soft_budget", `1e308`},
	} {
		f.Add(s.ep, s.name, []byte(s.value))
	}
	type ep struct {
		path    string
		base    string // fields that name an existing record
		allowed fieldSet
	}
	store := keystore.NewMemory()
	h, err := New(master, store, nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	_ = store.PutTeam(ctx, &keystore.Team{TeamID: "t"}, true)
	_ = store.PutUser(ctx, &keystore.User{UserID: "u"}, true)
	sec, _ := vkey.Generate()
	_ = store.PutKey(ctx, &keystore.KeyRecord{Key: vkey.Key{Hash: sec.Hash()}}, true)
	key := `"key":"` + sec.Reveal() + `"`
	eps := []ep{
		{"/key/generate", "", generateFields}, {"/key/update", key, keyUpdateFields}, {"/key/delete", "", keyDeleteFields},
		{"/key/block", key, keyRefFields}, {"/key/info", key, keyRefFields}, {"/team/new", "", teamNewFields},
		{"/team/update", `"team_id":"t"`, teamUpdateFields}, {"/team/block", `"team_id":"t"`, teamRefFields},
		{"/user/new", "", userNewFields}, {"/user/update", `"user_id":"u"`, userUpdateFields},
	}
	f.Fuzz(func(t *testing.T, which uint8, name string, value []byte) {
		e := eps[int(which)%len(eps)]
		n, _ := json.Marshal(name)
		body := "{" + e.base
		if e.base != "" {
			body += ","
		}
		body += string(n) + ":" + string(value) + "}"
		req := httptest.NewRequest("POST", e.path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+master)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: invalid JSON %q", e.path, body, rec.Body)
		}
		msg := gjson.GetBytes(rec.Body.Bytes(), "error.message")
		if rec.Code != 200 && (rec.Code < 400 || rec.Code >= 500 || msg.Type != gjson.String) {
			t.Fatalf("%s %q: %d %s", e.path, body, rec.Code, rec.Body)
		}
		// The name as the handler decoded it: JSON turns invalid UTF-8
		// into U+FFFD.
		var got string
		_ = json.Unmarshal(n, &got)
		if !e.allowed[got] && json.Valid(value) && !strings.Contains(e.base, `"`+got+`"`) {
			want := strconv.Quote(truncate(got))
			if rec.Code != 400 || !strings.Contains(msg.Str, "unknown field") || !strings.Contains(msg.Str, want) {
				t.Fatalf("%s: unknown field %s: %d %s", e.path, want, rec.Code, rec.Body)
			}
		}
	})
}
