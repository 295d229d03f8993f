package lookup

import (
	"fmt"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

func pausedAt(c corev1.Container, stage v1alpha1.Stage) bool {
	if stage == v1alpha1.StageAfter {
		return argo.Pauses(c, argo.EnvPauseAfter)
	}
	return argo.Pauses(c, argo.EnvPauseBefore)
}

// stageOf decides which pause to release in a container: the requested one, else the only one its
// environment sets.
//
// A pause set indirectly (the variable from a Secret, ConfigMap or field, or any envFrom source) is not
// read, Secrets least of all: it is released only when the request names both the container and the
// stage, on the user's word; otherwise the error says to name them.
func stageOf(c corev1.Container, requested v1alpha1.Stage, containerNamed bool) (v1alpha1.Stage, error) {
	if requested != "" {
		switch {
		case pausedAt(c, requested):
			return requested, nil
		case argo.PausedIndirectly(c, envOf(requested)) && containerNamed:
			return requested, nil
		case argo.PausedIndirectly(c, envOf(requested)):
			return "", fault.Preconditionf("container %s may pause %s its command through valueFrom or envFrom, which resume-trigger does not read: name the container (container: %s) with the stage to release it", c.Name, requested, c.Name)
		}
		return "", fault.Preconditionf("container %s does not pause %s its command (%s is not \"true\" in the pod spec)", c.Name, requested, envOf(requested))
	}
	before, after := pausedAt(c, v1alpha1.StageBefore), pausedAt(c, v1alpha1.StageAfter)
	switch {
	case before && after:
		return "", fault.Invalidf("container %s pauses both before and after its command: set stage to before or after", c.Name)
	case before:
		return v1alpha1.StageBefore, nil
	case after:
		return v1alpha1.StageAfter, nil
	}
	if argo.PausedIndirectly(c, argo.EnvPauseBefore) || argo.PausedIndirectly(c, argo.EnvPauseAfter) {
		return "", fault.Preconditionf("the pause of container %s is set indirectly (valueFrom or envFrom), which resume-trigger does not read: name the container and the stage to release it", c.Name)
	}
	return "", fault.Preconditionf("container %s is not debug-paused (neither %s nor %s is \"true\" in the pod spec)", c.Name, argo.EnvPauseBefore, argo.EnvPauseAfter)
}

func envOf(stage v1alpha1.Stage) string {
	if stage == v1alpha1.StageAfter {
		return argo.EnvPauseAfter
	}
	return argo.EnvPauseBefore
}

// containersOf returns the paused containers of a node's pod that the step asks for.
func containersOf(wf *argo.Workflow, p pickedNode, pod *corev1.Pod, step request.Step) ([]Target, []Skip) {
	skip := func(err error) []Skip { return []Skip{{Node: p.node.ID, Pod: pod.Name, Reason: err}} }
	if finished(p.node.Phase) {
		return nil, skip(fault.Preconditionf("node %s (pod %s) has finished (%s): nothing is paused", p.node.ID, pod.Name, p.node.Phase))
	}
	want := step.Container
	if p.container != "" {
		if want != "" && want != p.container {
			return nil, skip(fault.Invalidf("node %s is container %s of pod %s, but container %s was asked for", p.node.ID, p.container, pod.Name, want))
		}
		want = p.container
	}

	var users, sharing []string
	for _, c := range pod.Spec.Containers {
		if !argo.IsArgoContainer(c.Name) {
			users = append(users, c.Name)
			if argo.MountsVarRunArgo(c) {
				sharing = append(sharing, c.Name)
			}
		}
	}
	var candidates []corev1.Container
	for _, c := range pod.Spec.Containers {
		if argo.IsArgoContainer(c.Name) || (want != "" && c.Name != want) {
			continue
		}
		candidates = append(candidates, c)
	}
	if want != "" && len(candidates) == 0 {
		return nil, skip(fault.NotFoundf("pod %s has no container %s (its containers: %s)", pod.Name, want, strings.Join(users, ", ")))
	}

	var targets []Target
	var skips []Skip
	for _, c := range candidates {
		stage, err := stageOf(c, step.Stage, step.Container != "")
		if err != nil {
			err = fmt.Errorf("pod %s: %w", pod.Name, err)
			if want == "" && fault.KindOf(err) == fault.Precondition {
				// With no container named, containers without the pause are simply not part of the step's
				// release; say so only if nothing else is paused.
				skips = append(skips, Skip{Node: p.node.ID, Pod: pod.Name, Reason: err})
				continue
			}
			return nil, skip(err)
		}
		if !argo.MountsVarRunArgo(c) {
			// Argo mounts the volume into every container its emissary runs; one without it (injected by a
			// webhook, say) is not paused by Argo, and its marker could not be created from it anyway.
			skips = append(skips, Skip{Node: p.node.ID, Pod: pod.Name, Reason: fault.Preconditionf("pod %s: container %s does not mount %s at /var/run/argo, so Argo's emissary does not run it", pod.Name, c.Name, argo.VolumeVarRunArgo)})
			continue
		}
		if err := running(pod, c.Name, p.node); err != nil {
			skips = append(skips, Skip{Node: p.node.ID, Pod: pod.Name, Reason: err})
			continue
		}
		others := slices.DeleteFunc(slices.Clone(sharing), func(n string) bool { return n == c.Name })
		targets = append(targets, Target{
			Namespace: pod.Namespace,
			Workflow:  wf.Name,
			Node:      p.node.ID,
			NodeName:  p.node.Name,
			Pod:       pod.Name,
			PodUID:    pod.UID,
			Container: c.Name,
			Stage:     stage,
			Others:    others,
		})
	}
	return targets, skips
}

// running checks that the pod and the container are running: only then can an exec reach it. A pod or
// container that has not started yet may still get there (retry); one that has ended never will.
//
// A pod that failed, or is being deleted, while its node is still Pending or Running is one Argo replaces
// (v4's failedPodRestart deletes a pod that failed before its main container started, and creates it again
// under the same name): the node's next pod is waited for.
func running(pod *corev1.Pod, container string, node argo.Node) error {
	replaced := node.Phase == wfv1.NodePending || node.Phase == wfv1.NodeRunning
	if replaced && (pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil) {
		return fault.Transientf("pod %s is %s while node %s is %s: waiting for the pod Argo creates in its place", pod.Name, podState(pod), node.ID, node.Phase)
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		return containerRunning(pod, container)
	case corev1.PodPending, "":
		return fault.Transientf("pod %s is %s, not running yet", pod.Name, orUnknown(string(pod.Status.Phase)))
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
	}
	// Ended, like a phase this version does not know: nothing runs there.
	return fault.Preconditionf("pod %s has ended (%s): nothing is paused", pod.Name, pod.Status.Phase)
}

// containerRunning is running for a pod in phase Running: the pod must not be going away, and the
// container must run.
func containerRunning(pod *corev1.Pod, container string) error {
	if pod.DeletionTimestamp != nil {
		return fault.Preconditionf("pod %s is being deleted", pod.Name)
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name != container {
			continue
		}
		switch {
		case s.State.Running != nil:
			return nil
		case s.State.Terminated != nil:
			return fault.Preconditionf("container %s in pod %s has terminated (exit %d): its pause is over", container, pod.Name, s.State.Terminated.ExitCode)
		default:
			return fault.Transientf("container %s in pod %s is not running yet", container, pod.Name)
		}
	}
	return fault.Transientf("container %s in pod %s has no status yet", container, pod.Name)
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

func podState(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil {
		return "being deleted"
	}
	return string(pod.Status.Phase)
}
