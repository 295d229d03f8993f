package rig

import (
	"context"
	"fmt"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
)

// Argo's pod metadata keys (argo-workflows workflow/common).
const (
	LabelWorkflow    = workflow.WorkflowFullName + "/workflow"
	AnnotationNodeID = workflow.WorkflowFullName + "/node-id"
)

func (r *Rig) registerNode(ctx context.Context) error {
	nodes := r.client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   NodeName,
		Labels: map[string]string{corev1.LabelHostname: NodeName, corev1.LabelOSStable: "linux"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	node.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		// Only an InternalIP: the API server's preferred address types then reach BindAddress.
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: r.opts.BindAddress}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(r.kubelet.Port())}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "rig test kubelet", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"},
	}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node status: %w", err)
	}
	return nil
}

// PodOption changes the status RunPod gives a pod.
type PodOption func(*corev1.Pod)

// Pending leaves the pod Pending with every container Waiting (ContainerCreating), as before the
// runtime started it.
func Pending() PodOption {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = conditions(corev1.ConditionFalse)
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
			cs.Ready, cs.Started, cs.ContainerID = false, ptr(false), ""
		}
	}
}

// ContainerWaiting leaves one container Waiting with reason (e.g. "ImagePullBackOff"); the pod stays
// Running but not Ready.
func ContainerWaiting(container, reason string) PodOption {
	return func(p *corev1.Pod) {
		p.Status.Conditions = conditions(corev1.ConditionFalse)
		for i := range p.Status.ContainerStatuses {
			if cs := &p.Status.ContainerStatuses[i]; cs.Name == container {
				cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
				cs.Ready, cs.Started, cs.ContainerID = false, ptr(false), ""
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func conditions(ready corev1.ConditionStatus) []corev1.PodCondition {
	now := metav1.Now()
	return []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
	}
}

// RunPod creates pod bound to the rig's node and sets its status as a kubelet would: Running, init
// containers Completed, every container running and ready (unless opts say otherwise). It returns
// the pod as stored.
func (r *Rig) RunPod(ctx context.Context, pod *corev1.Pod, opts ...PodOption) (*corev1.Pod, error) {
	pod = pod.DeepCopy()
	pod.Spec.NodeName = NodeName
	pods := r.client.CoreV1().Pods(pod.Namespace)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	created.Status = r.runningStatus(created)
	for _, o := range opts {
		o(created)
	}
	updated, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return updated, nil
}

// WaitPod waits until cond holds for the pod and returns it. cond sees every change of the pod (a watch),
// and the pod as stored every 100 ms besides: a condition may turn on what is not in the pod's object
// (Paused on Argo's executor: the emissary reaching its pause changes no field of the pod).
func (r *Rig) WaitPod(ctx context.Context, namespace, name string, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	polled := make(chan *corev1.Pod, 1)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p, err := r.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil && cond(p) {
				polled <- p
				cancel()
				return
			}
		}
	}()
	p, err := r.watchPod(ctx, namespace, name, cond)
	select {
	case p := <-polled:
		return p, nil
	default:
		return p, err
	}
}

func (r *Rig) watchPod(ctx context.Context, namespace, name string, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	pods := r.client.CoreV1().Pods(namespace)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
	var last *corev1.Pod
	_, err := toolswatch.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		state := "not found"
		if last != nil {
			state = fmt.Sprintf("phase %s, containers %s", last.Status.Phase, containerStates(last))
		}
		return nil, fmt.Errorf("pod %s/%s: condition not met (%s): %w", namespace, name, state, err)
	}
	return last, nil
}

// WaitPodPhase waits until the pod reaches phase.
func (r *Rig) WaitPodPhase(ctx context.Context, namespace, name string, phase corev1.PodPhase) (*corev1.Pod, error) {
	return r.WaitPod(ctx, namespace, name, func(p *corev1.Pod) bool { return p.Status.Phase == phase })
}

func containerStates(p *corev1.Pod) string {
	s := ""
	for _, cs := range p.Status.ContainerStatuses {
		state := "waiting"
		switch {
		case cs.State.Running != nil:
			state = "running"
		case cs.State.Terminated != nil:
			state = fmt.Sprintf("terminated(%d)", cs.State.Terminated.ExitCode)
		}
		s += cs.Name + "=" + state + " "
	}
	return s
}

// ArgoPod returns a pod shaped like one the Argo workflow-controller creates for a step: Argo's
// workflow label and node-id annotation, the var-run-argo volume, an init container and the wait
// and main containers (main gets mainEnv, e.g. ARGO_DEBUG_PAUSE_AFTER=true).
func ArgoPod(namespace, name, workflowName, nodeID string, mainEnv ...corev1.EnvVar) *corev1.Pod {
	mount := []corev1.VolumeMount{{Name: "var-run-argo", MountPath: MarkerDir}}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        name,
			Labels:      map[string]string{LabelWorkflow: workflowName, workflow.WorkflowFullName + "/completed": "false"},
			Annotations: map[string]string{AnnotationNodeID: nodeID, "kubectl.kubernetes.io/default-container": "main"},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes:       []corev1.Volume{{Name: "var-run-argo", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{{
				Name: "init", Image: "quay.io/argoproj/argoexec:v3.7.17", Command: []string{"argoexec", "init"}, VolumeMounts: mount,
			}},
			Containers: []corev1.Container{
				{Name: WaitContainerName, Image: "quay.io/argoproj/argoexec:v3.7.17", Command: []string{"argoexec", "wait"}, VolumeMounts: mount},
				{Name: "main", Image: "alpine:3.22", Command: []string{MarkerDir + "/argoexec", "emissary", "--", "echo", "hello"}, Env: mainEnv, VolumeMounts: mount},
			},
		},
	}
}

// Eventually polls f every 50ms until it returns nil or ctx ends, and returns f's last error then.
func Eventually(ctx context.Context, f func() error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		last = f()
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}
