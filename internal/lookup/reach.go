package lookup

import (
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/argocontroller/resume-trigger/internal/argo"
)

// What can still come: a Resume may be made long before its step runs, so a selector that matches nothing
// yet is only final when the Workflow can never make such a node.

// finished reports whether a node is done for good. It judges by the phase alone: Argo's own
// NodeStatus.Fulfilled also calls a daemoned node done once it is not Pending, which is exactly a daemon
// step held at its debug pause (Running, ready, daemoned).
func finished(phase wfv1.NodePhase) bool {
	switch phase {
	case wfv1.NodeSucceeded, wfv1.NodeFailed, wfv1.NodeError, wfv1.NodeSkipped, wfv1.NodeOmitted:
		return true
	case wfv1.NodePending, wfv1.NodeRunning:
	}
	// Not done, like a phase this version does not know.
	return false
}

// workflowFinished reports whether the workflow ended: it makes no new node after that.
func workflowFinished(phase wfv1.WorkflowPhase) bool {
	switch phase {
	case wfv1.WorkflowSucceeded, wfv1.WorkflowFailed, wfv1.WorkflowError:
		return true
	case wfv1.WorkflowUnknown, wfv1.WorkflowPending, wfv1.WorkflowRunning:
	}
	// Not ended, like a phase this version does not know.
	return false
}

// mayRunTemplate reports whether the workflow has, or may yet learn, a template of that name. Only the
// Workflow object is read (no WorkflowTemplate: the server has no right to, and one may change before the
// step runs), so a name it does not hold is ruled out only when everything the workflow can run is in it.
func mayRunTemplate(wf *argo.Workflow, name string) bool {
	return definesTemplate(wf, name) || !templatesKnown(wf)
}

// templatesKnown reports whether the Workflow object holds every template its run can reach: Argo has
// taken it up (a workflowTemplateRef's spec and the controller's workflow defaults are merged in by then),
// and no template calls into a WorkflowTemplate, whose templates Argo stores only when the run reaches the
// call.
func templatesKnown(wf *argo.Workflow) bool {
	if wf.Status.Phase == wfv1.WorkflowUnknown {
		return false
	}
	if wf.Spec.WorkflowTemplateRef != nil && wf.Status.StoredWorkflowSpec == nil {
		return false
	}
	for _, spec := range []*argo.WorkflowSpec{&wf.Spec, wf.Status.StoredWorkflowSpec} {
		if spec == nil {
			continue
		}
		if spec.HooksCallOut {
			return false
		}
		for _, t := range spec.Templates {
			if t.CallsOut {
				return false
			}
		}
	}
	for _, t := range wf.Status.StoredTemplates {
		// A stored template came from a WorkflowTemplate: the names its steps call are that
		// WorkflowTemplate's templates, which are stored only once reached.
		if t.Calls {
			return false
		}
	}
	return true
}
