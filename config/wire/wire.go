// Package wire carries the extproc config over xDS, as two Weir resource
// types on the ADS stream Envoy uses, so that the controller has one push
// path with versions and ACK/NACK for Envoy and the extproc replicas
// alike. Both sides import it: the controller's xDS server encodes,
// extproc/xdsclient decodes.
//
// The config travels as one "config" resource (everything but auth.keys)
// and [NumShards] key shards. Keys are split by the first byte of their
// hash so that a key change re-sends one shard (~1/64 of the keys), not
// every key. Every shard always exists, even when empty: in state-of-the-
// world xDS a server cannot announce that a resource of a type like these
// was deleted, so a deleted key is revoked by sending its changed shard.
//
// # Why gob
//
// The payload must carry secrets (provider credentials, the Responses id
// secret, Redis passwords). [config.Secret] redacts itself in JSON and
// YAML on purpose, so that debug dumps and logs never leak a key; encoding
// the config with either would ship "[redacted]". encoding/gob encodes the
// Go values field by field and never calls MarshalJSON or MarshalYAML, and
// it needs no schema kept in step with config: a field added to config
// crosses the wire without an edit here (TestRoundTripEveryField checks
// that for every field). The bytes go into a [wrapperspb.BytesValue];
// go-control-plane packs it into an Any whose type_url is the request's
// (RawResponse.GetDiscoveryResponse), so a client sees the Weir type URL.
//
// Gob does not preserve the difference between nil and empty slices and
// maps, or a pointer to a zero struct and nil; config treats those alike.
package wire

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
)

// Type URLs of the Weir resources. The names are not messages in any
// descriptor: the resources are [wrapperspb.BytesValue] under these URLs.
const (
	ConfigType   = "type.googleapis.com/weir.dev.v1alpha1.ExtProcConfig"
	KeyShardType = "type.googleapis.com/weir.dev.v1alpha1.KeyShard"
)

// ConfigName is the name of the single [ConfigType] resource.
const ConfigName = "config"

// NumShards is the number of [KeyShardType] resources. 64 keeps a shard of
// 10,000 keys near 25 KB, and the shard is the first byte of the hash
// divided by 4, so no key needs rehashing.
const NumShards = 64

// NodeCluster is the node.cluster an extproc replica sends in its
// DiscoveryRequests; the xDS server counts every other node as an Envoy.
const NodeCluster = "weir-extproc"

// ShardName is the resource name of shard i: "keys/00" to "keys/63".
func ShardName(i int) string { return fmt.Sprintf("keys/%02d", i) }

// ShardOf returns the shard of a key hash (64 lower-case hex characters).
func ShardOf(hash string) (int, error) {
	if len(hash) < 2 {
		return 0, fmt.Errorf("%w: key hash %q is not hex SHA-256", config.ErrInvalid, hash)
	}
	var b [1]byte
	if _, err := hex.Decode(b[:], []byte(hash[:2])); err != nil {
		return 0, fmt.Errorf("%w: key hash %q is not hex SHA-256", config.ErrInvalid, hash)
	}
	return int(b[0]) * NumShards / 256, nil
}

// Set is one config as resources: the encoded config and every shard.
type Set struct {
	Config []byte
	Shards [NumShards][]byte
}

// Resources returns the set as named proto resources, ready for a cache.
func (s *Set) Resources() (cfg map[string]*wrapperspb.BytesValue, shards map[string]*wrapperspb.BytesValue) {
	shards = make(map[string]*wrapperspb.BytesValue, NumShards)
	for i, b := range s.Shards {
		shards[ShardName(i)] = wrapperspb.Bytes(b)
	}
	return map[string]*wrapperspb.BytesValue{ConfigName: wrapperspb.Bytes(s.Config)}, shards
}

// Unpack returns the payload of a resource as a client receives it: an Any
// whose type_url is a Weir type and whose value is a BytesValue (so
// anypb's UnmarshalTo, which checks the message name, does not apply).
func Unpack(a *anypb.Any) ([]byte, error) {
	if u := a.GetTypeUrl(); u != ConfigType && u != KeyShardType {
		return nil, fmt.Errorf("%w: resource type %q is not a Weir type", config.ErrInvalid, u)
	}
	var b wrapperspb.BytesValue
	if err := proto.Unmarshal(a.GetValue(), &b); err != nil {
		return nil, fmt.Errorf("%w: resource is not a BytesValue: %w", config.ErrInvalid, err)
	}
	return b.GetValue(), nil
}

// Encode splits cfg into its config resource and key shards. cfg is not
// modified. Keys keep their relative order within a shard.
func Encode(cfg *config.Config) (*Set, error) {
	var shards [NumShards][]config.KeyConfig
	for i := range cfg.Auth.Keys {
		n, err := ShardOf(cfg.Auth.Keys[i].Hash)
		if err != nil {
			return nil, fmt.Errorf("auth.keys[%d]: %w", i, err)
		}
		shards[n] = append(shards[n], cfg.Auth.Keys[i])
	}
	rest := *cfg
	rest.Auth.Keys = nil
	var s Set
	var err error
	if s.Config, err = encode(&rest); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	for i := range shards {
		if s.Shards[i], err = encode(&shard{Index: i + 1, Keys: shards[i]}); err != nil {
			return nil, fmt.Errorf("encode %s: %w", ShardName(i), err)
		}
	}
	return &s, nil
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// shard is a key shard's payload. It names its shard because a
// state-of-the-world response carries resources as bare Anys, and a
// BytesValue has no name field for the client to merge shards by.
type shard struct {
	// Index is the shard number plus one, so that shard 0 is not gob's
	// zero value (gob omits zero fields and an all-zero value entirely).
	Index int
	Keys  []config.KeyConfig
}

// DecodeShard decodes one key shard: its number and its keys.
func DecodeShard(b []byte) (int, []config.KeyConfig, error) {
	var s shard
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return 0, nil, fmt.Errorf("%w: decode key shard: %w", config.ErrInvalid, err)
	}
	if s.Index < 1 || s.Index > NumShards {
		return 0, nil, fmt.Errorf("%w: key shard number %d out of range", config.ErrInvalid, s.Index-1)
	}
	return s.Index - 1, s.Keys, nil
}

// DecodeConfig decodes the config resource alone, as sent: no keys, not
// prepared. [Decode] is what a replica applies; this is for inspection.
func DecodeConfig(b []byte) (*config.Config, error) {
	var c config.Config
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: decode config: %w", config.ErrInvalid, err)
	}
	return &c, nil
}

// decode reassembles the config without preparing it.
func decode(s *Set) (*config.Config, error) {
	if len(s.Config) == 0 {
		return nil, fmt.Errorf("%w: no %q resource", config.ErrInvalid, ConfigName)
	}
	c, err := DecodeConfig(s.Config)
	if err != nil {
		return nil, err
	}
	for i, b := range s.Shards {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: no %s resource", config.ErrInvalid, ShardName(i))
		}
		n, keys, err := DecodeShard(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ShardName(i), err)
		}
		if n != i {
			return nil, fmt.Errorf("%w: %s holds shard %d", config.ErrInvalid, ShardName(i), n)
		}
		c.Auth.Keys = append(c.Auth.Keys, keys...)
	}
	return c, nil
}

// Decode reassembles a config and prepares it as [config.Parse] does
// (presets, validation, credentials), so it is ready to compile.
//
// Credentials must be inline (credential.value, which the controller
// fills from a Secret): env and file are refused. They would name the
// extproc's own environment and files, and the backend's base_url is in
// the same config, so whoever can write the config could have the extproc
// read, say, WEIR_MASTER_KEY or a mounted token and send it upstream. A
// preset's implied env credential likewise resolves to nothing.
func Decode(s *Set) (*config.Config, error) {
	c, err := decode(s)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range c.Backends {
		cr := c.Backends[i].Credential
		switch {
		case cr == nil:
		case cr.Env != "":
			errs = append(errs, fmt.Errorf("backends[%d].credential: env is not accepted over xDS; send the value", i))
		case cr.File != "":
			errs = append(errs, fmt.Errorf("backends[%d].credential: file is not accepted over xDS; send the value", i))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, errors.Join(errs...))
	}
	if err := config.Prepare(c, noLookup); err != nil {
		return nil, err
	}
	return c, nil
}

func noLookup(string) (string, bool) { return "", false }
