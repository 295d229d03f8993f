#!/usr/bin/env bash
# Generates the gRPC stubs of the Argo Events custom-trigger contract (service triggers.Trigger) from
# argo-events' own trigger.proto, at the version go.mod pins, into internal/triggerpb (or the folder given).
# The server then links no argo-events package. The proto's sha256 is recorded in hack/trigger.proto.sha256:
# when an argo-events bump changes the contract, this fails until someone has read the change.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-internal/triggerpb}
pkg=github.com/argocontroller/resume-trigger/internal/triggerpb

go mod download github.com/argoproj/argo-events
src=$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-events)/pkg/sensors/triggers/trigger.proto
want=$(cut -d' ' -f1 hack/trigger.proto.sha256)
got=$(sha256sum "$src" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	echo "argo-events' trigger.proto ($src) has sha256 $got, not the $want recorded in hack/trigger.proto.sha256:" >&2
	echo "the contract changed; read the change, regenerate, and record the new sum" >&2
	exit 1
fi

buf=$(hack/tools.sh buf)
gen_go=$(hack/tools.sh protoc-gen-go)
gen_grpc=$(hack/tools.sh protoc-gen-go-grpc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/in" "$tmp/out"
cp "$src" "$tmp/in/trigger.proto"
# The proto has no go_package option: the M flag maps it to our package without editing the file.
cat >"$tmp/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $gen_go
    out: $tmp/out
    opt: [paths=source_relative, "Mtrigger.proto=$pkg;triggerpb"]
  - local: $gen_grpc
    out: $tmp/out
    opt: [paths=source_relative, "Mtrigger.proto=$pkg;triggerpb"]
YAML
(cd "$tmp" && "$buf" generate in --template buf.gen.yaml)
mkdir -p "$out"
cp "$tmp/out/trigger.pb.go" "$tmp/out/trigger_grpc.pb.go" "$out/"
