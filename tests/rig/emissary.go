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
// terminates too and the pod Succeeds.
func (r *Rig) onMarker(ns, pod, container, stage string) {
	if !r.kubelet.emissary(ns, pod) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(r.kubelet.ctx, 30*time.Second)
		defer cancel()
		if err := r.emulateEmissary(ctx, ns, pod, container, stage); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "rig: emissary emulation for %s/%s container %s (%s): %v\n", ns, pod, container, stage, err)
		}
	}()
}

func (r *Rig) emulateEmissary(ctx context.Context, ns, name, container, stage string) error {
	pods := r.client.CoreV1().Pods(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
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
			return nil // not paused at this stage: the marker changes nothing
		}
		for _, s := range []string{"before", "after"} {
			if debugPause(spec, s) && !r.kubelet.HasFile(ns, name, container, fmt.Sprintf("%s/ctr/%s/%s", MarkerDir, container, s)) {
				return nil // still paused at the other stage
			}
		}
		now := metav1.Now()
		if !terminate(pod, container, now) {
			return nil
		}
		done := true
		for _, c := range pod.Spec.Containers {
			if c.Name != WaitContainerName && !terminated(pod, c.Name) {
				done = false
			}
		}
		if done {
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
}

func debugPause(c *corev1.Container, stage string) bool {
	want := "ARGO_DEBUG_PAUSE_" + strings.ToUpper(stage)
	for _, e := range c.Env {
		if e.Name == want {
			return e.Value == "true"
		}
	}
	return false
}

// terminate marks a running container Completed; it reports whether anything changed.
func terminate(pod *corev1.Pod, container string, now metav1.Time) bool {
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
			ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
		}}
		cs.Ready = false
		f := false
		cs.Started = &f
		return true
	}
	return false
}

func terminated(pod *corev1.Pod, container string) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Terminated != nil
		}
	}
	return false
}
