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
mutate "no bound on the number of nodes (lean decoding)" internal/argo/decode.go \
	's/if entries\+\+; entries > MaxNodes \{/if entries++; false {/' . '^TestDecodeNodesBounds$' ./internal/argo
mutate "no bound on the children of one node" internal/argo/decode.go \
	's/if len\(n\.Children\) > MaxNodes \{/if false {/' . '^TestDecodeNodesBounds$' ./internal/argo
mutate "no bound on the children of all nodes" internal/argo/decode.go \
	's/children > MaxChildren \{/false {/' . '^TestDecodeNodesBounds$' ./internal/argo
mutate "no bound on one JSON value (a node, a key, a string)" internal/argo/decode.go \
	's/s\.w\.stop, s\.w\.limit = s\.dec\.InputOffset\(\)\+limit, limit/s.w.stop, s.w.limit = 1<<62, limit/' . '^TestDecodeNodesBounds$' ./internal/argo
mutate "a pod LIST keeps pods of nodes not picked" internal/lookup/lookup.go \
	's/if node = byName\[pod\.Name\]; node == "" \{\n(\t+)continue/if node = byName[pod.Name]; node == "" {\n$1pods = append(pods, *pod)\n$1continue/' . '^TestListPodsKeepsOnlyThePickedNodesPods$' ./internal/lookup
mutate "no bound on the pods claiming one node" internal/lookup/lookup.go \
	's/claims\[node\] > maxClaims/false/' . '^TestPodListBounds$' ./internal/lookup
mutate "a var-run-argo mount with a subPath accepted" internal/argo/argo.go \
	's/ && m\.SubPath == ""//' . '' ./internal/argo ./internal/release
mutate "request keys matched regardless of case (Parse)" internal/request/request.go \
	's/if !slices\.Contains\(Keys, k\) \{/if false \&\& !slices.Contains(Keys, k) {/' . '' ./internal/request
mutate "containerSet node not required to be named under its pod node" internal/lookup/lookup.go \
	's/ \|\| !strings\.HasPrefix\(n\.Name, podNode\.Name\+"\."\)//' . '' ./internal/lookup
mutate "a Retry's attempts not required to be named after it" internal/lookup/lookup.go \
	's/ && strings\.HasPrefix\(c\.Name, retry\.Name\+"\("\)//' . '' ./internal/lookup
mutate "a release announced in status.releasing never confirmed" internal/resume/releasing.go \
	's/\t\tif listed\[key\] \{/\t\tif true || listed[key] {/' . '^(TestALostOutcomeIsNotAFailure|TestReleasingIsConfirmed)$' ./internal/resume
mutate "a release not announced before its exec" internal/resume/service.go \
	's/\t\tif mark != nil \{/\t\tif false \&\& mark != nil {/' . '^TestALostOutcomeIsNotAFailure$' ./internal/resume
mutate "an exec cut after the touch taken for a failure" internal/release/release.go \
	's/if errors\.As\(err, &ended\) \{/if false \&\& errors.As(err, \&ended) {/' . '' ./internal/release ./internal/resume
mutate "a touch that answered non-zero left announced as releasing" internal/resume/service.go \
	's/if !retry \|\| errors\.As\(err, &answered\) \{/if !retry || (false \&\& errors.As(err, \&answered)) {/' . '^TestAnnouncementAfterAFailedExec$' ./internal/resume
mutate "status.released unbounded" internal/resume/releasing.go \
	's/if len\(out\) > maxReleased \{/if false \&\& len(out) > maxReleased {/' . '^(TestReleasedIsBounded|TestAddReleased)$' ./internal/resume
mutate "a Resume request's workflow not prefetched (Parse)" internal/request/request.go \
	's/\t\t\tr\.WorkflowHint = r\.Step\.Workflow/\t\t\tr.WorkflowHint = ""/' . '^TestResumeWorkflowIsPrefetched$' ./internal/resume ./internal/request
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
mutate "a step's templateRef not seen as calling out" internal/argo/calls.go \
	's/if s\.TemplateRef != nil \|\| /if /' . '' ./internal/lookup
mutate "the exec's exit code not passed through (API executor)" internal/release/exec.go \
	's/Code: exit\.ExitStatus\(\)/Code: 1/' tests '^TestExecFailures$' ./internal/rig
mutate "revisits not in turn per namespace (one drains before the next)" internal/resume/revisitqueue.go \
	's/\t\tq\.turn = append\(q\.turn, sp\)\n\t\} else \{/\t\tq.turn = append([]*space{sp}, q.turn...)\n\t} else {/' . '^TestRevisitQueue|^TestRequeue' ./internal/resume
mutate "no per-namespace bound on the Resumes held for revisits" internal/resume/revisitqueue.go \
	's/ \|\| \(sp != nil && sp\.held >= q\.maxPerNS\)//' . '^TestRevisitQueue|^TestRequeue' ./internal/resume

echo "$caught caught, $survived survived"
[ "$survived" -eq 0 ]
