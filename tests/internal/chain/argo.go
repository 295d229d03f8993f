package chain

import (
	"context"
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

// SubmitWorkflow creates a Workflow from its spec alone, as `argo submit` does; the controller makes the
// rest.
func (c *Chain) SubmitWorkflow(ctx context.Context, wf *wfv1.Workflow) (*wfv1.Workflow, error) {
	return c.submitWorkflowIn(ctx, c.Namespace, wf)
}

func (c *Chain) submitWorkflowIn(ctx context.Context, ns string, wf *wfv1.Workflow) (*wfv1.Workflow, error) {
	wf = wf.DeepCopy()
	wf.Namespace = ns
	created, err := c.workflows.ArgoprojV1alpha1().Workflows(ns).Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("submit workflow %s: %w", wf.Name, err)
	}
	return created, nil
}

// WaitPausedStep waits until the controller runs the Pod node of workflow whose display name is
// displayName, and its pod (found by Argo's node-id annotation) holds container at its debug pause at
// stage; it returns that step.
func (c *Chain) WaitPausedStep(ctx context.Context, workflow, displayName, container string, stage v1alpha1.Stage) (*Step, error) {
	return c.waitPausedStepIn(ctx, c.Namespace, workflow, displayName, container, stage)
}

func (c *Chain) waitPausedStepIn(ctx context.Context, ns, workflow, displayName, container string, stage v1alpha1.Stage) (*Step, error) {
	wf, err := c.Rig.WaitWorkflow(ctx, ns, workflow, func(wf *wfv1.Workflow) bool {
		n := wf.Status.Nodes.FindByDisplayName(displayName)
		return n != nil && n.Type == wfv1.NodeTypePod && n.Phase == wfv1.NodeRunning
	})
	if err != nil {
		return nil, err
	}
	node := wf.Status.Nodes.FindByDisplayName(displayName)
	var pod *corev1.Pod
	if _, err := c.Rig.WaitPods(ctx, ns, workflow, func(pods []corev1.Pod) bool {
		for i := range pods {
			if pods[i].Annotations[argoNodeID] == node.ID && c.Rig.Paused(&pods[i], container) {
				pod = &pods[i]
				return true
			}
		}
		return false
	}); err != nil {
		return nil, err
	}
	return &Step{Namespace: ns, Workflow: workflow, Template: argoTemplate(node), NodeID: node.ID, NodeName: node.Name,
		Pod: pod.Name, Container: container, Stage: stage, WorkflowUID: wf.UID}, nil
}

// Argo's pod metadata keys (argo-workflows workflow/common).
const (
	argoNodeID        = common.AnnotationKeyNodeID
	argoWorkflowLabel = common.LabelKeyWorkflow
)

func argoTemplate(n *wfv1.NodeStatus) string {
	if n.TemplateRef != nil {
		return n.TemplateRef.Template
	}
	return n.TemplateName
}

// PodName is the name Argo gives the step's pod (argo-workflows' own GeneratePodName, format v2).
func (s *Step) PodName() string {
	return argoutil.GeneratePodName(s.Workflow, s.NodeName, s.Template, s.NodeID, argoutil.PodNameV2)
}
