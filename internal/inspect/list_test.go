package inspect

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

func TestActingOnAndReleased(t *testing.T) {
	p := Paused{Namespace: "argo", Workflow: "wf", Node: "pause", NodeName: "wf[0].pause", NodeID: "wf-1", Template: "pause", Pod: "wf-pause-1", Container: "main", Stage: "before,after"}
	r := func(name string, spec v1alpha1.ResumeSpec, phase v1alpha1.Phase, uid string) v1alpha1.Resume {
		res := v1alpha1.Resume{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argo"}, Spec: spec, Status: v1alpha1.ResumeStatus{Phase: phase}}
		if uid != "" {
			res.Status.Workflow = &v1alpha1.BoundWorkflow{Name: "wf", UID: uid}
		}
		return res
	}
	resumes := []v1alpha1.Resume{
		r("by-template", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, "", ""),
		r("by-display-name", v1alpha1.ResumeSpec{WorkflowID: "wf", NodeName: "pause", Stage: v1alpha1.StageAfter}, v1alpha1.PhasePending, "run"),
		r("done", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhaseSucceeded, "run"),
		r("other-run", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhasePending, "earlier"),
		r("other-template", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "x"}, "", ""),
		r("other-container", v1alpha1.ResumeSpec{WorkflowID: "wf", NodeID: "wf-1", Container: "side"}, "", ""),
	}
	if got := actingOn(resumes, p, "run"); got != "by-template,by-display-name" {
		t.Errorf("acting on it: %q", got)
	}
	done := r("released", v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "pause"}, v1alpha1.PhaseSucceeded, "run")
	done.Status.Released = []v1alpha1.ReleasedTarget{{Pod: "wf-pause-1", Container: "main", Stage: v1alpha1.StageBefore}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "wf-pause-1", Namespace: "argo"}}
	if !released([]v1alpha1.Resume{done}, pod, "run", "main", v1alpha1.StageBefore) || released([]v1alpha1.Resume{done}, pod, "run", "main", v1alpha1.StageAfter) || released([]v1alpha1.Resume{done}, pod, "another-run", "main", v1alpha1.StageBefore) {
		t.Error("released: wrong stage, run or container")
	}
}
