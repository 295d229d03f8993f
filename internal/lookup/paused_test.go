package lookup_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

func TestPausedContainers(t *testing.T) {
	wf := fixture.Workflow(ns, "hello-world", fixture.PodNode("hello-world", "hello-world[0].pause", "pause", "pause"))
	node := wf.Status.Nodes[helloNode]
	noMount := fixture.Container("sidecar", fixture.PauseAfter)
	noMount.VolumeMounts = nil
	viaSecret := fixture.Container("secret", corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_AFTER", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}})
	running := func() *corev1.Pod {
		return fixture.Pod(wf, node, helloPod,
			fixture.Container("main", fixture.PauseAfter),
			fixture.Container("both", fixture.PauseBefore, fixture.PauseAfter),
			fixture.Container("plain"),
			fixture.Container("lower", corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_BEFORE", Value: "True"}),
			noMount, viaSecret)
	}
	summary := func(ps []lookup.PausedContainer) []string {
		var out []string
		for _, p := range ps {
			s := p.Container
			for _, st := range p.Stages {
				s += " " + string(st)
			}
			if p.Running.IsZero() {
				s += " (no start time)"
			}
			out = append(out, s)
		}
		return out
	}
	if got, want := summary(lookup.PausedContainers(running())), []string{"main after", "both before after"}; !slices.Equal(got, want) {
		t.Errorf("running pod: %v, want %v", got, want)
	}

	pending := running()
	pending.Status.Phase = corev1.PodPending
	ended := running()
	ended.Status.Phase = corev1.PodSucceeded
	deleting := running()
	deleting.DeletionTimestamp = &metav1.Time{}
	oneDone := running()
	for i := range oneDone.Status.ContainerStatuses {
		if cs := &oneDone.Status.ContainerStatuses[i]; cs.Name == "main" {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
		}
	}
	for name, pod := range map[string]*corev1.Pod{"pending": pending, "succeeded": ended, "being deleted": deleting} {
		if got := lookup.PausedContainers(pod); len(got) != 0 {
			t.Errorf("%s pod: %v, want nothing paused", name, summary(got))
		}
	}
	if got, want := summary(lookup.PausedContainers(oneDone)), []string{"both before after"}; !slices.Equal(got, want) {
		t.Errorf("main terminated: %v, want %v", got, want)
	}
}
