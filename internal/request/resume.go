package request

import (
	"math"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

// NewResume is the Resume a person creates to release step in namespace ns (the plugin and the UI create
// the same object, with the person's own credentials). A positive deadline becomes its
// activeDeadlineSeconds: a Resume nobody waits for any more should not release the step later by surprise.
func NewResume(ns string, step Step, deadline time.Duration) *unstructured.Unstructured {
	spec := map[string]any{"Workflow-ID": step.Workflow}
	for k, v := range map[string]string{"TemplateName": step.Template, "nodeID": step.NodeID, "nodeName": step.NodeName, "container": step.Container, "stage": string(step.Stage)} {
		if v != "" {
			spec[k] = v
		}
	}
	if deadline > 0 {
		spec["activeDeadlineSeconds"] = int64(math.Ceil(deadline.Seconds()))
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"generateName": GenerateName(step.Workflow), "namespace": ns},
		"spec":       spec,
	}}
}

// GenerateName is the prefix of a new Resume's name: the workflow's, cut to leave room for the suffix.
func GenerateName(workflow string) string {
	const maxPrefix = 58
	if len(workflow) > maxPrefix {
		workflow = strings.TrimRight(workflow[:maxPrefix], "-.")
	}
	return workflow + "-"
}
