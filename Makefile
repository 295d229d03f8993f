# resume-trigger — `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN        ?= bin
IMAGE_REPO ?= ghcr.io/argocontroller/resume-trigger
# The project's address: a release's assets are downloaded from $(REPO_URL)/releases/download/$(VERSION)/.
REPO_URL   ?= https://github.com/argocontroller/resume-trigger
DIST       ?= dist
# Never latest: the tag is the version (git describe), as in the manifests.
IMAGE      ?= $(IMAGE_REPO):$(VERSION)
GO         ?= go
TOOLS      := hack/tools.sh
TEST_FLAGS ?= -count=1
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION_LDFLAGS := -X github.com/argocontroller/resume-trigger/internal/version.Version=$(VERSION) \
	-X github.com/argocontroller/resume-trigger/internal/version.Commit=$(COMMIT)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Build

.PHONY: build
build: ## Build the resume-trigger binary into bin/ (version from git describe).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" -o $(BIN)/resume-trigger ./cmd/resume-trigger
	@ls -l $(BIN)/resume-trigger | awk '{printf "bin/resume-trigger: %.1f MB\n", $$5/1048576}'

.PHONY: image
.PHONY: build-plugin krew-manifest
build-plugin: ## Build kubectl-resume, the kubectl plugin, into bin/ (put it on PATH: kubectl resume ...).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" -o $(BIN)/kubectl-resume ./cmd/kubectl-resume

krew-manifest: ## Write .krew.yaml, the krew manifest template krew's release bot renders on a release tag (make release checks it renders to the release's resume.yaml).
	cd tests && $(GO) run ./cmd/release -krew-template -repo "$(REPO_URL)"

image: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

.PHONY: release
release: ## Make a release into dist/ without Docker: image (OCI layout + digest), plugin archives, krew manifest, chart, install files, checksums (VERSION=vX.Y.Z).
	rm -rf $(DIST)
	cd tests && $(GO) run ./cmd/release -version "$(VERSION)" -commit "$(COMMIT)" -image "$(IMAGE_REPO)" -repo "$(REPO_URL)" -out "$(abspath $(DIST))"

.PHONY: release-manifests
release-manifests: ## Render only the install files, one per overlay (namespace-install.yaml, cluster-install.yaml), into dist/ with the image IMAGE_REPO:VERSION (VERSION=vX.Y.Z).
	rm -rf $(DIST)
	cd tests && $(GO) run ./cmd/release -only install -version "$(VERSION)" -image "$(IMAGE_REPO)" -out "$(abspath $(DIST))"

.PHONY: run
run: build ## Run the server against the current kubeconfig, serving its namespace (NAMESPACES=...).
	$(BIN)/resume-trigger --kubeconfig "$${KUBECONFIG:-$$HOME/.kube/config}" --namespaces "$${NAMESPACES:-default}" --log-format text

##@ Generate and verify

.PHONY: generate
generate: ## Regenerate deepcopy code, the CRD and the typed Resume client from api/, and the gRPC stubs from argo-events' trigger.proto.
	hack/update-codegen.sh

.PHONY: verify
verify: ## Fail when generated code is stale, gofmt would change files, or go vet complains.
	hack/verify.sh

.PHONY: diagrams
diagrams: ## Render docs/images/*.dot into SVG with Graphviz (apt-get install graphviz); commit both.
	@command -v dot >/dev/null || { echo "make diagrams needs Graphviz's dot (apt-get install graphviz)" >&2; exit 1; }
	for f in docs/images/*.dot; do dot -Tsvg "$$f" -o "$${f%.dot}.svg"; done

##@ Test

.PHONY: demo
demo: ## Show the whole job on a local embedded control plane (builds the tools on first run).
	$(TOOLS) etcd kube-apiserver nats-server argo-events workflow-controller argoexec >/dev/null
	cd tests && $(GO) run ./cmd/demo

.PHONY: test
test: verify test-unit test-fuzz test-integration test-ui test-e2e test-fault ## Run every test: verify, unit, fuzz, integration, browser, end to end, faults.

.PHONY: test-unit
test-unit: ## Unit tests over fake clients and an in-process gRPC connection.
	$(GO) test $(TEST_FLAGS) -cover ./...

FUZZ_TIME ?= 20s

.PHONY: test-fuzz
test-fuzz: ## Each fuzz target for FUZZ_TIME (the committed corpus under testdata/fuzz also runs in test-unit).
	@for target in internal/request:FuzzParseSpec internal/request:FuzzParse internal/request:FuzzParseEvent \
		internal/lookup:FuzzCompressedNodes internal/lookup:FuzzPick; do \
		pkg=$${target%%:*}; fn=$${target##*:}; \
		echo ">> fuzz $$fn ($$pkg) for $(FUZZ_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) ./$$pkg || exit 1; \
	done

.PHONY: tools
tools: ## Build the pinned test tools into the cache outside the checkout (first run: 15-30 min).
	$(TOOLS) etcd kube-apiserver kube-apiserver-v134 controller-gen client-gen buf protoc-gen-go protoc-gen-go-grpc golangci-lint nats-server argo-events workflow-controller workflow-controller-v4 argoexec argoexec-v4 clusterrole-aggregation >/dev/null

.PHONY: test-integration
test-integration: ## Integration tests on a real etcd + kube-apiserver (v1.37; install and one release also on v1.34) with a test kubelet and Argo's workflow-controller (v3.7 and v4) and executor.
	$(TOOLS) etcd kube-apiserver kube-apiserver-v134 workflow-controller workflow-controller-v4 argoexec argoexec-v4 clusterrole-aggregation >/dev/null
	cd tests && $(GO) test $(TEST_FLAGS) ./argopin/... ./internal/rig/... ./integration/... ./chart/... ./cmd/release/...

.PHONY: test-ui ui-screenshots
test-ui: ## The web page (--ui-address) in headless chromium (apt-get install chromium) against the rig, Argo's workflow-controller and executor (about 35 s).
	$(TOOLS) etcd kube-apiserver workflow-controller argoexec >/dev/null
	cd tests && $(GO) test $(TEST_FLAGS) -timeout 5m ./ui/...

ui-screenshots: ## test-ui, writing its screenshots of the pages into docs/images (commit them).
	$(TOOLS) etcd kube-apiserver workflow-controller argoexec >/dev/null
	cd tests && UI_SCREENSHOTS=$(CURDIR)/docs/images $(GO) test $(TEST_FLAGS) -timeout 5m ./ui/...

.PHONY: test-e2e
test-e2e: ## End-to-end tests with real nats-server and argo-events binaries.
	$(TOOLS) etcd kube-apiserver nats-server argo-events workflow-controller argoexec >/dev/null
	cd tests && $(GO) test $(TEST_FLAGS) -timeout 20m ./e2e/...

.PHONY: test-fault
test-fault: ## Fault suite on the whole chain (needs root): prints a table of faults, wrong execs, lost Resumes, duplicates.
	$(TOOLS) etcd kube-apiserver nats-server argo-events workflow-controller argoexec >/dev/null
	@mkdir -p $(BIN)
	cd tests && FAULT_TABLE=$(abspath $(BIN))/fault-table.md $(GO) test $(TEST_FLAGS) -timeout 15m ./fault/...
	@cat $(BIN)/fault-table.md

.PHONY: mutation
mutation: ## Delete each guarded check in turn (hack/mutation.sh) and fail if the tests still pass.
	$(TOOLS) etcd kube-apiserver >/dev/null
	hack/mutation.sh

.PHONY: bench
bench: ## Performance beside the bare-exec floor on a local control plane: a Markdown table and docs/bench.png (about 3-5 min).
	$(TOOLS) etcd kube-apiserver >/dev/null
	cd tests && $(GO) run ./cmd/bench -plot ../docs/bench.png $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## Go benchmarks: exec round trip, a whole release through the API server, a Resume to Argo's Succeeded node.
	$(TOOLS) etcd kube-apiserver workflow-controller >/dev/null
	cd tests && $(GO) test -run '^$$' -bench . -benchtime 20x -count 5 ./internal/rig/... ./integration/...
