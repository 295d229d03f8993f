#!/usr/bin/env bash
# Regenerates what is generated: deepcopy code and the Resume CRD from api/, the gRPC stubs from
# argo-events' trigger.proto.
set -euo pipefail
cd "$(dirname "$0")/.."
cg=$(hack/tools.sh controller-gen)
"$cg" object paths=./api/...
"$cg" crd:crdVersions=v1 paths=./api/... output:crd:artifacts:config=manifests/base/crd
hack/update-proto.sh
