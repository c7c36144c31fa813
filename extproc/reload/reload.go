// Package reload watches a config file and applies changes atomically. A
// file that fails to load leaves the running config in place.
package reload

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Reloader polls a file. Polling, rather than inotify, also sees the
// symlink swap Kubernetes uses to update a mounted ConfigMap.
type Reloader struct {
	Path string
	// Apply loads new content; an error keeps the old config.
	Apply func(raw []byte) error
	// Result is told the outcome of every attempted reload (metrics).
	Result func(ok bool)
	Log    *slog.Logger

	last [sha256.Size]byte
}

// Init loads the file the first time. Unlike a reload, a failure here is
// fatal to the caller: there is no old config to keep.
func (r *Reloader) Init() error {
	raw, err := os.ReadFile(r.Path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := r.Apply(raw); err != nil {
		return fmt.Errorf("load %s: %w", r.Path, err)
	}
	r.last = sha256.Sum256(raw)
	return nil
}

// Check reloads the file if its content changed. It reports whether a new
// config was applied.
func (r *Reloader) Check() (bool, error) {
	raw, err := os.ReadFile(r.Path)
	if err != nil {
		r.report(false, err)
		return false, err
	}
	sum := sha256.Sum256(raw)
	if sum == r.last {
		return false, nil
	}
	// Remember the failed content too, so a bad file is reported once,
	// not every poll.
	r.last = sum
	if err := r.Apply(raw); err != nil {
		r.report(false, err)
		return false, err
	}
	r.report(true, nil)
	return true, nil
}

func (r *Reloader) report(ok bool, err error) {
	if r.Result != nil {
		r.Result(ok)
	}
	if r.Log == nil {
		return
	}
	if ok {
		r.Log.Info("config reloaded", "path", r.Path)
	} else {
		r.Log.Error("config reload failed; keeping the previous config", "path", r.Path, "error", err)
	}
}

// Run polls until ctx ends.
func (r *Reloader) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Check()
		}
	}
}
