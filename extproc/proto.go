package extproc

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
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

// setHeader builds a header mutation entry. Only raw_value is set: Envoy
// reads raw_value, and setting both is an error.
func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		// append unset means overwrite; Envoy's ext_proc ignores append_action.
	}
}

// immediate builds the reply that ends a request with err, as an
// OpenAI-shaped error.
func immediate(err error, requestID string) *extprocv3.ProcessingResponse {
	k, _ := errs.KindOf(err)
	hm := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		setHeader("content-type", "application/json"),
	}}
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

// stringStruct builds a Struct of string fields for dynamic metadata.
func stringStruct(kv ...string) *structpb.Struct {
	f := make(map[string]*structpb.Value, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = structpb.NewStringValue(kv[i+1])
	}
	return &structpb.Struct{Fields: f}
}

// namespaced wraps fields in the weir.dev namespace.
func namespaced(fields *structpb.Struct) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		config.MetadataNamespace: structpb.NewStructValue(fields),
	}}
}

func bodyResponse(common *extprocv3.CommonResponse, request bool) *extprocv3.ProcessingResponse {
	br := &extprocv3.BodyResponse{Response: common}
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: br}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: br}}
}
