package rig

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// WaitContainerName is the Argo sidecar that ends after every other container has.
const WaitContainerName = "wait"

// onMarker emulates Argo's emissary (argoexec emissary): a container with ARGO_DEBUG_PAUSE_BEFORE or
// ARGO_DEBUG_PAUSE_AFTER set to exactly "true" waits for /var/run/argo/ctr/<name>/<stage> of every
// such stage; once all are there it exits 0. When every container but wait has terminated, wait
// terminates too and the pod Succeeds; in a namespace a real workflow-controller runs, what Argo's
// wait container does then is runArgoPod's (it reacts to the container's end).
// Every marker ends in one EmissaryEvent (Kubelet.EmissaryEvents), recorded once the emulation is done
// with it, so a test can wait for the emulation's decision instead of sleeping.
func (r *Rig) onMarker(ns, pod, container, stage string) {
	ev := EmissaryEvent{Namespace: ns, Pod: pod, Container: container, Stage: stage}
	if !r.kubelet.emissary(ns, pod) {
		ev.Outcome = EmissaryOff
		r.kubelet.recordEmissary(ev)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(r.kubelet.ctx, 30*time.Second)
		defer cancel()
		outcome, err := r.emulateEmissary(ctx, ns, pod, container, stage)
		if err != nil {
			outcome = "error: " + err.Error()
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "rig: emissary emulation for %s/%s container %s (%s): %v\n", ns, pod, container, stage, err)
			}
		}
		ev.Outcome = outcome
		r.kubelet.recordEmissary(ev)
	}()
}

// What the emissary emulation did about a marker (EmissaryEvent.Outcome); an error is "error: ...".
const (
	// EmissaryOff: the emulation is off for the pod (Kubelet.SetEmissary).
	EmissaryOff = "emulation off"
	// EmissaryNotPaused: the container does not pause at the marker's stage (its env is missing or not
	// exactly "true"), so the marker changes nothing.
	EmissaryNotPaused = "not paused at this stage"
	// EmissaryStillPaused: the container also pauses at the other stage, whose marker is missing.
	EmissaryStillPaused = "still paused at the other stage"
	// EmissaryReleased: the container ended (Completed), and the pod Succeeded if it was the last one.
	EmissaryReleased = "released"
	// EmissaryAlreadyEnded: the container had ended before.
	EmissaryAlreadyEnded = "container had ended"
)

// EmissaryEvent is the emissary emulation's decision about one marker an exec created.
type EmissaryEvent struct {
	Namespace, Pod, Container, Stage string
	Outcome                          string
}

func (r *Rig) emulateEmissary(ctx context.Context, ns, name, container, stage string) (string, error) {
	pods := r.client.CoreV1().Pods(ns)
	var outcome string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var spec *corev1.Container
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == container {
				spec = &pod.Spec.Containers[i]
			}
		}
		if spec == nil || !debugPause(spec, stage) {
			outcome = EmissaryNotPaused
			return nil
		}
		for _, s := range []string{"before", "after"} {
			if debugPause(spec, s) && !r.kubelet.HasFile(ns, name, container, fmt.Sprintf("%s/ctr/%s/%s", MarkerDir, container, s)) {
				outcome = EmissaryStillPaused
				return nil
			}
		}
		now := metav1.Now()
		if !terminate(pod, container, now) {
			outcome = EmissaryAlreadyEnded
			return nil
		}
		outcome = EmissaryReleased
		done := true
		for _, c := range pod.Spec.Containers {
			if c.Name != WaitContainerName && !Terminated(pod, c.Name) {
				done = false
			}
		}
		if done && !r.kubelet.argoRuns(ns) {
			terminate(pod, WaitContainerName, now)
			pod.Status.Phase = corev1.PodSucceeded
			for i := range pod.Status.Conditions {
				if c := &pod.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
					c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "PodCompleted", now
				}
			}
		}
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	return outcome, err
}

// debugPause reports whether the emissary pauses container c at stage: the env variable, resolved as
// Kubernetes does (the last of duplicate entries wins), is exactly "true".
func debugPause(c *corev1.Container, stage string) bool {
	v := lastEnv(c, "ARGO_DEBUG_PAUSE_"+strings.ToUpper(stage))
	return v == "true"
}

// terminate marks a running container Completed; it reports whether anything changed.
func terminate(pod *corev1.Pod, container string, now metav1.Time) bool {
	return terminateWith(pod, container, 0, "Completed", now)
}

// terminateWith marks a running container terminated with code and reason; it reports whether anything
// changed.
func terminateWith(pod *corev1.Pod, container string, code int32, reason string, now metav1.Time) bool {
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name != container || cs.State.Terminated != nil {
			continue
		}
		started := now
		if cs.State.Running != nil {
			started = cs.State.Running.StartedAt
		}
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
		}}
		cs.Ready = false
		f := false
		cs.Started = &f
		return true
	}
	return false
}

// Terminated reports whether container of pod has terminated.
func Terminated(pod *corev1.Pod, container string) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Terminated != nil
		}
	}
	return false
}
