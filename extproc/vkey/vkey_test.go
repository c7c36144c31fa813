package vkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/errs"
)

func TestGenerate(t *testing.T) {
	seen := map[Secret]bool{}
	for range 100 {
		s, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.Reveal(), Prefix) || len(s.Reveal()) != len(Prefix)+43 {
			t.Fatalf("bad key shape %d", len(s.Reveal()))
		}
		if seen[s] {
			t.Fatal("duplicate key")
		}
		seen[s] = true
		if _, err := FromHeaders("Bearer "+s.Reveal(), ""); err != nil {
			t.Fatalf("generated key rejected: %v", err)
		}
	}
}

func TestNeverPrinted(t *testing.T) {
	s, _ := Generate()
	raw := s.Reveal()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "key", s, "struct", struct{ K Secret }{s})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", s)
	fmt.Fprintf(&buf, "%v %s %+v %#v %q", s, s, s, s, s)
	j, _ := json.Marshal(map[string]Secret{"k": s})
	buf.Write(j)
	if strings.Contains(buf.String(), raw[len(Prefix)+4:]) {
		t.Fatalf("key leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), s.Prefix()) {
		t.Fatalf("prefix not shown: %s", buf.String())
	}
}

func TestFromHeaders(t *testing.T) {
	good, _ := Generate()
	tests := []struct {
		name         string
		auth, apiKey string
		want         error
	}{
		{"bearer", "Bearer " + good.Reveal(), "", nil},
		{"bearer lower case", "bearer " + good.Reveal(), "", nil},
		{"x-api-key", "", good.Reveal(), nil},
		{"missing", "", "", ErrMissing},
		{"basic", "Basic abc", "", ErrUnknown},
		{"wrong prefix", "Bearer sk-" + strings.Repeat("a", 43+5), "", ErrUnknown},
		{"short", "Bearer " + good.Reveal()[:20], "", ErrUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromHeaders(tt.auth, tt.apiKey)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && s != good {
				t.Fatal("wrong key")
			}
			if err != nil && errs.Status(err) != 401 {
				t.Fatalf("status %d", errs.Status(err))
			}
		})
	}
}

func TestHash(t *testing.T) {
	s, _ := Generate()
	h := s.Hash()
	p, err := ParseHash(h.String())
	if err != nil || !p.Equal(h) {
		t.Fatalf("round trip: %v", err)
	}
	var other Hash
	if other.Equal(h) {
		t.Fatal("zero hash equals")
	}
	if _, err := ParseHash("abc"); err == nil {
		t.Fatal("short hash accepted")
	}
	var back struct{ H Hash }
	b, _ := json.Marshal(struct{ H Hash }{h})
	if err := json.Unmarshal(b, &back); err != nil || back.H != h {
		t.Fatalf("json: %v %s", err, b)
	}
}

func TestKeyCheck(t *testing.T) {
	past := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := past.Add(time.Hour)
	future := now.Add(time.Hour)
	tests := []struct {
		name   string
		key    Key
		model  string
		want   string
		err    error
		status int
	}{
		{"any model", Key{}, "gpt-4o", "gpt-4o", nil, 0},
		{"exact", Key{Models: []string{"gpt-4o"}}, "gpt-4o", "gpt-4o", nil, 0},
		{"wildcard", Key{Models: []string{"openai/*"}}, "openai/gpt-4o", "openai/gpt-4o", nil, 0},
		{"wildcard is not the bare prefix", Key{Models: []string{"openai/*"}}, "openai", "", ErrModelNotAllowed, 403},
		{"wildcard other provider", Key{Models: []string{"openai/*"}}, "anthropic/claude", "", ErrModelNotAllowed, 403},
		{"star", Key{Models: []string{"*"}}, "x", "x", nil, 0},
		{"alias resolves then allowed", Key{Models: []string{"openai/*"}, Aliases: map[string]string{"fast": "openai/gpt-4o-mini"}}, "fast", "openai/gpt-4o-mini", nil, 0},
		{"alias to disallowed", Key{Models: []string{"gpt-4o"}, Aliases: map[string]string{"fast": "mini"}}, "fast", "", ErrModelNotAllowed, 403},
		{"blocked", Key{Blocked: true}, "x", "", ErrBlocked, 403},
		{"blocked wins over expired", Key{Blocked: true, ExpiresAt: &past}, "x", "", ErrBlocked, 403},
		{"expired", Key{ExpiresAt: &past}, "x", "", ErrExpired, 403},
		{"expires at now", Key{ExpiresAt: &now}, "x", "", ErrExpired, 403},
		{"not yet expired", Key{ExpiresAt: &future}, "x", "x", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key.Check(tt.model, now)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("Check = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if err != nil && errs.Status(err) != tt.status {
				t.Fatalf("status = %d, want %d", errs.Status(err), tt.status)
			}
		})
	}
}

func TestKeyring(t *testing.T) {
	a, _ := Generate()
	b, _ := Generate()
	r := NewKeyring(&Key{Hash: a.Hash(), Alias: "a"})
	k, err := r.Authenticate(a)
	if err != nil || k.Alias != "a" {
		t.Fatalf("%v %v", k, err)
	}
	if _, err := r.Authenticate(b); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown key: %v", err)
	}
	r.Replace([]*Key{{Hash: b.Hash()}})
	if _, err := r.Authenticate(a); !errors.Is(err, ErrUnknown) {
		t.Fatal("replaced key still valid")
	}
	if r.Len() != 1 {
		t.Fatal(r.Len())
	}
}

// TestKeyringApply: an incremental change puts, replaces and removes keys,
// keeps the others, and counts them; the zero Keyring is usable.
func TestKeyringApply(t *testing.T) {
	var secs []Secret
	var keys []*Key
	for range 600 { // more keys than shards
		s, _ := Generate()
		secs, keys = append(secs, s), append(keys, &Key{Hash: s.Hash()})
	}
	var zero Keyring
	if _, err := zero.Authenticate(secs[0]); !errors.Is(err, ErrUnknown) || zero.Len() != 0 {
		t.Fatalf("zero keyring: %v %d", err, zero.Len())
	}
	r := NewKeyring(keys[:500]...)
	r.Apply([]*Key{keys[500], {Hash: keys[0].Hash, Alias: "new"}}, []Hash{keys[1].Hash, keys[599].Hash})
	for _, tc := range []struct {
		i     int
		ok    bool
		alias string
	}{{0, true, "new"}, {1, false, ""}, {2, true, ""}, {499, true, ""}, {500, true, ""}, {501, false, ""}, {599, false, ""}} {
		k, err := r.Authenticate(secs[tc.i])
		if (err == nil) != tc.ok || tc.ok && k.Alias != tc.alias {
			t.Errorf("key %d: %+v %v, want ok=%v alias %q", tc.i, k, err, tc.ok, tc.alias)
		}
	}
	if r.Len() != 500 {
		t.Fatalf("len %d, want 500", r.Len())
	}
	// A hash both deleted and put ends up put.
	r.Apply([]*Key{keys[1]}, []Hash{keys[1].Hash})
	if _, err := r.Authenticate(secs[1]); err != nil || r.Len() != 501 {
		t.Fatalf("put after delete: %v, len %d", err, r.Len())
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	keys := make([]*Key, 10000)
	var s Secret
	for i := range keys {
		s, _ = Generate()
		keys[i] = &Key{Hash: s.Hash()}
	}
	r := NewKeyring(keys...)
	auth := "Bearer " + s.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		sec, err := FromHeaders(auth, "")
		if err != nil {
			b.Fatal(err)
		}
		k, err := r.Authenticate(sec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Check("m", time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
