package extproc

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

// attrsKey is the single key Envoy uses in ProcessingRequest.attributes.
const attrsKey = "envoy.filters.http.ext_proc"

// attr returns a string attribute by its expression, "" when absent (Envoy
// omits expressions that fail, such as a missing header).
func attr(req *extprocv3.ProcessingRequest, expr string) string {
	st := req.GetAttributes()[attrsKey]
	if st == nil {
		return ""
	}
	return st.GetFields()[expr].GetStringValue()
}

// header finds a header's value. Envoy sends values in raw_value; value is
// read only as a fallback for older senders.
func header(hm *corev3.HeaderMap, name string) string {
	for _, h := range hm.GetHeaders() {
		if h.GetKey() == name {
			if rv := h.GetRawValue(); rv != nil {
				return string(rv)
			}
			return h.GetValue()
		}
	}
	return ""
}

// headerOption holds a header mutation entry and its header in one
// allocation.
type headerOption struct {
	opt corev3.HeaderValueOption
	hv  corev3.HeaderValue
}

// setHeader builds a header mutation entry. Only raw_value is set: Envoy
// reads raw_value, and setting both is an error.
func setHeader(key, value string) *corev3.HeaderValueOption {
	p := &headerOption{}
	p.hv.Key, p.hv.RawValue = key, []byte(value)
	// append unset means overwrite; Envoy's ext_proc ignores append_action.
	p.opt.Header = &p.hv
	return &p.opt
}

// contentTypeJSON is a shared, read-only header mutation entry.
var contentTypeJSON = setHeader("content-type", "application/json")

// immediate builds the reply that ends a request with err, as an
// OpenAI-shaped error.
func immediate(err error, requestID string) *extprocv3.ProcessingResponse {
	k, _ := errs.KindOf(err)
	hm := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{contentTypeJSON}}
	if requestID != "" {
		hm.SetHeaders = append(hm.SetHeaders, setHeader(config.HeaderRequestID, requestID))
	}
	if d, ok := errs.RetryAfter(err); ok {
		secs := int64(d.Seconds() + 0.999)
		hm.SetHeaders = append(hm.SetHeaders, setHeader("retry-after", strconv.FormatInt(max(secs, 1), 10)))
	}
	return immediateBody(k.Status, hm, errs.Body(err), "weir_"+k.Code)
}

func immediateBody(status int, hm *extprocv3.HeaderMutation, body []byte, details string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: hm,
			Body:    body,
			Details: details,
		},
	}}
}

// stringValue is structpb.NewStringValue in one allocation.
func stringValue(s string) *structpb.Value {
	p := &struct {
		v structpb.Value
		s structpb.Value_StringValue
	}{}
	p.s.StringValue = s
	p.v.Kind = &p.s
	return &p.v
}

// Shared, read-only metadata values.
var (
	metaTrue      = structpb.NewStringValue("true")
	metaFalse     = structpb.NewStringValue("false")
	metaEndpoints = func() (v [provider.EndpointMessages + 1]*structpb.Value) {
		for i := range v {
			v[i] = structpb.NewStringValue(provider.Endpoint(i).String())
		}
		return v
	}()
)

func boolValue(b bool) *structpb.Value {
	if b {
		return metaTrue
	}
	return metaFalse
}

func endpointValue(e provider.Endpoint) *structpb.Value {
	if int(e) < len(metaEndpoints) {
		return metaEndpoints[e]
	}
	return structpb.NewStringValue(e.String())
}

// namespaced wraps fields in the weir.dev namespace.
func namespaced(fields *structpb.Struct) *structpb.Struct {
	p := &struct {
		outer structpb.Struct
		v     structpb.Value
		sv    structpb.Value_StructValue
	}{}
	p.sv.StructValue = fields
	p.v.Kind = &p.sv
	p.outer.Fields = map[string]*structpb.Value{config.MetadataNamespace: &p.v}
	return &p.outer
}

// bodyReplies hold a body reply's messages in one allocation.
type requestBodyReply struct {
	pr extprocv3.ProcessingResponse
	w  extprocv3.ProcessingResponse_RequestBody
	br extprocv3.BodyResponse
}

type responseBodyReply struct {
	pr extprocv3.ProcessingResponse
	w  extprocv3.ProcessingResponse_ResponseBody
	br extprocv3.BodyResponse
}

func bodyResponse(common *extprocv3.CommonResponse, request bool) *extprocv3.ProcessingResponse {
	if request {
		p := &requestBodyReply{}
		p.br.Response = common
		p.w.RequestBody = &p.br
		p.pr.Response = &p.w
		return &p.pr
	}
	p := &responseBodyReply{}
	p.br.Response = common
	p.w.ResponseBody = &p.br
	p.pr.Response = &p.w
	return &p.pr
}
