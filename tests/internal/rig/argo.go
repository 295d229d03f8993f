package rig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	wfv1client "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/typed/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/argoproj/argo-workflows/v3/workflow/packer"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/yaml"
)

// ExecutorImage is the argoexec image the v3.7 controller (ArgoV3, the default) puts in the pods it makes
// (never pulled here: on ExecutorArgo the image's argoexec is the one hack/tools.sh builds).
const ExecutorImage = "quay.io/argoproj/argoexec:v3.7.17"

// Argo is a workflow-controller release the rig runs: the hack/tools.sh tool that builds it (its version
// pinned there and in tests/tools/<tool>/go.mod), and the environment variable that may name a prebuilt
// binary instead.
type Argo struct {
	// Version is the release, as hack/tools.sh pins it.
	Version string
	tool    string
	env     string
	// execTool and execEnv are the same for the release's argoexec.
	execTool, execEnv string
	// stopGrace is how long Stop waits for the controller to exit on SIGTERM before it SIGKILLs it.
	stopGrace time.Duration
}

// The workflow-controller releases of the version matrix: v3.7.17, and v4.0.5, the newest /v4 release
// the Go module proxy serves here (v4.1 is not served: its features are tested from Argo's documented
// layout, see docs/compatibility.md).
var (
	ArgoV3 = Argo{
		Version: "v3.7.17", tool: "workflow-controller", env: "RESUME_TRIGGER_WORKFLOW_CONTROLLER", stopGrace: 5 * time.Second,
		execTool: "argoexec", execEnv: "RESUME_TRIGGER_ARGOEXEC",
	}
	// v4.0.5 never exits on SIGTERM: the handler its start-up logger installs (util/logging/init.go,
	// initSignalHandlers) takes the signal and only flushes logs, so waiting would only add the grace to
	// every test. Its state is all in the API server: SIGKILL loses nothing.
	ArgoV4 = Argo{
		Version: "v4.0.5", tool: "workflow-controller-v4", env: "RESUME_TRIGGER_WORKFLOW_CONTROLLER_V4",
		execTool: "argoexec-v4", execEnv: "RESUME_TRIGGER_ARGOEXEC_V4",
	}
)

// ExecutorImage is the argoexec image this release's controller is told to put in its pods.
func (a Argo) ExecutorImage() string { return "quay.io/argoproj/argoexec:" + a.Version }

func (a Argo) String() string { return a.Version }

// binary is the controller's binary: the one a.env names, else hack/tools.sh's (built on first use).
func (a Argo) binary() (string, error) { return toolBinary(a.tool, a.env) }

// executorBinary is the release's argoexec, built from the controller's module (hack/tools.sh).
func (a Argo) executorBinary() (string, error) { return toolBinary(a.execTool, a.execEnv) }

func toolBinary(tool, env string) (string, error) {
	bin := os.Getenv(env)
	if bin == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		paths, err := Tools(root, tool)
		if err != nil {
			return "", fmt.Errorf("%w (set %s to use a prebuilt binary)", err, env)
		}
		bin = paths[0]
	}
	return bin, executable(bin)
}

// ExecutorKind is what runs inside the pods of a real workflow-controller's namespace.
type ExecutorKind string

const (
	// ExecutorArgo runs each pod as a node would, on Argo's own executor: the release's real
	// `argoexec init`, then every container as a process (the user containers as `argoexec emissary --
	// COMMAND`, as the controller wrote them, and `argoexec wait`, which reports to the API server with
	// a token of the pod's ServiceAccount), in a mount namespace of its own where the pod's volumes are
	// bind-mounted. What stays emulated, and why, is in doc.go.
	ExecutorArgo ExecutorKind = "argoexec"
	// ExecutorEmulated has the test kubelet play the executor (emissary.go, runArgoPod): a pause holds
	// until the marker is in the kubelet's record of the pod's files, and the kubelet writes the
	// WorkflowTaskResult.
	ExecutorEmulated ExecutorKind = "emulated"
)

// DefaultExecutor is the Executor of a ControllerOptions that names none.
const DefaultExecutor = ExecutorEmulated

// Environment a test puts on a container of a Workflow's template to make the test kubelet's emulation of
// Argo's emissary fail the container before its pause, as emissary does when the command cannot be
// started (it looks the command up before the BEFORE pause): the container exits 1 while the value of
// EnvAttempt, an integer (a template sets it to "{{retries}}"), is below EnvFailAttempts.
const (
	EnvFailAttempts = "RIG_FAIL_ATTEMPTS"
	EnvAttempt      = "RIG_ATTEMPT"
)

// ControllerOptions configure StartWorkflowController.
type ControllerOptions struct {
	// Argo is the release to run; the zero value is ArgoV3.
	Argo Argo
	// Namespace is the one namespace the controller manages (--namespaced --managed-namespace).
	Namespace string
	// Config is added to the controller's ConfigMap (workflow-controller-configmap), a key per setting of
	// Argo's config.Config, e.g. "failedPodRestart": "enabled: true\n".
	Config map[string]string
	// PodNames is Argo's POD_NAMES setting, "v1" or "v2"; empty leaves it unset (Argo's default, v2).
	PodNames string
	// Env is added to the controller's environment after the rig's own (LEADER_ELECTION_DISABLE=true,
	// DEFAULT_REQUEUE_TIME=1s), e.g. MAX_WORKFLOW_SIZE=...; a later entry wins.
	Env []string
	// Executor runs the controller's pods; "" is DefaultExecutor.
	Executor ExecutorKind
}

// WorkflowController is Argo's real workflow-controller (built by hack/tools.sh from argo-workflows
// v3.7.17 or v4.0.5) running against the rig's API server for one namespace, with the test kubelet binding and
// running the pods it creates.
type WorkflowController struct {
	// Namespace is the managed namespace.
	Namespace string
	// Argo is the release that runs.
	Argo Argo
	proc *Process
	r    *Rig
	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// StartWorkflowController starts Argo's workflow-controller for opts.Namespace: the ConfigMap
// workflow-controller-configmap it needs is created there, and the test kubelet binds the pods the
// controller creates in that namespace and runs them (see runArgoPod). It returns once the controller
// watches Workflows; a controller that cannot start is an error with the tail of its log.
func (r *Rig) StartWorkflowController(ctx context.Context, opts ControllerOptions) (_ *WorkflowController, err error) {
	if opts.Namespace == "" {
		return nil, errors.New("StartWorkflowController: no namespace")
	}
	if opts.Argo == (Argo{}) {
		opts.Argo = ArgoV3
	}
	if opts.Executor == "" {
		opts.Executor = DefaultExecutor
	}
	bin, err := opts.Argo.binary()
	if err != nil {
		return nil, err
	}
	argoexec := ""
	if opts.Executor == ExecutorArgo {
		if argoexec, err = opts.Argo.executorBinary(); err != nil {
			return nil, err
		}
		if err := r.probeMounts(); err != nil {
			return nil, err
		}
		if err := r.grantExecutor(ctx, opts.Namespace); err != nil {
			return nil, err
		}
		r.kubelet.setImageBinary(opts.Argo.ExecutorImage(), "argoexec", argoexec)
	}
	// Argo's configuration is empty but for its metrics servers: each would listen on a fixed port
	// (9090), and a second controller of the same rig would panic on it.
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: common.ConfigMapName, Namespace: opts.Namespace},
		Data: map[string]string{
			"metricsConfig":   "enabled: false\n",
			"telemetryConfig": "enabled: false\n",
		},
	}
	for k, v := range opts.Config {
		cm.Data[k] = v
	}
	if _, err := r.client.CoreV1().ConfigMaps(opts.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create ConfigMap %s/%s: %w", opts.Namespace, cm.Name, err)
	}

	runCtx, cancel := context.WithCancel(r.kubelet.ctx)
	wc := &WorkflowController{Namespace: opts.Namespace, Argo: opts.Argo, r: r, stop: cancel, done: make(chan struct{})}
	defer func() {
		if err != nil {
			wc.Stop()
		}
	}()
	if err := r.kubelet.runArgo(opts.Namespace, true, argoexec); err != nil {
		cancel()
		close(wc.done)
		return nil, err
	}
	go func() {
		defer close(wc.done)
		r.runArgoPods(runCtx, opts.Namespace)
	}()

	cmd := exec.Command(bin, //nolint:noctx // long-lived: stopped by Stop and reaped by the rig's reaper, never by a context
		"--kubeconfig", r.kubeconfig,
		"--namespace", opts.Namespace,
		"--namespaced", "--managed-namespace", opts.Namespace,
		"--executor-image", opts.Argo.ExecutorImage(),
		"--workflow-workers", "4", "--workflow-ttl-workers", "1", "--pod-cleanup-workers", "1",
		"--cron-workflow-workers", "1", "--workflow-archive-workers", "1",
		"--qps", "200", "--burst", "400",
	)
	cmd.Dir = r.dir
	// DEFAULT_REQUEUE_TIME: Argo's default of 10 s is how long a finished pod's node can wait for the
	// controller to look again; 1 s keeps the tests' waits short (ControllerOptions.Env can set it back).
	cmd.Env = append(os.Environ(), "LEADER_ELECTION_DISABLE=true", "DEFAULT_REQUEUE_TIME=1s")
	if opts.PodNames != "" {
		cmd.Env = append(cmd.Env, "POD_NAMES="+opts.PodNames)
	}
	cmd.Env = append(cmd.Env, opts.Env...)
	log := filepath.Join(r.dir, "workflow-controller-"+opts.Namespace+".log")
	if wc.proc, err = StartProcess("workflow-controller", log, cmd); err != nil {
		return nil, err
	}
	if err := r.reaper.Watch(wc.proc); err != nil {
		return nil, err
	}
	// Ready once its caches synced: WorkflowController.Run starts the CronWorkflow controller (which logs
	// this first) right after WaitForCacheSync, and the workflow workers just after it (v3.7.17 and v4.0.5
	// workflow/controller/controller.go).
	err = poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if wc.proc.Exited() {
			return false, fmt.Errorf("exited early: %v", wc.proc.Err())
		}
		return logCount(log, "Starting CronWorkflow controller") > 0, nil
	})
	if err != nil {
		return nil, wc.proc.Failure(fmt.Errorf("not ready: %w", err))
	}
	return wc, nil
}

// Stop stops the controller and the kubelet's running of its pods. It is safe to call more than once.
func (wc *WorkflowController) Stop() {
	wc.once.Do(func() {
		if wc.proc != nil {
			wc.Thaw() // a frozen controller would only act on SIGTERM after the grace
			wc.proc.Stop(syscall.SIGTERM, wc.Argo.stopGrace)
		}
		wc.stop()
		<-wc.done
		_ = wc.r.kubelet.runArgo(wc.Namespace, false, "")
		wc.r.kubelet.stopRuntimes(wc.Namespace)
	})
}

// Freeze stops the controller's process (SIGSTOP) until Thaw: what it would do about a change is held
// back, as on a busy controller, so that a test can show the server the state a cluster is in between a
// kubelet's change and the controller's answer to it (EvictPod's failed pod while its node is still
// Pending). A frozen controller keeps its API connections; Stop thaws it first.
func (wc *WorkflowController) Freeze() error {
	if err := syscall.Kill(wc.proc.Pid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze workflow-controller: %w", err)
	}
	return nil
}

// Thaw lets a frozen controller go on (SIGCONT); it does nothing to one that runs.
func (wc *WorkflowController) Thaw() {
	if !wc.proc.Exited() {
		_ = syscall.Kill(wc.proc.Pid(), syscall.SIGCONT)
	}
}

// Log is the controller's log file.
func (wc *WorkflowController) Log() string { return wc.proc.Log }

// Failure wraps err with the tail of the controller's log.
func (wc *WorkflowController) Failure(err error) error { return wc.proc.Failure(err) }

func logCount(path, substr string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), substr)
}

// runArgo marks namespace ns as run by a real controller (on) or not; argoexec, when not "", is the
// executor its pods run on (ExecutorArgo).
func (k *Kubelet) runArgo(ns string, on bool, argoexec string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if on && k.argoNS[ns] {
		return fmt.Errorf("a workflow-controller already runs for namespace %s", ns)
	}
	if on {
		k.argoNS[ns] = true
		if argoexec != "" {
			k.execNS[ns] = argoexec
		}
	} else {
		delete(k.argoNS, ns)
		delete(k.execNS, ns)
	}
	return nil
}

// argoexec is the argoexec binary the pods of ns run on, or "" when the kubelet emulates the executor.
func (k *Kubelet) argoexec(ns string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.execNS[ns]
}

// grantExecutor gives the namespace's ServiceAccounts what Argo's wait container calls, as Argo's own
// executor Role does (manifests/quick-start/base/executor/emissary/executor-role.yaml, the same in
// v3.7.17 and v4.0.5): create and patch workflowtaskresults.
func (r *Rig) grantExecutor(ctx context.Context, ns string) error {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "argo-executor", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{workflow.Group}, Resources: []string{"workflowtaskresults"}, Verbs: []string{"create", "patch"},
		}},
	}
	if _, err := r.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Role %s/%s: %w", ns, role.Name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "argo-executor", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + ns}},
	}
	if _, err := r.client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create RoleBinding %s/%s: %w", ns, binding.Name, err)
	}
	return nil
}

func (k *Kubelet) argoRuns(ns string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.argoNS[ns]
}

// Hold is how far the test kubelet takes the pods of a Workflow in a namespace run by a real controller.
type Hold int

const (
	// HoldNone runs the pods (the default).
	HoldNone Hold = iota
	// HoldUnbound leaves them unscheduled (Pending, no node), as when no node fits.
	HoldUnbound
	// HoldScheduled binds them but starts nothing (Pending on the node, as while images are pulled).
	HoldScheduled
)

// HoldPods sets how far the pods of Workflow workflow in ns go; a laxer hold lets the pods already
// there go on at once.
func (r *Rig) HoldPods(ctx context.Context, ns, workflow string, h Hold) error {
	k := r.kubelet
	k.mu.Lock()
	if h == HoldNone {
		delete(k.holds, ns+"/"+workflow)
	} else {
		k.holds[ns+"/"+workflow] = h
	}
	requeue := k.argoQueue[ns]
	k.mu.Unlock()
	if requeue == nil {
		return nil
	}
	pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: common.LabelKeyWorkflow + "=" + workflow})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		requeue(p.Name)
	}
	return nil
}

// EvictPod fails pod name in ns as a kubelet's eviction manager does to a pod it admitted but whose
// containers never started (node pressure while its images were pulled): phase Failed, reason Evicted,
// every container still waiting. The pod must be bound and not started (HoldPods HoldScheduled keeps it
// there). It returns the evicted pod. Argo v4's failedPodRestart then deletes it and creates the node's
// pod again under the same name.
func (r *Rig) EvictPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	pods := r.client.CoreV1().Pods(ns)
	var evicted *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Spec.NodeName == "" || (pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending) {
			return fmt.Errorf("evict pod %s/%s: it is %s on node %q, want bound and not started", ns, name, pod.Status.Phase, pod.Spec.NodeName)
		}
		now := metav1.Now()
		waiting := func(cs []corev1.Container) []corev1.ContainerStatus {
			var out []corev1.ContainerStatus
			for _, c := range cs {
				out = append(out, corev1.ContainerStatus{
					Name: c.Name, Image: c.Image, Started: ptr(false),
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
				})
			}
			return out
		}
		pod.Status = corev1.PodStatus{
			Phase:   corev1.PodFailed,
			Reason:  "Evicted",
			Message: "The node was low on resource: ephemeral-storage. ",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", LastTransitionTime: now},
				{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
			},
			HostIP:                r.opts.BindAddress,
			HostIPs:               []corev1.HostIP{{IP: r.opts.BindAddress}},
			StartTime:             &now,
			QOSClass:              corev1.PodQOSBestEffort,
			InitContainerStatuses: waiting(pod.Spec.InitContainers),
			ContainerStatuses:     waiting(pod.Spec.Containers),
		}
		evicted, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	return evicted, err
}

func (k *Kubelet) hold(ns, workflow string) Hold {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.holds[ns+"/"+workflow]
}

// runArgoPods is the test kubelet's side of a namespace run by the real controller, until ctx ends: it
// watches the namespace's pods and hands each change to runArgoPod, one pod at a time.
func (r *Rig) runArgoPods(ctx context.Context, ns string) {
	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		// A deleted pod's processes on Argo's executor are killed (runArgoPod finds it gone).
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				queue.Add(key)
			}
		},
	})
	r.kubelet.mu.Lock()
	r.kubelet.argoQueue[ns] = func(pod string) { queue.Add(ns + "/" + pod) }
	r.kubelet.mu.Unlock()
	defer func() {
		r.kubelet.mu.Lock()
		delete(r.kubelet.argoQueue, ns)
		r.kubelet.mu.Unlock()
	}()
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		key, quit := queue.Get()
		if quit {
			factory.Shutdown()
			return
		}
		_, name, _ := cache.SplitMetaNamespaceKey(key)
		err := r.runArgoPod(ctx, ns, name)
		switch {
		case err == nil:
			queue.Forget(key)
		case ctx.Err() != nil:
		default:
			fmt.Fprintf(os.Stderr, "rig: running Argo pod %s: %v (retrying)\n", key, err)
			queue.AddRateLimited(key)
		}
		queue.Done(key)
	}
}

// runArgoPod moves one pod of the real controller a step on, as a scheduler, a kubelet and Argo's
// executor would:
//
//   - not bound: the scheduler's part, a Binding to the rig's node (pods/binding), unless HoldPods says
//     HoldUnbound (HoldScheduled: bound, nothing started);
//   - bound, not started: init Completed, every container running, and the WorkflowTaskResult that
//     Argo's wait container creates when it starts (InitializeOutput: named after the node id, labels
//     workflow and report-outputs-completed=false, owned by the Workflow);
//   - running: a container ends (exit 0, or 1 per EnvFailAttempts) unless the emissary holds it: a
//     pause whose marker is missing (the marker's exec ends it through the emissary emulation), or a
//     containerSet dependency not ended yet;
//   - every container but wait ended: what the wait container does then (ReportOutputs, then
//     FinalizeOutput's report-outputs-completed=true), then wait ends and the pod Succeeds, or Fails when a
//     container exited non-zero. The controller then moves the node on by itself.
func (r *Rig) runArgoPod(ctx context.Context, ns, name string) error {
	pods := r.client.CoreV1().Pods(ns)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.kubelet.forgetRuntime(ns, name, "")
		return nil
	case err != nil:
		return err
	}
	if pod.DeletionTimestamp != nil {
		r.kubelet.forgetRuntime(ns, name, "")
		return nil
	}
	r.kubelet.forgetRuntime(ns, name, pod.UID) // another pod had the name before
	if pod.Labels[common.LabelKeyWorkflow] == "" {
		return nil
	}
	hold := r.kubelet.hold(ns, pod.Labels[common.LabelKeyWorkflow])
	if pod.Spec.NodeName == "" {
		if hold == HoldUnbound {
			return nil
		}
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: ns, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
		}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) { // bound meanwhile
			return nil
		}
		return err
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
		return nil
	case "", corev1.PodPending:
		if hold != HoldNone {
			return nil
		}
		if r.kubelet.argoexec(ns) != "" {
			r.startRealPod(pod)
			return nil
		}
		return r.startArgoPod(ctx, pod)
	case corev1.PodRunning:
		if r.kubelet.runtime(ns, name) != nil {
			return nil // its processes move it on (runtime.go)
		}
		return r.stepArgoPod(ctx, pod)
	}
	return nil
}

func (r *Rig) startArgoPod(ctx context.Context, pod *corev1.Pod) error {
	// A pod of the same name as an earlier one (a resubmitted Workflow) has a fresh /var/run/argo.
	r.kubelet.forgetFiles(pod.Namespace, pod.Name)
	pod.Status = r.runningStatus(pod)
	// A container that fails before its pause, or has none, is never seen paused.
	r.endContainers(pod, metav1.Now())
	if _, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return r.initializeTaskResult(ctx, pod)
}

// waitEnv is the value of an env variable of the pod's wait container (the last entry, as Kubernetes).
func waitEnv(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == common.WaitContainerName {
			v := lastEnv(&c, name)
			return v
		}
	}
	return ""
}

// taskResults is a client of the WorkflowTaskResults of ns, as Argo's executor has one.
func (r *Rig) taskResults(ns string) wfv1client.WorkflowTaskResultInterface {
	return r.argo.ArgoprojV1alpha1().WorkflowTaskResults(ns)
}

// initializeTaskResult is Argo's executor InitializeOutput (workflow/executor/taskresult.go,
// createTaskResult, v3.7.17; the same in v4.0.5).
func (r *Rig) initializeTaskResult(ctx context.Context, pod *corev1.Pod) error {
	nodeID, wfName, wfUID := waitEnv(pod, common.EnvVarNodeID), waitEnv(pod, common.EnvVarWorkflowName), waitEnv(pod, common.EnvVarWorkflowUID)
	if nodeID == "" || wfName == "" || wfUID == "" {
		return fmt.Errorf("pod %s/%s: wait container lacks %s, %s or %s", pod.Namespace, pod.Name, common.EnvVarNodeID, common.EnvVarWorkflowName, common.EnvVarWorkflowUID)
	}
	tr := &wfv1.WorkflowTaskResult{
		TypeMeta:   metav1.TypeMeta{APIVersion: workflow.APIVersion, Kind: workflow.WorkflowTaskResultKind},
		ObjectMeta: metav1.ObjectMeta{Name: nodeID},
	}
	tr.SetLabels(map[string]string{
		common.LabelKeyWorkflow:               wfName,
		common.LabelKeyReportOutputsCompleted: "false",
	})
	tr.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: workflow.APIVersion, Kind: workflow.WorkflowKind, Name: wfName, UID: types.UID(wfUID),
	}})
	if v := waitEnv(pod, common.EnvVarInstanceID); v != "" {
		tr.Labels[common.LabelKeyControllerInstanceID] = v
	}
	_, err := r.taskResults(pod.Namespace).Create(ctx, tr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// finalizeTaskResult is what Argo's wait container does once main ended: ReportOutputs (a merge patch of
// the node result, empty outputs here) and FinalizeOutput (a merge patch of the label
// report-outputs-completed=true), both on the task result named after the node id.
func (r *Rig) finalizeTaskResult(ctx context.Context, pod *corev1.Pod) error {
	trs := r.taskResults(pod.Namespace)
	nodeID := waitEnv(pod, common.EnvVarNodeID)
	outputs, err := json.Marshal(&wfv1.WorkflowTaskResult{NodeResult: wfv1.NodeResult{Outputs: &wfv1.Outputs{}}})
	if err != nil {
		return err
	}
	if _, err := trs.Patch(ctx, nodeID, types.MergePatchType, outputs, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("report outputs of %s: %w", nodeID, err)
	}
	label, err := json.Marshal(&wfv1.WorkflowTaskResult{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{common.LabelKeyReportOutputsCompleted: "true"},
	}})
	if err != nil {
		return err
	}
	if _, err := trs.Patch(ctx, nodeID, types.MergePatchType, label, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("finalize outputs of %s: %w", nodeID, err)
	}
	return nil
}

// stepArgoPod ends the containers the emissary no longer holds, and the pod once only wait is left.
func (r *Rig) stepArgoPod(ctx context.Context, pod *corev1.Pod) error {
	pods := r.client.CoreV1().Pods(pod.Namespace)
	name := pod.Name
	finish := false
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			var err error
			if pod, err = pods.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		first = false
		if pod.Status.Phase != corev1.PodRunning {
			return nil
		}
		changed := r.endContainers(pod, metav1.Now())
		finish = true
		for _, c := range pod.Spec.Containers {
			if c.Name != common.WaitContainerName && !Terminated(pod, c.Name) {
				finish = false
			}
		}
		if !changed {
			return nil
		}
		updated, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			pod = updated
		}
		return err
	})
	if err != nil || !finish {
		return err
	}
	// Every container but wait ended: wait reports the outputs, then ends, and the pod with it.
	if err := r.finalizeTaskResult(ctx, pod); err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := r.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		if !terminateWith(p, common.WaitContainerName, 0, "Completed", now) {
			return nil
		}
		p.Status.Phase = corev1.PodSucceeded
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				p.Status.Phase = corev1.PodFailed
			}
		}
		for i := range p.Status.Conditions {
			if c := &p.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "PodCompleted", now
			}
		}
		_, err = r.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// endContainers ends the running containers of pod (but wait) that the emissary does not hold: exit 1 per
// EnvFailAttempts (before any pause), else exit 0 once their containerSet dependencies ended and no pause
// of theirs waits for a marker. It reports whether anything changed.
func (r *Rig) endContainers(pod *corev1.Pod, now metav1.Time) bool {
	changed := false
	for again := true; again; {
		again = false
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			if c.Name == common.WaitContainerName || Terminated(pod, c.Name) {
				continue
			}
			if code := failCode(c); code != 0 {
				changed = terminateWith(pod, c.Name, int32(code), "Error", now) || changed
				again = true
				continue
			}
			if !dependenciesEnded(pod, c) || r.held(pod, c) {
				continue
			}
			changed = terminateWith(pod, c.Name, 0, "Completed", now) || changed
			again = true
		}
	}
	return changed
}

// held reports whether the emissary keeps container c running: it pauses at a stage whose marker is
// missing.
func (r *Rig) held(pod *corev1.Pod, c *corev1.Container) bool {
	for _, stage := range []string{"before", "after"} {
		if debugPause(c, stage) && !r.kubelet.HasFile(pod.Namespace, pod.Name, c.Name, fmt.Sprintf("%s/ctr/%s/%s", MarkerDir, c.Name, stage)) {
			return true
		}
	}
	return false
}

// dependenciesEnded reports whether the containerSet containers c depends on have ended, as the emissary
// waits for their exitcode files before it runs c. The dependencies are in the template that Argo's init
// container writes to /var/run/argo/template for the emissary: the controller gives it to init as
// ARGO_TEMPLATE.
func dependenciesEnded(pod *corev1.Pod, c *corev1.Container) bool {
	var raw string
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == common.InitContainerName {
			raw = lastEnv(&pod.Spec.InitContainers[i], common.EnvVarTemplate)
		}
	}
	if raw == "" {
		return true
	}
	var tmpl wfv1.Template
	if err := json.Unmarshal([]byte(raw), &tmpl); err != nil || tmpl.ContainerSet == nil {
		return true
	}
	for _, cc := range tmpl.ContainerSet.Containers {
		if cc.Name != c.Name {
			continue
		}
		for _, dep := range cc.Dependencies {
			if !Terminated(pod, dep) {
				return false
			}
		}
	}
	return true
}

// failCode is 1 while the container's EnvAttempt is below its EnvFailAttempts (see there), else 0.
func failCode(c *corev1.Container) int {
	limit := lastEnv(c, EnvFailAttempts)
	attempt := lastEnv(c, EnvAttempt)
	n, err1 := strconv.Atoi(limit)
	a, err2 := strconv.Atoi(attempt)
	if err1 != nil || err2 != nil || a >= n {
		return 0
	}
	return 1
}

// runningStatus is the status a kubelet gives a pod whose containers all started, init containers done.
func (r *Rig) runningStatus(pod *corev1.Pod) corev1.PodStatus {
	now := metav1.Now()
	st := corev1.PodStatus{
		Phase:      corev1.PodRunning,
		Conditions: conditions(corev1.ConditionTrue),
		HostIP:     r.opts.BindAddress,
		HostIPs:    []corev1.HostIP{{IP: r.opts.BindAddress}},
		PodIP:      "10.244.0.10",
		PodIPs:     []corev1.PodIP{{IP: "10.244.0.10"}},
		StartTime:  &now,
		QOSClass:   corev1.PodQOSBestEffort,
	}
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "rig://" + c.Image, ContainerID: "rig://" + pod.Name + "/" + c.Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: "rig://" + pod.Name + "/" + c.Name,
			}},
			Started: ptr(false),
		})
	}
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "rig://" + c.Image, ContainerID: "rig://" + pod.Name + "/" + c.Name,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			Ready: true, Started: ptr(true),
		})
	}
	return st
}

// lastEnv is the value of env variable name of c as Kubernetes resolves duplicates: the last entry wins.
// valueFrom entries report ok but no value.
func lastEnv(c *corev1.Container, name string) string {
	for j := len(c.Env) - 1; j >= 0; j-- {
		if c.Env[j].Name == name {
			return c.Env[j].Value
		}
	}
	return ""
}

// Workflows is an admin client of Argo's resources.
func (r *Rig) Workflows() wfclient.Interface { return r.argo }

// WaitWorkflow waits, on a watch, until cond holds for the Workflow (with its nodes decompressed by
// Argo's own packer when the controller compressed them) and returns it.
func (r *Rig) WaitWorkflow(ctx context.Context, ns, name string, cond func(*wfv1.Workflow) bool) (*wfv1.Workflow, error) {
	wfs := r.argo.ArgoprojV1alpha1().Workflows(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return wfs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return wfs.Watch(ctx, o)
		},
	}
	var last *wfv1.Workflow
	_, err := toolswatch.UntilWithSync(ctx, lw, &wfv1.Workflow{}, nil, func(ev watch.Event) (bool, error) {
		wf, ok := ev.Object.(*wfv1.Workflow)
		if !ok {
			return false, nil
		}
		wf = wf.DeepCopy()
		if err := packer.DecompressWorkflow(wf); err != nil {
			return false, err
		}
		last = wf
		return cond(wf), nil
	})
	if err != nil {
		state := "not found"
		if last != nil {
			state = fmt.Sprintf("phase %q, message %q, nodes %s", last.Status.Phase, last.Status.Message, NodeSummary(last))
		}
		return nil, fmt.Errorf("workflow %s/%s: condition not met (%s): %w", ns, name, state, err)
	}
	return last, nil
}

// NodeSummary lists a Workflow's nodes as "name type phase", sorted, for failure messages.
func NodeSummary(wf *wfv1.Workflow) string {
	var out []string
	for _, n := range wf.Status.Nodes {
		out = append(out, fmt.Sprintf("%s %s %s", n.Name, n.Type, n.Phase))
	}
	slices.Sort(out)
	return "[" + strings.Join(out, "; ") + "]"
}

// WaitPods waits until cond holds for the pods of Workflow wf in ns (label workflows.argoproj.io/workflow),
// polling, and returns them.
func (r *Rig) WaitPods(ctx context.Context, ns, wf string, cond func([]corev1.Pod) bool) ([]corev1.Pod, error) {
	var last []corev1.Pod
	err := Eventually(ctx, func() error {
		list, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: common.LabelKeyWorkflow + "=" + wf})
		if err != nil {
			return err
		}
		last = list.Items
		if !cond(last) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		var states []string
		for _, p := range last {
			states = append(states, fmt.Sprintf("%s %s (%s)", p.Name, p.Status.Phase, containerStates(&p)))
		}
		return nil, fmt.Errorf("pods of workflow %s/%s: condition not met (%s): %w", ns, wf, strings.Join(states, "; "), err)
	}
	return last, nil
}

// Paused reports whether container c of pod is running and held by a debug pause whose marker is missing:
// on Argo's executor, whether the real emissary has reached the pause (runtime.go, paused).
func (r *Rig) Paused(pod *corev1.Pod, container string) bool {
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name != container {
			continue
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name == container && cs.State.Running != nil {
				if rt := r.kubelet.runtime(pod.Namespace, pod.Name); rt != nil && rt.uid == pod.UID {
					return rt.paused(c)
				}
				return r.held(pod, c)
			}
		}
	}
	return false
}

// ReadmeWorkflow is the Workflow of the README's Usage section (the first YAML block of kind Workflow),
// so that what the demo and the tests submit is what users read.
func ReadmeWorkflow() (*wfv1.Workflow, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return nil, err
	}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		var wf wfv1.Workflow
		if err := yaml.UnmarshalStrict(m[1], &wf); err != nil || wf.Kind != "Workflow" {
			continue
		}
		return &wf, nil
	}
	return nil, fmt.Errorf("%s: no yaml block of kind Workflow", filepath.Join(root, "README.md"))
}
