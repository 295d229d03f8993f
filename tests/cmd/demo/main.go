// Command demo shows resume-trigger's whole job on a local embedded control plane: a real kube-apiserver
// and etcd with a test kubelet, NATS JetStream, the shipped argo-events EventSources and Sensor, and the
// resume-trigger server, and Argo's own workflow-controller and executor (argoexec). It submits the README's Workflow (spec only),
// waits for the controller's pod of the step to pause, creates the README's Resume, and shows the
// release, the Resume's status and the controller marking the step and the Workflow Succeeded. It exits 0 on success, non-zero with the reason otherwise,
// and leaves nothing running. It needs root (network and mount namespaces for the argo-events processes).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The README's example: Workflow hello-world in namespace argo, step "pause" paused after its command.
const (
	namespace = "argo"
	workflow  = "hello-world"
	resume    = "hello-world-pause"
	// waitFor bounds the demo once everything runs (the tool builds before are not bounded).
	waitFor = 3 * time.Minute
)

func main() {
	chain.RunLauncher()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\ndemo succeeded; everything it started has been stopped.")
}

func run(ctx context.Context) error {
	header("1/6", "starting the local control plane, Argo's workflow-controller, NATS JetStream, resume-trigger, the EventSources and the Sensor")
	fmt.Println("    (the first run builds kube-apiserver, etcd, nats-server, argo-events and workflow-controller; that takes a while)")
	start := time.Now()
	c, err := chain.Start(ctx, chain.Options{
		Namespace: namespace,
		Logf:      func(format string, args ...any) { fmt.Printf("    · "+format+"\n", args...) },
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer c.Stop()
	fmt.Printf("    ready in %s: API server %s, gRPC trigger server %s, webhook %s\n",
		time.Since(start).Round(100*time.Millisecond), c.Rig.Host(), c.ServerAddress, c.WebhookURL)

	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := show(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "\nlast lines of the process logs:\n%s\n", c.LogTails(15))
		return err
	}
	return nil
}

func show(ctx context.Context, c *chain.Chain) error {
	header("2/6", "Argo's workflow-controller runs the README's Workflow; its step pauses for debugging")
	spec, err := rig.ReadmeWorkflow()
	if err != nil {
		return err
	}
	if spec.Name != workflow {
		return fmt.Errorf("the README's Workflow is %q, want %q", spec.Name, workflow)
	}
	if _, err := c.SubmitWorkflow(ctx, spec); err != nil {
		return err
	}
	fmt.Printf("    submitted Workflow %s/%s (spec only, from README.md); workflow-controller v3.7.17 made its pod, which runs on Argo's own executor (argoexec init, emissary, wait)\n", namespace, workflow)
	step, err := c.WaitPausedStep(ctx, workflow, "pause", "main", v1alpha1.StageAfter)
	if err != nil {
		return err
	}
	pod, err := c.Client().CoreV1().Pods(namespace).Get(ctx, step.Pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("    Workflow %s/%s, step %s (node %s, template %s) is Running\n", namespace, step.Workflow, step.NodeName, step.NodeID, step.Template)
	fmt.Printf("    Pod %s is %s on %s; container %s has %s=true, so Argo's emissary waits for %s\n",
		pod.Name, pod.Status.Phase, pod.Spec.NodeName, step.Container, "ARGO_DEBUG_PAUSE_AFTER", step.MarkerArgv()[1])

	header("3/6", "kubectl create -f resume.yaml")
	fmt.Printf(`    apiVersion: %s
    kind: Resume
    metadata:
      name: %s
      namespace: %s
    spec:
      Workflow-ID: %s
      TemplateName: %s
`, v1alpha1.GroupVersion, resume, namespace, step.Workflow, step.Template)
	created := time.Now()
	if _, err := c.CreateResume(ctx, resume, step); err != nil {
		return err
	}
	fmt.Printf("    resume.argocontroller.io/%s created\n", resume)

	header("4/6", "the release: EventSource → JetStream → Sensor → resume-trigger → exec through the API server")
	call, err := c.WaitMarker(ctx, step)
	if err != nil {
		return fmt.Errorf("the paused step was not released: %w", err)
	}
	fmt.Printf("    the kubelet ran %q in pod %s, container %s, %s after the Resume was created\n",
		strings.Join(call.Argv, " "), call.Pod, call.Container, call.Time.Sub(created).Round(time.Millisecond))
	if n := len(c.MarkerCalls(step)); n != 1 {
		return fmt.Errorf("the marker was exec'd %d times, want once", n)
	}

	header("5/6", "kubectl get resume "+resume)
	res, err := c.WaitResumePhase(ctx, resume, v1alpha1.PhaseSucceeded)
	if err != nil {
		return fmt.Errorf("the Resume did not succeed: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	_, _ = fmt.Fprintln(tw, "    NAME\tWORKFLOW\tTEMPLATE\tPHASE\tREASON\tAGE")
	_, _ = fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", res.Name, res.Spec.WorkflowID, res.Spec.TemplateName, res.Status.Phase,
		res.Status.Reason, time.Since(res.CreationTimestamp.Time).Round(time.Second))
	_ = tw.Flush()
	fmt.Printf("    message: %s\n", res.Status.Message)
	for _, r := range res.Status.Released {
		fmt.Printf("    released: pod %s, container %s, stage %s, at %s\n", r.Pod, r.Container, r.Stage, r.Time.Format(time.RFC3339))
	}
	// The server writes its Events off the request's path: the Event may follow the status by a moment.
	var events *corev1.EventList
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = rig.Eventually(wait, func() error {
		events, err = c.Client().CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", resume).String(),
		})
		if err == nil && len(events.Items) == 0 {
			err = errors.New("no Event was recorded on the Resume")
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range events.Items {
		fmt.Printf("    event: %s %s (%s): %s\n", e.Type, e.Reason, e.ReportingController, e.Message)
	}

	header("6/6", "the step goes on, and Argo's controller finishes it")
	done, err := c.Rig.WaitWorkflow(ctx, namespace, workflow, func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
	if err != nil {
		return fmt.Errorf("the workflow did not finish: %w", err)
	}
	seen := time.Since(created)
	pod, err = c.Client().CoreV1().Pods(namespace).Get(ctx, step.Pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == step.Container && s.State.Terminated != nil {
			fmt.Printf("    Pod %s is %s; container %s terminated with exit code %d\n", pod.Name, pod.Status.Phase, s.Name, s.State.Terminated.ExitCode)
		}
	}
	if err := showExecutor(c, namespace, step); err != nil {
		return err
	}
	node := done.Status.Nodes[step.NodeID]
	fmt.Printf("    node %s: %s, startedAt %s, finishedAt %s (released at %s)\n", node.Name, node.Phase,
		node.StartedAt.Format(time.RFC3339), node.FinishedAt.Format(time.RFC3339), call.Time.UTC().Format(time.RFC3339))
	fmt.Printf("    Workflow %s/%s: %s (set by Argo's workflow-controller), seen %s after the Resume was created\n",
		namespace, workflow, done.Status.Phase, seen.Round(time.Millisecond))
	if done.Status.Phase != wfv1.WorkflowSucceeded || node.Phase != wfv1.NodeSucceeded {
		return fmt.Errorf("workflow %s, node %s: want both Succeeded", done.Status.Phase, node.Phase)
	}
	return nil
}

// showExecutor prints what Argo's own executor in the step's pod logged: the emissary of the paused
// container (its command's end, after which it waited for the marker), and the wait container's report of
// the step to the API server, the WorkflowTaskResult the controller finished the node from.
func showExecutor(c *chain.Chain, namespace string, step *chain.Step) error {
	emissary, err := c.Rig.Kubelet().ContainerLog(namespace, step.Pod, step.Container)
	if err != nil {
		return fmt.Errorf("the log of Argo's emissary: %w", err)
	}
	if !strings.Contains(emissary, "sub-process exited") {
		return fmt.Errorf("the emissary (Argo's) in container %s did not log its command's end:\n%s", step.Container, emissary)
	}
	fmt.Printf("    Argo's emissary (argoexec emissary, container %s) logged:\n", step.Container)
	for _, line := range strings.Split(strings.TrimSpace(emissary), "\n") {
		fmt.Printf("      %s\n", line)
	}
	wait, err := c.Rig.Kubelet().ContainerLog(namespace, step.Pod, "wait")
	if err != nil {
		return fmt.Errorf("the log of Argo's wait container: %w", err)
	}
	fmt.Println("    Argo's wait container (argoexec wait) logged, once the emissary ended:")
	shown := 0
	for _, line := range strings.Split(wait, "\n") {
		if strings.Contains(line, "Main container completed") || strings.Contains(line, "workflowtaskresults") {
			fmt.Printf("      %s\n", line)
			shown++
		}
	}
	if shown == 0 {
		return fmt.Errorf("the wait container (Argo's) did not report the step:\n%s", wait)
	}
	return nil
}

func header(n, what string) {
	fmt.Printf("\n[%s] %s\n", n, what)
}
