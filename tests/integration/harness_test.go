package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/request"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Argv the server must run to release container main paused after its command.
var touchMainAfter = []string{"touch", "/var/run/argo/ctr/main/after"}

// env is one test's namespace, admin clients to set the scene, and (once served) a resume-trigger.
type env struct {
	t   *testing.T
	r   *rig.Rig
	ns  string
	wfc wfclient.Interface
	srv *server
	wc  *rig.WorkflowController // Argo's controller for ns, once setupArgo started it
	// executor runs wc's pods.
	executor rig.ExecutorKind
}

// setup gives the test a namespace and a resume-trigger that serves only it, with admin rights.
func setup(t *testing.T, opts ...serverOption) *env {
	t.Helper()
	return setupOn(t, rig.Get(t), opts...)
}

// setupOn is setup on rig r (rig.GetWithCRDs gives one with other CRDs than the shared rig's).
func setupOn(t *testing.T, r *rig.Rig, opts ...serverOption) *env {
	t.Helper()
	e := newEnvOn(t, r)
	e.srv = startServer(t, e.r.AdminConfig(), []string{e.ns}, opts...)
	return e
}

// newEnv gives the test a namespace without a server.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, rig.Get(t))
}

func newEnvOn(t *testing.T, r *rig.Rig) *env {
	t.Helper()
	wfc, err := wfclient.NewForConfig(r.AdminConfig())
	if err != nil {
		t.Fatalf("workflow client: %v", err)
	}
	return &env{t: t, r: r, ns: r.Namespace(t), wfc: wfc}
}

// createWorkflow creates wf in one call, status.nodes (or compressedNodes) included: the Workflow CRD has no
// status subresource. The returned Workflow carries the UID the API server gave it.
func (e *env) createWorkflow(wf *wfv1.Workflow) *wfv1.Workflow {
	e.t.Helper()
	wf = wf.DeepCopy()
	wf.UID = ""
	created, err := e.wfc.ArgoprojV1alpha1().Workflows(wf.Namespace).Create(rig.Context(e.t, 10*time.Second), wf, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create workflow %s/%s: %v", wf.Namespace, wf.Name, err)
	}
	if created.UID == "" {
		e.t.Fatalf("workflow %s has no UID", created.Name)
	}
	return created
}

// runPod creates the Argo-shaped pod of node in wf, controlled by the created wf's UID, and sets it running.
func (e *env) runPod(wf *wfv1.Workflow, nodeID, name string, containers []corev1.Container, opts ...rig.PodOption) *corev1.Pod {
	e.t.Helper()
	node, ok := wf.Status.Nodes[nodeID]
	if !ok {
		e.t.Fatalf("workflow %s has no node %s", wf.Name, nodeID)
	}
	pod := fixture.Pod(wf, node, name, containers...)
	pod.UID = ""
	fixture.Own(pod, wf)
	return e.runPodObject(pod, opts...)
}

func (e *env) runPodObject(pod *corev1.Pod, opts ...rig.PodOption) *corev1.Pod {
	e.t.Helper()
	created, err := e.r.RunPod(rig.Context(e.t, 10*time.Second), pod, opts...)
	if err != nil {
		e.t.Fatalf("run pod: %v", err)
	}
	return created
}

// createResume creates a Resume through the dynamic client, as a user (or the original hook) would.
func (e *env) createResume(name string, spec map[string]any) *unstructured.Unstructured {
	e.t.Helper()
	u, err := e.tryCreateResume(name, spec)
	if err != nil {
		e.t.Fatalf("create resume %s: %v", name, err)
	}
	return u
}

func (e *env) tryCreateResume(name string, spec map[string]any) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"name": name, "namespace": e.ns},
		"spec":       spec,
	}}
	return e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Create(rig.Context(e.t, 10*time.Second), u, metav1.CreateOptions{})
}

// resume reads a Resume back.
func (e *env) resume(name string) (*v1alpha1.Resume, string) {
	e.t.Helper()
	u, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Get(rig.Context(e.t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get resume %s: %v", name, err)
	}
	var res v1alpha1.Resume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &res); err != nil {
		e.t.Fatalf("decode resume %s: %v", name, err)
	}
	return &res, u.GetResourceVersion()
}

// waitPast waits until t (a Resume's deadline) has passed on this machine's clock, which the API server
// and the server share.
func (e *env) waitPast(t *metav1.Time) {
	e.t.Helper()
	if t == nil {
		e.t.Fatal("the Resume has no status.deadline")
	}
	if d := time.Until(t.Time); d > 0 {
		e.t.Logf("waiting %v for the deadline %s to pass", d.Round(time.Millisecond), t.UTC().Format(time.RFC3339))
		time.Sleep(d + 100*time.Millisecond)
	}
}

// eventually polls f with rig.Eventually until it returns nil, and fails the test with what and f's last
// error when within passed first.
func eventually(tb testing.TB, within time.Duration, what string, f func() error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), within)
	defer cancel()
	if err := rig.Eventually(ctx, f); err != nil {
		tb.Fatalf("%s: not within %v: %v", what, within, err)
	}
}

// waitResume polls the Resume until ok says so, and fails the test with its last status after within.
func (e *env) waitResume(name string, within time.Duration, ok func(*v1alpha1.Resume) bool) *v1alpha1.Resume {
	e.t.Helper()
	var res *v1alpha1.Resume
	eventually(e.t, within, "resume "+name, func() error {
		if res, _ = e.resume(name); !ok(res) {
			return fmt.Errorf("status: phase %s reason %s message %q", res.Status.Phase, res.Status.Reason, res.Status.Message)
		}
		return nil
	})
	return res
}

// waitCalls polls the kubelet until n execs reached this test's namespace and ended (an exec is recorded
// when it arrives and gets its outcome when it ends), and returns them.
func (e *env) waitCalls(n int, within time.Duration) []rig.Call {
	e.t.Helper()
	var calls []rig.Call
	eventually(e.t, within, fmt.Sprintf("%d ended execs", n), func() error {
		if calls = e.calls(); len(calls) < n || slices.ContainsFunc(calls[:n], func(c rig.Call) bool { return c.Outcome == "" }) {
			return fmt.Errorf("%d execs reached the kubelet:\n%s", len(calls), formatCalls(calls))
		}
		return nil
	})
	return calls
}

// calls are the execs that reached the kubelet for this test's namespace.
func (e *env) calls() []rig.Call { return e.r.Kubelet().CallsFor(e.ns) }

func (e *env) expectNoCalls() {
	e.t.Helper()
	if calls := e.calls(); len(calls) != 0 {
		e.t.Fatalf("%d execs reached the kubelet, want none: %s", len(calls), formatCalls(calls))
	}
}

// expectCalls checks the exact execs, in order: pod, container, argv and how they ended.
func (e *env) expectCalls(want ...rig.Call) {
	e.t.Helper()
	got := e.calls()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Pod == w.Pod && g.Container == w.Container && slices.Equal(g.Argv, w.Argv) &&
			(w.Outcome == "" || strings.HasPrefix(g.Outcome, w.Outcome))
	}
	if !ok {
		e.t.Fatalf("kubelet execs:\n%s\nwant:\n%s", formatCalls(got), formatCalls(want))
	}
}

func formatCalls(calls []rig.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s/%s container %s argv %q -> %s\n", c.Namespace, c.Pod, c.Container, c.Argv, c.Outcome)
	}
	if b.Len() == 0 {
		return "  (none)"
	}
	return b.String()
}

// expectEvent finds a core/v1 Event about the Resume with this type and reason. It waits for it: the
// server writes the status first and queues the Event, which client-go's recorder writes off the
// request's path, so a test that saw the status may list the Events a moment early.
func (e *env) expectEvent(resumeName, typ, reason string) corev1.Event {
	e.t.Helper()
	var found corev1.Event
	var seen []string
	err := rig.Eventually(rig.Context(e.t, 10*time.Second), func() error {
		list, err := e.r.Client().CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		seen = seen[:0]
		for _, ev := range list.Items {
			io := ev.InvolvedObject
			seen = append(seen, fmt.Sprintf("%s %s/%s %s %s", io.Kind, io.Namespace, io.Name, ev.Type, ev.Reason))
			if io.Kind == v1alpha1.Kind && io.APIVersion == v1alpha1.GroupVersion.String() && io.Name == resumeName && ev.Type == typ && ev.Reason == reason {
				found = ev
				return nil
			}
		}
		return fmt.Errorf("no %s event %s on Resume %s", typ, reason, resumeName)
	})
	if err != nil {
		e.t.Fatalf("%v; events: %v", err, seen)
	}
	return found
}

// waitPodSucceeded waits for the emissary emulation to finish the pod once its marker exists.
func (e *env) waitPodSucceeded(name string) {
	e.t.Helper()
	if _, err := e.r.WaitPodPhase(rig.Context(e.t, 15*time.Second), e.ns, name, corev1.PodSucceeded); err != nil {
		e.t.Fatalf("the released step did not complete: %v", err)
	}
}

// waitContainerTerminated waits until one container of the pod has ended.
func (e *env) waitContainerTerminated(pod, container string) {
	e.t.Helper()
	_, err := e.r.WaitPod(rig.Context(e.t, 15*time.Second), e.ns, pod, func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == container {
				return cs.State.Terminated != nil
			}
		}
		return false
	})
	if err != nil {
		e.t.Fatalf("container %s of pod %s did not end after its release: %v", container, pod, err)
	}
}

// expectSucceeded checks a Resume's status after a release: phase, released containers (time aside),
// the Released condition, and observedGeneration.
func expectSucceeded(t *testing.T, res *v1alpha1.Resume, want ...v1alpha1.ReleasedTarget) {
	t.Helper()
	st := res.Status
	if st.Phase != v1alpha1.PhaseSucceeded {
		t.Fatalf("resume %s phase %q (message %q), want Succeeded", res.Name, st.Phase, st.Message)
	}
	expectReleased(t, st.Released, want...)
	if res.Generation == 0 || st.ObservedGeneration != res.Generation {
		t.Errorf("observedGeneration %d, generation %d", st.ObservedGeneration, res.Generation)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReleased)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != resume.ReasonReleased || c.ObservedGeneration != res.Generation {
		t.Errorf("Released condition %+v, want True/%s at generation %d", c, resume.ReasonReleased, res.Generation)
	}
}

// expectFailed checks a Resume that was refused for good, with a message naming the cause.
func expectFailed(t *testing.T, res *v1alpha1.Resume, reason, message string) {
	t.Helper()
	st := res.Status
	if st.Phase != v1alpha1.PhaseFailed || !strings.Contains(st.Message, message) {
		t.Fatalf("resume %s phase %q message %q, want Failed with %q", res.Name, st.Phase, st.Message, message)
	}
	if len(st.Released) != 0 {
		t.Errorf("a failed resume lists released containers: %+v", st.Released)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReleased)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason {
		t.Errorf("Released condition %+v, want False/%s", c, reason)
	}
	if st.ObservedGeneration != res.Generation {
		t.Errorf("observedGeneration %d, generation %d", st.ObservedGeneration, res.Generation)
	}
}

func expectReleased(t *testing.T, got []v1alpha1.ReleasedTarget, want ...v1alpha1.ReleasedTarget) {
	t.Helper()
	key := func(r v1alpha1.ReleasedTarget) string {
		return fmt.Sprintf("node=%s pod=%s container=%s stage=%s via=%s", r.Node, r.Pod, r.Container, r.Stage, r.Via)
	}
	var g, w []string
	for _, r := range got {
		g = append(g, key(r))
		if r.Time.IsZero() {
			t.Errorf("released %s has no time", key(r))
		}
	}
	for _, r := range want {
		w = append(w, key(r))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("released:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// server is a resume-trigger running in-process and the gRPC client the Sensor would hold.
type server struct {
	app    *app.App
	client triggerpb.TriggerClient
	logs   *rig.LogBuffer
	// stop shuts the server down gracefully (as on SIGTERM) and waits for it; the test's cleanup calls it too.
	stop func()
}

type serverOption func(*app.Options)

func withExecTimeout(d time.Duration) serverOption {
	return func(o *app.Options) { o.Resume.ExecTimeout = d }
}

// withRevisits turns on the server's own revisits of Pending Resumes (on in the product; off by default
// here, so that a test's Execute is the only path to a Resume and its result can be asserted).
func withRevisits() serverOption {
	return func(o *app.Options) {
		o.Revisits.Enabled, o.Revisits.Interval, o.Revisits.Rate = true, productRevisits, 50
	}
}

// withLeaderElection makes the server take the Lease id in namespace ns before it serves, with short
// durations so a takeover happens within seconds.
func withLeaderElection(ns, id string) serverOption {
	return func(o *app.Options) {
		o.Leader.Enabled, o.Leader.Namespace, o.Leader.ID = true, ns, id
		o.Leader.LeaseDuration, o.Leader.RenewDeadline, o.Leader.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	}
}

// startServer starts resume-trigger with app.NewWithConfig on a free loopback port, serving namespaces,
// talking to the API server as cfg. It stops when the test ends; its log is printed if the test failed.
func startServer(tb testing.TB, cfg *rest.Config, namespaces []string, opts ...serverOption) *server {
	tb.Helper()
	o := app.NewOptions()
	o.Server.GRPCAddress = "127.0.0.1:0"
	o.Metrics.Address = ""
	o.Server.Namespaces = strings.Join(namespaces, ",")
	// Direct requests stand for the webhook path here: open it where the server serves.
	o.Server.WebhookNamespaces = o.Server.Namespaces
	o.Resume.ExecTimeout = 5 * time.Second
	o.Server.RequestTimeout = 20 * time.Second
	o.Server.ShutdownTimeout = 5 * time.Second
	o.Logging.Format = "text"
	o.Logging.Level = "debug"
	o.Revisits.Enabled = false
	for _, f := range opts {
		f(o)
	}
	completed, err := o.Complete()
	if err != nil {
		tb.Fatalf("resume-trigger options: %v", err)
	}
	logs := &rig.LogBuffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetLevel(logrus.DebugLevel)
	log.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	a, err := app.NewWithConfig(tb.Context(), completed, cfg, log)
	if err != nil {
		tb.Fatalf("build resume-trigger: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		tb.Fatalf("dial resume-trigger at %s: %v", a.GRPCAddr(), err)
	}
	srv := &server{app: a, client: triggerpb.NewTriggerClient(conn), logs: logs}
	srv.stop = sync.OnceFunc(func() {
		_ = conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("resume-trigger stopped with: %v", err)
			}
		case <-time.After(15 * time.Second):
			tb.Errorf("resume-trigger did not stop within 15s")
		}
	})
	tb.Cleanup(func() {
		srv.stop()
		if tb.Failed() {
			tb.Logf("resume-trigger log:\n%s", logs)
		}
	})
	return srv
}

// sensorSpec is custom.spec of the shipped Sensor's triggers, YAML-encoded as argo-events sends it to
// FetchResource: every request key, empty, so that the parameters can overwrite them.
func sensorSpec() []byte {
	spec := map[string]string{}
	for _, k := range request.Keys {
		spec[k] = ""
	}
	out, err := yaml.Marshal(spec)
	if err != nil {
		panic(err)
	}
	return out
}

// firing is what the Sensor saw for one event.
type firing struct {
	Err    error
	Result resume.Result
	Policy *triggerpb.ApplyPolicyResponse
	Took   time.Duration
}

func (f firing) code() codes.Code { return status.Code(f.Err) }

// fire does what an argo-events custom trigger does for one event: FetchResource with the spec, apply the
// parameters to the JSON it returns, Execute with the parameterised resource and the CloudEvent payload,
// and, if Execute succeeded, ApplyPolicy with its response. It returns an error only for failures of the
// calls the Sensor itself would treat as broken (FetchResource, ApplyPolicy, undecodable answers).
func (s *server) fire(ctx context.Context, params map[string]string, payload []byte) (firing, error) {
	fr, err := s.client.FetchResource(ctx, &triggerpb.FetchResourceRequest{Resource: sensorSpec()})
	if err != nil {
		return firing{}, fmt.Errorf("FetchResource: %w", err)
	}
	obj := map[string]any{}
	if err := json.Unmarshal(fr.GetResource(), &obj); err != nil {
		return firing{}, fmt.Errorf("FetchResource returned no JSON object: %w", err)
	}
	for k, v := range params {
		if _, ok := obj[k]; !ok {
			return firing{}, fmt.Errorf("FetchResource dropped key %q: the Sensor's parameter could not be applied", k)
		}
		obj[k] = v
	}
	resource, err := json.Marshal(obj)
	if err != nil {
		return firing{}, err
	}
	start := time.Now()
	resp, err := s.client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: resource, Payload: payload})
	f := firing{Err: err, Took: time.Since(start)}
	if err != nil {
		return f, nil
	}
	if err := json.Unmarshal(resp.GetResponse(), &f.Result); err != nil {
		return f, fmt.Errorf("Execute response is not a result: %w: %s", err, resp.GetResponse())
	}
	if f.Policy, err = s.client.ApplyPolicy(ctx, &triggerpb.ApplyPolicyRequest{Request: resp.GetResponse()}); err != nil {
		return f, fmt.Errorf("ApplyPolicy: %w", err)
	}
	return f, nil
}

func (s *server) mustFire(tb testing.TB, params map[string]string, payload []byte) firing {
	tb.Helper()
	f, err := s.fire(rig.Context(tb, 60*time.Second), params, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// resumeEvent is what the Sensor's release-resume trigger makes of a Resume's ADD event: the parameters
// mapped from body.metadata and body.spec, and the CloudEvent payload whose data is the object.
func resumeEvent(u *unstructured.Unstructured) (map[string]string, []byte) {
	spec, _, _ := unstructured.NestedStringMap(u.Object, "spec")
	params := map[string]string{
		"namespace": u.GetNamespace(),
		"resume":    u.GetName(),
		"resumeUID": string(u.GetUID()),
		"workflow":  spec["Workflow-ID"],
		"template":  spec["TemplateName"],
		"nodeID":    spec["nodeID"],
		"nodeName":  spec["nodeName"],
		"container": spec["container"],
		"stage":     spec["stage"],
	}
	return params, cloudEvent("resume-resource", "resumes", u.Object)
}

// fireResume sends the Resume's event the way the Sensor does.
func (s *server) fireResume(tb testing.TB, u *unstructured.Unstructured) firing {
	tb.Helper()
	params, payload := resumeEvent(u)
	return s.mustFire(tb, params, payload)
}

// fireDirect sends a webhook request: no Resume, the body's fields are the parameters.
func (s *server) fireDirect(tb testing.TB, params map[string]string) firing {
	tb.Helper()
	return s.mustFire(tb, params, cloudEvent("resume-webhook", "release", params))
}

var eventSeq struct {
	sync.Mutex
	n int
}

// cloudEvent is the payload the Sensor builds with one entry per context attribute and data = the body.
func cloudEvent(source, subject string, body any) []byte {
	eventSeq.Lock()
	eventSeq.n++
	id := fmt.Sprintf("%s-%d-%d", source, time.Now().UnixNano(), eventSeq.n)
	eventSeq.Unlock()
	data, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	out, err := json.Marshal(map[string]any{
		"id":              id,
		"source":          source,
		"specversion":     "1.0",
		"type":            "webhook",
		"subject":         subject,
		"time":            time.Now().UTC().Format(time.RFC3339Nano),
		"datacontenttype": "application/json",
		"data":            json.RawMessage(data),
	})
	if err != nil {
		panic(err)
	}
	return out
}

// expectOK checks that the Sensor saw a successful release.
func expectOK(t *testing.T, f firing, released int) {
	t.Helper()
	if f.Err != nil {
		t.Fatalf("Execute: %v", f.Err)
	}
	if f.Result.Phase != v1alpha1.PhaseSucceeded || len(f.Result.Released) != released {
		t.Fatalf("result phase %s, %d released (%s), want Succeeded with %d", f.Result.Phase, len(f.Result.Released), f.Result.Message, released)
	}
	if f.Policy == nil || !f.Policy.Success {
		t.Fatalf("ApplyPolicy %+v, want success", f.Policy)
	}
}

// expectCode checks that Execute failed with code and a message that says why.
// expectPending checks that Execute answered OK with the Resume Pending (the server revisits it from
// here) and a message containing message.
func expectPending(t *testing.T, f firing, message string) {
	t.Helper()
	if f.Err != nil || f.Result.Phase != v1alpha1.PhasePending || !strings.Contains(f.Result.Message, message) {
		t.Fatalf("Execute: %v (result %+v), want OK with phase Pending and %q", f.Err, f.Result, message)
	}
}

func expectCode(t *testing.T, f firing, code codes.Code, message string) {
	t.Helper()
	if f.code() != code || !strings.Contains(status.Convert(f.Err).Message(), message) {
		t.Fatalf("Execute: %v (result %+v), want %s with %q", f.Err, f.Result, code, message)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func benchWorkflowClient(tb testing.TB, r *rig.Rig) wfclient.Interface {
	tb.Helper()
	wfc, err := wfclient.NewForConfig(r.AdminConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return wfc
}
