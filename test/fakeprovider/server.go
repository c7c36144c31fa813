package fakeprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind selects which provider a Server imitates.
type Kind string

const (
	// OpenAI imitates api.openai.com.
	OpenAI Kind = "openai"
	// Anthropic imitates api.anthropic.com.
	Anthropic Kind = "anthropic"
	// Bedrock imitates bedrock-runtime.<region>.amazonaws.com.
	Bedrock Kind = "bedrock"
)

// BehaviorHeader is the request header that selects fake behaviours.
const BehaviorHeader = "x-fake-behavior"

// maxBody mirrors Anthropic's 32 MB request limit
// (https://docs.claude.com/en/api/errors, "Request size limits"); both fakes
// answer 413 above it.
const maxBody = 32 << 20

// Recorded is one request as the fake received it.
type Recorded struct {
	Method string
	Path   string
	Query  string // raw query, without '?'
	Header http.Header
	Body   []byte
}

// JSON decodes the recorded body into v.
func (r Recorded) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Server is a fake provider. It is an http.Handler; Start serves it on a
// listener of its own. All methods are safe for concurrent use.
type Server struct {
	kind Kind

	mu       sync.Mutex
	key      string
	now      func() time.Time
	seq      int
	requests []Recorded
	limit    RecordLimit
	bytes    int // body bytes recorded
	arrived  chan struct{}
	stored   storedResponses // Responses API ids, for previous_response_id
	prompts  promptCache     // Anthropic cache_control prefixes written
	srv      *http.Server
	ln       net.Listener
}

// New returns a fake for kind (OpenAI, Anthropic, Azure or Gemini). It panics on any other
// kind, as that is a programming error.
func New(kind Kind) *Server {
	if providerFor(kind) == nil {
		panic(fmt.Sprintf("fakeprovider: unknown kind %q", kind))
	}
	return &Server{kind: kind, now: time.Now}
}

// Kind reports which provider s imitates.
func (s *Server) Kind() Kind { return s.kind }

// RequireKey makes s reject requests whose API key is not key (OpenAI:
// "Authorization: Bearer key", Anthropic: "x-api-key: key") with a 401.
// An empty key accepts anything again.
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	s.key = key
	s.mu.Unlock()
}

// SetClock replaces the clock used for "created" fields and rate-limit reset
// times (default time.Now). Use it to make whole bodies byte-for-byte stable.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// Arrivals returns a channel that receives a value as each request
// arrives (before any behaviour such as slow-first-byte), so tests can wait
// for "the request is upstream now" without polling. Values beyond the
// buffer are dropped.
func (s *Server) Arrivals() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arrived == nil {
		s.arrived = make(chan struct{}, 1024)
	}
	return s.arrived
}

// RecordLimit bounds what a fake records. Zero fields are unlimited: a
// test asks for every request it sent.
type RecordLimit struct {
	Requests  int // the most recent requests kept
	BodyBytes int // their bodies' total; the newest is always kept
}

// DevRecordLimit is what `weir dev` keeps: enough to inspect recent
// traffic, not a copy of every body ever sent (7 MB bodies otherwise
// pile up to gigabytes).
var DevRecordLimit = RecordLimit{Requests: 100, BodyBytes: 16 << 20}

// SetRecordLimit bounds the recorded requests; older ones are forgotten
// first.
func (s *Server) SetRecordLimit(l RecordLimit) {
	s.mu.Lock()
	s.limit = l
	s.trim()
	s.mu.Unlock()
}

// trim forgets the oldest requests past the limit. Called with s.mu held.
func (s *Server) trim() {
	n := 0
	for len(s.requests)-n > 1 && ((s.limit.Requests > 0 && len(s.requests)-n > s.limit.Requests) ||
		(s.limit.BodyBytes > 0 && s.bytes > s.limit.BodyBytes)) {
		s.bytes -= len(s.requests[n].Body)
		n++
	}
	if n > 0 {
		// Copy down rather than reslice, so the dropped bodies are freed.
		s.requests = append(s.requests[:0], s.requests[n:]...)
		clear(s.requests[len(s.requests):cap(s.requests)])
	}
}

// Requests returns a copy of every request recorded (all, unless
// [Server.SetRecordLimit] bounds them), in arrival order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.requests))
	for i, r := range s.requests {
		out[i] = cloneRecorded(r)
	}
	return out
}

// Last returns the most recent request, if any.
func (s *Server) Last() (Recorded, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return Recorded{}, false
	}
	return cloneRecorded(s.requests[len(s.requests)-1]), true
}

// Reset forgets the recorded requests and the prompt prefixes cached by
// cache_control, and restarts the id sequence. The required key and the
// clock are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.bytes = 0
	s.seq = 0
	s.mu.Unlock()
	s.prompts.reset()
}

// Start listens on addr (for example "127.0.0.1:0"), serves s in the
// background and returns the base URL, like "http://127.0.0.1:PORT".
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("fakeprovider: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srv, s.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops a server started with Start, closing open connections. It is a
// no-op if s was not started.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func cloneRecorded(r Recorded) Recorded {
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

// call carries the state of one request through the handlers.
type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	body  []byte
	seq   int
	now   time.Time
	beh   behaviors
	pname string // "fake-openai" / "fake-anthropic"
}

func (c *call) id(prefix string) string { return fmt.Sprintf("%s%06d", prefix, c.seq) }

// ServeHTTP records the request and answers it as the provider would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	tooBig := len(body) > maxBody

	s.mu.Lock()
	s.seq++
	c := &call{s: s, w: w, r: r, body: body, seq: s.seq, now: s.now(), pname: "fake-" + string(s.kind)}
	key := s.key
	s.requests = append(s.requests, Recorded{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
		Header: r.Header.Clone(),
		Body:   bytes.Clone(body),
	})
	s.bytes += len(body)
	s.trim()
	arrived := s.arrived
	s.mu.Unlock()
	if arrived != nil {
		select {
		case arrived <- struct{}{}:
		default:
		}
	}

	p := providerFor(s.kind)
	p.commonHeaders(c, false)

	beh, err := parseBehaviors(r.Header.Values(BehaviorHeader))
	if err != nil {
		p.writeError(c, apiError{Status: http.StatusBadRequest, Message: "fake: " + err.Error()})
		return
	}
	c.beh = beh

	if beh.slowFirstByte > 0 {
		t := time.NewTimer(beh.slowFirstByte)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if beh.nonJSONError != 0 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		c.writeBody(beh.nonJSONError, []byte(htmlError(beh.nonJSONError)))
		return
	}
	if beh.emptyError != 0 {
		// Headers only: the response ends with them (content-length 0).
		c.writeBody(beh.emptyError, nil)
		return
	}
	if beh.status != 0 {
		p.writeError(c, p.defaultError(beh.status))
		return
	}
	if readErr != nil {
		p.writeError(c, apiError{Status: http.StatusBadRequest, Message: "could not read request body: " + readErr.Error()})
		return
	}
	if tooBig {
		e := p.defaultError(http.StatusRequestEntityTooLarge)
		p.writeError(c, e)
		return
	}
	if !p.authorize(c, key) {
		return
	}
	if beh.contextLength {
		p.contextLength(c)
		return
	}
	p.route(c)
}

// writeBody writes a complete non-stream body, honouring cut-after.
func (c *call) writeBody(status int, b []byte) {
	h := c.w.Header()
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	if n := c.beh.cutAfter; n > 0 && n < len(b) {
		_, _ = c.w.Write(b[:n])
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	_, _ = c.w.Write(b)
}

func (c *call) writeJSON(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.writeBody(status, b)
}

// htmlError is the kind of page a load balancer or proxy sends.
func htmlError(status int) string {
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	return fmt.Sprintf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>fake-proxy</center>\r\n</body>\r\n</html>\r\n",
		status, text, status, text)
}

// apiError is a provider error before rendering. Param and Code are used by
// OpenAI only; nil renders as null.
type apiError struct {
	Status  int
	Type    string // empty: the provider's default for Status
	Message string
	Param   *string
	Code    *string
}

func strp(s string) *string { return &s }

// provider is what differs between the two kinds.
type provider interface {
	commonHeaders(c *call, rateLimited bool)
	defaultError(status int) apiError
	writeError(c *call, e apiError)
	// contextLength writes the provider's own error for a prompt longer
	// than the model's context window.
	contextLength(c *call)
	authorize(c *call, key string) bool
	route(c *call)
}

func providerFor(k Kind) provider {
	switch k {
	case OpenAI:
		return openaiProvider{}
	case Anthropic:
		return anthropicProvider{}
	case Azure:
		return azureProvider{}
	case Gemini:
		return geminiProvider{}
	case Bedrock:
		return bedrockProvider{}
	case Vertex:
		return vertexProvider{}
	}
	return nil
}

// behaviors is the parsed x-fake-behavior header.
type behaviors struct {
	status        int
	slowFirstByte time.Duration
	cutAfter      int
	holdAfter     int
	exactUsage    bool
	cached        int
	cacheRead     int
	cacheWrite    int
	cacheTokens   bool // cache-tokens was given: it wins over cache_control
	streamError   bool
	contextLength bool
	nonJSONError  int
	emptyError    int
}

func parseBehaviors(values []string) (behaviors, error) {
	var b behaviors
	var items []string
	for _, v := range values {
		for _, it := range strings.Split(v, ",") {
			it = strings.TrimSpace(it)
			if it == "" {
				continue
			}
			// "cache-tokens=<read>,<write>" contains the list separator: a
			// bare number continues the previous cache-tokens item.
			if _, err := strconv.Atoi(it); err == nil && len(items) > 0 &&
				strings.HasPrefix(items[len(items)-1], "cache-tokens=") && !strings.Contains(items[len(items)-1], ",") {
				items[len(items)-1] += "," + it
				continue
			}
			items = append(items, it)
		}
	}
	for _, it := range items {
		name, val, hasVal := strings.Cut(it, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		num := func(min int) (int, error) {
			n, err := strconv.Atoi(val)
			if err != nil || n < min {
				return 0, fmt.Errorf("bad %s value %q in %s", name, val, BehaviorHeader)
			}
			return n, nil
		}
		var err error
		switch {
		case name == "status" && hasVal:
			b.status, err = num(400)
			if err == nil && b.status > 599 {
				err = fmt.Errorf("bad status value %q in %s", val, BehaviorHeader)
			}
		case name == "non-json-error" && hasVal:
			b.nonJSONError, err = num(100)
			if err == nil && b.nonJSONError > 599 {
				err = fmt.Errorf("bad non-json-error value %q in %s", val, BehaviorHeader)
			}
		case name == "empty-error" && hasVal:
			b.emptyError, err = num(400)
			if err == nil && b.emptyError > 599 {
				err = fmt.Errorf("bad empty-error value %q in %s", val, BehaviorHeader)
			}
		case name == "slow-first-byte" && hasVal:
			b.slowFirstByte, err = time.ParseDuration(val)
			if err != nil || b.slowFirstByte < 0 {
				err = fmt.Errorf("bad slow-first-byte value %q in %s", val, BehaviorHeader)
			}
		case name == "cut-after" && hasVal:
			b.cutAfter, err = num(1)
		case name == "hold-after" && hasVal:
			b.holdAfter, err = num(1)
		case name == "exact-usage" && !hasVal:
			b.exactUsage = true
		case name == "cached" && hasVal:
			b.cached, err = num(0)
		case name == "cache-tokens" && hasVal:
			r, w, ok := strings.Cut(val, ",")
			rn, err1 := strconv.Atoi(strings.TrimSpace(r))
			wn, err2 := strconv.Atoi(strings.TrimSpace(w))
			if !ok || err1 != nil || err2 != nil || rn < 0 || wn < 0 {
				err = fmt.Errorf("bad cache-tokens value %q in %s (want <read>,<write>)", val, BehaviorHeader)
			}
			b.cacheRead, b.cacheWrite, b.cacheTokens = rn, wn, true
		case name == "stream-error" && !hasVal:
			b.streamError = true
		case name == "context-length" && !hasVal:
			b.contextLength = true
		default:
			err = fmt.Errorf("unknown behavior %q in %s", it, BehaviorHeader)
		}
		if err != nil {
			return behaviors{}, err
		}
	}
	return b, nil
}

// sseWriter writes server-sent events, flushing each one, and aborts the
// connection after cut-after events, or holds it open after hold-after
// events until the client goes away.
type sseWriter struct {
	w         http.ResponseWriter
	f         http.Flusher
	n         int
	cutAfter  int
	holdAfter int
	done      <-chan struct{} // the request's context
}

func (c *call) startSSE(contentType string) *sseWriter {
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	c.w.WriteHeader(http.StatusOK)
	f, _ := c.w.(http.Flusher)
	sw := &sseWriter{w: c.w, f: f, cutAfter: c.beh.cutAfter, holdAfter: c.beh.holdAfter, done: c.r.Context().Done()}
	sw.flush()
	return sw
}

func (sw *sseWriter) flush() {
	if sw.f != nil {
		sw.f.Flush()
	}
}

// event writes one event. An empty name writes a data-only event. data is
// either a string written verbatim or a value marshalled to JSON.
func (sw *sseWriter) event(name string, data any) {
	var payload string
	if s, ok := data.(string); ok {
		payload = s
	} else {
		b, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		payload = string(b)
	}
	var buf strings.Builder
	if name != "" {
		buf.WriteString("event: ")
		buf.WriteString(name)
		buf.WriteString("\n")
	}
	buf.WriteString("data: ")
	buf.WriteString(payload)
	buf.WriteString("\n\n")
	_, _ = io.WriteString(sw.w, buf.String())
	sw.written()
}

// written flushes and counts one event (or frame), then applies cut-after
// and hold-after.
func (sw *sseWriter) written() {
	sw.flush()
	sw.n++
	if sw.cutAfter > 0 && sw.n >= sw.cutAfter {
		panic(http.ErrAbortHandler)
	}
	if sw.holdAfter > 0 && sw.n == sw.holdAfter {
		// The client, or the gateway in front, has these events and the
		// stream is still open: wait for it to hang up.
		<-sw.done
		panic(http.ErrAbortHandler)
	}
}
