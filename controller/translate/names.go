package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// backendHashLen is the hex digits of the hash that end a backend name:
// 40 bits, so that even 64,000 backends (2,000 routes of 32) collide
// with odds of about 2 in 1,000,000; Translate still checks.
const backendHashLen = 10

// backendName is the config name of backend b of route ns/route: a DNS
// label of at most 63 characters, "<ns>-<route>-<b>" cut to fit, then
// "-" and a hash of the three names. The hash is always there because
// the readable part alone is ambiguous ("a-b"/"c" and "a"/"b-c") and may
// be cut; it depends on nothing but the three names, so a backend keeps
// its name (and its Envoy cluster) whatever else changes in the cluster.
func backendName(ns, route, b string) string {
	sum := sha256.Sum256([]byte(ns + "/" + route + "/" + b))
	h := hex.EncodeToString(sum[:])[:backendHashLen]
	// A route name is a DNS subdomain; '.' is not allowed in a label.
	readable := strings.ReplaceAll(ns+"-"+route+"-"+b, ".", "-")
	if max := 63 - 1 - backendHashLen; len(readable) > max {
		readable = strings.TrimRight(readable[:max], "-")
	}
	return readable + "-" + h
}
