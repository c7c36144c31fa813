package kube

import (
	"strings"
	"testing"
)

func TestDecodeAll(t *testing.T) {
	for _, tt := range []struct {
		name string
		yaml string
		want []string // kind/name
		err  string
	}{
		{"documents in order, empty ones skipped", "---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: weir.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: r, namespace: a}\n", []string{"Namespace/a", "AIRoute/r"}, ""},
		{"JSON too", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, []string{"Secret/s"}, ""},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", nil, "document 0: apiVersion and kind are required"},
		{"not YAML", "apiVersion: v1\nkind: [\n", nil, "document 0"},
		{"empty", "", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := decodeAll([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
