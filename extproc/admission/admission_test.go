package admission

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/vkey"
)

// TestTeamAndUserRules: a request must be allowed by the key, its team
// and its user; a blocked team refuses every key of the team. Teams and
// users come from the config or, for ids the config does not declare,
// from the admin API (Subjects).
func TestTeamAndUserRules(t *testing.T) {
	auth := &config.Auth{
		Mode: "keys",
		Teams: []config.SubjectConfig{
			{ID: "cfgblk", Blocked: true},
			{ID: "cfgmini", Models: []string{"gpt-4o-mini"}},
			// The config's team wins over an admin-API team of the same id.
			{ID: "both"},
		},
		Users: []config.SubjectConfig{{ID: "cfguser", Models: []string{"openai/*"}}},
	}
	p, err := Compile(auth, &config.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type keySpec struct {
		team, user string
		models     []string
		aliases    map[string]string
		blocked    bool
		expires    *time.Time
	}
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		key       keySpec
		model     string
		wantModel string
		wantMsg   string // empty: admitted
	}{
		{"no team, no user", keySpec{}, "claude-sonnet-4-5", "claude-sonnet-4-5", ""},
		{"unknown team restricts nothing", keySpec{team: "ghost"}, "claude-sonnet-4-5", "claude-sonnet-4-5", ""},
		{"config team blocked", keySpec{team: "cfgblk"}, "gpt-4o-mini", "", "team cfgblk is blocked"},
		{"blocked team, model the key refuses", keySpec{team: "cfgblk", models: []string{"gpt-4o"}}, "gpt-4o-mini", "", "team cfgblk is blocked"},
		{"blocked key before blocked team", keySpec{team: "cfgblk", blocked: true}, "gpt-4o-mini", "", "this key is blocked"},
		{"expired key before blocked team", keySpec{team: "cfgblk", expires: &past}, "gpt-4o-mini", "", "expired"},
		{"admin team blocked", keySpec{team: "apiblk"}, "gpt-4o-mini", "", "team apiblk is blocked"},
		{"config team models allow", keySpec{team: "cfgmini"}, "gpt-4o-mini", "gpt-4o-mini", ""},
		{"config team models refuse", keySpec{team: "cfgmini"}, "claude-sonnet-4-5", "", "model claude-sonnet-4-5 is not allowed for team cfgmini"},
		{"admin team wildcard allows", keySpec{team: "apiopenai"}, "openai/gpt-4.1", "openai/gpt-4.1", ""},
		{"admin team wildcard refuses the bare prefix", keySpec{team: "apiopenai"}, "openai", "", "model openai is not allowed for team apiopenai"},
		{"admin team star", keySpec{team: "apistar"}, "anything", "anything", ""},
		{"key model rule comes first", keySpec{team: "cfgmini", models: []string{"gpt-4o"}}, "claude-sonnet-4-5", "", "this key may not use the model"},
		{"key allows, team refuses", keySpec{team: "cfgmini", models: []string{"*"}}, "gpt-4o", "", "model gpt-4o is not allowed for team cfgmini"},
		{"key alias resolved before the team check", keySpec{team: "cfgmini", aliases: map[string]string{"fast": "gpt-4o-mini"}}, "fast", "gpt-4o-mini", ""},
		{"key alias to a model the team refuses", keySpec{team: "cfgmini", aliases: map[string]string{"fast": "gpt-4o"}}, "fast", "", "model gpt-4o is not allowed for team cfgmini"},
		{"config team wins over admin team", keySpec{team: "both"}, "claude-sonnet-4-5", "claude-sonnet-4-5", ""},
		{"config user models refuse", keySpec{user: "cfguser"}, "gpt-4o-mini", "", "model gpt-4o-mini is not allowed for user cfguser"},
		{"config user wildcard allows", keySpec{user: "cfguser"}, "openai/gpt-4o-mini", "openai/gpt-4o-mini", ""},
		{"admin user models refuse", keySpec{user: "apiuser"}, "claude-sonnet-4-5", "", "model claude-sonnet-4-5 is not allowed for user apiuser"},
		{"admin user models allow", keySpec{user: "apiuser"}, "gpt-4o-mini", "gpt-4o-mini", ""},
		{"team allows, user refuses", keySpec{team: "cfgmini", user: "cfguser"}, "gpt-4o-mini", "", "not allowed for user cfguser"},
		{"team refuses before user", keySpec{team: "apiopenai", user: "apiuser"}, "claude-sonnet-4-5", "", "not allowed for team apiopenai"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, err := vkey.Generate()
			if err != nil {
				t.Fatal(err)
			}
			k := &vkey.Key{Hash: sec.Hash(), TeamID: tt.key.team, UserID: tt.key.user, Models: tt.key.models,
				Aliases: tt.key.aliases, Blocked: tt.key.blocked, ExpiresAt: tt.key.expires}
			g := &Gate{Keys: vkey.NewKeyring(k), Clock: func() time.Time { return past.AddDate(1, 0, 0) }}
			g.SetSubjects(&Subjects{
				Teams: map[string]limits.Subject{"apiblk": {}, "apiopenai": {}, "apistar": {}, "both": {}},
				TeamRules: map[string]Rules{
					"apiblk":    {Blocked: true},
					"apiopenai": {Models: []string{"openai/*"}},
					"apistar":   {Models: []string{"*"}},
					"both":      {Blocked: true},
				},
				Users:     map[string]limits.Subject{"apiuser": {}},
				UserRules: map[string]Rules{"apiuser": {Models: []string{"gpt-4o-mini"}}},
			})
			got, model, err := g.Authenticate(p, "Bearer "+sec.Reveal(), "", "/v1/chat/completions", tt.model)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got != k || model != tt.wantModel {
					t.Fatalf("got key %v model %q, want model %q", got, model, tt.wantModel)
				}
				return
			}
			if err == nil {
				t.Fatalf("admitted (model %q), want refusal %q", model, tt.wantMsg)
			}
			if !errors.Is(err, errs.ErrForbidden) || errs.Status(err) != 403 {
				t.Errorf("err %v: status %d, want 403", err, errs.Status(err))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %q does not name %q", err, tt.wantMsg)
			}
		})
	}
}

// Rules follow a swap of the admin API's subjects: unblocking a team
// admits its keys again.
func TestTeamRulesFollowSetSubjects(t *testing.T) {
	p, err := Compile(&config.Auth{Mode: "keys"}, &config.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := vkey.Generate()
	g := &Gate{Keys: vkey.NewKeyring(&vkey.Key{Hash: sec.Hash(), TeamID: "t"})}
	for i, step := range []struct {
		blocked bool
		want    int
	}{{true, 403}, {false, 0}, {true, 403}} {
		g.SetSubjects(&Subjects{TeamRules: map[string]Rules{"t": {Blocked: step.blocked}}})
		_, _, err := g.Authenticate(p, "Bearer "+sec.Reveal(), "", "/v1/chat/completions", "gpt-4o-mini")
		if got := errs.Status(err); err != nil && got != step.want || err == nil && step.want != 0 {
			t.Errorf("step %d (blocked %v): err %v, want status %d", i, step.blocked, err, step.want)
		}
	}
}
