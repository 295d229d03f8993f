#!/usr/bin/env bash
# Mutation check of the guards a refactor could drop unnoticed: each mutation below deletes or weakens one
# guard (a single edit, checked to apply), runs the tests that should catch it, and restores the file. A
# mutation the tests still pass "survives": the guard has no test. Exits 1 if any survives.
#
# Add a mutation when a guard is added. Needs a clean internal/ (the script restores files with git); the
# last one needs the test control plane (tools built by hack/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git diff --quiet -- internal || ! git diff --cached --quiet -- internal; then
	echo "mutation.sh: commit or stash the changes under internal/ first (it restores files with git)" >&2
	exit 2
fi
trap 'git checkout -q -- internal' EXIT

caught=0
survived=0
# mutate WHAT FILE PERL_EXPR DIR RUN PACKAGES...: apply PERL_EXPR to FILE and run the tests matching RUN
# (all if empty) of PACKAGES in the module at DIR. A mutant that does not compile is an error, not a catch.
mutate() {
	local what=$1 file=$2 expr=$3 dir=$4 run=${5:-.}
	shift 5
	perl -0pi -e "$expr" "$file"
	if git diff --quiet -- "$file"; then
		echo "mutation.sh: the mutation \"$what\" no longer applies to $file: update it" >&2
		exit 2
	fi
	if ! (cd "$dir" && go vet "$@" >/dev/null); then
		echo "mutation.sh: the mutation \"$what\" does not compile: update it" >&2
		exit 2
	fi
	local start=$SECONDS result
	if (cd "$dir" && go test -count=1 -run "$run" "$@" >/dev/null 2>&1); then
		result=SURVIVED
		survived=$((survived + 1))
	else
		result=caught
		caught=$((caught + 1))
	fi
	git checkout -q -- "$file"
	printf '%-8s %-62s %s (%d s)\n' "$result" "$what" "$file" $((SECONDS - start))
}

mutate "no decompressed-size bound on status.compressedNodes" internal/lookup/nodes.go \
	's/N: maxNodesSize \+ 1\}/N: 1 << 62}/' . '' ./internal/lookup
mutate "a var-run-argo mount with a subPath accepted" internal/argo/argo.go \
	's/ && m\.SubPath == ""//' . '' ./internal/argo ./internal/release
mutate "request keys matched regardless of case (Parse)" internal/request/request.go \
	's/if !slices\.Contains\(Keys, k\) \{/if false \&\& !slices.Contains(Keys, k) {/' . '' ./internal/request
mutate "containerSet node not required to be named under its pod node" internal/lookup/lookup.go \
	's/ \|\| !strings\.HasPrefix\(n\.Name, podNode\.Name\+"\."\)//' . '' ./internal/lookup
mutate "a Retry's attempts not required to be named after it" internal/lookup/lookup.go \
	's/ && strings\.HasPrefix\(c\.Name, retry\.Name\+"\("\)//' . '' ./internal/lookup
mutate "a daemoned node judged finished by Argo's Fulfilled (containersOf)" internal/lookup/containers.go \
	's/if finished\(p\.node\.Phase\) \{/if p.node.Fulfilled() {/' . '' ./internal/lookup
mutate "a Retry's attempts judged finished by Argo's Fulfilled" internal/lookup/lookup.go \
	's/ok && \(!finished\(last\.Phase\) \|\| finished\(n\.Phase\)\)/ok \&\& (!last.Fulfilled() || n.Fulfilled())/' . '' ./internal/lookup
mutate "a node name or id not reached yet is final" internal/lookup/lookup.go \
	's/case step\.Template != "" && !mayRunTemplate/case step.Template == "" || !mayRunTemplate/' . '' ./internal/lookup
mutate "no node in a finished workflow is waited for" internal/lookup/lookup.go \
	's/case workflowFinished\(wf\.Status\.Phase\):/case false \&\& workflowFinished(wf.Status.Phase):/' . '' ./internal/lookup
mutate "a Workflow the controller has not taken up counts as complete" internal/lookup/reach.go \
	's/if wf\.Status\.Phase == wfv1\.WorkflowUnknown \{\n\t\treturn false/if wf.Status.Phase == wfv1.WorkflowUnknown {\n\t\treturn true/' . '' ./internal/lookup
mutate "a step's templateRef not seen as calling out" internal/lookup/reach.go \
	's/if s\.TemplateRef != nil \|\| /if /' . '' ./internal/lookup
mutate "the exec's exit code not passed through (API executor)" internal/release/exec.go \
	's/Code: exit\.ExitStatus\(\)/Code: 1/' tests '^TestExecFailures$' ./internal/rig

echo "$caught caught, $survived survived"
[ "$survived" -eq 0 ]
