package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/test/xdstest"
)

// fill sets every field reachable from v to a non-zero value, so a field
// added to config later is covered without editing this test. Strings get
// their path, so a value that lands in the wrong field is caught as well.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s: unexported field; gob would drop it", path, f.Name)
			}
			fill(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(t, k, path+"#key")
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, path+"#value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString(path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(path)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(len(path)) + 0.25)
	default:
		t.Fatalf("%s: kind %s not handled by the test; extend fill", path, v.Kind())
	}
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestRoundTripEveryField: every field of config.Config, secrets included,
// arrives as sent. A secret that redacted itself in transit (as it does in
// JSON and YAML) or a field gob cannot carry fails here.
func TestRoundTripEveryField(t *testing.T) {
	var in config.Config
	fill(t, reflect.ValueOf(&in).Elem(), "Config")
	// Keys are sharded by hash, so theirs must be real hashes.
	for i := range in.Auth.Keys {
		in.Auth.Keys[i].Hash = hashOf(fmt.Sprint(i))
	}
	if in.Backends[0].Credential.Value == "" || in.Responses.IDSecret == "" {
		t.Fatal("fill left a secret empty")
	}
	set, err := Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(set)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&in, out) {
		t.Fatalf("round trip changed the config:\n got %#v\nwant %#v", out, &in)
	}
	// The comparison above must not be vacuous: the secret really crossed.
	if got := out.Backends[0].Credential.Value.Reveal(); got != in.Backends[0].Credential.Value.Reveal() || got == config.Redacted {
		t.Fatalf("credential value = %q", got)
	}
}

func TestShards(t *testing.T) {
	keys := []config.KeyConfig{
		{Hash: "00" + strings.Repeat("a", 62)},
		{Hash: "03" + strings.Repeat("b", 62)}, // 0x03>>2 = 0: same shard
		{Hash: "04" + strings.Repeat("c", 62)}, // shard 1
		{Hash: "ff" + strings.Repeat("d", 62)}, // shard 63
	}
	set, err := Encode(&config.Config{Version: config.Version, Auth: config.Auth{Mode: "keys", Keys: keys}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int][]string{0: {keys[0].Hash, keys[1].Hash}, 1: {keys[2].Hash}, 2: nil, 63: {keys[3].Hash}} {
		n, got, err := DecodeShard(set.Shards[i])
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if n != i {
			t.Errorf("shard %d says it is %d", i, n)
		}
		var hashes []string
		for _, k := range got {
			hashes = append(hashes, k.Hash)
		}
		if !reflect.DeepEqual(hashes, want) {
			t.Errorf("shard %d = %v, want %v", i, hashes, want)
		}
	}
	for i, b := range set.Shards {
		if len(b) == 0 {
			t.Errorf("shard %d is empty bytes; an empty shard must still be a resource", i)
		}
	}
	if ShardName(0) != "keys/00" || ShardName(63) != "keys/63" {
		t.Errorf("names %q %q", ShardName(0), ShardName(63))
	}
	// The config resource carries no keys: a key change touches only its shard.
	c, err := DecodeConfig(set.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Keys) != 0 || c.Auth.Mode != "keys" {
		t.Errorf("config resource auth = %+v", c.Auth)
	}
}

func TestEncodeRefusesBadHash(t *testing.T) {
	_, err := Encode(&config.Config{Auth: config.Auth{Keys: []config.KeyConfig{{Hash: "zz"}}}})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

const base = `
version: weir.dev/v1alpha1
backends:
  - name: openai
    provider: openai
    base_url: https://api.openai.com/v1
    credential: {value: sk-live-123}
models:
  - name: gpt-4o
    backends: [openai]
auth:
  mode: keys
  keys:
    - hash: ` + "0000000000000000000000000000000000000000000000000000000000000000" + `
`

func TestDecodePrepares(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string
		check   func(*testing.T, *config.Config)
	}{
		{
			name: "value credential is resolved",
			check: func(t *testing.T, c *config.Config) {
				if got := c.Backends[0].Credential.Key.Reveal(); got != "sk-live-123" {
					t.Errorf("key = %q", got)
				}
				if len(c.Auth.Keys) != 1 {
					t.Errorf("keys = %d", len(c.Auth.Keys))
				}
			},
		},
		{
			name:    "env credential refused",
			mutate:  func(c *config.Config) { c.Backends[0].Credential = &config.Credential{Env: "WEIR_MASTER_KEY"} },
			wantErr: "backends[0].credential: env is not accepted over xDS",
		},
		{
			name:    "file credential refused",
			mutate:  func(c *config.Config) { c.Backends[0].Credential = &config.Credential{File: "/etc/shadow"} },
			wantErr: "backends[0].credential: file is not accepted over xDS",
		},
		{
			name:    "invalid config refused by Validate",
			mutate:  func(c *config.Config) { c.Models[0].Backends = []string{"nope"} },
			wantErr: "nope",
		},
		{
			name:    "wrong schema version refused",
			mutate:  func(c *config.Config) { c.Version = "weir.dev/v9" },
			wantErr: "version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(base), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				tt.mutate(c)
			}
			set, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(set)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, config.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestDecodeRefusesMissingOrCorrupt(t *testing.T) {
	set, err := Encode(&config.Config{Version: config.Version})
	if err != nil {
		t.Fatal(err)
	}
	missing := *set
	missing.Shards[7] = nil
	if _, err := Decode(&missing); err == nil || !strings.Contains(err.Error(), "keys/07") {
		t.Errorf("missing shard: err = %v", err)
	}
	swapped := *set
	swapped.Shards[1], swapped.Shards[2] = set.Shards[2], set.Shards[1]
	if _, err := Decode(&swapped); err == nil || !strings.Contains(err.Error(), "keys/01 holds shard 2") {
		t.Errorf("swapped shards: err = %v", err)
	}
	corrupt := *set
	corrupt.Config = []byte("not gob")
	if _, err := Decode(&corrupt); err == nil {
		t.Error("corrupt config decoded")
	}
}

// TestSizes logs the encoded sizes the issue budgets (no response over
// 4 MB): go test -run TestSizes -v ./config/wire
func TestSizes(t *testing.T) {
	c := xdstest.LargeConfig(2000, 10000)
	set, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	largest, total := 0, 0
	for _, s := range set.Shards {
		largest = max(largest, len(s))
		total += len(s)
	}
	t.Logf("2000 backends/models, 10000 keys: config resource %d bytes; largest shard %d bytes; all shards %d bytes", len(set.Config), largest, total)
	if len(set.Config) > 4<<20 || total > 4<<20 {
		t.Errorf("a response would exceed 4 MiB")
	}
}

// BenchmarkDecode is a replica's cost of assembling a config at 2,000
// backends and 10,000 keys, before it compiles it:
// go test -run '^$' -bench Decode ./config/wire
func BenchmarkDecode(b *testing.B) {
	set, err := Encode(xdstest.LargeConfig(2000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Decode(set); err != nil {
			b.Fatal(err)
		}
	}
}
