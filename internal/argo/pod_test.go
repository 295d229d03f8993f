package argo

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDisplayName(t *testing.T) {
	for name, want := range map[string]string{
		"hello-world[0].pause":          "pause",
		"loop[0].item(1:b)":             "item(1:b)",
		"loop[0].item(1:a.b)":           "item(1:a.b)",
		"dag.task":                      "task",
		"wf[0].outer[1].inner(0:{x.y})": "inner(0:{x.y})",
		"single":                        "single",
	} {
		if got := DisplayName(name); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestPodTemplate(t *testing.T) {
	pod := func(name, wf, node string, init ...corev1.Container) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelWorkflow: wf}, Annotations: map[string]string{AnnotationNodeName: node}},
			Spec:       corev1.PodSpec{InitContainers: init},
		}
	}
	// FNV-1a-32("hello-world[0].pause") = 4183098892.
	if got := PodTemplate(pod("hello-world-pause-4183098892", "hello-world", "hello-world[0].pause")); got != "pause" {
		t.Errorf("v2 name: %q, want pause", got)
	}
	if got := PodTemplate(pod("hello-world-my-tmpl-4183098892", "hello-world", "hello-world[0].pause")); got != "my-tmpl" {
		t.Errorf("v2 name with a dash in the template: %q, want my-tmpl", got)
	}
	init := corev1.Container{Name: ContainerInit, Env: []corev1.EnvVar{{Name: EnvTemplate, Value: `{"name":"from-env","container":{}}`}}}
	if got := PodTemplate(pod("hello-world-4183098892", "hello-world", "hello-world[0].pause", init)); got != "from-env" {
		t.Errorf("v1 name with ARGO_TEMPLATE: %q, want from-env", got)
	}
	if got := PodTemplate(pod("hello-world-4183098892", "hello-world", "hello-world[0].pause")); got != "" {
		t.Errorf("v1 name alone: %q, want none", got)
	}
}

func TestWorkflowController(t *testing.T) {
	yes := true
	pod := func(refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelWorkflow: "wf"}, OwnerReferences: refs}}
	}
	wf := metav1.OwnerReference{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Name: "wf", UID: "u", Controller: &yes}
	if WorkflowController(pod(wf)) == nil {
		t.Error("a pod its Workflow controls")
	}
	other := wf
	other.Name = "other"
	notController := wf
	notController.Controller = nil
	rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "wf", UID: "u", Controller: &yes}
	for name, p := range map[string]*corev1.Pod{"no owner": pod(), "another workflow than the label": pod(other), "owner, not controller": pod(notController), "a ReplicaSet": pod(rs)} {
		if WorkflowController(p) != nil {
			t.Errorf("%s: taken as a workflow pod", name)
		}
	}
}
