package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The Resume lifecycle through the whole chain: a Resume binds to one run of its Workflow, waits (Pending)
// until its step can be released or its deadline passes, and resume-trigger itself looks again at the
// Pending ones (every --revisit-interval, 2 s) and lists them on start, so neither the Sensor's bounded
// retries nor a crash of the server lose one.

// revisitInterval is resume-trigger's default --revisit-interval, which the chain does not change.
const revisitInterval = 2 * time.Second

// 6. Resumes created before their steps' pods exist (the Workflow has the step's node, the pod is not
// there yet) are bound to their runs and stay Pending. The Sensor's call about each is answered at once
// (OK, phase Pending: resume-trigger revisits it from here), so the trigger's queue is not held: the second
// Resume is looked at within seconds of the first, not after the first one's whole retry budget. The pods
// start only after that budget has passed: resume-trigger's own revisits release each step within a few
// seconds, with exactly one marker exec, and the Resumes Succeed.
func TestEarlyResumeReleasedAfterTheSensorsRetryBudget(t *testing.T) {
	c := setupQuiet(t)
	budget, err := c.SensorRetryBudget(chain.ResumeTrigger)
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.SensorActivity(chain.ResumeTrigger)
	if err != nil {
		t.Fatal(err)
	}
	var steps []*chain.Step
	var names []string
	created := time.Now()
	for i := range 2 {
		step, err := c.CreateStep(rig.Context(t, 20*time.Second), fmt.Sprintf("early-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("resume-early-%d", i)
		made := time.Now()
		if _, err := c.CreateResume(rig.Context(t, 10*time.Second), name, step); err != nil {
			t.Fatal(err)
		}
		res, err := c.WaitResume(rig.Context(t, 60*time.Second), name, boundPending(step))
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(made)
		t.Logf("%s: %s within %v of its creation, bound to run %s of %s, deadline %s: %s", name, res.Status.Phase, took.Round(time.Millisecond),
			res.Status.Workflow.UID, step.Workflow, res.Status.Deadline.UTC().Format(time.RFC3339), res.Status.Message)
		// Before the server answered Pending with OK, the second Resume waited behind the first one's retries.
		if took > 10*time.Second {
			t.Errorf("%s was first looked at %v after its creation, want within 10s (the Sensor's retry budget is %v)", name, took, budget)
		}
		steps, names = append(steps, step), append(names, name)
	}
	a, err := c.WaitSensorDone(rig.Context(t, 30*time.Second), chain.ResumeTrigger, before, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a.Succeeded-before.Succeeded != 2 || len(a.GaveUp) != len(before.GaveUp) {
		t.Fatalf("Sensor activity %v (before: %v), want both events answered at once, none retried until it gave up", a, before)
	}

	// The steps pause later than the Sensor would have retried.
	if wait := time.Until(created.Add(budget.Max)); wait > 0 {
		t.Logf("waiting %v: the pods start after the Sensor's whole retry budget (%v)", wait.Round(time.Millisecond), budget)
		time.Sleep(wait)
	}
	for i, step := range steps {
		if calls := c.MarkerCalls(step); len(calls) != 0 {
			t.Fatalf("marker execs before the step's pod exists: %s", chain.FormatCalls(calls))
		}
		if res, err := c.GetResume(rig.Context(t, 10*time.Second), names[i]); err != nil {
			t.Fatal(err)
		} else if res.Status.Phase != v1alpha1.PhasePending {
			t.Fatalf("Resume %s is %q (%s) before its step's pod exists, want Pending", names[i], res.Status.Phase, res.Status.Message)
		}
	}

	for i, step := range steps {
		if _, err := c.StartStep(rig.Context(t, 20*time.Second), step); err != nil {
			t.Fatal(err)
		}
		running := time.Now()
		call, err := c.WaitMarker(rig.Context(t, 30*time.Second), step)
		if err != nil {
			t.Fatalf("the early Resume did not release %s once it ran: %v", step.Pod, err)
		}
		delay := call.Time.Sub(running)
		t.Logf("%s: step's pod running -> marker exec at the kubelet: %v (revisit interval %v); %v after the Resume was created",
			names[i], delay.Round(time.Millisecond), revisitInterval, call.Time.Sub(created).Round(time.Millisecond))
		if limit := 5 * time.Second; delay > limit {
			t.Errorf("the marker exec came %v after the pod ran, want within %v", delay, limit)
		}
		res, err := c.WaitResumePhase(rig.Context(t, 30*time.Second), names[i], v1alpha1.PhaseSucceeded)
		if err != nil {
			t.Fatal(err)
		}
		expectReleased(t, res, step)
		if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
			t.Fatalf("the released step did not complete: %v", err)
		}
		expectOneRelease(t, c, step)
	}
}

// 7. A restarted resource EventSource re-emits every Resume, and resume-trigger releases nothing twice and
// nothing of another run. Resume R has released workflow W's step (Succeeded); Resume P waits (Pending) for
// the step of workflow V, bound to V's run A. While resume-trigger is down, V is deleted and created again
// (run B, another UID) with a paused pod of the same name and container running, and the EventSource
// restarts. resume-trigger comes back; P is reached both by the server's list on start and by the Sensor
// (its event's retries, then the re-emitted event): P ends Failed/WorkflowReplaced naming both runs, no
// exec reaches run B's pod, R stays Succeeded and W's pod got exactly one exec in all.
func TestResourceEventSourceRestartReleasesNothingTwiceNorAnotherRun(t *testing.T) {
	c := setup(t)
	// The Sensor acts on one event at a time: P's event holds it for its retries (about half a minute)
	// before the re-emitted events get their turn.
	const sensorBusy = 3 * time.Minute
	keepRunning(t, c, chain.Server)

	w, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), "replay-w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-replay-w", w); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResumePhase(rig.Context(t, sensorBusy), "resume-replay-w", v1alpha1.PhaseSucceeded); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStepDone(rig.Context(t, 30*time.Second), w); err != nil {
		t.Fatalf("the released step did not complete: %v", err)
	}
	runA, err := c.CreateStep(rig.Context(t, 20*time.Second), "replay-v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-replay-v", runA); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResume(rig.Context(t, sensorBusy), "resume-replay-v", boundPending(runA)); err != nil {
		t.Fatal(err)
	}

	// Replace V while resume-trigger is down, so no look at P can fall between the deletion and the new
	// run (that would end P NotFound: its run deleted).
	if err := c.Kill(chain.Server, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	runB, err := c.ReplaceWorkflow(rig.Context(t, 30*time.Second), runA)
	if err != nil {
		t.Fatal(err)
	}
	if runB.Pod != runA.Pod || runB.Container != runA.Container {
		t.Fatalf("run B's step is pod %s container %s, want run A's pod %s container %s", runB.Pod, runB.Container, runA.Pod, runA.Container)
	}
	if _, err := c.StartStep(rig.Context(t, 20*time.Second), runB); err != nil {
		t.Fatal(err)
	}
	t.Logf("workflow %s replaced while resume-trigger was down: run %s -> %s; run B's pod %s runs, paused in %s",
		runB.Workflow, runA.WorkflowUID, runB.WorkflowUID, runB.Pod, runB.Container)

	list, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(c.Namespace).List(rig.Context(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.SensorActivity(chain.ResumeTrigger)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(rig.Context(t, 90*time.Second), chain.ResourceEventSource); err != nil {
		t.Fatal(err)
	}
	if err := c.StartComponent(rig.Context(t, 90*time.Second), chain.Server); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()

	p, err := c.WaitResumeOutcome(rig.Context(t, sensorBusy), "resume-replay-v", v1alpha1.PhaseFailed, "WorkflowReplaced")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s/%s %v after resume-trigger came back: %s", p.Name, p.Status.Phase, p.Status.Reason, time.Since(restarted).Round(time.Millisecond), p.Status.Message)
	for _, uid := range []types.UID{runA.WorkflowUID, runB.WorkflowUID} {
		if !strings.Contains(p.Status.Message, string(uid)) {
			t.Errorf("%s's message does not name run %s: %s", p.Name, uid, p.Status.Message)
		}
	}
	if p.Status.Workflow == nil || types.UID(p.Status.Workflow.UID) != runA.WorkflowUID {
		t.Errorf("%s is bound to %+v, want run A %s", p.Name, p.Status.Workflow, runA.WorkflowUID)
	}
	if len(p.Status.Released) != 0 {
		t.Errorf("%s released %+v", p.Name, p.Status.Released)
	}

	// Every re-emitted event has been acted on: the Sensor started on one per Resume and is done with all.
	after, err := c.WaitSensorDone(rig.Context(t, sensorBusy), chain.ResumeTrigger, before, len(list.Items))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the Sensor acted on %d events after the EventSource restart (%d Resumes re-emitted, plus what it was retrying) in %v",
		after.Started-before.Started, len(list.Items), time.Since(restarted).Round(time.Millisecond))
	final, err := alreadyFinalResumes(c.LogFile(chain.Server), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !final["resume-replay-w"] {
		t.Errorf("resume-trigger did not answer the re-emitted event of resume-replay-w AlreadyFinal (log %s)", c.LogFile(chain.Server))
	}

	if calls := callsInto(c, runB.Pod); len(calls) != 0 {
		t.Errorf("execs into run B's pod %s: %s", runB.Pod, chain.FormatCalls(calls))
	}
	pod, err := c.Client().CoreV1().Pods(c.Namespace).Get(rig.Context(t, 10*time.Second), runB.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !containerRunning(pod, runB.Container) {
		t.Errorf("run B's pod %s: container %s is not running (still paused) any more: %+v", pod.Name, runB.Container, pod.Status.ContainerStatuses)
	}
	r, err := c.GetResume(rig.Context(t, 10*time.Second), "resume-replay-w")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("%s is %q after the restart, want Succeeded: %s", r.Name, r.Status.Phase, r.Status.Message)
	}
	expectReleased(t, r, w)
	expectOneRelease(t, c, w)
}

// 8. resume-trigger killed (SIGKILL) while Resumes are Pending loses none. The Sensor is stopped first,
// so the server alone is responsible: it learns of three Resumes from its list on start, they go Pending
// (no step runs yet), and it is killed. Step a's pod (Pending so far) starts while it is down, step b's pod
// is created running after it is back, step c's never runs. The restarted server (its list on start)
// releases a and b exactly once each, and c ends Failed/DeadlineExceeded at its activeDeadlineSeconds. The
// Sensor, started again, delivers the three events: each is found final, nothing more is exec'd, and no
// Resume is left Pending.
func TestServerKilledWhilePendingLosesNone(t *testing.T) {
	c := setupQuiet(t)
	// c's deadline must outlast what comes before the kill: a graceful restart of resume-trigger and its
	// first look at the three Resumes, well under a second (but the restart may take up to the chain's
	// 10 s grace for a SIGTERM). a and b are released within seconds after the kill.
	const deadline = 15 * time.Second
	keepRunning(t, c, chain.Server)
	keepRunning(t, c, chain.Sensor)
	if err := c.Kill(chain.Sensor, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	steps := map[string]*chain.Step{}
	for _, wf := range []string{"crash-a", "crash-b", "crash-c"} {
		s, err := c.CreateStep(rig.Context(t, 20*time.Second), wf)
		if err != nil {
			t.Fatal(err)
		}
		steps[wf] = s
	}
	a, b, cs := steps["crash-a"], steps["crash-b"], steps["crash-c"]
	if _, err := c.ScheduleStep(rig.Context(t, 20*time.Second), a); err != nil {
		t.Fatal(err)
	}
	created := map[string]*unstructured.Unstructured{}
	createdAt := time.Now()
	for _, wf := range []string{"crash-a", "crash-b", "crash-c"} {
		var opts []chain.ResumeOption
		if wf == "crash-c" {
			opts = append(opts, chain.ActiveDeadline(deadline))
		}
		u, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-"+wf, steps[wf], opts...)
		if err != nil {
			t.Fatal(err)
		}
		created[wf] = u
	}
	if err := c.Restart(rig.Context(t, 90*time.Second), chain.Server); err != nil {
		t.Fatal(err)
	}
	for _, wf := range []string{"crash-a", "crash-b", "crash-c"} {
		res, err := c.WaitResume(rig.Context(t, 30*time.Second), "resume-"+wf, boundPending(steps[wf]))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s, bound to run %s, deadline %s: %s", res.Name, res.Status.Phase, res.Status.Workflow.UID, res.Status.Deadline.UTC().Format(time.RFC3339), res.Status.Message)
	}
	if calls := callsInto(c, a.Pod); len(calls) != 0 {
		t.Fatalf("execs into step a's pod before it ran: %s", chain.FormatCalls(calls))
	}

	if err := c.Kill(chain.Server, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("resume-trigger killed (SIGKILL) %v after the Resumes were created", time.Since(createdAt).Round(time.Millisecond))
	if _, err := c.StartStep(rig.Context(t, 20*time.Second), a); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := c.StartComponent(rig.Context(t, 90*time.Second), chain.Server); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartStep(rig.Context(t, 20*time.Second), b); err != nil {
		t.Fatal(err)
	}
	bRunning := time.Now()
	callA, err := c.WaitMarker(rig.Context(t, 30*time.Second), a)
	if err != nil {
		t.Fatalf("step a (its pod started while resume-trigger was down) was not released: %v", err)
	}
	callB, err := c.WaitMarker(rig.Context(t, 30*time.Second), b)
	if err != nil {
		t.Fatalf("step b (its pod started after resume-trigger came back) was not released: %v", err)
	}
	t.Logf("after the SIGKILL: step a (its pod started while resume-trigger was down) released %v after resume-trigger was started again, step b %v after its pod ran",
		callA.Time.Sub(back).Round(time.Millisecond), callB.Time.Sub(bRunning).Round(time.Millisecond))
	for _, s := range []*chain.Step{a, b} {
		res, err := c.WaitResumePhase(rig.Context(t, 30*time.Second), "resume-"+s.Workflow, v1alpha1.PhaseSucceeded)
		if err != nil {
			t.Fatal(err)
		}
		expectReleased(t, res, s)
	}
	res, err := c.WaitResumeOutcome(rig.Context(t, deadline+time.Minute), "resume-crash-c", v1alpha1.PhaseFailed, "DeadlineExceeded")
	if err != nil {
		t.Fatal(err)
	}
	createdC := created["crash-c"].GetCreationTimestamp().Time
	if res.Status.Deadline == nil || !res.Status.Deadline.Time.Equal(createdC.Add(deadline)) {
		t.Errorf("%s's status.deadline = %v, want its creation %v + %v", res.Name, res.Status.Deadline, createdC, deadline)
	}
	if res.Status.CompletionTime == nil || res.Status.CompletionTime.Time.Before(createdC.Add(deadline)) {
		t.Fatalf("%s completed at %v, before its deadline %v", res.Name, res.Status.CompletionTime, createdC.Add(deadline))
	}
	t.Logf("%s: %s/%s %v after its creation (activeDeadlineSeconds %d): %s", res.Name, res.Status.Phase, res.Status.Reason,
		res.Status.CompletionTime.Sub(createdC), int(deadline.Seconds()), res.Status.Message)

	// The Sensor delivers the three events it missed; each Resume is final, so nothing happens.
	if err := c.StartComponent(rig.Context(t, 90*time.Second), chain.Sensor); err != nil {
		t.Fatal(err)
	}
	act, err := c.WaitSensorDone(rig.Context(t, 2*time.Minute), chain.ResumeTrigger, chain.SensorActivity{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the restarted Sensor: %v", act)
	final, err := alreadyFinalResumes(c.LogFile(chain.Server), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, wf := range []string{"crash-a", "crash-b", "crash-c"} {
		if !final["resume-"+wf] {
			t.Errorf("resume-trigger did not answer the Sensor's event of resume-%s AlreadyFinal (log %s)", wf, c.LogFile(chain.Server))
		}
	}
	for _, s := range []*chain.Step{a, b} {
		if err := c.WaitStepDone(rig.Context(t, 30*time.Second), s); err != nil {
			t.Fatalf("the released step %s did not complete: %v", s.Workflow, err)
		}
		expectOneRelease(t, c, s)
	}
	if calls := callsInto(c, cs.Pod); len(calls) != 0 {
		t.Errorf("execs into step c's pod name %s, which never ran: %s", cs.Pod, chain.FormatCalls(calls))
	}
	list, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(c.Namespace).List(rig.Context(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range list.Items {
		if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); !v1alpha1.Phase(phase).Final() {
			t.Errorf("Resume %s is left %q", u.GetName(), phase)
		}
	}
}

// boundPending checks that a Resume is Pending and bound to step's run; a final Resume, or one bound to
// another run, settles the wait.
func boundPending(step *chain.Step) func(*v1alpha1.Resume) error {
	return func(res *v1alpha1.Resume) error {
		switch {
		case res.Status.Phase.Final():
			return chain.Settled(fmt.Errorf("resume %s is %s/%s (%s), want Pending", res.Name, res.Status.Phase, res.Status.Reason, res.Status.Message))
		case res.Status.Phase != v1alpha1.PhasePending || res.Status.Workflow == nil || res.Status.Deadline == nil:
			return fmt.Errorf("resume %s is %q (%s), bound to %+v: not yet Pending and bound to a run", res.Name, res.Status.Phase, res.Status.Message, res.Status.Workflow)
		case types.UID(res.Status.Workflow.UID) != step.WorkflowUID || res.Status.Workflow.Name != step.Workflow:
			return chain.Settled(fmt.Errorf("resume %s is bound to %+v, want %s uid %s", res.Name, res.Status.Workflow, step.Workflow, step.WorkflowUID))
		}
		return nil
	}
}

// expectReleased checks that a Succeeded Resume lists exactly step's container as released and is bound
// to step's run.
func expectReleased(t *testing.T, res *v1alpha1.Resume, step *chain.Step) {
	t.Helper()
	if len(res.Status.Released) != 1 || res.Status.Released[0].Pod != step.Pod || res.Status.Released[0].Container != step.Container || res.Status.Released[0].Stage != step.Stage {
		t.Errorf("Resume %s status.released = %+v, want pod %s container %s stage %s", res.Name, res.Status.Released, step.Pod, step.Container, step.Stage)
	}
	if res.Status.Workflow == nil || types.UID(res.Status.Workflow.UID) != step.WorkflowUID {
		t.Errorf("Resume %s is bound to %+v, want %s uid %s", res.Name, res.Status.Workflow, step.Workflow, step.WorkflowUID)
	}
	if res.Status.CompletionTime == nil {
		t.Errorf("Resume %s is %s without status.completionTime", res.Name, res.Status.Phase)
	}
}

func containerRunning(pod *corev1.Pod, container string) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Running != nil
		}
	}
	return false
}

// keepRunning starts comp again when t ends if t left it stopped, so a failing test does not take the
// chain's next tests down with it.
func keepRunning(t *testing.T, c *chain.Chain, comp chain.Component) {
	t.Cleanup(func() {
		if !c.Running(comp) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := c.StartComponent(ctx, comp); err != nil {
				t.Errorf("start %s again after the test: %v", comp, err)
			}
		}
	})
}
