package extproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/spend/redisstream"
	"github.com/weir-ai/weir/extproc/vkey"
)

// services are the process-wide parts that must outlive config reloads:
// the counter store, the spend pipeline (queue or Redis stream, writer,
// sinks) and the key store with its keyring sync. They are
// built from the first config; a later config asking for a different
// store or sink is logged and applies at the next restart.
type services struct {
	store    *admission.Store
	queue    *spend.Queue // memory store: the spend source, drained on Close
	writer   *spend.Writer
	keys     keystore.Store
	appender admission.SpendSink
	book     book.Reader
	sinks    []interface{ Close() error }
	// gate is told at the key syncer's first load (its first OnSync)
	// that the admin API's keys are in: until then an unknown key is
	// answered 503 "keys loading" ([admission.ErrKeysLoading]), and
	// /readyz says why.
	gate   *admission.Gate
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *Server) startServices(cfg *config.Config) error {
	st, err := admission.OpenStore(&cfg.Limits, admission.StoreOptions{Clock: s.gate.Clock, Log: s.log, OnBreaker: s.breakerChanged})
	if err != nil {
		return err
	}
	if st.Redis != nil {
		s.metrics.BreakerStarted(breakerStore)
	}
	svc := &services{store: st, gate: s.gate}
	ctx, cancel := context.WithCancel(context.Background())
	svc.cancel = cancel
	var sinks []spend.Sink
	var appender admission.SpendSink
	if st.Redis != nil {
		host, _ := os.Hostname()
		stream := redisstream.New(st.Redis, "{weir}:spend", "weir-spend-writers", host+"-"+strconv.Itoa(os.Getpid()))
		ictx, c := context.WithTimeout(ctx, 5*time.Second)
		s.migrateKeyNames(ictx, st.Redis)
		err := stream.Init(ictx)
		c()
		if err != nil {
			// Redis may be down at start; fail_open must still serve. The
			// writer retries Init through its reads.
			s.log.Warn("spend: redis stream not initialised yet", "err", err)
		}
		appender = stream
		rb := book.NewRedis(st.Redis, book.Prefix)
		svc.book, svc.keys = rb, keystore.NewRedis(st.Redis, keystore.Prefix)
		// The book takes each batch off the stream in the script that
		// counts it: counted once, however late a dead writer's batch
		// comes back. The file and stdout sinks are written before it.
		svc.writer = &spend.Writer{Source: stream, Commit: rb, Log: s.log}
	} else {
		svc.queue = spend.NewQueue()
		svc.queue.Max, svc.queue.Log = cfg.Spend.QueueMax, s.log
		s.registerQueueMetric(svc.queue)
		appender = svc.queue
		mb := &book.Memory{}
		svc.book, svc.keys = mb, keystore.NewMemory()
		sinks = append(sinks, mb)
		svc.writer = &spend.Writer{Source: svc.queue, Log: s.log}
	}
	if f := cfg.Spend.File; f != "" {
		j, err := spend.OpenJSONL(f)
		if err != nil {
			cancel()
			st.Close()
			return fmt.Errorf("spend.file: %w", err)
		}
		sinks = append(sinks, j)
		svc.sinks = append(svc.sinks, j)
	}
	if cfg.Spend.Stdout {
		sinks = append(sinks, spend.NewStream(os.Stdout))
	}
	svc.writer.Sink = spend.Fanout(sinks)
	s.gate.Store = st
	svc.appender = appender
	// Records are produced only when something reads them: a configured
	// sink here, or the key admin API (see KeyAdminBackend). An open gateway with
	// neither does no spend work per request.
	if cfg.Spend.File != "" || cfg.Spend.Stdout {
		s.gate.Spend = appender
	}
	s.gate.Extra = vkey.NewKeyring()
	syncer := &keystore.Syncer{Store: svc.keys, Ring: s.gate.Extra, Log: s.log, OnSync: func(int64, int) {
		s.gate.MarkExtraLoaded()
		if s.onSync != nil {
			s.onSync()
		}
	}, OnSubjects: func(teams []*keystore.Team, users []*keystore.User) {
		sub := &admission.Subjects{Users: map[string]limits.Subject{}, Teams: map[string]limits.Subject{}, TeamOrg: map[string]string{},
			TeamRules: map[string]admission.Rules{}, UserRules: map[string]admission.Rules{}}
		for _, t := range teams {
			sub.Teams[t.TeamID] = limits.Subject{Scope: "team", ID: t.TeamID, Limits: t.Limits, Models: t.ModelLimits}
			sub.TeamRules[t.TeamID] = admission.Rules{Blocked: t.Blocked, Models: t.Models}
			if t.OrgID != "" {
				sub.TeamOrg[t.TeamID] = t.OrgID
			}
		}
		for _, u := range users {
			sub.Users[u.UserID] = limits.Subject{Scope: "user", ID: u.UserID, Limits: u.Limits, Models: u.ModelLimits}
			sub.UserRules[u.UserID] = admission.Rules{Models: u.Models}
		}
		s.gate.SetSubjects(sub)
	}}
	// One load before serving: with the store up (and always with the
	// memory store), no request meets the window in which unknown keys
	// are answered "keys loading". A store that is down costs at most
	// this timeout here, as the spend stream's Init does above; Run
	// retries it in the background, and logs the failure.
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	_, _ = syncer.Sync(fctx)
	fcancel()
	svc.wg.Add(3)
	go func() { defer svc.wg.Done(); _ = svc.writer.Run(ctx) }()
	// Run retries a store that is down, at start-up too, until ctx ends.
	go func() { defer svc.wg.Done(); _ = syncer.Run(ctx) }()
	go func() { defer svc.wg.Done(); st.Run(ctx) }()
	s.svc = svc
	s.ready.Store(svc)
	return nil
}

// breakerStore labels the limits store's breaker in metrics. The key
// store and the spend stream share its client but have no breaker: see
// the README's "Redis: fail modes, breaker, TLS".
const breakerStore = "limits"

// breakerChanged reports a change of the limits store's breaker. It runs
// under the breaker's lock, once per change, not per request.
func (s *Server) breakerChanged(from, to limits.BreakerState) {
	s.metrics.BreakerChanged(breakerStore, int(to), to.String())
	switch to {
	case limits.BreakerOpen:
		if from == limits.BreakerClosed {
			s.log.Warn("limits: redis circuit breaker open; requests get the fail mode's answer without calling redis until a probe succeeds")
		}
	case limits.BreakerClosed:
		s.log.Info("limits: redis circuit breaker closed; redis answers again")
	}
}

// notReady lists why the services cannot serve as configured: keys from
// the store not loaded yet (unknown keys are answered 503 "keys loading"),
// or a fail_closed store whose breaker is not closed (every limited
// request is refused with 503).
func (svc *services) notReady() []string {
	var why []string
	if !svc.gate.ExtraLoaded() {
		why = append(why, "keys: the admin API's keys are not loaded from the store yet")
	}
	if b, mode := svc.store.Breaker(); mode == limits.FailClosed && b.State() != limits.BreakerClosed {
		why = append(why, "limits: redis unreachable (circuit breaker "+b.State().String()+") and fail_mode is closed: limited requests are refused with 503")
	}
	return why
}

// registerQueueMetric exports the in-memory spend queue's drops as
// weir_spend_dropped_total. The queue is built once per process, with the
// first config; a second registration keeps the first.
func (s *Server) registerQueueMetric(q *spend.Queue) {
	err := s.metrics.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "weir_spend_dropped_total",
		Help: "Spend records dropped because the in-memory spend queue was full while a sink failed.",
	}, func() float64 { return float64(q.Dropped()) }))
	if err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		s.log.Warn("metrics: weir_spend_dropped_total not registered", "err", err)
	}
}

// legacyKeyNames maps the names an earlier release gave the admin store's
// and the spend book's keys (prefix "{weir}" with no separator) to
// today's.
var legacyKeyNames = [][2]string{
	{"{weir}keys", keystore.Prefix + "keys"},
	{"{weir}teams", keystore.Prefix + "teams"},
	{"{weir}users", keystore.Prefix + "users"},
	{"{weir}version", keystore.Prefix + "version"},
	{"{weir}totals", book.Prefix + "totals"},
	{"{weir}logs", book.Prefix + "logs"},
}

// migrateKeyNames renames the keys an earlier release wrote under the
// legacy names, so admin-API keys and spend totals survive the upgrade.
// RENAMENX never overwrites a key a newer replica already wrote, and the
// names share a hash tag, so it works on Redis Cluster. Best effort: with
// Redis down, the keys move at the next start.
func (s *Server) migrateKeyNames(ctx context.Context, c *redis.Client) {
	for _, n := range legacyKeyNames {
		moved, err := c.RenameNX(ctx, n[0], n[1]).Result()
		switch {
		case err != nil && strings.Contains(err.Error(), "no such key"):
		case err != nil:
			s.log.Warn("redis: legacy key names not migrated", "err", err)
			return
		case moved:
			s.log.Info("redis: renamed a legacy key", "from", n[0], "to", n[1])
		default:
			s.log.Warn("redis: a legacy key is left beside its new name; merge it by hand", "legacy", n[0], "key", n[1])
		}
	}
}

// close drains the in-memory spend queue into the sinks (a Redis stream
// keeps undelivered records for the next writer), then stops everything.
func (svc *services) close() error {
	if svc.queue != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for svc.queue.Len() > 0 && ctx.Err() == nil {
			if _, err := svc.writer.Step(ctx); err != nil {
				break
			}
		}
		cancel()
	}
	svc.cancel()
	svc.wg.Wait()
	errs := []error{svc.store.Close()}
	for _, c := range svc.sinks {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// KeyAdminBackend returns what the key admin API (controller/keyadmin)
// works on: the key store this replica's keyring is synced from, and the
// spend book its spend writer keeps. The API is control plane, so the
// data plane hands out its parts and the binary's wiring builds the
// handler (extproc does not import the controller).
//
// Asking for them turns on spend records: the API reads them. Call it
// before serving starts, so no request reads the gate's Spend
// concurrently.
func (s *Server) KeyAdminBackend() (keystore.Store, book.Reader, error) {
	s.svcMu.Lock()
	defer s.svcMu.Unlock()
	if s.svc == nil {
		return nil, nil, errors.New("key admin API: no config loaded yet")
	}
	s.gate.Spend = s.svc.appender
	return s.svc.keys, s.svc.book, nil
}
