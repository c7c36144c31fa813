package translate

import (
	"slices"
	"strings"
)

// noModel is the model list of a key that may use no model. An empty list
// means every model to the data plane (vkey.ModelAllowed), so "none"
// needs a name no request can carry: the empty name, which the parse
// stage refuses (400) before the key is checked, and which no route
// resolves.
const noModel = ""

// grant is a key's model list for the data plane: the names the key's
// spec.models admit among served, the names, aliases and patterns of the
// routes the key may use. Because the data plane resolves models in one
// cluster-wide table, this intersection is what keeps a key to its routes.
//
// Key entries mean what they mean to the data plane: "*", a "prefix/*"
// pattern, or an exact name (so "gpt-*" is only the name "gpt-*"); an
// empty list admits every served name. A served pattern is granted whole
// only if the data plane can say it ("*" or a prefix ending in "/");
// otherwise only the names the key lists under it are. The result is
// sorted; if nothing remains it is [noModel].
func grant(key, served []string) []string {
	var out []string
	all := len(key) == 0 || slices.Contains(key, "*")
	for _, s := range served {
		p, pattern := strings.CutSuffix(s, "*")
		if !pattern {
			if all || admits(key, s) {
				out = append(out, s)
			}
			continue
		}
		if all && expressible(p) {
			out = append(out, s)
			continue
		}
		for _, k := range key {
			q, kPattern := keyPrefix(k)
			switch {
			case !kPattern:
				// The route needs at least one more character.
				if len(k) > len(p) && strings.HasPrefix(k, p) {
					out = append(out, k)
				}
			case strings.HasPrefix(q, p):
				// The key's pattern is the narrower one.
				out = append(out, k)
			case strings.HasPrefix(p, q) && expressible(p):
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return []string{noModel}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// admits applies a non-empty key list to an exact name, as the data plane
// does.
func admits(key []string, name string) bool {
	for _, k := range key {
		if q, ok := keyPrefix(k); ok {
			if len(name) > len(q) && strings.HasPrefix(name, q) {
				return true
			}
		} else if k == name {
			return true
		}
	}
	return false
}

// keyPrefix returns the prefix of a key entry that is a pattern to the
// data plane ("*" or "x/*").
func keyPrefix(k string) (string, bool) {
	if k == "*" || strings.HasSuffix(k, "/*") {
		return k[:len(k)-1], true
	}
	return "", false
}

// expressible reports whether the route pattern prefix* can be written in
// a key list.
func expressible(prefix string) bool {
	return prefix == "" || strings.HasSuffix(prefix, "/")
}
