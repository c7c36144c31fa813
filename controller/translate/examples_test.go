package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// exampleCluster is what the examples assume exists besides themselves:
// the Secret and Service their comments tell users to create.
const exampleCluster = `apiVersion: v1
kind: Secret
metadata: {name: openai-key, namespace: ai-platform}
stringData: {api-key: sk-example, organization: org-example}
---
apiVersion: v1
kind: Service
metadata: {name: vllm, namespace: ai-platform}
spec:
  ports: [{port: 8000}]
---
apiVersion: v1
kind: Secret
metadata: {name: anthropic-key, namespace: ai-platform}
stringData: {api-key: sk-ant-example}
---
apiVersion: v1
kind: Secret
metadata: {name: aws-bedrock, namespace: ai-platform}
stringData: {access-key-id: AKIAEXAMPLE, secret-access-key: example}
---
apiVersion: v1
kind: Service
metadata: {name: vllm-research, namespace: team-research}
spec:
  ports: [{port: 8000}]
---
`

// TestExamplesTranslate applies every file in examples/kubernetes to one
// cluster: no object may be refused and the data plane must accept the
// config, so the examples cannot rot against the translation rules.
func TestExamplesTranslate(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	files, err := filepath.Glob("../../examples/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples (%v)", err)
	}
	all := bytes.NewBufferString(exampleCluster)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteString("\n---\n")
	}
	in := parseInput(t, all.Bytes())
	out := Translate(in)
	compiles(t, out.Config)
	if n, want := len(out.Status), len(in.Routes)+len(in.Keys)+len(in.Budgets); n != want || n == 0 {
		t.Fatalf("%d statuses for %d objects", n, want)
	}
	for obj, st := range out.Status {
		for _, c := range st.Conditions {
			if c.Status != metav1.ConditionTrue {
				t.Errorf("%s %s/%s: %s is %s: %s: %s", obj.Kind, obj.Namespace, obj.Name, c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
	if len(out.Config.Models) == 0 || len(out.Config.Auth.Keys) == 0 {
		t.Errorf("%d models, %d keys", len(out.Config.Models), len(out.Config.Auth.Keys))
	}
}
