# Weir's developer entry points. `make run` and `make test` are the two
# commands the README promises work on a fresh clone.

GO        ?= go
BIN       := bin
WEIR      := $(BIN)/weir
# The development build: `weir dev` (fake providers and the Go stand-in for
# Envoy) is only linked with -tags dev, never into the production bin/weir.
WEIR_DEV  := $(BIN)/weir-dev
PKGS      := ./...
NODE_SDK  := test/sdk/node

.PHONY: all build build-dev run test test-go test-sdk lint fmt bench bench-scale soak generate generate-check fuzz clean envtest-assets

all: build

build: ## Build the production binaries into bin/: weir (the extproc; no dev data plane) and weirctl (Envoy config)
	$(GO) build -o $(WEIR) ./extproc/cmd/weir
	$(GO) build -o $(BIN)/weirctl ./controller/cmd/weirctl

build-dev: ## Build bin/weir-dev: weir with `weir dev` (-tags dev)
	$(GO) build -tags dev -o $(WEIR_DEV) ./extproc/cmd/weir

run: build-dev ## Start the dev gateway on :8080 with the embedded default config and fake providers
	$(WEIR_DEV) dev

test: generate-check test-go test-sdk ## Run every test: the generate check, Go (with -race; includes the import rules in test/arch) and the official SDK suites

# The Kubernetes tests (test/envtest and the controller's) run against the
# kube-apiserver and etcd that envtest-assets builds; a cached build is a
# few `go list` calls.
test-go: export KUBEBUILDER_ASSETS = $(ENVTEST_ASSETS)
test-go: envtest-assets
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -race -count=1 -tags dev ./extproc/cmd/weir/

# The npm SDK tests drive `weir dev` with the official openai package, then
# the same suites against test/kube's stack: the models as Kubernetes
# objects on the built kube-apiserver, served through the controller's xDS.
# keys.test.mjs is left out there: it needs the key admin API, which does
# not exist under the controller (keys are VirtualKeys).
KUBESTACK := $(BIN)/kubestack
test-sdk: export KUBEBUILDER_ASSETS = $(ENVTEST_ASSETS)
test-sdk: build-dev envtest-assets
	cd $(NODE_SDK) && npm ci --no-audit --no-fund --loglevel=error
	WEIR_BIN=$(abspath $(WEIR_DEV)) node --test $(NODE_SDK)/
	$(GO) build -o $(KUBESTACK) ./test/kube/cmd/kubestack
	WEIR_STACK=kube WEIR_KUBESTACK=$(abspath $(KUBESTACK)) node --test $(NODE_SDK)/openai.test.mjs $(NODE_SDK)/anthropic.test.mjs

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags dev ./extproc/cmd/weir/

fmt:
	gofmt -w $$(git ls-files '*.go')

# AIGW=/path/to/envoy-ai-gateway/extproc adds Envoy AI Gateway to the same
# run (build its cmd/extproc from its own repository; nothing here builds it).
AIGW ?=
AIGW_ARGS = -aigw $(AIGW) -servers null,weir,aigw,null-aigw
bench: build ## Load test: null ext_proc floor vs Weir (and Envoy AI Gateway with AIGW=...), plus go test benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./extproc/... | tee $(BIN)/gobench.txt
	$(GO) run ./test/bench/cmd/weirbench -weir $(WEIR) $(if $(AIGW),$(AIGW_ARGS))

# Not part of `make test`: it takes minutes (see test/scale).
bench-scale: export KUBEBUILDER_ASSETS = $(ENVTEST_ASSETS)
bench-scale: export WEIR_REQUIRE_ENVTEST = 1
bench-scale: envtest-assets ## Scale: 2,000 AIRoutes and 10,000 VirtualKeys through the controller to 2 extproc replicas; time to every ACK, largest push, extproc RSS
	$(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 30m ./test/scale

SOAK_DURATION ?= 4m
soak: build ## Soak: keys, limits and spend on, each store, SOAK_DURATION of load; samples extproc RSS and Redis memory, prints the curve and a verdict on its slope
	$(GO) run ./test/bench/cmd/weirbench soak -weir $(WEIR) -duration $(SOAK_DURATION) $(SOAK_ARGS)

FUZZTIME ?= 20s
fuzz: ## Run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Every package whose tests use extproc/internal/golden: adding a golden
# suite needs no change here.
GOLDEN_PKGS = $(shell $(GO) list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./... | awk '$$1 !~ /internal\/golden$$/ && / github.com\/weir-ai\/weir\/extproc\/internal\/golden/ {print $$1}')

# controller-gen is pinned here, not in go.mod: `go run pkg@version` builds
# exactly this release whatever the module requires, so the generated CRDs
# change only when this line does.
CONTROLLER_GEN := $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
CRD_DIR        := manifests/crds

generate: ## Regenerate the CRDs and deepcopy (controller-gen), every golden file (translators, ingress, Envoy config, CRD translation) and the README's provider matrix; orphans are deleted
	rm -f $(CRD_DIR)/weir.dev_*.yaml
	$(CONTROLLER_GEN) object paths=./api/... crd paths=./api/... output:crd:dir=$(CRD_DIR)
	$(CONTROLLER_GEN) rbac:roleName=weir-controller paths=./controller/... output:rbac:dir=manifests/rbac
	$(GO) test -count=1 $(GOLDEN_PKGS) ./controller/xds/ ./controller/translate/ -update
	$(GO) test -count=1 ./test/e2e/ -run TestProviderMatrix -update-readme

generate-check: generate ## Fail if `make generate` changes anything: the goldens and README matrix in git are what the code produces
	@out=$$(git status --porcelain -- '*testdata*' README.md api manifests); if [ -n "$$out" ]; then echo "make generate changed files; commit them:"; echo "$$out"; git --no-pager diff --stat; exit 1; fi

# kube-apiserver and etcd for controller-runtime's envtest, built from the Go
# modules hack/envtest/*/go.mod pin (nothing else is downloaded).
ENVTEST_ASSETS := $(abspath $(BIN)/envtest)
envtest-assets: ## Build kube-apiserver and etcd from Go source into bin/envtest (about 10 min cold; a no-op when up to date)
	hack/envtest-assets.sh $(ENVTEST_ASSETS)

clean:
	rm -rf $(BIN)
