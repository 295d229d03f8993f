#!/usr/bin/env bash
# Builds kubectl-resume for every platform the krew manifest names into dist/ (reproducible: -trimpath,
# fixed archive metadata) and rewrites plugins/resume.yaml with the archives' sha256 and VERSION.
# Nothing is published by this: the manifest's uri points at a GitHub release that has to be made by hand
# with these archives before `kubectl krew install --manifest=plugins/resume.yaml` works from the network.
# Locally: kubectl krew install --manifest=plugins/resume.yaml --archive=dist/kubectl-resume_linux_amd64.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:-v0.1.0}
REPO=${REPO:-github.com/argocontroller/resume-trigger}
mkdir -p dist
platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
entries=""
for p in "${platforms[@]}"; do
	os=${p%/*} arch=${p#*/}
	bin=kubectl-resume
	[ "$os" = windows ] && bin=kubectl-resume.exe
	work=$(mktemp -d)
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$work/$bin" ./cmd/kubectl-resume
	cp LICENSE "$work/" 2>/dev/null || true
	archive=dist/kubectl-resume_${os}_${arch}.tar.gz
	tar --sort=name --mtime='2020-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -C "$work" -cf - . | gzip -n >"$archive"
	rm -rf "$work"
	sum=$(sha256sum "$archive" | cut -d' ' -f1)
	entries+="  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: https://$REPO/releases/download/$VERSION/kubectl-resume_${os}_${arch}.tar.gz
    sha256: $sum
    bin: $bin
"
done
cat >plugins/resume.yaml <<YAML
# krew plugin manifest for kubectl-resume, written by hack/krew-manifest.sh (VERSION=$VERSION).
# NOT PUBLISHED: it is not in krew-index, and no release hosts these archives yet. The sha256 values are
# those of the archives the script builds into dist/ from this tree; publish them as release $VERSION (or
# install locally with --archive, see the script) before relying on the uri.
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: resume
spec:
  version: $VERSION
  homepage: https://$REPO
  shortDescription: Release debug-paused Argo Workflows steps
  description: |
    Release a step of an Argo Workflow that is debug-paused (ARGO_DEBUG_PAUSE_BEFORE/AFTER) by creating a
    resume-trigger Resume with your own credentials, and follow it with --wait; list the debug-paused
    containers of a namespace or of all; explain why a step would or would not be released. Needs
    resume-trigger installed in the cluster.
  caveats: |
    Needs rights to create and get Resumes, get and list Workflows and list pods in the namespace.
    resume-trigger (the server) must serve the namespace.
  platforms:
$entries
YAML
echo "wrote plugins/resume.yaml and dist/ (version $VERSION)"
