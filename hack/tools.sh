#!/usr/bin/env bash
# Builds the pinned binaries that the generators and tests need, once per version, into a cache outside
# the checkout (a fresh clone finds them there), and prints the path of each binary asked for.
#
#   hack/tools.sh kube-apiserver etcd      -> one path a line, building what is missing
#
# Progress goes to stderr so that a cold build (kube-apiserver takes 15-25 minutes) does not look hung.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${RESUME_TRIGGER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/resume-trigger}

version() {
	case $1 in
	kube-apiserver) echo v1.37.2 ;;
	etcd) echo v3.6.16 ;;
	controller-gen) echo v0.23.0 ;;
	nats-server) echo v2.10.29 ;;
	argo-events) echo v1.9.11 ;;
	*) echo "unknown tool $1" >&2; return 1 ;;
	esac
}

compile() {
	local tool=$1 ver=$2 out=$3 tmp start=$SECONDS ticker
	tmp=$(mktemp -d "$out/.build.XXXXXX")
	echo ">> building $tool $ver into $out (first time only)" >&2
	(
		# A ticker keeps a quiet, long build visibly alive.
		while sleep 60; do echo ">> still building $tool ($(( (SECONDS - start) / 60 )) min)" >&2; done
	) &
	ticker=$!
	trap "kill $ticker 2>/dev/null || true; trap - RETURN" RETURN
	case $tool in
	kube-apiserver)
		(cd "$root/tests/tools/kube-apiserver" && go build -trimpath -o "$tmp/$tool" -ldflags "\
-X k8s.io/component-base/version.gitVersion=$ver \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=37" k8s.io/kubernetes/cmd/kube-apiserver) ;;
	etcd)
		(cd "$root/tests/tools/etcd" && go build -trimpath -o "$tmp/$tool" go.etcd.io/etcd/server/v3) ;;
	argo-events)
		(cd "$root/tests/tools/argo-events" && go build -trimpath -o "$tmp/$tool" github.com/argoproj/argo-events/cmd) ;;
	controller-gen)
		GOBIN=$tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@"$ver" ;;
	nats-server)
		GOBIN=$tmp go install github.com/nats-io/nats-server/v2@"$ver" ;;
	esac
	mv "$tmp/$tool" "$out/$tool"
	rmdir "$tmp"
	echo ">> built $tool $ver in $(( SECONDS - start )) s" >&2
}

build() {
	local tool=$1 ver out
	ver=$(version "$tool")
	out=$cache/$tool@$ver
	if [ ! -x "$out/$tool" ]; then
		mkdir -p "$out"
		# One build per tool at a time: a second caller (another make target, a parallel test package)
		# waits for the first instead of building the same thing again.
		exec 9>"$out/.lock"
		if ! flock -n 9; then
			echo ">> waiting for another build of $tool $ver" >&2
			flock 9
		fi
		[ -x "$out/$tool" ] || compile "$tool" "$ver" "$out"
		flock -u 9
		exec 9>&-
	fi
	echo "$out/$tool"
}

[ $# -gt 0 ] || { echo "usage: $0 TOOL..." >&2; exit 2; }
for t in "$@"; do build "$t"; done
