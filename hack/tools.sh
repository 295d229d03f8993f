#!/usr/bin/env bash
# Builds the pinned binaries that the generators and tests need, once per version, into a cache outside
# the checkout (a fresh clone finds them there), and prints the path of each binary asked for.
#
#   hack/tools.sh kube-apiserver etcd      -> one path a line, building what is missing
#
# Progress goes to stderr so that a cold build (kube-apiserver takes 15-25 minutes, workflow-controller v3.7
# about 4-6 with the modules downloaded, workflow-controller-v4 about 2 more after it: the two share most
# packages in the build cache) does not look hung.
#
# Cache keys: TOOL@VERSION for the tools installed with `go install TOOL@VERSION`, and
# TOOL@VERSION-HASH for the tools built from a wrapper module under tests/tools/TOOL, where HASH is the
# first 12 hex digits of the sha256 of that module's go.mod and go.sum: a changed pin or replace never
# reuses a binary built from the old one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${RESUME_TRIGGER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/resume-trigger}

version() {
	case $1 in
	kube-apiserver | clusterrole-aggregation) echo v1.37.2 ;;
	kube-apiserver-v134) echo v1.34.4 ;;
	etcd) echo v3.6.16 ;;
	controller-gen) echo v0.23.0 ;;
	# The typed client's generator: the same Kubernetes minor as client-go in go.mod, whose API it calls.
	client-gen) echo v0.37.2 ;;
	nats-server) echo v2.10.29 ;;
	argo-events) echo v1.9.11 ;;
	workflow-controller | argoexec) echo v3.7.17 ;;
	workflow-controller-v4 | argoexec-v4) echo v4.0.5 ;;
	golangci-lint) echo v2.15.0 ;;
	buf) echo v1.75.0 ;;
	protoc-gen-go) echo v1.36.12 ;;
	protoc-gen-go-grpc) echo v1.6.2 ;;
	*) echo "unknown tool $1" >&2; return 1 ;;
	esac
}

# moddir prints the wrapper module a tool is built from. argoexec shares the workflow-controller's module
# (the same argo-workflows pin, and the same packages in the build cache: after the controller, argoexec
# costs little more than its link).
moddir() {
	case $1 in
	argoexec) echo "$root/tests/tools/workflow-controller" ;;
	argoexec-v4) echo "$root/tests/tools/workflow-controller-v4" ;;
	*) echo "$root/tests/tools/$1" ;;
	esac
}

# key prints the cache directory name of a tool.
key() {
	local tool=$1 ver=$2 mod
	mod=$(moddir "$1")
	case $tool in
	kube-apiserver | kube-apiserver-v134 | etcd | argo-events | workflow-controller | workflow-controller-v4 | argoexec | argoexec-v4)
		local sum
		sum=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum)
		echo "$tool@$ver-${sum:0:12}" ;;
	clusterrole-aggregation)
		# Built from the kube-apiserver module (same Kubernetes pins), plus its own main.go.
		local sum k=$root/tests/tools/kube-apiserver
		sum=$(cat "$k/go.mod" "$k/go.sum" "$k/clusterrole-aggregation/main.go" | sha256sum)
		echo "$tool@$ver-${sum:0:12}" ;;
	*) echo "$tool@$ver" ;;
	esac
}

# checkout copies argo-workflows module $1 out of the module cache into $2, as a checkout of its tag has it:
# in Argo's repository workflow/executor/osspecific/signal_linux.go is a symbolic link to signal_darwin.go,
# and module zips keep no symbolic links, so the module as the proxy serves it does not build argoexec for
# Linux ("undefined: Setpgid"). go build's -overlay cannot add the file (nothing under GOMODCACHE may be
# replaced), so argoexec is built from this copy, through a replace in a copy of the tool module's go.mod.
checkout() {
	local dir d
	dir=$(go list -m -f '{{.Dir}}' "$1")
	cp -r "$dir" "$2"
	chmod -R u+w "$2"
	d=$2/workflow/executor/osspecific
	[ -e "$d/signal_linux.go" ] || ln -s signal_darwin.go "$d/signal_linux.go"
}

# compile builds tool into out. It runs in a subshell whose EXIT trap stops the progress ticker and removes
# the temporary directory however the build ends (failure under set -e, a signal), so a failed build
# leaves neither a process holding the caller's stderr open nor a half-written .build.* directory.
compile() (
	tool=$1 ver=$2 out=$3 start=$SECONDS ticker=
	tmp=$(mktemp -d "$out/.build.XXXXXX")
	trap '[ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true; rm -rf "$tmp"' EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	echo ">> building $tool $ver into $out (first time only)" >&2
	# A ticker keeps a quiet, long build visibly alive. Its sleep has no link to stderr, and the ticker
	# kills it when told to stop, so nothing outlives the build.
	(
		sleeper=
		trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM
		while :; do
			sleep 60 </dev/null >/dev/null 2>&1 &
			sleeper=$!
			wait "$sleeper" || true
			echo ">> still building $tool ($(( (SECONDS - start) / 60 )) min)" >&2
		done
	) &
	ticker=$!
	case $tool in
	kube-apiserver)
		(cd "$root/tests/tools/kube-apiserver" && go build -trimpath -o "$tmp/$tool" -ldflags "\
-X k8s.io/component-base/version.gitVersion=$ver \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=37" k8s.io/kubernetes/cmd/kube-apiserver) ;;
	kube-apiserver-v134)
		# The oldest Kubernetes the integration tier installs on; built like the current one, from its
		# own module (a v1.34 tree shares few packages with v1.37 in the build cache).
		(cd "$root/tests/tools/kube-apiserver-v134" && go build -trimpath -o "$tmp/$tool" -ldflags "\
-X k8s.io/component-base/version.gitVersion=$ver \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=34" k8s.io/kubernetes/cmd/kube-apiserver) ;;
	clusterrole-aggregation)
		(cd "$root/tests/tools/kube-apiserver" && go build -trimpath -o "$tmp/$tool" ./clusterrole-aggregation) ;;
	etcd)
		(cd "$root/tests/tools/etcd" && go build -trimpath -o "$tmp/$tool" go.etcd.io/etcd/server/v3) ;;
	argo-events)
		(cd "$root/tests/tools/argo-events" && go build -trimpath -o "$tmp/$tool" github.com/argoproj/argo-events/cmd) ;;
	workflow-controller)
		(cd "$root/tests/tools/workflow-controller" && go build -trimpath -o "$tmp/$tool" -ldflags "\
-X github.com/argoproj/argo-workflows/v3.version=$ver" github.com/argoproj/argo-workflows/v3/cmd/workflow-controller) ;;
	workflow-controller-v4)
		(cd "$root/tests/tools/workflow-controller-v4" && go build -trimpath -o "$tmp/$tool" -ldflags "\
-X github.com/argoproj/argo-workflows/v4.version=$ver" github.com/argoproj/argo-workflows/v4/cmd/workflow-controller) ;;
	argoexec | argoexec-v4)
		local m=github.com/argoproj/argo-workflows/v3
		[ "$tool" = argoexec ] || m=github.com/argoproj/argo-workflows/v4
		(cd "$(moddir "$tool")" && checkout "$m" "$tmp/argo-workflows" && cp go.mod go.sum "$tmp/" &&
			echo "replace $m => $tmp/argo-workflows" >>"$tmp/go.mod" &&
			go build -trimpath -modfile "$tmp/go.mod" -o "$tmp/$tool" -ldflags "-X $m.version=$ver" "$m/cmd/argoexec") ;;
	controller-gen)
		GOBIN=$tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@"$ver" ;;
	client-gen)
		GOBIN=$tmp go install k8s.io/code-generator/cmd/client-gen@"$ver" ;;
	nats-server)
		GOBIN=$tmp go install github.com/nats-io/nats-server/v2@"$ver" ;;
	golangci-lint)
		GOBIN=$tmp go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@"$ver" ;;
	buf)
		GOBIN=$tmp go install github.com/bufbuild/buf/cmd/buf@"$ver" ;;
	protoc-gen-go)
		GOBIN=$tmp go install google.golang.org/protobuf/cmd/protoc-gen-go@"$ver" ;;
	protoc-gen-go-grpc)
		GOBIN=$tmp go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@"$ver" ;;
	esac
	mv "$tmp/$tool" "$out/$tool"
	echo ">> built $tool $ver in $(( SECONDS - start )) s" >&2
)

build() {
	local tool=$1 ver out
	ver=$(version "$tool")
	out=$cache/$(key "$tool" "$ver")
	if [ ! -x "$out/$tool" ]; then
		mkdir -p "$out"
		# One build per tool at a time: a second caller (another make target, a parallel test package)
		# waits for the first instead of building the same thing again. The lock goes with the process.
		exec 9>"$out/.lock"
		if ! flock -n 9; then
			echo ">> waiting for another build of $tool $ver" >&2
			flock 9
		fi
		if [ ! -x "$out/$tool" ]; then
			compile "$tool" "$ver" "$out"
		fi
		flock -u 9
		exec 9>&-
	fi
	echo "$out/$tool"
}

[ $# -gt 0 ] || { echo "usage: $0 TOOL..." >&2; exit 2; }
for t in "$@"; do build "$t"; done
