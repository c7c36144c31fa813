package vertex

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/gemini"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// maxSniff bounds what is held back while the first event is incomplete;
// an event that large is Gemini's (Anthropic's message_start is small).
const maxSniff = 64 << 10

// NewStream returns a stream that picks the Gemini or the Anthropic stream
// translator from the first SSE event (see the package documentation) and
// hands it everything from the first byte on.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	if info.Endpoint == provider.EndpointMessages {
		return messages.NewNativeStream(info.Model)
	}
	return &stream{t: t, info: *info}
}

type stream struct {
	t     *translator
	info  provider.StreamInfo
	inner provider.Stream
	held  []byte
}

func (s *stream) Usage() provider.Usage {
	if s.inner == nil {
		return provider.Usage{}
	}
	return s.inner.Usage()
}

func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if s.inner != nil {
		return s.inner.Translate(dst, chunk, eos)
	}
	s.held = append(s.held, chunk...)
	anth, decided := sniff(s.held)
	if !decided && !eos && len(s.held) < maxSniff {
		return dst, nil
	}
	if anth {
		s.inner = messages.NewStream(&s.info, now().Unix())
	} else {
		s.inner = gemini.NewStream(&s.info, now().Unix())
	}
	held := s.held
	s.held = nil
	return s.inner.Translate(dst, held, eos)
}

// sniff looks at the first complete SSE event in b: an "event:" line or a
// data object with a "type" string means Anthropic.
func sniff(b []byte) (anthropic, decided bool) {
	b = bytes.TrimLeft(b, "\r\n")
	end := -1
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if b[i+1] == '\n' {
			end = i
			break
		}
		if b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		return false, false
	}
	ev := b[:end]
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimRight(line, "\r")
		if bytes.HasPrefix(line, []byte("event:")) {
			return true, true
		}
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if gjson.GetBytes(d, "type").Type == gjson.String {
				return true, true
			}
		}
	}
	return false, true
}
