package fakeprovider

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Features of the Messages API that Weir's native passthrough must carry
// (https://docs.claude.com/en/api/messages): stop sequences, prompt
// caching and extended thinking. The translated path (OpenAI chat to
// Anthropic) sends no cache_control and no thinking, so only stop
// sequences, which it maps from OpenAI's "stop", reach it.

// anThinking is the request's "thinking" parameter.
type anThinking struct {
	Type         string       `json:"type"`
	BudgetTokens *json.Number `json:"budget_tokens"`
}

// checkThinking validates "thinking" as the Messages API documents it
// (https://docs.claude.com/en/docs/build-with-claude/extended-thinking):
// type enabled needs budget_tokens of at least 1024 and below max_tokens.
// It reports whether a thinking block is to be returned.
func checkThinking(t *anThinking, maxTokens int) (bool, string) {
	if t == nil {
		return false, ""
	}
	switch t.Type {
	case "disabled":
		return false, ""
	case "enabled":
	default:
		return false, "thinking.type: Input should be 'enabled' or 'disabled'"
	}
	if t.BudgetTokens == nil {
		return false, "thinking.enabled.budget_tokens: Field required"
	}
	n, err := t.BudgetTokens.Int64()
	if err != nil || n < 1024 {
		return false, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
	}
	if maxTokens > 0 && n >= int64(maxTokens) {
		return false, "`max_tokens` must be greater than `thinking.budget_tokens`"
	}
	return true, ""
}

// thinkingText is the fake's thinking for a reply: a pure function of
// what it answers.
func thinkingText(about string) string {
	return "The user wrote: " + truncateRunes(about, 100) + ". I will answer as the fake does."
}

// thinkingSignature stands in for Anthropic's opaque signature: base64,
// a pure function of the thinking text.
func thinkingSignature(thinking string) string {
	sum := sha256.Sum256([]byte("fake-signature:" + thinking))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// cutAtStop cuts text before the earliest of the stop sequences it
// contains, returning the sequence that matched ("" if none).
func cutAtStop(text string, seqs []string) (string, string) {
	at, seq := -1, ""
	for _, s := range seqs {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at) {
			at, seq = i, s
		}
	}
	if at < 0 {
		return text, ""
	}
	return text[:at], seq
}

// promptCache remembers the prompt prefixes a fake has "cached", so that
// the first request with a cache_control breakpoint writes its prefix and
// an identical prefix later reads it, as Anthropic's prompt caching does
// (https://docs.claude.com/en/docs/build-with-claude/prompt-caching).
// Bounded: the oldest prefixes are forgotten first.
type promptCache struct {
	mu    sync.Mutex
	keys  map[[32]byte]bool
	order [][32]byte
}

const maxCachedPrompts = 1024

// use reports whether key was cached, and caches it.
func (p *promptCache) use(key [32]byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys[key] {
		return true
	}
	if p.keys == nil {
		p.keys = make(map[[32]byte]bool)
	}
	if len(p.order) >= maxCachedPrompts {
		delete(p.keys, p.order[0])
		p.order = p.order[1:]
	}
	p.keys[key] = true
	p.order = append(p.order, key)
	return false
}

func (p *promptCache) reset() {
	p.mu.Lock()
	p.keys, p.order = nil, nil
	p.mu.Unlock()
}

// cachePrefix is the prompt prefix up to the last cache_control
// breakpoint: its token count (in the fake's counting) and a hash of the
// model and of what it holds.
type cachePrefix struct {
	h      []byte // model, tools, system and messages up to the breakpoint
	tokens int
}

func (c *cachePrefix) add(raw ...[]byte) {
	for _, r := range raw {
		c.h = fmt.Appendf(c.h, "%d:", len(r))
		c.h = append(c.h, r...)
	}
}

func (c *cachePrefix) key() [32]byte { return sha256.Sum256(c.h) }

// hasCacheControl reports whether blocks (a JSON array) holds a block with
// a cache_control breakpoint.
func hasCacheControl(raw json.RawMessage) bool {
	var blocks []struct {
		CacheControl json.RawMessage `json:"cache_control"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return false
	}
	for _, b := range blocks {
		if !isNull(b.CacheControl) {
			return true
		}
	}
	return false
}
