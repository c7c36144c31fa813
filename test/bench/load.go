package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// LoadResult is one closed-loop run.
type LoadResult struct {
	Requests int
	Errors   int
	// ErrorKinds counts errors by [Error.Key]; ErrorSample is one detail
	// per key.
	ErrorKinds  map[string]int
	ErrorSample map[string]string
	Elapsed     time.Duration
	// Latencies of successful requests, sorted.
	Latencies []time.Duration
}

// Percentile returns the q-quantile (0..1) of the successful latencies.
func (r *LoadResult) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies)) + 0.5)
	return r.Latencies[min(max(i-1, 0), len(r.Latencies)-1)]
}

// Requester plays one request's ext_proc messages against a server:
// [Driver] for Weir's shape, [AIGWDriver] for Envoy AI Gateway's.
type Requester interface {
	Do(ctx context.Context, c extprocv3.ExternalProcessorClient, id string) error
}

// Load runs conc workers, each sending one request at a time, until dur
// passes or max requests were started (max <= 0: no count bound). Worker
// i uses clients[i%len(clients)]. Each request is bounded by timeout.
func Load(ctx context.Context, d Requester, clients []extprocv3.ExternalProcessorClient, conc int, dur time.Duration, max int, timeout time.Duration, seq *atomic.Uint64) *LoadResult {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var started atomic.Int64
	type worker struct {
		lat  []time.Duration
		errs []error
	}
	ws := make([]worker, conc)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ws {
		w := &ws[i]
		c := clients[i%len(clients)]
		wg.Go(func() {
			for ctx.Err() == nil {
				if max > 0 && started.Add(1) > int64(max) {
					return
				}
				rctx, rcancel := context.WithTimeout(context.Background(), timeout)
				s := time.Now()
				err := d.Do(rctx, c, RequestID(seq.Add(1)))
				el := time.Since(s)
				rcancel()
				if err != nil {
					w.errs = append(w.errs, err)
					continue
				}
				w.lat = append(w.lat, el)
			}
		})
	}
	wg.Wait()
	r := &LoadResult{Elapsed: time.Since(t0), ErrorKinds: map[string]int{}, ErrorSample: map[string]string{}}
	for _, w := range ws {
		r.Latencies = append(r.Latencies, w.lat...)
		for _, err := range w.errs {
			key, detail := err.Error(), ""
			var be *Error
			if errors.As(err, &be) {
				key, detail = be.Key, be.Detail
			}
			r.ErrorKinds[key]++
			if _, ok := r.ErrorSample[key]; !ok {
				r.ErrorSample[key] = detail
			}
		}
		r.Errors += len(w.errs)
	}
	r.Requests = len(r.Latencies) + r.Errors
	slices.Sort(r.Latencies)
	return r
}
