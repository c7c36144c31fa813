// Package xdstest is an ADS client for tests: it subscribes to types,
// collects the server's responses per type, and ACKs or NACKs them on
// demand, so a test can play an Envoy or an extproc replica against the
// controller's xDS server and check what each push sends.
package xdstest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// Client is one ADS stream. Methods may be called from one goroutine
// while responses are received in the background.
type Client struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel context.CancelFunc
	node   *corev3.Node

	mu       sync.Mutex
	queues   map[string][]*discoveryv3.DiscoveryResponse
	names    map[string][]string // subscribed names per type (nil: wildcard)
	acked    map[string]string   // last ACKed version per type
	arrived  chan struct{}       // closed and replaced when a response arrives
	recvErr  error
	sentNode bool
}

// Dial opens an ADS stream on conn as node. Close ends it.
func Dial(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node) (*Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open ADS stream: %w", err)
	}
	c := &Client{
		stream:  s,
		cancel:  cancel,
		node:    node,
		queues:  map[string][]*discoveryv3.DiscoveryResponse{},
		names:   map[string][]string{},
		acked:   map[string]string{},
		arrived: make(chan struct{}),
	}
	go c.recv()
	return c, nil
}

func (c *Client) recv() {
	for {
		r, err := c.stream.Recv()
		c.mu.Lock()
		if err != nil {
			c.recvErr = err
		} else {
			c.queues[r.GetTypeUrl()] = append(c.queues[r.GetTypeUrl()], r)
		}
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Close ends the stream.
func (c *Client) Close() { c.cancel() }

func (c *Client) send(r *discoveryv3.DiscoveryRequest) error {
	c.mu.Lock()
	// Like Envoy, send the node on the first request only.
	if !c.sentNode {
		r.Node = c.node
		c.sentNode = true
	}
	c.mu.Unlock()
	return c.stream.Send(r)
}

// Subscribe asks for typeURL: the named resources, or every resource of
// the type (wildcard) when names is empty.
func (c *Client) Subscribe(typeURL string, names ...string) error {
	c.mu.Lock()
	c.names[typeURL] = names
	c.mu.Unlock()
	return c.send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names})
}

// Next returns the oldest response of typeURL not returned yet, waiting
// for one until ctx ends.
func (c *Client) Next(ctx context.Context, typeURL string) (*discoveryv3.DiscoveryResponse, error) {
	for {
		c.mu.Lock()
		if q := c.queues[typeURL]; len(q) > 0 {
			c.queues[typeURL] = q[1:]
			c.mu.Unlock()
			return q[0], nil
		}
		err, arrived := c.recvErr, c.arrived
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("stream ended: %w", err)
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", typeURL, ctx.Err())
		}
	}
}

// Pending reports how many responses of typeURL arrived and were not
// returned by Next yet.
func (c *Client) Pending(typeURL string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queues[typeURL])
}

// ACK accepts r: the next request of its type carries its version and
// nonce.
func (c *Client) ACK(r *discoveryv3.DiscoveryResponse) error {
	c.mu.Lock()
	c.acked[r.GetTypeUrl()] = r.GetVersionInfo()
	names := c.names[r.GetTypeUrl()]
	c.mu.Unlock()
	return c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl:       r.GetTypeUrl(),
		VersionInfo:   r.GetVersionInfo(),
		ResponseNonce: r.GetNonce(),
		ResourceNames: names,
	})
}

// NACK rejects r with message: the request carries the last ACKed version
// of the type (r's own before any, as extproc/xdsclient does, since
// go-control-plane's linear cache resends everything to an empty
// version), r's nonce and the error.
func (c *Client) NACK(r *discoveryv3.DiscoveryResponse, message string) error {
	if message == "" {
		return errors.New("a NACK needs a message")
	}
	c.mu.Lock()
	version := c.acked[r.GetTypeUrl()]
	if version == "" {
		version = r.GetVersionInfo()
	}
	names := c.names[r.GetTypeUrl()]
	c.mu.Unlock()
	return c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl:       r.GetTypeUrl(),
		VersionInfo:   version,
		ResponseNonce: r.GetNonce(),
		ResourceNames: names,
		ErrorDetail:   &status.Status{Code: 3, Message: message}, // INVALID_ARGUMENT
	})
}
