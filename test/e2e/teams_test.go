package e2e

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc"
)

// await re-evaluates cond after each reload of the admin API's keys on
// the gateway's replicas until it holds. The guard only stops a hung
// test; nothing asserts how fast a change arrives.
func (g *gateway) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-g.synced:
		case <-guard:
			t.Fatalf("%s: never seen", what)
		}
	}
}

// TestTeamAndUserRules: a team's blocked and models, and a user's models,
// hold for their keys, whether the team or user comes from the config or
// from the admin API, and admin changes (/team/block, /team/unblock,
// /team/update, /user/update) take effect. On Redis the admin API runs
// on a second replica that serves no traffic, so every change reaches
// the serving replica through the store's sync.
func TestTeamAndUserRules(t *testing.T) {
	const master = "mk-e2e-teams-8d2b6f4a1c9e47035b7d2e8f6a4c1b9d"
	cfgBlk, cfgBlkH := newKey(t)
	cfgMini, cfgMiniH := newKey(t)
	cfgUser, cfgUserH := newKey(t)
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			yaml := limitsBase + `  - {name: claude-sonnet-4-5, backends: [oa]}
` + st.yaml(t) + fmt.Sprintf(`auth:
  mode: keys
  teams:
    - {id: cfgblk, blocked: true}
    - {id: cfgmini, models: [gpt-4o-mini]}
  users:
    - {id: cfguser, models: ["gpt-4o"]}
  keys:
    - {hash: %s, team_id: cfgblk}
    - {hash: %s, team_id: cfgmini}
    - {hash: %s, user_id: cfguser}
`, cfgBlkH, cfgMiniH, cfgUserH)
			g := startGateway(t, yaml, 1)
			adminSrv := g.replicas[0]
			if st.replicas > 1 { // Redis: the admin API lives on another replica
				adminSrv = extproc.New(extproc.Options{Logger: slog.New(slog.DiscardHandler)})
				if err := adminSrv.LoadConfig([]byte(strings.ReplaceAll(yaml, "FAKE_URL", "http://127.0.0.1:1")), nil); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { adminSrv.Close() })
			}
			apiURL := keyAdminAPI(t, adminSrv, master)
			admin := func(path, body string) gjson.Result {
				t.Helper()
				return gjson.ParseBytes(adminOK(t, apiURL, master, path, body))
			}
			admin("/team/new", `{"team_id":"tblk","blocked":true}`)
			admin("/team/new", `{"team_id":"t1","models":["gpt-4o-mini"]}`)
			admin("/team/new", `{"team_id":"t2"}`)
			admin("/user/new", `{"user_id":"u1","models":["gpt-4o-mini"],"auto_create_key":false}`)
			kBlk := admin("/key/generate", `{"team_id":"tblk"}`).Get("key").Str
			k1 := admin("/key/generate", `{"team_id":"t1"}`).Get("key").Str
			k2 := admin("/key/generate", `{"team_id":"t2"}`).Get("key").Str
			kU := admin("/key/generate", `{"user_id":"u1"}`).Get("key").Str
			// The last key is created last, so once it is known all are.
			status := func(key, model string) (int, string) {
				resp, body := chat(t, g.URL, key, model, nil)
				return resp.StatusCode, gjson.GetBytes(body, "error.message").Str
			}
			g.await(t, "the admin API's keys on the serving replica", func() bool { c, _ := status(kU, "gpt-4o-mini"); return c != 401 })

			type want struct {
				key, model string
				status     int
				msg        string
			}
			check := func(phase string, ws []want) {
				t.Helper()
				for _, w := range ws {
					code, msg := status(w.key, w.model)
					if code != w.status || !strings.Contains(msg, w.msg) {
						t.Errorf("%s: key %.12s model %s: %d %q, want %d %q", phase, w.key, w.model, code, msg, w.status, w.msg)
					}
				}
			}
			check("initial", []want{
				{kBlk, "gpt-4o-mini", 403, "team tblk is blocked"},
				{kBlk, "gpt-4o", 403, "team tblk is blocked"},
				{kBlk, "claude-sonnet-4-5", 403, "team tblk is blocked"},
				{k1, "gpt-4o-mini", 200, ""},
				{k1, "claude-sonnet-4-5", 403, "model claude-sonnet-4-5 is not allowed for team t1"},
				{k1, "gpt-4o", 403, "model gpt-4o is not allowed for team t1"},
				{k2, "claude-sonnet-4-5", 200, ""},
				{kU, "gpt-4o-mini", 200, ""},
				{kU, "claude-sonnet-4-5", 403, "model claude-sonnet-4-5 is not allowed for user u1"},
				// Teams and users from the config.
				{cfgBlk.Reveal(), "gpt-4o-mini", 403, "team cfgblk is blocked"},
				{cfgMini.Reveal(), "gpt-4o-mini", 200, ""},
				{cfgMini.Reveal(), "claude-sonnet-4-5", 403, "model claude-sonnet-4-5 is not allowed for team cfgmini"},
				{cfgUser.Reveal(), "gpt-4o", 200, ""},
				{cfgUser.Reveal(), "gpt-4o-mini", 403, "model gpt-4o-mini is not allowed for user cfguser"},
			})

			admin("/team/unblock", `{"team_id":"tblk"}`)
			g.await(t, "tblk unblocked", func() bool { c, _ := status(kBlk, "gpt-4o-mini"); return c == 200 })
			check("after /team/unblock", []want{{kBlk, "claude-sonnet-4-5", 200, ""}})

			admin("/team/block", `{"team_id":"t1"}`)
			g.await(t, "t1 blocked", func() bool { c, _ := status(k1, "gpt-4o-mini"); return c == 403 })
			check("after /team/block", []want{{k1, "gpt-4o-mini", 403, "team t1 is blocked"}})

			admin("/team/update", `{"team_id":"t2","models":["gpt-4o"]}`)
			g.await(t, "t2's models", func() bool { c, _ := status(k2, "claude-sonnet-4-5"); return c == 403 })
			check("after /team/update", []want{
				{k2, "claude-sonnet-4-5", 403, "model claude-sonnet-4-5 is not allowed for team t2"},
				{k2, "gpt-4o", 200, ""},
			})

			admin("/user/update", `{"user_id":"u1","models":[]}`)
			g.await(t, "u1's models lifted", func() bool { c, _ := status(kU, "claude-sonnet-4-5"); return c == 200 })
		})
	}
}
