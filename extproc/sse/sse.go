// Package sse parses and writes Server-Sent Events incrementally.
//
// Envoy hands a streamed body to the extproc in chunks that follow socket
// reads, not event boundaries: one event can span chunks and one chunk can
// hold several events. [Parser] keeps the unfinished tail between chunks.
package sse

import "bytes"

// MaxEventBytes bounds one buffered, unfinished event. An upstream that
// never ends an event cannot make the extproc buffer without limit.
const MaxEventBytes = 4 << 20

// Event is one parsed event. Its slices point into the parser's buffer and
// are valid only until the next call to [Parser.Feed].
type Event struct {
	// Name is the "event:" field; empty means "message".
	Name []byte
	// Data is the "data:" field; several data lines are joined with "\n".
	Data []byte
	// ID is the "id:" field.
	ID []byte
	// Raw is the event as received, its terminating blank line included,
	// for callers that pass events through unchanged. It is valid until
	// the next Feed.
	Raw []byte
}

// ErrEventTooLarge is returned when an unfinished event exceeds MaxEventBytes.
type ErrEventTooLarge struct{}

func (ErrEventTooLarge) Error() string { return "sse: event exceeds size limit" }

// Parser splits a byte stream into events.
type Parser struct {
	buf  []byte
	off  int    // start of unconsumed bytes in buf
	data []byte // scratch for multi-line data
}

// Feed appends a chunk. Events are then read with [Parser.Next].
func (p *Parser) Feed(chunk []byte) error {
	if p.off > 0 {
		// Compact: drop consumed bytes so buf holds only the tail.
		n := copy(p.buf, p.buf[p.off:])
		p.buf = p.buf[:n]
		p.off = 0
	}
	if len(p.buf)+len(chunk) > MaxEventBytes && bytes.Index(chunk, []byte("\n\n")) < 0 {
		return ErrEventTooLarge{}
	}
	p.buf = append(p.buf, chunk...)
	return nil
}

// Pending returns the bytes fed but not yet part of a complete event.
func (p *Parser) Pending() []byte { return p.buf[p.off:] }

// Next returns the next complete event. ok is false when no complete event
// is buffered. Comment-only blocks (": ping") yield an event with no fields,
// which callers normally skip.
func (p *Parser) Next() (ev Event, ok bool) {
	rest := p.buf[p.off:]
	end, sepLen := blockEnd(rest)
	if end < 0 {
		return Event{}, false
	}
	block := rest[:end]
	p.off += end + sepLen
	ev = p.parseBlock(block)
	ev.Raw = rest[:end+sepLen]
	return ev, true
}

// Flush returns a final event from bytes left without a terminating blank
// line, as a browser does at end of stream. Call it once, at end of stream.
func (p *Parser) Flush() (ev Event, ok bool) {
	rest := p.buf[p.off:]
	p.off = len(p.buf)
	if len(bytes.TrimSpace(rest)) == 0 {
		return Event{}, false
	}
	ev = p.parseBlock(rest)
	ev.Raw = rest
	return ev, true
}

// blockEnd finds the blank line ending an event: "\n\n", "\r\n\r\n" or
// "\r\r". It returns the block length and the separator length.
func blockEnd(b []byte) (int, int) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			if i+1 < len(b) && b[i+1] == '\n' {
				return i, 2
			}
			if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
				return i, 3
			}
		case '\r':
			if i+1 < len(b) && b[i+1] == '\r' {
				return i, 2
			}
			if i+3 < len(b) && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
				return i, 4
			}
		}
	}
	return -1, 0
}

func (p *Parser) parseBlock(block []byte) Event {
	var ev Event
	dataLines := 0
	for len(block) > 0 {
		var line []byte
		i := bytes.IndexAny(block, "\r\n")
		if i < 0 {
			line, block = block, nil
		} else {
			line = block[:i]
			if block[i] == '\r' && i+1 < len(block) && block[i+1] == '\n' {
				i++
			}
			block = block[i+1:]
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			ev.Name = value
		case "data":
			dataLines++
			switch dataLines {
			case 1:
				ev.Data = value
			case 2:
				p.data = append(p.data[:0], ev.Data...)
				fallthrough
			default:
				p.data = append(p.data, '\n')
				p.data = append(p.data, value...)
				ev.Data = p.data
			}
		case "id":
			ev.ID = value
		}
	}
	return ev
}

// AppendEvent writes one event to dst. name may be empty for a plain
// "data:" event, as OpenAI streams use.
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	return append(dst, '\n', '\n')
}

// Done is OpenAI's stream terminator event.
var Done = []byte("data: [DONE]\n\n")
