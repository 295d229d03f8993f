package lookup

import (
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
)

// PausedContainer is a container of a workflow pod that is debug-paused now, by the rule Find applies
// before it releases one: a user container (not Argo's own) whose pod spec sets ARGO_DEBUG_PAUSE_BEFORE
// or ARGO_DEBUG_PAUSE_AFTER to exactly "true", that mounts /var/run/argo, in a running pod, and is
// running itself.
type PausedContainer struct {
	Container string
	// Stages are the pauses its environment asks for: one, or both (then a release must name the stage).
	Stages []v1alpha1.Stage
	// Running is when the container started running: the pause before its command began then; the
	// pause after it began when the command exited, which only the emissary knows.
	Running time.Time
}

// PausedContainers returns the debug-paused containers of pod, read from the pod alone (no exec, no
// logs). It does not check who controls the pod; Find also requires the Workflow as its controller.
func PausedContainers(pod *corev1.Pod) []PausedContainer {
	var out []PausedContainer
	for _, c := range pod.Spec.Containers {
		if argo.IsArgoContainer(c.Name) || !argo.MountsVarRunArgo(c) {
			continue
		}
		var stages []v1alpha1.Stage
		for _, s := range []v1alpha1.Stage{v1alpha1.StageBefore, v1alpha1.StageAfter} {
			if pausedAt(c, s) {
				stages = append(stages, s)
			}
		}
		if len(stages) == 0 {
			continue
		}
		// A running workflow node is what Find sees for a paused step: a pod that failed or is going
		// away is then not paused.
		if running(pod, c.Name, argo.Node{Phase: wfv1.NodeRunning}) != nil {
			continue
		}
		p := PausedContainer{Container: c.Name, Stages: stages}
		for _, s := range pod.Status.ContainerStatuses {
			if s.Name == c.Name && s.State.Running != nil {
				p.Running = s.State.Running.StartedAt.Time
			}
		}
		out = append(out, p)
	}
	return out
}
