package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"sync"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/provider/registry"
)

// backendCheck is the data plane's own check of a backend (its provider
// exists and knows every option), which config.Validate does not make.
// The controller runs it on each AIRoute's backends so that one route
// with, say, a misspelled azure option is refused on its own, instead of
// every extproc replica refusing the whole config (and with it every
// other change, revocations included). The command wires it in, as the
// extproc's command wires the key admin API: the controller's packages
// do not link the extproc.
type backendCheck struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]error
}

// maxSeen bounds the memo; a cluster with more distinct backends pays a
// re-check after it is cleared.
const maxSeen = 16384

func (c *backendCheck) check(b *config.Backend) error {
	// The memo key is the backend's full content (secrets included, since
	// a credential can be what fails, e.g. a malformed service-account
	// key); gob, unlike JSON, does not redact config.Secret.
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(b); err != nil {
		return c.run(b)
	}
	sum := sha256.Sum256(buf.Bytes())
	c.mu.Lock()
	if err, ok := c.seen[sum]; ok {
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	err := c.run(b)
	c.mu.Lock()
	if c.seen == nil || len(c.seen) >= maxSeen {
		c.seen = map[[sha256.Size]byte]error{}
	}
	c.seen[sum] = err
	c.mu.Unlock()
	return err
}

func (c *backendCheck) run(b *config.Backend) error {
	lease := credsource.NewPool().Lease()
	defer lease.Release()
	_, err := registry.New(b, lease)
	return err
}
