package translate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
)

// testNow is the clock of every case unless its settings say otherwise.
var testNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// settings is a test input's header: a document of kind TestSettings
// (not a Kubernetes object) with what the cluster's objects cannot say.
// Every VirtualKey not listed as pending is issued with the hash of
// "<namespace>/<name>" unless issued names another.
type settings struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Now        *metav1.Time          `json:"now,omitempty"`
	Pending    []string              `json:"pending,omitempty"`
	Issued     map[string]issuedYAML `json:"issued,omitempty"`
}

type issuedYAML struct {
	Hash     string `json:"hash"`
	Previous []struct {
		Hash      string      `json:"hash"`
		ExpiresAt metav1.Time `json:"expiresAt"`
	} `json:"previous,omitempty"`
}

func testHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testBase is the controller's own settings in every case.
func testBase() config.Config {
	return config.Config{
		Version: config.Version,
		Limits:  config.Limits{Store: "redis", Redis: &config.Redis{Addr: "redis.weir-system.svc:6379"}},
		Logging: config.Logging{Level: "info"},
	}
}

// loadInput reads a multi-document YAML file of Kubernetes objects (and
// an optional TestSettings document) into an Input.
func loadInput(t testing.TB, path string) Input {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseInput(t, b)
}

func parseInput(t testing.TB, b []byte) Input {
	t.Helper()
	in := Input{Base: testBase(), Now: testNow, ClusterDomain: "cluster.local"}
	var set settings
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "":
			continue // comments only
		case "TestSettings":
			obj = &set
		case "AIRoute":
			in.Routes = append(in.Routes, weirv1a1.AIRoute{})
			obj = &in.Routes[len(in.Routes)-1]
		case "VirtualKey":
			in.Keys = append(in.Keys, weirv1a1.VirtualKey{})
			obj = &in.Keys[len(in.Keys)-1]
		case "Budget":
			in.Budgets = append(in.Budgets, weirv1a1.Budget{})
			obj = &in.Budgets[len(in.Budgets)-1]
		case "Secret":
			in.Secrets = append(in.Secrets, corev1.Secret{})
			obj = &in.Secrets[len(in.Secrets)-1]
		case "Service":
			in.Services = append(in.Services, corev1.Service{})
			obj = &in.Services[len(in.Services)-1]
		case "Namespace":
			continue
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %v", tm.Kind, err)
		}
	}
	// The API server turns stringData into data.
	for i := range in.Secrets {
		s := &in.Secrets[i]
		for k, v := range s.StringData {
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
	if set.Now != nil {
		in.Now = set.Now.Time
	}
	pending := map[string]bool{}
	for _, p := range set.Pending {
		pending[p] = true
	}
	in.Issued = map[types.NamespacedName]IssuedKey{}
	for _, k := range in.Keys {
		id := k.Namespace + "/" + k.Name
		if pending[id] {
			continue
		}
		ik := IssuedKey{Hash: testHash(id)}
		if y, ok := set.Issued[id]; ok {
			ik.Hash = y.Hash
			for _, p := range y.Previous {
				ik.Previous = append(ik.Previous, PreviousKey{Hash: p.Hash, ExpiresAt: p.ExpiresAt.Time})
			}
		}
		in.Issued[types.NamespacedName{Namespace: k.Namespace, Name: k.Name}] = ik
	}
	return in
}
