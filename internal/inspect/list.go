package inspect

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

var workflowsResource = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}

// Paused is one debug-paused container, as `kubectl resume list` and the UI show it.
type Paused struct {
	Namespace string `json:"namespace"`
	Workflow  string `json:"workflow"`
	// Node is the node's display name; NodeName its full name and NodeID its id.
	Node     string `json:"node"`
	NodeName string `json:"nodeName"`
	NodeID   string `json:"nodeID"`
	Template string `json:"template,omitempty"`
	Pod      string `json:"pod"`
	// Container is paused at Stage: before, after, or before,after (a release must then name the stage).
	Container string `json:"container"`
	Stage     string `json:"stage"`
	// Since is when the container started running, which is when a pause before its command began.
	Since metav1.Time `json:"since"`
	// Resume is the Resume acting on it (not final, and selecting it), if any.
	Resume string `json:"resume,omitempty"`
}

// PausedList is the structured output of `kubectl resume list`.
type PausedList struct {
	Items []Paused `json:"items"`
}

// ListPaused returns the debug-paused containers of the Workflows in namespace ns (every namespace if
// empty): one label-selected LIST of pods that Argo has not finished with, one LIST of Resumes, to leave
// out what a Resume released and name the one acting on a container, and one metadata-only LIST of
// Workflows, to leave out pods of an earlier run. Without the right to list Resumes or Workflows, the pods
// alone decide.
func ListPaused(ctx context.Context, kube kubernetes.Interface, rc versioned.Interface, meta metadata.Interface, ns string) ([]Paused, error) {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.SelectorActivePods})
	if err != nil {
		return nil, fmt.Errorf("list workflow pods%s: %w", inNamespace(ns), err)
	}
	// The Workflows' names and uids, to leave out the pods of an earlier run of a Workflow (deleted and
	// submitted again; the garbage collector is removing them), which the server never releases.
	var runs map[types.UID]bool
	if meta != nil {
		list, err := meta.Resource(workflowsResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("list Workflows%s: %w", inNamespace(ns), err)
		default:
			runs = map[types.UID]bool{}
			for _, wf := range list.Items {
				runs[wf.UID] = true
			}
		}
	}
	var resumes []v1alpha1.Resume
	if rc != nil {
		list, err := rc.ArgocontrollerV1alpha1().Resumes(ns).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("list Resumes%s: %w", inNamespace(ns), err)
		default:
			resumes = list.Items
		}
	}
	var out []Paused
	for i := range pods.Items {
		pod := &pods.Items[i]
		owner := argo.WorkflowController(pod)
		if owner == nil || (runs != nil && !runs[owner.UID]) {
			continue
		}
		nodeName := pod.Annotations[argo.AnnotationNodeName]
		for _, c := range lookup.PausedContainers(pod) {
			var stages []string
			for _, s := range c.Stages {
				if !released(resumes, pod, string(owner.UID), c.Container, s) {
					stages = append(stages, string(s))
				}
			}
			if len(stages) == 0 {
				continue
			}
			p := Paused{
				Namespace: pod.Namespace,
				Workflow:  owner.Name,
				Node:      argo.DisplayName(nodeName),
				NodeName:  nodeName,
				NodeID:    pod.Annotations[argo.AnnotationNodeID],
				Template:  argo.PodTemplate(pod),
				Pod:       pod.Name,
				Container: c.Container,
				Stage:     strings.Join(stages, ","),
				Since:     metav1.NewTime(c.Running),
			}
			p.Resume = actingOn(resumes, p, string(owner.UID))
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Paused) int {
		return strings.Compare(a.Namespace+"/"+a.Workflow+"/"+a.Pod+"/"+a.Container, b.Namespace+"/"+b.Workflow+"/"+b.Pod+"/"+b.Container)
	})
	return out, nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return " in every namespace"
	}
	return " in namespace " + ns
}

// released reports whether a Resume bound to this run of the workflow released the container's stage.
func released(resumes []v1alpha1.Resume, pod *corev1.Pod, runUID, container string, stage v1alpha1.Stage) bool {
	for _, r := range resumes {
		if r.Namespace != pod.Namespace || r.Status.Workflow == nil || r.Status.Workflow.UID != runUID {
			continue
		}
		for _, t := range r.Status.Released {
			if t.Pod == pod.Name && t.Container == container && t.Stage == stage {
				return true
			}
		}
	}
	return false
}

// actingOn names the Resumes, not final, whose spec selects the container (oldest first).
func actingOn(resumes []v1alpha1.Resume, p Paused, runUID string) string {
	var names []string
	for _, r := range resumes {
		s := r.Spec
		switch {
		case r.Namespace != p.Namespace || r.Status.Phase.Final() || s.WorkflowID != p.Workflow:
		case r.Status.Workflow != nil && r.Status.Workflow.UID != runUID:
		case s.TemplateName != "" && s.TemplateName != p.Template:
		case s.NodeID != "" && s.NodeID != p.NodeID:
		case s.NodeName != "" && s.NodeName != p.NodeName && s.NodeName != p.Node:
		case s.Container != "" && s.Container != p.Container:
		case s.Stage != "" && !slices.Contains(strings.Split(p.Stage, ","), string(s.Stage)):
		default:
			names = append(names, r.Name)
		}
	}
	return strings.Join(names, ",")
}
