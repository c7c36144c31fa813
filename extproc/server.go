// Package extproc is Weir's Envoy external processor: a gRPC
// envoy.service.ext_proc.v3 server that serves two filter levels.
//
// The router-level filter authenticates, parses and routes each request and
// translates the response back; the upstream-level filter runs once per
// upstream attempt and rewrites the request into the provider's format. The
// two never share process memory: what the upstream level needs travels in
// Envoy dynamic metadata and attributes, so any replica can serve any stream.
// extproc/DESIGN.md describes the message shape.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/accesslog"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/ingress/registry"
	"github.com/weir-ai/weir/extproc/metrics"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/runtime"
	"github.com/weir-ai/weir/extproc/tokens"
	"github.com/weir-ai/weir/extproc/vkey"
)

// Options configure a [Server].
type Options struct {
	// Logger is for operational messages. Defaults to slog.Default().
	Logger *slog.Logger
	// AccessLog receives one JSON line per request; nil disables it. The
	// server batches lines in an [accesslog.Sink] (unless AccessLog already
	// is one) and writes them from its own goroutine; [Server.Close]
	// flushes it.
	AccessLog io.Writer
	// Metrics; nil creates a private registry.
	Metrics *metrics.Metrics
	// Gate authenticates keys and enforces limits; nil makes one with an
	// in-memory store, replaced by a Redis one if the config asks.
	Gate *admission.Gate
	// Pipeline overrides the stages (tests); nil means [Server.Stages].
	Pipeline *pipeline.Pipeline
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnFinish, if set, runs after each request's metrics, access log and
	// settle are written: tests wait on it instead of sleeping.
	OnFinish func()
	// OnKeySync, if set, runs after each reload of the admin API's keys,
	// teams and users from the store: tests wait on it for a change made
	// on another replica.
	OnKeySync func()
	// ReleaseMemory hands freed heap back to the OS after a config is
	// applied; nil means debug.FreeOSMemory (tests inject one).
	ReleaseMemory func()
}

// Server implements [extprocv3.ExternalProcessorServer].
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	rt       atomic.Pointer[runtime.Runtime]
	pipeline *pipeline.Pipeline
	// ingresses picks a request's ingress adapter by path.
	ingresses *registry.Registry
	gate      *admission.Gate
	svcMu     sync.Mutex // guards svc; never taken on the request path
	svc       *services
	// ready is svc once started, read by readiness checks without svcMu,
	// which a start-up holds while it waits on Redis.
	ready    atomic.Pointer[services]
	metrics  *metrics.Metrics
	log      *slog.Logger
	access   atomic.Pointer[accesslog.Logger]
	accessW  io.Writer       // nil: no access log
	sink     *accesslog.Sink // owned, closed by Close; nil if none
	now      func() time.Time
	onFinish func()
	onSync   func()
	// unpriced holds the models already warned about as unpriced, so a
	// reload does not repeat the warning.
	unpriced sync.Map
	// creds keeps token and AWS credential caches across reloads.
	creds *credsource.Pool
	// release returns memory to the OS after an apply, off the apply
	// path; releasing and again coalesce the applies made meanwhile.
	release   func()
	releaseMu sync.Mutex
	releasing bool
	again     bool
	releaseWG sync.WaitGroup
}

// New builds a server. It serves nothing until [Server.SetRuntime] is called.
func New(opts Options) *Server {
	s := &Server{
		pipeline: opts.Pipeline,
		metrics:  opts.Metrics,
		log:      opts.Logger,
		now:      opts.Now,
		onFinish: opts.OnFinish,
		onSync:   opts.OnKeySync,
		creds:    credsource.NewPool(),
		release:  opts.ReleaseMemory,
	}
	if s.release == nil {
		s.release = debug.FreeOSMemory
	}
	s.gate = opts.Gate
	if s.gate == nil {
		s.gate = &admission.Gate{
			Keys: vkey.NewKeyring(),
			// Every BPE token covers at least one byte: a strict bound
			// for text that never under-reserves, at no tokenizing cost;
			// images count their provider's documented cost instead of
			// their base64 bytes.
			Tokens: tokens.Media{},
			Clock:  budget.Clock(opts.Now),
			Log:    s.log,
			// A fallback: each reservation lives its backend's timeout
			// plus admission.ReservationGrace.
			TTL: config.DefaultBackendTimeout + admission.ReservationGrace,
		}
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.ingresses = registry.New()
	if s.pipeline == nil {
		s.pipeline = pipeline.New(s.Stages()...)
	}
	if w := opts.AccessLog; w != nil {
		if sk, ok := w.(*accesslog.Sink); ok {
			s.accessW = sk
		} else {
			s.sink = accesslog.NewSink(w, 0, 0)
			s.accessW = s.sink
		}
	}
	s.access.Store(&accesslog.Logger{W: s.accessW})
	return s
}

// SetRuntime atomically swaps in a compiled config. Streams already open
// keep the runtime they started with. The replaced runtime's credential
// sources are released: those the new one does not share stop refreshing.
func (s *Server) SetRuntime(rt *runtime.Runtime) {
	old := s.rt.Swap(rt)
	s.access.Store(&accesslog.Logger{W: s.accessW, Bodies: rt.Config.Logging.LogBodies})
	if old != nil && old != rt {
		old.Release()
	}
}

// Close flushes the access log, stops its writer and releases the counter
// store. Call it once the gRPC server has drained; lines logged after
// Close are written unbuffered.
func (s *Server) Close() error {
	s.releaseWG.Wait()
	var errs []error
	if s.sink != nil {
		errs = append(errs, s.sink.Close())
	}
	// Stops the token refreshers; the runtime serves nothing any more.
	if rt := s.rt.Load(); rt != nil {
		rt.Release()
	}
	s.svcMu.Lock()
	if s.svc != nil {
		s.ready.Store(nil)
		errs = append(errs, s.svc.close())
		s.svc = nil
	}
	s.svcMu.Unlock()
	return errors.Join(errs...)
}

// Runtime returns the current compiled config, or nil before the first.
func (s *Server) Runtime() *runtime.Runtime { return s.rt.Load() }

// Ready reports whether the server can serve as configured: see
// [Server.NotReady].
func (s *Server) Ready() bool { return len(s.NotReady()) == 0 }

// NotReady lists why the server cannot serve as configured; empty means
// ready. Not ready: no config loaded yet; the admin API's keys not loaded
// from the store yet; or Redis unreachable with fail_mode closed (the
// breaker is not closed), while every limited request is refused. A
// fail_open outage is not a reason: requests are served.
func (s *Server) NotReady() []string {
	if s.rt.Load() == nil {
		return []string{"config: no config loaded yet"}
	}
	if svc := s.ready.Load(); svc != nil {
		return svc.notReady()
	}
	return nil
}

// Metrics returns the server's collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// errNotReady is returned on streams opened before any config loaded; Envoy
// turns it into a 500 unless failure_mode_allow is set.
var errNotReady = status.Error(codes.Unavailable, "weir: no config loaded yet")

// Process implements the ext_proc bidirectional stream.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	rt := s.rt.Load()
	if rt == nil {
		return errNotReady
	}
	level := config.FilterLevelRouter
	if md, ok := metadata.FromIncomingContext(stream.Context()); ok {
		if v := md.Get(config.FilterLevelHeader); len(v) > 0 {
			level = v[0]
		}
	}
	s.metrics.StreamOpened(level)
	defer s.metrics.StreamClosed(level)
	var h handler
	switch level {
	case config.FilterLevelUpstream:
		h = &upstreamStream{s: s, rt: rt}
	case config.FilterLevelRouter:
		r := &routerStream{s: s, rt: rt}
		r.req.Start = s.now()
		defer s.contain(level, r, func() { r.finish(stream.Context()) })
		h = r
	default:
		return status.Errorf(codes.InvalidArgument, "weir: unknown %s %q", config.FilterLevelHeader, level)
	}
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err != nil {
			// EOF and cancellation are how Envoy ends a stream it no longer
			// needs (it closes early since 1.37).
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || ctx.Err() != nil {
				return nil
			}
			return err
		}
		t0 := time.Now()
		resp, phase := s.handle(ctx, level, h, req)
		s.metrics.Phase(level, phase, time.Since(t0))
		if resp == nil {
			return status.Errorf(codes.InvalidArgument, "weir: unexpected %s message on a %s stream", phase, level)
		}
		if err := stream.Send(resp); err != nil {
			if status.Code(err) == codes.Canceled || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// handler processes the messages of one stream.
type handler interface {
	// handle returns the reply and the phase name for metrics. A nil reply
	// means the message was not expected at this filter level.
	handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, string)
	// requestID names the request in logs ("" before it is known).
	requestID() string
	// internalError ends the request with a 500 in the client's format.
	internalError(err error) *extprocv3.ProcessingResponse
}

// errPanic is what a client hears about a recovered panic: an internal
// error, with no detail of where.
var errPanic = errors.New("internal error")

// handle runs one message through h. A panic ends only this request, with
// a 500 in the client's format, and is logged with the request id and the
// stack; every other stream keeps going.
func (s *Server) handle(ctx context.Context, level string, h handler, req *extprocv3.ProcessingRequest) (resp *extprocv3.ProcessingResponse, phase string) {
	defer func() {
		if v := recover(); v != nil {
			s.metrics.Panic(level)
			s.log.Error("panic while processing a stream; request ended with a 500",
				"level", level, "request_id", h.requestID(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp, phase = h.internalError(errPanic), "panic"
		}
	}()
	return h.handle(ctx, req)
}

// contain runs f, logging instead of crashing on a panic (the end of a
// stream: metrics, access log, settle).
func (s *Server) contain(level string, h handler, f func()) {
	defer func() {
		if v := recover(); v != nil {
			s.metrics.Panic(level)
			s.log.Error("panic while finishing a stream", "level", level, "request_id", h.requestID(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// LoadConfig parses, validates and compiles raw YAML and swaps it in. On
// any error the running config stays in place.
func (s *Server) LoadConfig(raw []byte, lookup config.LookupFunc) error {
	cfg, err := config.Parse(raw, lookup)
	if err != nil {
		return err
	}
	return s.apply(cfg, raw)
}

// ApplyConfig compiles and installs a config that arrived decoded (over
// xDS, see extproc/xdsclient) and already prepared (config.Prepare, which
// wire.Decode runs). version identifies it in place of the file's bytes
// (the runtime's Hash). On error the previous config keeps serving.
func (s *Server) ApplyConfig(cfg *config.Config, version string) error {
	return s.apply(cfg, []byte(version))
}

// apply is LoadConfig and ApplyConfig after decoding; id is hashed into
// the runtime's Hash.
func (s *Server) apply(cfg *config.Config, id []byte) error {
	rt, err := runtime.Compile(cfg, id, s.creds)
	if err != nil {
		return err
	}
	if err := s.useStore(cfg); err != nil {
		rt.Release()
		return err
	}
	s.gate.SetKeys(rt.Policy.ConfigKeys)
	s.SetRuntime(rt)
	s.warnUnpriced(rt)
	s.releaseMemory()
	return nil
}

// releaseMemory returns the garbage of an apply to the OS in the
// background. Parsing a large config (thousands of keys) leaves tens of
// MiB of garbage that the heap would otherwise keep as resident memory
// until the next GC cycles. It is a forced GC and a full scavenge, about
// 110 ms at 10,000 keys: run inline it delayed every xDS ACK by that much.
// Applies made while it runs coalesce into one more release, so a burst
// of pushes does not queue a release each.
func (s *Server) releaseMemory() {
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	if s.releasing {
		s.again = true
		return
	}
	s.releasing = true
	s.releaseWG.Go(func() {
		for {
			s.release()
			s.releaseMu.Lock()
			if !s.again {
				s.releasing = false
				s.releaseMu.Unlock()
				return
			}
			s.again = false
			s.releaseMu.Unlock()
		}
	})
}

// warnUnpriced logs, once per model and process, each routable model
// without a price.
func (s *Server) warnUnpriced(rt *runtime.Runtime) {
	fallback := rt.Policy.Prices.HasFallback()
	effect := "a request with a budget is refused (403 model_not_priced); add a pricing entry, or a fallback price with model \"*\""
	if fallback {
		effect = "requests are charged the fallback price (pricing model \"*\")"
	}
	for _, u := range rt.Unpriced() {
		if _, seen := s.unpriced.LoadOrStore(u, true); seen {
			continue
		}
		if u.Wildcard {
			s.log.Warn("pricing: names under this wildcard may have no price; "+effect, "model", u.Model, "backend", u.Backend)
			continue
		}
		s.log.Warn("pricing: model has no price; "+effect, "model", u.Model, "backend", u.Backend, "upstream_model", u.Upstream)
	}
}

// useStore starts the process-wide services on the first config.
// Counters must survive reloads, so a later config that asks for another
// store is logged and applies at the next restart.
func (s *Server) useStore(cfg *config.Config) error {
	s.svcMu.Lock()
	defer s.svcMu.Unlock()
	if s.svc != nil {
		if !s.svc.store.Matches(&cfg.Limits) {
			s.log.Warn("limits store changed in config; restart to apply", "running", s.svc.store.Kind+" "+s.svc.store.Addr)
		}
		return nil
	}
	return s.startServices(cfg)
}
