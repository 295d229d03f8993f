#!/usr/bin/env bash
# The checks CI runs before the tests: formatting, go vet in both modules, and generated files up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# Tracked Go files that exist in the working tree (a deletion not yet committed is no error). gofmt gets
# them as arguments, never an empty list: without arguments it would read stdin.
gofiles=()
while IFS= read -r -d '' f; do
	[ -f "$f" ] && gofiles+=("$f")
done < <(git ls-files -z -- '*.go')
if [ ${#gofiles[@]} -gt 0 ]; then
	# A file gofmt cannot parse is a failure too: its error goes to stderr and gofmt exits non-zero.
	if ! unformatted=$(gofmt -l "${gofiles[@]}"); then
		echo "gofmt failed (see the errors above)"; fail=1
	fi
	if [ -n "$unformatted" ]; then
		echo "gofmt would change:"; echo "$unformatted"; fail=1
	fi
fi
go vet ./...
(cd tests && go vet ./...)
# The lint gate (.golangci.yaml): exhaustive switches, unchecked errors, staticcheck, response bodies,
# contexts on network calls, metric names, import aliases.
lint=$(hack/tools.sh golangci-lint)
"$lint" run ./... || fail=1
(cd tests && "$lint" run --config ../.golangci.yaml ./...) || fail=1

# Generate into a scratch copy and compare, so a stale checked-in file fails without changing the tree.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r go.mod go.sum api "$scratch"/
mkdir -p "$scratch/manifests/base/crd"
(cd "$scratch" && cg=$("$OLDPWD/hack/tools.sh" controller-gen) && \
	"$cg" object paths=./api/... && \
	"$cg" crd:crdVersions=v1 paths=./api/... output:crd:artifacts:config=manifests/base/crd)
for f in api/v1alpha1/zz_generated.deepcopy.go manifests/base/crd/argocontroller.io_resumes.yaml; do
	if ! diff -q "$f" "$scratch/$f" >/dev/null; then
		echo "$f is stale: run make generate"; diff -u "$f" "$scratch/$f" | head -20; fail=1
	fi
done
if ! diff -q manifests/base/crd/argocontroller.io_resumes.yaml charts/resume-trigger/files/argocontroller.io_resumes.yaml >/dev/null; then
	echo "charts/resume-trigger/files/argocontroller.io_resumes.yaml differs from manifests/base/crd: run make generate"; fail=1
fi
# The typed Resume client: what client-gen makes from api/ now.
if hack/update-client.sh "$scratch/clientset" >/dev/null; then
	if ! diff -r internal/client/clientset "$scratch/clientset" >/dev/null; then
		echo "internal/client/clientset is stale: run make generate"; diff -ru internal/client/clientset "$scratch/clientset" | head -20; fail=1
	fi
else
	fail=1
fi
# The gRPC stubs: argo-events' trigger.proto still has the recorded sum, and the stubs are what it generates.
mkdir -p "$scratch/triggerpb"
if hack/update-proto.sh "$scratch/triggerpb"; then
	for f in trigger.pb.go trigger_grpc.pb.go; do
		if ! diff -q "internal/triggerpb/$f" "$scratch/triggerpb/$f" >/dev/null; then
			echo "internal/triggerpb/$f is stale: run make generate"; diff -u "internal/triggerpb/$f" "$scratch/triggerpb/$f" | head -20; fail=1
		fi
	done
else
	fail=1
fi

# The server binary holds exec rights: it links no argo-events package (its stubs are our own).
if linked=$(go list -deps ./cmd/resume-trigger | grep '^github.com/argoproj/argo-events'); then
	echo "cmd/resume-trigger links argo-events packages:"; echo "$linked"; fail=1
fi
exit $fail
