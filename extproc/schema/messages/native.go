package messages

// Native passthrough of Anthropic's Messages API: what the Anthropic-family
// translators (Anthropic, Amazon Bedrock InvokeModel, Vertex AI rawPredict)
// share when a client's POST /v1/messages goes upstream in its own format
// (provider.EndpointMessages). The body is never unmarshalled: the few
// top-level edits a provider needs are made by copying the members it keeps,
// and everything else (cache_control, thinking, top_k, citations, server
// tools, metadata, service_tier...) reaches the provider byte for byte.

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// NativeEdit is what one provider changes in a client's Messages body.
type NativeEdit struct {
	// Model, when not empty, replaces the "model" value (Anthropic's API,
	// for an alias the client used). Ignored when DropModel is set.
	Model string
	// DropModel removes "model" (Bedrock and Vertex name the model in the
	// path); DropStream removes "stream" (Bedrock's operation says).
	DropModel, DropStream bool
	// Version, when not empty, is added as "anthropic_version" unless the
	// client set one.
	Version string
	// Beta, when not empty, is the anthropic-beta header's comma-separated
	// names, added as the "anthropic_beta" array (Bedrock's way of
	// carrying the header) unless the client's body already has one.
	Beta string
}

// NativeRewrite applies e to a client's Messages body, which Weir has
// already checked to be a JSON object without duplicate top-level keys.
// It returns nil when nothing changes, so the caller can keep the client's
// body, and otherwise a new body: body itself is never modified. Keys are
// matched after JSON unescaping, as the provider will read them.
func NativeRewrite(body []byte, e *NativeEdit) ([]byte, error) {
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return nil, fmt.Errorf("%w: body is not valid JSON", errs.ErrInvalidRequest)
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, fmt.Errorf("%w: body must be a JSON object", errs.ErrInvalidRequest)
	}
	var model, stream, version, beta gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case "stream":
			stream = v
		case "anthropic_version":
			version = v
		case "anthropic_beta":
			beta = v
		}
		return true
	})
	drop := (e.DropModel && model.Exists()) || (e.DropStream && stream.Exists())
	addVersion := e.Version != "" && !version.Exists()
	addBeta := nativeHasBeta(e.Beta) && !beta.Exists()
	if !drop && !addVersion && !addBeta {
		if e.DropModel || e.Model == "" || model.Index <= 0 || (model.Type == gjson.String && model.Str == e.Model) {
			return nil, nil
		}
		// Only the model changes: splice the new value in, so every other
		// byte is the client's.
		out := make([]byte, 0, len(body)+len(e.Model)+2)
		out = append(out, body[:model.Index]...)
		out = jsonw.AppendString(out, e.Model)
		return append(out, body[model.Index+len(model.Raw):]...), nil
	}
	out := make([]byte, 0, len(body)+len(e.Version)+len(e.Beta)+64)
	out = append(out, '{')
	n := 0
	var bad bool
	root.ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "model" && e.DropModel, k.Str == "stream" && e.DropStream:
			return true
		}
		if k.Index <= 0 || v.Index < k.Index {
			bad = true
			return false
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		if k.Str == "model" && e.Model != "" {
			out = append(out, js[k.Index:v.Index]...)
			out = jsonw.AppendString(out, e.Model)
			return true
		}
		out = append(out, js[k.Index:v.Index+len(v.Raw)]...)
		return true
	})
	if bad {
		return nil, fmt.Errorf("%w: body is not a plain JSON object", errs.ErrInvalidRequest)
	}
	if addVersion {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `"anthropic_version":`...)
		out = jsonw.AppendString(out, e.Version)
	}
	if addBeta {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `"anthropic_beta":[`...)
		m := 0
		for name := range strings.SplitSeq(e.Beta, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			if m > 0 {
				out = append(out, ',')
			}
			m++
			out = jsonw.AppendString(out, name)
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

// nativeHasBeta reports whether an anthropic-beta value names any beta.
func nativeHasBeta(v string) bool { return strings.Trim(v, " \t,") != "" }

// NativeCheckStoredState refuses a Messages body that names state stored
// in the provider account every key of this gateway shares, which another
// tenant may own and Weir cannot tell whose it is: a top-level "container"
// (code execution containers keep files between requests), and content
// blocks whose source is an uploaded file ({"type":"file","file_id"}) or
// that upload one into a container (container_upload's file_id). Blocks
// are checked in messages[].content and in tool_result contents; a
// tool_use input is the model's own JSON and is not read.
//
// Most bodies name none of these, so a byte search decides first; keys
// written with \u escapes (which the provider unescapes) take the walk.
func NativeCheckStoredState(body []byte) error {
	if !bytes.Contains(body, []byte(`"container`)) && !bytes.Contains(body, []byte(`"file_id"`)) &&
		!bytes.Contains(body, []byte(`\u`)) {
		return nil
	}
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return fmt.Errorf("%w: body is not valid JSON", errs.ErrInvalidRequest)
	}
	var msgs gjson.Result
	var container bool
	gjson.Parse(js).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "container":
			container = jsonw.Present(v)
		case "messages":
			msgs = v
		}
		return true
	})
	if container {
		return nativeStoredStateError("'container' is not supported: containers are stored in the provider account every key of this gateway shares, and Weir cannot tell whose one is; leave it out to start a new container")
	}
	var found string
	msgs.ForEach(func(_, m gjson.Result) bool {
		m.Get("content").ForEach(func(_, b gjson.Result) bool {
			if found = nativeStoredBlock(b); found != "" {
				return false
			}
			if b.Get("type").Str == "tool_result" {
				b.Get("content").ForEach(func(_, c gjson.Result) bool {
					found = nativeStoredBlock(c)
					return found == ""
				})
			}
			return found == ""
		})
		return found == ""
	})
	if found != "" {
		return nativeStoredStateError(found + " blocks naming an uploaded file (file_id) are not supported: files are stored in the provider account every key of this gateway shares, and Weir cannot tell whose one is; send the content itself (base64, text or a URL) instead")
	}
	return nil
}

// nativeStoredBlock returns the type of a content block that names a
// stored file, or "".
func nativeStoredBlock(b gjson.Result) string {
	if !b.IsObject() {
		return ""
	}
	var typ, src, fileID gjson.Result
	b.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "source":
			src = v
		case "file_id":
			fileID = v
		}
		return true
	})
	stored := jsonw.Present(fileID)
	if !stored && src.IsObject() {
		src.ForEach(func(k, v gjson.Result) bool {
			if (k.Str == "type" && v.Str == "file") || (k.Str == "file_id" && jsonw.Present(v)) {
				stored = true
				return false
			}
			return true
		})
	}
	if !stored {
		return ""
	}
	if typ.Type == gjson.String && typ.Str != "" {
		return "'" + typ.Str + "'"
	}
	return "content"
}

func nativeStoredStateError(msg string) error {
	return errs.Refuse(errs.RuleMessagesStoredState, fmt.Errorf("%w: %s", errs.ErrInvalidRequest, msg))
}

// NativeUsage reads an Anthropic usage object (see [counts]), its
// figures by [nativeCount].
func NativeUsage(u gjson.Result) provider.Usage {
	var c counts
	c.take(u, nativeCount)
	return c.usage()
}

// nativeCount reads a token count; anything but a non-negative number
// below 2^53 counts as 0, so a hostile reply cannot overflow the sums.
func nativeCount(v gjson.Result) int64 {
	if v.Type != gjson.Number || v.Num < 0 || v.Num >= 1<<53 {
		return 0
	}
	return int64(v.Num)
}

// NativeResponse reads a Messages response (Anthropic's, or Bedrock
// InvokeModel's, which is the same) for a client that speaks Messages: it
// returns the body with "model" set to model (the name the client used)
// when that differs, or nil when nothing changes, and the usage.
func NativeResponse(body []byte, model string) ([]byte, provider.Usage, error) {
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not JSON", errs.ErrUpstreamBadReply)
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not a JSON object", errs.ErrUpstreamBadReply)
	}
	var m, usage gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			m = v
		case "usage":
			usage = v
		}
		return true
	})
	u := NativeUsage(usage)
	out := NativeSetModel(body, m, model)
	return out, u, nil
}

// NativeSetModel returns b with the value v (a string found in b by gjson,
// so v.Index is its offset) replaced by model, or nil when model is empty,
// equal to it, or v is absent.
func NativeSetModel(b []byte, v gjson.Result, model string) []byte {
	if model == "" || !v.Exists() || v.Index <= 0 || v.Index+len(v.Raw) > len(b) || (v.Type == gjson.String && v.Str == model) {
		return nil
	}
	out := make([]byte, 0, len(b)+len(model)+2)
	out = append(out, b[:v.Index]...)
	out = jsonw.AppendString(out, model)
	return append(out, b[v.Index+len(v.Raw):]...)
}

// NativeErrorEvent appends an Anthropic stream error event, for a stream
// failure a provider reports in its own framing (Bedrock's exception
// frames). typ is an Anthropic error type (api_error, overloaded_error...).
func NativeErrorEvent(dst []byte, typ, msg string) []byte {
	dst = append(dst, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"...)
	dst = jsonw.AppendString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = jsonw.AppendString(dst, msg)
	return append(dst, "}}\n\n"...)
}
