package argo

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SelectorActivePods selects the pods of every Workflow that Argo has not finished with.
const SelectorActivePods = LabelWorkflow + "," + LabelCompleted + "!=true"

// EnvTemplate is the variable through which Argo v3 hands its init container the node's template, as JSON.
const EnvTemplate = "ARGO_TEMPLATE"

// WorkflowController returns the Workflow that controls pod, as its controller reference says, when it is
// an Argo Workflow of the name the pod's workflow label gives; nil otherwise.
func WorkflowController(pod *corev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "Workflow" || !strings.HasPrefix(ref.APIVersion, "argoproj.io/") || ref.Name != pod.Labels[LabelWorkflow] {
		return nil
	}
	return ref
}

// DisplayName is the last part of a node's full name, which Argo shows as its display name: the step or
// task name, with its loop item ("hello-world[0].pause" gives "pause", "loop[0].item(1:a.b)" gives
// "item(1:a.b)"). A dot inside brackets or parentheses is part of the name.
func DisplayName(nodeName string) string {
	depth := 0
	for i := len(nodeName) - 1; i >= 0; i-- {
		switch nodeName[i] {
		case ')', ']':
			depth++
		case '(', '[':
			depth--
		case '.':
			if depth == 0 {
				return nodeName[i+1:]
			}
		}
	}
	return nodeName
}

// PodTemplate tells the template a workflow pod runs, from the pod alone: from its v2 name (the workflow
// name, the template and the hash of the node name), else from the template Argo v3 hands its init
// container. It is empty when neither says.
func PodTemplate(pod *corev1.Pod) string {
	wf, node := pod.Labels[LabelWorkflow], pod.Annotations[AnnotationNodeName]
	if wf != "" && node != "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(node))
		suffix := "-" + strconv.FormatUint(uint64(h.Sum32()), 10)
		if rest, ok := strings.CutPrefix(pod.Name, wf+"-"); ok {
			if t, ok := strings.CutSuffix(rest, suffix); ok && t != "" {
				return t
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if v, _ := EnvValue(c, EnvTemplate); v != "" {
			var t struct {
				Name string `json:"name"`
			}
			if json.Unmarshal([]byte(v), &t) == nil && t.Name != "" {
				return t.Name
			}
		}
	}
	return ""
}
