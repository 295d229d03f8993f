package request

import (
	"math"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

// NewResume is the Resume a person creates to release step in namespace ns (the plugin and the UI create
// the same object, with the person's own credentials). A positive deadline becomes its
// activeDeadlineSeconds: a Resume nobody waits for any more should not release the step later by surprise.
func NewResume(ns string, step Step, deadline time.Duration) *v1alpha1.Resume {
	res := &v1alpha1.Resume{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{GenerateName: GenerateName(step.Workflow), Namespace: ns},
		Spec: v1alpha1.ResumeSpec{
			WorkflowID: step.Workflow, TemplateName: step.Template, NodeID: step.NodeID, NodeName: step.NodeName,
			Container: step.Container, Stage: step.Stage,
		},
	}
	if deadline > 0 {
		res.Spec.ActiveDeadlineSeconds = ptr.To(int64(math.Ceil(deadline.Seconds())))
	}
	return res
}

// GenerateName is the prefix of a new Resume's name: the workflow's, cut to leave room for the suffix.
func GenerateName(workflow string) string {
	const maxPrefix = 58
	if len(workflow) > maxPrefix {
		workflow = strings.TrimRight(workflow[:maxPrefix], "-.")
	}
	return workflow + "-"
}
