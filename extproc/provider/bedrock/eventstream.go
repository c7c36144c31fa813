package bedrock

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Event stream framing (application/vnd.amazon.eventstream), as used by
// ConverseStream and InvokeModelWithResponseStream: each message is a
// 12-byte prelude (total length, headers length, prelude CRC32, all
// big-endian), headers, payload and a message CRC32.
// https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream
// (the same encoding; Bedrock's stream operations are described at
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html).

const (
	preludeLen = 12
	minFrame   = preludeLen + 4
	// maxFrame bounds one buffered frame: the SDK's 16 MiB payload limit
	// plus 128 KiB of headers and the framing.
	maxFrame = 16<<20 + 128<<10 + minFrame
)

// frameDecoder splits a byte stream into event stream messages. Chunks may
// cut frames anywhere; the unfinished tail is carried to the next Feed.
type frameDecoder struct {
	buf     []byte
	off     int
	dec     *eventstream.Decoder
	rd      bytes.Reader
	payload []byte
}

// Feed appends a chunk.
func (d *frameDecoder) Feed(chunk []byte) {
	if d.off > 0 {
		n := copy(d.buf, d.buf[d.off:])
		d.buf = d.buf[:n]
		d.off = 0
	}
	d.buf = append(d.buf, chunk...)
}

// Pending is the number of buffered bytes not yet part of a whole frame.
func (d *frameDecoder) Pending() int { return len(d.buf) - d.off }

// Next decodes the next complete frame. ok is false when none is buffered.
// The message's payload is valid until the next call.
func (d *frameDecoder) Next() (m eventstream.Message, ok bool, err error) {
	rest := d.buf[d.off:]
	if len(rest) < preludeLen {
		return m, false, nil
	}
	total := binary.BigEndian.Uint32(rest[0:4])
	headers := binary.BigEndian.Uint32(rest[4:8])
	if total < minFrame || total > maxFrame || headers > total-minFrame {
		return m, false, fmt.Errorf("event stream: bad frame lengths (total %d, headers %d)", total, headers)
	}
	if uint32(len(rest)) < total {
		return m, false, nil
	}
	if d.dec == nil {
		d.dec = eventstream.NewDecoder()
	}
	d.rd.Reset(rest[:total])
	m, err = d.dec.Decode(&d.rd, d.payload[:0])
	if err != nil {
		return m, false, fmt.Errorf("event stream: %w", err)
	}
	d.payload = m.Payload[:0]
	d.off += int(total)
	return m, true, nil
}

// headerString returns a string header's value ("" if absent).
func headerString(m *eventstream.Message, name string) string {
	for i := range m.Headers {
		if m.Headers[i].Name == name {
			if v, ok := m.Headers[i].Value.(eventstream.StringValue); ok {
				return string(v)
			}
			return m.Headers[i].Value.String()
		}
	}
	return ""
}
