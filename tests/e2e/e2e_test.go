package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// expectOneRelease checks that the execs into the step's pod were all the marker for the paused container,
// that exactly one of them succeeded, and that it was the last. Earlier ones may have failed and been
// retried: on Argo's executor a container is running before its emissary has made
// /var/run/argo/ctr/<container> (a touch then exits 1, "No such file or directory"), and on a loaded machine
// an exec may outlast resume-trigger's --exec-timeout. Touching the marker again after a failure is how the
// release is meant to work; a second success, or any exec after the success, is a duplicate release.
func expectOneRelease(t *testing.T, c *chain.Chain, step *chain.Step) {
	t.Helper()
	intoPod := callsInto(c, step.Pod)
	ok := len(intoPod) > 0
	for i, call := range intoPod {
		last := i == len(intoPod)-1
		if call.Container != step.Container || !slices.Equal(call.Argv, step.MarkerArgv()) ||
			(last && call.Outcome != "exit 0") || (!last && call.Outcome == "exit 0") {
			ok = false
		}
	}
	if !ok {
		t.Fatalf("execs into pod %s: %s\nwant one %q into container %s that exits 0, after none or a few that failed", step.Pod, chain.FormatCalls(intoPod), step.MarkerArgv(), step.Container)
	}
	if n := len(intoPod) - 1; n > 0 {
		t.Logf("pod %s: %d touch(es) failed and were retried before the one that released it: %s", step.Pod, n, chain.FormatCalls(intoPod))
	}
}

// callsInto are the execs into pod (any container, any argv) in the chain's namespace, but for Argo's own:
// the workflow-controller execs `argoexec kill` into a pod's containers when its node is done while the pod
// still runs (a wait container slow to end under load). resume-trigger never execs argoexec (only touch),
// so that argv is the controller's and says nothing of ours.
func callsInto(c *chain.Chain, pod string) []rig.Call {
	var out []rig.Call
	for _, call := range c.Calls() {
		argoKill := len(call.Argv) >= 2 && call.Argv[0] == "/var/run/argo/argoexec" && call.Argv[1] == "kill"
		if call.Pod == pod && !argoKill {
			out = append(out, call)
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// 1. A Resume created through the API releases the paused step (Argo's controller made the Workflow's
// state and the pod from the README's spec): resource EventSource -> JetStream -> Sensor -> resume-trigger
// -> exec through the API server, and the controller marks the node Succeeded. Repeated on five workflows
// for the latencies.
func TestResumeThroughAPIReleasesPausedStep(t *testing.T) {
	c := setup(t)
	var latencies, succeeded []time.Duration
	var steps []*chain.Step
	for i := range 5 {
		wf := fmt.Sprintf("api-%d", i)
		step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), wf)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, step)
		created := time.Now()
		if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-"+wf, step); err != nil {
			t.Fatal(err)
		}
		call, err := c.WaitMarker(rig.Context(t, 60*time.Second), step)
		if err != nil {
			t.Fatalf("Resume resume-%s did not release %s: %v", wf, step.Pod, err)
		}
		lat := call.Time.Sub(created)
		latencies = append(latencies, lat)
		t.Logf("%s: Resume created -> marker exec at the kubelet: %v", wf, lat.Round(time.Millisecond))
		res, err := c.WaitResumePhase(rig.Context(t, 30*time.Second), "resume-"+wf, v1alpha1.PhaseSucceeded)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Status.Released) != 1 || res.Status.Released[0].Pod != step.Pod || res.Status.Released[0].Container != step.Container || res.Status.Released[0].Stage != step.Stage {
			t.Fatalf("Resume %s status.released = %+v, want pod %s container %s stage %s", res.Name, res.Status.Released, step.Pod, step.Container, step.Stage)
		}
		if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
			t.Fatalf("the released step did not complete: %v", err)
		}
		done := time.Since(created)
		succeeded = append(succeeded, done)
		t.Logf("%s: Resume created -> Argo's controller marked node %s Succeeded: %v", wf, step.NodeName, done.Round(time.Millisecond))
	}
	// Checked after all five: a late duplicate of an early one would have had time to show up.
	for _, step := range steps {
		expectOneRelease(t, c, step)
	}
	t.Logf("end-to-end latency (Resume create -> marker exec), %d runs: median %v, all %v", len(latencies), median(latencies).Round(time.Millisecond), latencies)
	t.Logf("end-to-end latency (Resume create -> node Succeeded by Argo's workflow-controller, DEFAULT_REQUEUE_TIME 1s), %d runs: median %v, all %v",
		len(succeeded), median(succeeded).Round(time.Millisecond), succeeded)
}

// 2. A webhook call with the bearer token releases a step; without it, or with a wrong one, the webhook
// EventSource refuses it with 401 and nothing is exec'd.
func TestWebhookReleasesStepAndRefusesWithoutToken(t *testing.T) {
	c := setup(t)
	step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), "webhook-0")
	if err != nil {
		t.Fatal(err)
	}
	// The webhook EventSource logs each event it publishes to the EventBus; only a published event can
	// reach the Sensor and release anything.
	published := func() int {
		log, err := chain.ReadLog(c.LogFile(chain.WebhookEventSource))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(log, "Succeeded to publish an event")
	}
	before := published()
	for _, tc := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "not-" + c.WebhookToken}} {
		code, body, err := c.PostWebhook(rig.Context(t, 30*time.Second), tc.token, step.ReleaseRequest())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("%s: webhook answered %d %q, want 401", tc.name, code, body)
		}
		t.Logf("%s: %d %s", tc.name, code, body)
	}
	// The EventSource answers 401 before it hands a request on (argo-events
	// pkg/eventsources/common/webhook), so by the time the answer arrived, a refused call was either
	// published or never will be.
	if got := published(); got != before {
		t.Fatalf("the webhook EventSource published %d events for the refused calls, want none", got-before)
	}

	sent := time.Now()
	code, body, err := c.PostWebhook(rig.Context(t, 30*time.Second), c.WebhookToken, step.ReleaseRequest())
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("webhook answered %d %q, want 200", code, body)
	}
	call, err := c.WaitMarker(rig.Context(t, 60*time.Second), step)
	if err != nil {
		t.Fatalf("the webhook call did not release %s: %v", step.Pod, err)
	}
	t.Logf("webhook POST -> marker exec at the kubelet: %v", call.Time.Sub(sent).Round(time.Millisecond))
	// One event in all reached the bus: the authorized call's, so the release below is its and no other.
	if got := published(); got != before+1 {
		t.Errorf("the webhook EventSource published %d events during the test, want 1 (the authorized call)", got-before)
	}
	if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
		t.Fatalf("the released step did not complete: %v", err)
	}
	expectOneRelease(t, c, step)
}

// 3. A restarted resource EventSource lists every Resume again and emits ADD for each; the server finds
// them final and execs nothing. The namespace is shared with the other tests, so the test judges only the
// Resumes it knows to be final when the EventSource restarts: each of them must come back as AlreadyFinal,
// and no exec may reach a pod except those of workflows whose Resume was still in progress.
func TestResourceEventSourceRestartDoesNotExecAgain(t *testing.T) {
	c := setup(t)
	const own = "resume-restart-es-0"
	// The Sensor delivers one event at a time: a Resume of another test still in progress (its exec
	// failing) holds it for the trigger's retries (5 steps, 2 s doubling, each up to --exec-timeout, about
	// a minute), so the waits on the Sensor here allow for that.
	const sensorBusy = 3 * time.Minute
	step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), "restart-es-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), own, step); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResumePhase(rig.Context(t, sensorBusy), own, v1alpha1.PhaseSucceeded); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
		t.Fatalf("the released step did not complete: %v", err)
	}
	list, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(c.Namespace).List(rig.Context(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var final []string
	inProgress := map[string]bool{} // workflows of Resumes that are not final yet
	for _, u := range list.Items {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		if v1alpha1.Phase(phase).Final() {
			final = append(final, u.GetName())
			continue
		}
		wf, _, _ := unstructured.NestedString(u.Object, "spec", "Workflow-ID")
		inProgress[wf] = true
		t.Logf("Resume %s (workflow %s) is %q, not final: left out", u.GetName(), wf, phase)
	}
	if !slices.Contains(final, own) {
		t.Fatalf("own Resume %s is not among the final ones %v", own, final)
	}
	alreadyFinal := map[string]string{"kind": "resume", "outcome": "AlreadyFinal"}
	before, err := c.Metric(rig.Context(t, 10*time.Second), "resume_trigger_requests_total", alreadyFinal)
	if err != nil {
		t.Fatal(err)
	}
	serverLog := c.LogFile(chain.Server)
	logOffset := fileSize(t, serverLog)
	callsBefore := c.Calls()

	restarted := time.Now()
	if err := c.Restart(rig.Context(t, 90*time.Second), chain.ResourceEventSource); err != nil {
		t.Fatal(err)
	}
	// Every final Resume comes back and is answered AlreadyFinal (the server's log names each).
	err = rig.Eventually(rig.Context(t, sensorBusy), func() error {
		seen, err := alreadyFinalResumes(serverLog, logOffset)
		if err != nil {
			return err
		}
		var missing []string
		for _, name := range final {
			if !seen[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no AlreadyFinal outcome after the restart in %s for Resumes %v", serverLog, missing)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restart of the resource EventSource: %d final Resumes re-emitted and found final in %v", len(final), time.Since(restarted).Round(time.Millisecond))
	now, err := c.Metric(rig.Context(t, 10*time.Second), "resume_trigger_requests_total", alreadyFinal)
	if err != nil {
		t.Fatal(err)
	}
	if want := before + float64(len(final)); now < want {
		t.Errorf("resume_trigger_requests_total{kind=resume,outcome=AlreadyFinal} = %v, want at least %v (%v before the restart + %d final Resumes)", now, want, before, len(final))
	}

	pods, err := c.Client().CoreV1().Pods(c.Namespace).List(rig.Context(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	excused := map[string]bool{} // pods of workflows whose Resume was not final
	for _, p := range pods.Items {
		if inProgress[p.Labels[rig.LabelWorkflow]] {
			excused[p.Name] = true
		}
	}
	var unexpected []rig.Call
	for _, call := range c.Calls()[len(callsBefore):] {
		if !excused[call.Pod] {
			unexpected = append(unexpected, call)
		}
	}
	if len(unexpected) > 0 {
		t.Fatalf("execs after the restart: %s", chain.FormatCalls(unexpected))
	}
	expectOneRelease(t, c, step)
}

// 4. The Sensor dies (SIGKILL) while Execute is in flight (the exec hangs at the kubelet). The Resume stays
// Pending; resume-trigger's revisits release the step once the exec goes through, and JetStream
// redelivers the unacked event to the restarted Sensor after AckWait (~30 s), which finds the Resume
// final: the step is released exactly once and the Resume Succeeds.
func TestSensorKilledDuringExecuteReleasesOnce(t *testing.T) {
	c := setup(t)
	step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), "sensor-crash-0")
	if err != nil {
		t.Fatal(err)
	}
	kubelet := c.Rig.Kubelet()
	kubelet.SetBehaviour(step.Namespace, step.Pod, "", rig.Hang)
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-sensor-crash-0", step); err != nil {
		t.Fatal(err)
	}
	err = rig.Eventually(rig.Context(t, 60*time.Second), func() error {
		for _, call := range c.MarkerCalls(step) {
			if call.Outcome == "" {
				return nil
			}
		}
		return fmt.Errorf("no marker exec in flight into %s: %s", step.Pod, chain.FormatCalls(c.MarkerCalls(step)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(chain.Sensor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// resume-trigger handles a request detached from the caller (internal/resume/service.go), so the hung exec
	// ends at its --exec-timeout, not when the Sensor's connection goes; the Resume stays Pending.
	err = rig.Eventually(rig.Context(t, 30*time.Second), func() error {
		for _, call := range c.MarkerCalls(step) {
			if call.Outcome == "" {
				return fmt.Errorf("the exec is still in flight after the Sensor died")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.GetResume(rig.Context(t, 10*time.Second), "resume-sensor-crash-0"); err != nil {
		t.Fatal(err)
	} else if res.Status.Phase.Final() {
		t.Fatalf("Resume is %s (%s) after the interrupted Execute, want it still pending", res.Status.Phase, res.Status.Message)
	}
	kubelet.SetBehaviour(step.Namespace, step.Pod, "", rig.HasTouch)
	serverLog := c.LogFile(chain.Server)
	logOffset := fileSize(t, serverLog)
	if err := c.StartComponent(rig.Context(t, 90*time.Second), chain.Sensor); err != nil {
		t.Fatal(err)
	}
	// resume-trigger looks again at the Pending Resume every 2 s by itself, so it releases the step as soon
	// as the kubelet lets the exec through, long before JetStream redelivers the event.
	if _, err := c.WaitResumePhase(rig.Context(t, 120*time.Second), "resume-sensor-crash-0", v1alpha1.PhaseSucceeded); err != nil {
		t.Fatal(err)
	}
	t.Logf("released %v after the Sensor was killed", time.Since(killed).Round(time.Millisecond))
	// JetStream redelivers the unacked event to the restarted Sensor after its AckWait (30 s); the server
	// must find the Resume final then. Waiting for that answer lets a second release show up below.
	err = rig.Eventually(rig.Context(t, 120*time.Second), func() error {
		seen, err := alreadyFinalResumes(serverLog, logOffset)
		if err != nil {
			return err
		}
		if !seen["resume-sensor-crash-0"] {
			return fmt.Errorf("the redelivered event of resume-sensor-crash-0 has not been answered AlreadyFinal in %s (the Sensor: %s)", serverLog, sensorActivity(c))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the redelivered event was answered AlreadyFinal %v after the Sensor was killed", time.Since(killed).Round(time.Millisecond))
	if err := c.WaitStepDone(rig.Context(t, 30*time.Second), step); err != nil {
		t.Fatalf("the released step did not complete: %v", err)
	}
	calls := c.MarkerCalls(step)
	if ok := c.SucceededMarkerCalls(step); len(ok) != 1 {
		t.Fatalf("successful marker execs into %s: %d, want 1; all: %s", step.Pod, len(ok), chain.FormatCalls(calls))
	}
	t.Logf("marker execs into %s: %s", step.Pod, chain.FormatCalls(calls))
}

// sensorActivity describes the Sensor's Resume trigger for a failure message.
func sensorActivity(c *chain.Chain) string {
	a, err := c.SensorActivity(chain.ResumeTrigger)
	if err != nil {
		return err.Error()
	}
	return a.String()
}

// 5. resume-trigger runs as the ServiceAccount of manifests/namespace-install, with a token the API server
// issued for it, not as an admin: it is that identity, and it may exec into pods of its namespace but not
// read Secrets there or touch another namespace.
func TestServerActsAsShippedServiceAccount(t *testing.T) {
	c := setup(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.ServerKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken == "" || cfg.Impersonate.UserName != "" {
		t.Fatalf("resume-trigger's kubeconfig %s: want a bearer token and no impersonation", c.ServerKubeconfig())
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := rig.Context(t, 20*time.Second)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The server's identity lives in the install namespace, apart from the namespace it serves.
	want := "system:serviceaccount:" + c.InstallNamespace + ":" + c.ServerServiceAccount
	if got := review.Status.UserInfo.Username; got != want || c.ServerServiceAccount != "resume-trigger" || c.InstallNamespace == c.Namespace {
		t.Fatalf("resume-trigger acts as %q (serviceaccount %q), want %q, in an install namespace apart from %s", got, c.ServerServiceAccount, "system:serviceaccount:"+c.InstallNamespace+":resume-trigger", c.Namespace)
	}
	for _, tc := range []struct {
		ns, resource, sub, verb string
		allowed                 bool
	}{
		{c.Namespace, "pods", "exec", "create", true},
		{c.Namespace, "pods", "", "get", true},
		{c.Namespace, "secrets", "", "get", false},
		{c.Namespace, "pods", "", "delete", false},
		{"default", "pods", "exec", "create", false},
		// Its own namespace holds the Sensor's pods: no exec there.
		{c.InstallNamespace, "pods", "exec", "create", false},
	} {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Resource: tc.resource, Subresource: tc.sub, Verb: tc.verb,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != tc.allowed {
			t.Errorf("resume-trigger may %s %s/%s in %s: %v, want %v", tc.verb, tc.resource, tc.sub, tc.ns, r.Status.Allowed, tc.allowed)
		}
	}
	if log := c.LogFile(chain.Server); fileContains(log, "forbidden") {
		t.Errorf("resume-trigger was refused something (its log %s says forbidden)", log)
	}
}

func fileContains(path, substr string) bool {
	b, err := chain.ReadLog(path)
	return err == nil && strings.Contains(b, substr)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// alreadyFinalResumes reads resume-trigger's JSON log from offset and returns the Resumes it answered
// AlreadyFinal.
func alreadyFinalResumes(path string, offset int64) (map[string]bool, error) {
	b, err := chain.ReadLog(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < offset {
		return nil, fmt.Errorf("%s is shorter than before (%d < %d bytes)", path, len(b), offset)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(b[offset:], "\n") {
		var entry struct{ Resume, Outcome string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Outcome == "AlreadyFinal" && entry.Resume != "" {
			seen[entry.Resume] = true
		}
	}
	return seen, nil
}
