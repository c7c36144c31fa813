package xdsserver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"

	"github.com/weir-ai/weir/config/wire"
)

// streamKey names a stream: the state-of-the-world and delta servers
// number their streams independently.
type streamKey struct {
	delta bool
	id    int64
}

// stream is what the server knows of one client's stream.
type stream struct {
	node string
	kind string
	// sent maps a type's nonces to the type version they carried, with
	// the order sent, so an ACK or NACK names a version whatever the
	// client puts in version_info (delta requests carry none).
	sent  map[string]map[string]sentResponse
	seq   uint64
	acked map[string]sentResponse
	nacks map[string]nackState
}

type sentResponse struct {
	version string
	seq     uint64
}

type nackState struct {
	version string // the refused type version
	seq     uint64
	message string
}

// maxNonces bounds the nonces remembered per type: a client answers the
// latest responses, and older nonces are stale to the server as well.
const maxNonces = 8

func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc:      func(context.Context, int64, string) error { return nil },
		StreamClosedFunc:    func(id int64, _ *corev3.Node) { s.closed(streamKey{false, id}) },
		DeltaStreamOpenFunc: func(context.Context, int64, string) error { return nil },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.closed(streamKey{true, id})
		},
		StreamRequestFunc: func(id int64, r *discoveryv3.DiscoveryRequest) error {
			s.request(streamKey{false, id}, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail().GetMessage(), r.GetErrorDetail() != nil)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, r *discoveryv3.DiscoveryResponse) {
			s.response(streamKey{false, id}, r.GetTypeUrl(), r.GetNonce(), r.GetVersionInfo())
		},
		StreamDeltaRequestFunc: func(id int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			s.request(streamKey{true, id}, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail().GetMessage(), r.GetErrorDetail() != nil)
			return nil
		},
		StreamDeltaResponseFunc: func(id int64, _ *discoveryv3.DeltaDiscoveryRequest, r *discoveryv3.DeltaDiscoveryResponse) {
			s.response(streamKey{true, id}, r.GetTypeUrl(), r.GetNonce(), r.GetSystemVersionInfo())
		},
	}
}

func (s *Server) closed(k streamKey) {
	s.mu.Lock()
	_, ok := s.streams[k]
	delete(s.streams, k)
	s.mu.Unlock()
	if ok {
		s.signal()
	}
}

func (s *Server) streamLocked(k streamKey) *stream {
	st := s.streams[k]
	if st == nil {
		st = &stream{
			kind:  KindEnvoy,
			sent:  map[string]map[string]sentResponse{},
			acked: map[string]sentResponse{},
			nacks: map[string]nackState{},
		}
		s.streams[k] = st
	}
	return st
}

func (s *Server) response(k streamKey, typeURL, nonce, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streamLocked(k)
	m := st.sent[typeURL]
	if m == nil {
		m = map[string]sentResponse{}
		st.sent[typeURL] = m
	}
	st.seq++
	m[nonce] = sentResponse{version: version, seq: st.seq}
	if len(m) > maxNonces {
		oldest := ""
		for n, r := range m {
			if oldest == "" || r.seq < m[oldest].seq {
				oldest = n
			}
		}
		delete(m, oldest)
	}
}

// request records the node of a stream's first request, and the ACK or
// NACK a request with a nonce carries.
func (s *Server) request(k streamKey, node *corev3.Node, typeURL, nonce, message string, nack bool) {
	s.mu.Lock()
	st := s.streamLocked(k)
	first := st.node == "" && node != nil
	if first {
		st.node = node.GetId()
		if node.GetCluster() == wire.NodeCluster {
			st.kind = KindExtProc
		}
	}
	changed := first
	if r, ok := st.sent[typeURL][nonce]; ok && nonce != "" {
		changed = true
		if nack {
			st.nacks[typeURL] = nackState{version: r.version, seq: r.seq, message: message}
		} else {
			st.acked[typeURL] = r
			// An ACK of the refused response itself counts: the client
			// applied it after all (with another type's next resources).
			if n, ok := st.nacks[typeURL]; ok && n.seq <= r.seq {
				delete(st.nacks, typeURL)
			}
		}
	}
	s.mu.Unlock()
	if nack {
		// The message is the client's own error text (a config that did
		// not compile), never a secret: clients NACK with errors about
		// the config, which redacts its secrets.
		s.log.Warn("xds: client refused a config", "node", node.GetId(), "type", typeURL, "error", message)
	}
	if changed {
		s.signal()
	}
}

// typeVersion is the version a push left on typeURL.
func (p *pushed) typeVersion(typeURL string) string {
	switch typeURL {
	case wire.ConfigType:
		return p.cfg
	case wire.KeyShardType:
		return p.keys
	}
	return p.envoy
}

// Clients lists the connected clients, by node then kind.
func (s *Server) Clients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Client, 0, len(s.streams))
	for _, st := range s.streams {
		if st.node == "" {
			continue
		}
		c := Client{Node: st.node, Kind: st.kind, AckedVersion: s.ackedLocked(st)}
		var latest *nackState
		for _, n := range st.nacks {
			if latest == nil || n.seq > latest.seq {
				latest = &n
			}
		}
		if latest != nil {
			c.Nacked = &Nack{Version: s.pushOfLocked(st, latest.version), Message: latest.message}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Client) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}

// ackedLocked is the newest push whose version of every type sent to the
// stream is the version the client ACKed. Types never sent are skipped:
// the client cannot ACK them (Envoy subscribes to types Build may not
// render).
func (s *Server) ackedLocked(st *stream) string {
	if len(st.sent) == 0 {
		return ""
	}
	if st.kind == KindExtProc {
		// A replica needs both: its config and its key shards arrive on
		// independent watches, so after a (re)connect it may ACK one
		// before the other was even sent, still holding old keys.
		for _, typ := range []string{wire.ConfigType, wire.KeyShardType} {
			if _, ok := st.sent[typ]; !ok {
				return ""
			}
		}
	}
	if st.kind == KindEnvoy {
		// The listener fetches its routes over RDS, and Envoy asks for
		// them only once the listener has arrived: until the routes were
		// sent (and, below, ACKed) the listener is warming, not serving.
		if _, lds := st.sent[resourcev3.ListenerType]; lds {
			if _, rds := st.sent[resourcev3.RouteType]; !rds {
				return ""
			}
		}
	}
	for i := len(s.history) - 1; i >= 0; i-- {
		p := &s.history[i]
		ok := true
		for typ := range st.sent {
			if st.acked[typ].version != p.typeVersion(typ) {
				ok = false
				break
			}
		}
		if ok {
			return p.version
		}
	}
	return ""
}

// pushOfLocked names the push that sent a refused type version: the
// oldest push that left the type at that version.
func (s *Server) pushOfLocked(st *stream, typeVersion string) string {
	for i := range s.history {
		for typ := range st.sent {
			if s.history[i].typeVersion(typ) == typeVersion {
				return s.history[i].version
			}
		}
	}
	return typeVersion
}

// cpLogger sends go-control-plane's messages to slog: its debug and info
// lines at debug (they are per request), warnings and errors as such.
type cpLogger struct{ l *slog.Logger }

func (c cpLogger) Debugf(f string, a ...any) { c.l.Debug("xds: " + fmt.Sprintf(f, a...)) }
func (c cpLogger) Infof(f string, a ...any)  { c.l.Debug("xds: " + fmt.Sprintf(f, a...)) }
func (c cpLogger) Warnf(f string, a ...any)  { c.l.Warn("xds: " + fmt.Sprintf(f, a...)) }
func (c cpLogger) Errorf(f string, a ...any) { c.l.Error("xds: " + fmt.Sprintf(f, a...)) }
