#!/usr/bin/env bash
# Regenerates what is generated: deepcopy code, the Resume CRD and the typed Resume client from api/, the
# gRPC stubs from argo-events' trigger.proto.
set -euo pipefail
cd "$(dirname "$0")/.."
cg=$(hack/tools.sh controller-gen)
"$cg" object paths=./api/...
"$cg" crd:crdVersions=v1 paths=./api/... output:crd:artifacts:config=manifests/base/crd
# The chart cannot read files outside its folder: it ships a copy (a test keeps both equal).
cp manifests/base/crd/argocontroller.io_resumes.yaml charts/resume-trigger/files/argocontroller.io_resumes.yaml
hack/update-client.sh internal/client/clientset
hack/update-proto.sh
