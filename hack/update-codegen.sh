#!/usr/bin/env bash
# Regenerates what is generated from api/: deepcopy code and the Resume CRD.
set -euo pipefail
cd "$(dirname "$0")/.."
cg=$(hack/tools.sh controller-gen)
"$cg" object paths=./api/...
"$cg" crd:crdVersions=v1 paths=./api/... output:crd:artifacts:config=manifests/base/crd
