package messages

import (
	"bytes"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// NativeMaxEvent bounds one buffered event of a native stream, as
// extproc/sse bounds the events it parses: a provider that never ends an
// event cannot make Weir hold its whole body.
const NativeMaxEvent = 4 << 20

// NativeStream passes an Anthropic Messages event stream to a client that
// speaks Messages, as provider.Stream: the events' bytes go through as
// they came, except message_start's message.model, which becomes the name
// the client used. Chunks may split events anywhere; only an incomplete
// event is held back. It learns the usage on the way (message_start's,
// then message_delta's) and reports a stream that ends before
// message_stop.
//
// Bedrock, whose events arrive in its own framing, feeds each event's JSON
// to [NativeStream.AppendEvent] instead of calling Translate.
type NativeStream struct {
	model string
	pend  []byte // an incomplete event
	// scan is where the search for pend's end resumes: the bytes before it
	// hold no event end.
	scan    int
	scratch []byte // joined data lines, for the rare multi-line event

	n counts
	// ended: message_stop or an error event was seen, so the stream is
	// complete as the provider meant it.
	ended bool
}

var _ provider.Stream = (*NativeStream)(nil)

// NewNativeStream starts a native stream for a client that asked for
// model (the client's name; "" keeps the provider's).
func NewNativeStream(model string) *NativeStream { return &NativeStream{model: model} }

// Usage returns the usage seen so far.
func (s *NativeStream) Usage() provider.Usage {
	return s.n.usage()
}

// Ended reports whether message_stop or an error event was seen.
func (s *NativeStream) Ended() bool { return s.ended }

// Translate consumes a chunk of an Anthropic SSE stream and appends what
// the client gets. At eos an event left without its blank line is passed
// on, completed, and a stream that never sent message_stop (nor an error
// event) is an error wrapping errs.ErrUpstreamBadReply: the output so far
// is still returned, for the router to end the stream in-band.
func (s *NativeStream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	buf, scan := chunk, 0
	if len(s.pend) > 0 {
		s.pend = append(s.pend, chunk...)
		buf, scan = s.pend, s.scan
	}
	for {
		end := nativeEventEnd(buf, scan)
		if end < 0 {
			break
		}
		dst = s.event(dst, buf[:end])
		buf, scan = buf[end:], 0
	}
	if len(s.pend) > 0 {
		s.pend = s.pend[:copy(s.pend, buf)]
	} else {
		s.pend = append(s.pend, buf...)
	}
	// The longest event end is 3 bytes ("\n\r\n"): resume just before it.
	s.scan = max(len(s.pend)-2, 0)
	if len(s.pend) > NativeMaxEvent {
		s.pend = nil
		return dst, fmt.Errorf("%w: stream event larger than %d bytes", errs.ErrUpstreamBadReply, NativeMaxEvent)
	}
	if !eos {
		return dst, nil
	}
	if len(bytes.TrimSpace(s.pend)) > 0 {
		dst = s.event(dst, s.pend)
		if !bytes.HasSuffix(s.pend, []byte("\n")) {
			dst = append(dst, '\n')
		}
		dst = append(dst, '\n')
	}
	s.pend, s.scan = s.pend[:0], 0
	return dst, s.Finish()
}

// Finish reports a stream that ended without message_stop or an error
// event, as an error wrapping errs.ErrUpstreamBadReply.
func (s *NativeStream) Finish() error {
	if s.ended {
		return nil
	}
	return fmt.Errorf("%w: the stream ended before message_stop", errs.ErrUpstreamBadReply)
}

// nativeEventEnd returns the offset just past the first blank line at or
// after from in b ("\n\n" or "\n\r\n", which ends a "\r\n" event), or -1.
func nativeEventEnd(b []byte, from int) int {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// nativePassed are the events that change neither the usage nor the
// stream's state: they go through unread.
func nativePassed(name []byte) bool {
	switch string(name) {
	case "content_block_delta", "content_block_start", "content_block_stop", "ping":
		return true
	}
	return false
}

// event passes one complete event (with its blank line) to dst.
func (s *NativeStream) event(dst, ev []byte) []byte {
	var name, data []byte
	dataAt, nData := -1, 0
	for off := 0; off < len(ev); {
		line := ev[off:]
		next := len(ev)
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line, next = line[:j], off+j+1
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			name = nativeField(line[len("event:"):])
			if nativePassed(name) {
				return append(dst, ev...)
			}
		case bytes.HasPrefix(line, []byte("data:")):
			d := nativeField(line[len("data:"):])
			nData++
			if nData == 1 {
				data, dataAt = d, off+(len(line)-len(d))
			} else {
				// Several data lines make one value, joined by newlines.
				if nData == 2 {
					s.scratch = append(s.scratch[:0], data...)
				}
				s.scratch = append(s.scratch, '\n')
				s.scratch = append(s.scratch, d...)
				data = s.scratch
			}
		}
		off = next
	}
	js := jsonw.View(data)
	if nData == 0 || !gjson.Valid(js) {
		// Nothing Weir reads (a comment, or not JSON): the client's SDK
		// decides what it means.
		return append(dst, ev...)
	}
	root := gjson.Parse(js)
	typ := string(name)
	if typ == "" {
		typ = root.Get("type").Str
	}
	model := s.observe(typ, root)
	if nData == 1 {
		if out := NativeSetModel(data, model, s.model); out != nil {
			dst = append(dst, ev[:dataAt]...)
			dst = append(dst, out...)
			return append(dst, ev[dataAt+len(data):]...)
		}
	}
	return append(dst, ev...)
}

// nativeField is a field's value: what follows the colon, without the one
// space the SSE format allows there.
func nativeField(v []byte) []byte {
	if len(v) > 0 && v[0] == ' ' {
		return v[1:]
	}
	return v
}

// observe records what event typ (its data parsed in root) says about
// usage and the stream's end, and returns message_start's message.model
// value, to be rewritten.
func (s *NativeStream) observe(typ string, root gjson.Result) gjson.Result {
	switch typ {
	case "message_start":
		msg := root.Get("message")
		s.n.observe(msg.Get("usage"), nativeCount)
		return msg.Get("model")
	case "message_delta":
		s.n.observe(root.Get("usage"), nativeCount)
	case "message_stop", "error":
		s.ended = true
	}
	return gjson.Result{}
}

// AppendEvent appends one Messages stream event whose JSON a provider sent
// in its own framing (Bedrock's PayloadPart bytes) as the SSE event
// "event: <its type>\ndata: <json>\n\n", with message_start's model
// rewritten. Data that is not a JSON object is an error wrapping
// errs.ErrUpstreamBadReply.
func (s *NativeStream) AppendEvent(dst, data []byte) ([]byte, error) {
	js := jsonw.View(data)
	if !gjson.Valid(js) {
		return dst, fmt.Errorf("%w: stream event is not JSON", errs.ErrUpstreamBadReply)
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return dst, fmt.Errorf("%w: stream event is not a JSON object", errs.ErrUpstreamBadReply)
	}
	typ := root.Get("type").Str
	model := s.observe(typ, root)
	if nativeEventName(typ) {
		dst = append(dst, "event: "...)
		dst = append(dst, typ...)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	start := len(dst)
	if out := NativeSetModel(data, model, s.model); out != nil {
		dst = append(dst, out...)
	} else {
		dst = append(dst, data...)
	}
	// Valid JSON holds line breaks only as whitespace between tokens; as
	// spaces they keep the event on one data line.
	for i := start; i < len(dst); i++ {
		if dst[i] == '\n' || dst[i] == '\r' {
			dst[i] = ' '
		}
	}
	return append(dst, '\n', '\n'), nil
}

// AppendError appends an error event for a failure the provider reported
// in its own framing, and ends the stream as an error event from Anthropic
// would.
func (s *NativeStream) AppendError(dst []byte, typ, msg string) []byte {
	s.ended = true
	return NativeErrorEvent(dst, typ, msg)
}

// nativeEventName reports whether an event type is safe on an "event:"
// line: Anthropic's are lower-case words joined by underscores.
func nativeEventName(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && c != '_' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
