package extproc

import (
	"errors"

	"github.com/weir-ai/weir/extproc/errs"
)

// logCredential logs why the gateway could not get its credential for a
// provider, with the request id and the backend. The client was told only
// that it could not ([errs.CredentialMessage]): the reason names roles,
// accounts and identity-provider details that are the operator's.
func (s *Server) logCredential(requestID string, err error) {
	var ce *errs.CredentialError
	if errors.As(err, &ce) {
		s.log.Warn("provider credentials unavailable", "request_id", requestID, "backend", ce.Backend, "error", ce.Err.Error())
	}
}
