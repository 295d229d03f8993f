package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// productRevisits is the server's default --revisit-interval: the lifecycle tests run with what users get.
const productRevisits = 2 * time.Second

// sensorRetryBudget is about how long the shipped Sensor keeps retrying one event (sensor/sensor.yaml
// retryStrategy); a step that pauses later than this is reached only by the server's own revisits.
const sensorRetryBudget = 35 * time.Second

func isPhase(p v1alpha1.Phase) func(*v1alpha1.Resume) bool {
	return func(r *v1alpha1.Resume) bool { return r.Status.Phase == p }
}

// A Resume created first, its step pausing 90 s later (long after the Sensor gave up retrying): the
// server's revisits release it within seconds of the pause.
func TestEarlyResumeReleasedWhenItsStepPausesLater(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	u := e.createResume("early", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	// The Sensor's call: the node has no pod yet.
	expectPending(t, e.srv.fireResume(t, u), "has no pod yet")
	res, _ := e.resume("early")
	if res.Status.Phase != v1alpha1.PhasePending || res.Status.Workflow == nil || res.Status.Workflow.UID != string(wf.UID) {
		t.Fatalf("status %s bound to %+v, want Pending bound to %s", res.Status.Phase, res.Status.Workflow, wf.UID)
	}
	if len(res.Status.Waiting) != 1 || res.Status.Waiting[0].Node != fixture.HelloNodeID {
		t.Errorf("status.waiting %+v, want node %s", res.Status.Waiting, fixture.HelloNodeID)
	}

	const later = 90 * time.Second
	t.Logf("the step pauses %v after the Resume (the Sensor retries for about %v)", later, sensorRetryBudget)
	time.Sleep(later)
	e.expectNoCalls()
	if res, _ := e.resume("early"); res.Status.Phase != v1alpha1.PhasePending {
		t.Fatalf("phase %s before the step ran, want Pending", res.Status.Phase)
	}

	pod := e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	running := time.Now()
	calls := e.waitCalls(1, 10*time.Second)
	took := calls[0].Time.Sub(running)
	t.Logf("step paused (pod %s running) -> marker exec at the kubelet: %v", pod.Name, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("released %v after the step paused, want within 5s", took)
	}
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	res = e.waitResume("early", 10*time.Second, isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(t, res, helloReleased)
	if res.Status.Reason != resume.ReasonReleased || len(res.Status.Waiting) != 0 || res.Status.CompletionTime == nil {
		t.Errorf("status reason %s waiting %v completion %v, want Released, nothing waiting, a completion time", res.Status.Reason, res.Status.Waiting, res.Status.CompletionTime)
	}
	e.waitPodSucceeded(fixture.HelloPodV2)
}

// A Resume whose step never pauses ends at its deadline, saying what it waited for, without any exec.
func TestDeadlineEndsAPendingResume(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	e.createWorkflow(fixture.HelloWorld(e.ns))
	u := e.createResume("deadline", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "activeDeadlineSeconds": int64(4)})

	expectPending(t, e.srv.fireResume(t, u), "has no pod yet")
	res := e.waitResume("deadline", 15*time.Second, isPhase(v1alpha1.PhaseFailed))
	expectFailed(t, res, resume.ReasonDeadlineExceeded, "has no pod yet")
	if !strings.Contains(res.Status.Message, "within 4s") || res.Status.Deadline == nil || res.Status.CompletionTime == nil {
		t.Errorf("status %+v: want the 4s deadline, the deadline time and a completion time", res.Status)
	}
	if res.Status.CompletionTime.Before(res.Status.Deadline) {
		t.Errorf("ended at %v, before its deadline %v", res.Status.CompletionTime, res.Status.Deadline)
	}
	e.expectEvent("deadline", corev1.EventTypeWarning, resume.ReasonDeadlineExceeded)
	// A final Resume stays as it is: the Sensor's later retries change nothing.
	f := e.srv.fireResume(t, u)
	if f.Err != nil || !f.Result.AlreadyFinal {
		t.Errorf("Execute after the deadline: %v %+v, want the final status untouched", f.Err, f.Result)
	}
	e.expectNoCalls()
}

// recreateHelloWorld deletes the Workflow and creates it again under the same name: another run, with a
// new UID and, once its step runs, a pod of the very same name.
func (e *env) recreateHelloWorld(old *wfv1.Workflow) *wfv1.Workflow {
	e.t.Helper()
	ctx := rig.Context(e.t, 20*time.Second)
	if err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete workflow: %v", err)
	}
	eventually(e.t, 20*time.Second, "workflow "+old.Name+" deleted", func() error {
		if _, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Get(ctx, old.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("get: %v", err)
		}
		return nil
	})
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	if wf.UID == old.UID {
		e.t.Fatalf("re-created workflow kept uid %s", wf.UID)
	}
	return wf
}

// A Resume bound to run A of hello-world never releases run B, the same Workflow re-created with a new
// UID and a paused pod of the very same name: neither on the Sensor's call nor on the server's own
// revisits after a restart of the server.
func TestResumeBoundToOneRunNeverReleasesAnother(t *testing.T) {
	t.Parallel()
	t.Run("the Sensor calls again", func(t *testing.T) {
		e := setup(t, withRevisits())
		runA := e.createWorkflow(fixture.HelloWorld(e.ns))
		u := e.createResume("bound", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		expectPending(t, e.srv.fireResume(t, u), "has no pod yet")

		runB := e.recreateHelloWorld(runA)
		e.runPod(runB, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
		f := e.srv.fireResume(t, u)
		if f.Err == nil && !f.Result.AlreadyFinal {
			t.Fatalf("Execute: %+v, want a refusal", f.Result)
		}
		res := e.waitResume("bound", 10*time.Second, isPhase(v1alpha1.PhaseFailed))
		expectFailed(t, res, resume.ReasonWorkflowReplaced, string(runB.UID))
		if !strings.Contains(res.Status.Message, string(runA.UID)) || res.Status.Workflow.UID != string(runA.UID) {
			t.Errorf("status %+v: want it bound to run A (%s) and both uids named", res.Status, runA.UID)
		}
		e.expectEvent("bound", corev1.EventTypeWarning, resume.ReasonWorkflowReplaced)
		e.expectNoCalls()
	})

	t.Run("after a server restart", func(t *testing.T) {
		e := setup(t, withRevisits())
		runA := e.createWorkflow(fixture.HelloWorld(e.ns))
		u := e.createResume("bound", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		expectPending(t, e.srv.fireResume(t, u), "has no pod yet")
		e.srv.stop()

		runB := e.recreateHelloWorld(runA)
		e.runPod(runB, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
		// No Sensor call: the new server takes the Pending Resume up from its list on start.
		e.srv = startServer(t, e.r.AdminConfig(), []string{e.ns}, withRevisits())
		res := e.waitResume("bound", 15*time.Second, isPhase(v1alpha1.PhaseFailed))
		expectFailed(t, res, resume.ReasonWorkflowReplaced, string(runA.UID))
		e.expectNoCalls()
	})
}

// A withItems loop of three whose third pod starts late: the first two are released at once, the Resume
// stays Pending and names what it waits for, and the third is released when its pod runs; only then does
// the Resume turn Succeeded. Each pod gets exactly one exec.
func TestLoopWithALateIterationIsReleasedWhole(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	var nodes []wfv1.NodeStatus
	for _, item := range []string{"(0:a)", "(1:b)", "(2:c)"} {
		nodes = append(nodes, fixture.PodNode(fixture.HelloWorkflow, "hello-world[0].fan"+item, "fan"+item, "fan"))
	}
	wf := e.createWorkflow(fixture.Workflow(e.ns, fixture.HelloWorkflow, nodes...))
	pods := make([]string, len(nodes))
	for i, n := range nodes {
		pods[i] = argoutil.GeneratePodName(fixture.HelloWorkflow, n.Name, "fan", n.ID, argoutil.PodNameV2)
	}
	e.runPod(wf, nodes[0].ID, pods[0], mainContainer(fixture.PauseAfter))
	e.runPod(wf, nodes[1].ID, pods[1], mainContainer(fixture.PauseAfter))
	u := e.createResume("loop", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "fan"})

	f := e.srv.fireResume(t, u)
	expectPending(t, f, "waiting for 1 more")
	res, _ := e.resume("loop")
	if res.Status.Phase != v1alpha1.PhasePending || len(res.Status.Released) != 2 || len(res.Status.Waiting) != 1 || res.Status.Waiting[0].Node != nodes[2].ID {
		t.Fatalf("status %s released %d waiting %+v, want Pending with 2 released and %s waiting", res.Status.Phase, len(res.Status.Released), res.Status.Waiting, nodes[2].ID)
	}

	e.runPod(wf, nodes[2].ID, pods[2], mainContainer(fixture.PauseAfter))
	res = e.waitResume("loop", 15*time.Second, isPhase(v1alpha1.PhaseSucceeded))
	var want []v1alpha1.ReleasedTarget
	for i, n := range nodes {
		want = append(want, v1alpha1.ReleasedTarget{Node: n.ID, Pod: pods[i], Container: "main", Stage: v1alpha1.StageAfter})
	}
	expectSucceeded(t, res, want...)
	calls := e.calls()
	for _, p := range pods {
		n := 0
		for _, c := range calls {
			if c.Pod == p && slices.Equal(c.Argv, touchMainAfter) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("pod %s got %d execs, want exactly 1:\n%s", p, n, formatCalls(calls))
		}
	}
	if len(calls) != 3 {
		t.Errorf("%d execs, want 3:\n%s", len(calls), formatCalls(calls))
	}
}

// spec.ttlSecondsAfterFinished: the server deletes a finished Resume that long after it ended, and keeps
// one without a TTL.
func TestFinishedResumeDeletedAfterItsTTL(t *testing.T) {
	t.Parallel()
	e := setup(t, withRevisits())
	e.pausedHelloWorld()
	u := e.createResume("short-lived", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "ttlSecondsAfterFinished": int64(2)})
	kept := e.createResume("kept", map[string]any{"Workflow-ID": "no-such-workflow", "TemplateName": "pause", "activeDeadlineSeconds": int64(1)})
	e.srv.fireResume(t, kept)

	// The server's list on start may have released it before this call: either way one release.
	e.srv.fireResume(t, u)
	res := e.waitResume("short-lived", 10*time.Second, isPhase(v1alpha1.PhaseSucceeded))
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	ended := res.Status.CompletionTime
	if ended == nil {
		t.Fatal("no status.completionTime on a Succeeded Resume")
	}
	e.waitGone("short-lived", 15*time.Second)
	gone := time.Now()
	t.Logf("deleted %v after completion (ttl 2s)", gone.Sub(ended.Time).Round(100*time.Millisecond))
	if gone.Before(ended.Add(2 * time.Second)) {
		t.Errorf("deleted at %v, before its TTL ran out at %v", gone, ended.Add(2*time.Second))
	}

	res = e.waitResume("kept", 15*time.Second, isPhase(v1alpha1.PhaseFailed))
	if res.Status.Reason != resume.ReasonDeadlineExceeded {
		t.Errorf("reason %s, want DeadlineExceeded", res.Status.Reason)
	}
	// Without a TTL it stays: it ended (deadline 1s) before the other one's TTL (2s) ran out.
	if ended := res.Status.CompletionTime; ended == nil || !ended.Before(ptrTime(gone)) {
		t.Errorf("kept ended at %v, not before the other was deleted at %v", res.Status.CompletionTime, gone)
	}
}

func ptrTime(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

// Two replicas with leader election, as the shipped ServiceAccount: only the holder of the Lease serves,
// the standby refuses with Unavailable; when the leader stops, the standby takes over and releases a
// Resume that was Pending, exactly once.
func TestTwoReplicasOneLeads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	applyNamespaceInstall(t, e.r, e.ns)
	saConfig := e.r.ServiceAccountConfig(e.ns, serviceAccount)
	opts := []serverOption{withRevisits(), withLeaderElection(e.ns, "resume-trigger")}
	first := startServer(t, saConfig, []string{e.ns}, opts...)
	waitLeading(t, first)
	second := startServer(t, saConfig, []string{e.ns}, opts...)

	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	u := e.createResume("failover", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "ttlSecondsAfterFinished": int64(3)})
	standby := second.fireResume(t, u)
	expectCode(t, standby, codes.Unavailable, "standing by")
	expectPending(t, first.fireResume(t, u), "has no pod yet")

	first.stop()
	waitLeading(t, second)
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	res := e.waitResume("failover", 15*time.Second, isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(t, res, helloReleased)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	for _, s := range []*server{first, second} {
		if strings.Contains(s.logs.String(), "forbidden") {
			t.Errorf("a replica was refused something:\n%s", s.logs)
		}
	}
	sa, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := sa.CoordinationV1().Leases(e.ns).Get(rig.Context(t, 5*time.Second), "resume-trigger", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("lease: %v %+v", err, lease)
	}
	// Its TTL deletes it, with the ServiceAccount's rights.
	e.waitGone("failover", 15*time.Second)
}

// waitGone polls until the Resume no longer exists.
func (e *env) waitGone(name string, within time.Duration) {
	e.t.Helper()
	eventually(e.t, within, "resume "+name+" gone", func() error {
		if _, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Get(rig.Context(e.t, 5*time.Second), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still exists (get: %v)", err)
		}
		return nil
	})
}

func waitLeading(t *testing.T, s *server) {
	t.Helper()
	eventually(t, 20*time.Second, "the replica takes the Lease", func() error {
		if !s.app.Leading() {
			return fmt.Errorf("not leading:\n%s", s.logs)
		}
		return nil
	})
}
