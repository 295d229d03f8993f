package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wffake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	resumefake "github.com/argocontroller/resume-trigger/internal/client/clientset/versioned/fake"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/request"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/trigger"
)

const ns = "argo"

// execCall is one exec the server asked for.
type execCall struct {
	Namespace, Pod, Container string
	Argv                      []string
}

// recordingExec is a release.Executor that records every exec and succeeds.
type recordingExec struct {
	mu    sync.Mutex
	calls []execCall
}

func (r *recordingExec) Exec(_ context.Context, namespace, pod, container string, argv []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, execCall{namespace, pod, container, append([]string(nil), argv...)})
	return nil
}

func (r *recordingExec) Calls() []execCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]execCall(nil), r.calls...)
}

// env is a trigger server over a real resume.Service on fake clients, reached through a bufconn.
type env struct {
	kube   *kubefake.Clientset
	wf     *wffake.Clientset
	rc     *resumefake.Clientset
	ev     *report.Events
	exec   *recordingExec
	reg    *prometheus.Registry
	client triggerpb.TriggerClient
	logs   *logtest.Hook
}

// newEnv starts the server. objs go to the fake that serves their type: pods to the core client,
// Workflows to the Argo client, Resumes (written unstructured, as a user does) to the Resume client.
func newEnv(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	var kubeObjs, wfObjs, resumeObjs []runtime.Object
	for _, o := range objs {
		switch o := o.(type) {
		case *wfv1.Workflow:
			wfObjs = append(wfObjs, o)
		case *unstructured.Unstructured:
			var r v1alpha1.Resume
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				t.Fatal(err)
			}
			resumeObjs = append(resumeObjs, &r)
		default:
			kubeObjs = append(kubeObjs, o)
		}
	}
	e := &env{
		kube: kubefake.NewSimpleClientset(kubeObjs...),
		wf:   wffake.NewSimpleClientset(wfObjs...),
		rc:   resumefake.NewSimpleClientset(resumeObjs...),
		exec: &recordingExec{},
		reg:  prometheus.NewRegistry(),
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	e.logs = hook
	rel, err := release.New(release.Config{Exec: e.exec, Pods: e.kube, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events, err := report.NewEvents(report.EventsConfig{Client: e.kube, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.ev = events
	t.Cleanup(func() { events.Shutdown(context.Background()) })
	svc, err := resume.New(resume.Config{
		Namespaces:        resume.NewNamespaces(ns),
		WebhookNamespaces: resume.NewNamespaces(ns),
		Resumes:           resume.APIResumes{Client: e.rc},
		Finder:            &lookup.Finder{Workflows: fixture.Workflows{Client: e.wf}, Pods: e.kube},
		Releaser:          rel,
		Events:            events,
		Metrics:           report.NewMetrics(e.reg),
		Log:               log,
		Timeout:           5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = serve(t, newServer(t, svc, log), log, 10*time.Second)
	return e
}

func newServer(t *testing.T, h trigger.Handler, log logrus.FieldLogger) *trigger.Server {
	t.Helper()
	s, err := trigger.New(trigger.Config{Handler: h, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve runs srv on a real grpc.Server with the package's interceptors and returns a client to it.
func serve(t *testing.T, srv triggerpb.TriggerServer, log logrus.FieldLogger, deadline time.Duration) triggerpb.TriggerClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(trigger.Recover(log), trigger.Log(log), trigger.Deadline(deadline)))
	triggerpb.RegisterTriggerServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
	})
	return triggerpb.NewTriggerClient(conn)
}

// flushEvents waits until the Events recorded so far are written: they are written off the request's path.
func (e *env) flushEvents(t *testing.T) {
	t.Helper()
	if n := e.ev.Flush(t.Context()); n > 0 {
		t.Fatalf("%d Events not written", n)
	}
}

// clearActions forgets the API calls made so far, the Events' writes included.
func (e *env) clearActions(t *testing.T) {
	e.flushEvents(t)
	e.kube.ClearActions()
	e.wf.ClearActions()
	e.rc.ClearActions()
}

// actions lists the API calls made, as "verb resource[/subresource]", the Events' writes included.
func (e *env) actions(t *testing.T) []string {
	e.flushEvents(t)
	var out []string
	for _, list := range [][]k8stesting.Action{e.kube.Actions(), e.wf.Actions(), e.rc.Actions()} {
		for _, a := range list {
			s := a.GetVerb() + " " + a.GetResource().Resource
			if a.GetSubresource() != "" {
				s += "/" + a.GetSubresource()
			}
			out = append(out, s)
		}
	}
	return out
}

func (e *env) writes(t *testing.T) []string {
	var out []string
	for _, a := range e.actions(t) {
		if !strings.HasPrefix(a, "get ") && !strings.HasPrefix(a, "list ") && !strings.HasPrefix(a, "watch ") {
			out = append(out, a)
		}
	}
	return out
}

// resume reads Resume name of namespace ns.
func (e *env) resume(t *testing.T, name string) *v1alpha1.Resume {
	t.Helper()
	r, err := e.rc.ArgocontrollerV1alpha1().Resumes(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get resume %s/%s: %v", ns, name, err)
	}
	return r
}

// events are the Events written in namespace ns, once every Event recorded so far is.
func (e *env) events(t *testing.T) []eventsv1.Event {
	t.Helper()
	e.flushEvents(t)
	list, err := e.kube.EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// requests returns the value of resume_trigger_requests_total{kind, outcome}.
func (e *env) requests(t *testing.T, kind, outcome string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "resume_trigger_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (e *env) execute(t *testing.T, resource, payload string) (resume.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var p []byte
	if payload != "" {
		p = []byte(payload)
	}
	out, err := e.client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: []byte(resource), Payload: p})
	if err != nil {
		return resume.Result{}, err
	}
	var res resume.Result
	if err := json.Unmarshal(out.GetResponse(), &res); err != nil {
		t.Fatalf("response %s is not a Result: %v", out.GetResponse(), err)
	}
	return res, nil
}

// resumeObjName is the name of every Resume resumeObj makes.
const resumeObjName = "resume-1"

// resumeObj is a Resume as a user creates it: Workflow-ID and TemplateName, as the original hook had.
func resumeObj(namespace, uid, workflow, template string, st map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata": map[string]any{
			"namespace":  namespace,
			"name":       resumeObjName,
			"uid":        uid,
			"generation": int64(1),
		},
		"spec": map[string]any{"Workflow-ID": workflow, "TemplateName": template},
	}}
	if st != nil {
		u.Object["status"] = st
	}
	return u
}

// pausedStep is a running Workflow wf-1 whose step (template "main") runs in an Argo pod whose main
// container has the given env.
func pausedStep(env ...corev1.EnvVar) (*wfv1.Workflow, *corev1.Pod, wfv1.NodeStatus) {
	node := fixture.PodNode("wf-1", "wf-1[0].release-me", "release-me", "main")
	wf := fixture.Workflow(ns, "wf-1", node)
	pod := fixture.Pod(wf, node, "wf-1-main-"+strings.TrimPrefix(node.ID, "wf-1-"), fixture.Container("main", env...))
	return wf, pod, node
}

func requestJSON(t *testing.T, fields map[string]string) string {
	t.Helper()
	data, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func codeOf(err error) codes.Code { return status.Code(err) }

func TestFetchResource(t *testing.T) {
	// sensorYAML is what the Sensor sends for custom.spec: ghodss/yaml of a map[string]string.
	sensorYAML := func(spec map[string]string) []byte {
		data, err := yaml.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	allEmpty := map[string]string{}
	for _, k := range request.Keys {
		allEmpty[k] = ""
	}
	tests := map[string]struct {
		in       []byte
		want     map[string]string
		wantCode codes.Code
	}{
		"every key empty, as the shipped Sensor sends it": {
			in:   []byte("container: \"\"\nnamespace: \"\"\nnodeID: \"\"\nnodeName: \"\"\nresume: \"\"\nresumeUID: \"\"\nstage: \"\"\ntemplate: \"\"\nworkflow: \"\"\n"),
			want: allEmpty,
		},
		"every key empty, encoded like the Sensor": {
			in:   sensorYAML(allEmpty),
			want: allEmpty,
		},
		"values are kept, even numeric-looking strings": {
			in:   sensorYAML(map[string]string{"namespace": "argo", "stage": "after", "nodeID": "123"}),
			want: map[string]string{"namespace": "argo", "stage": "after", "nodeID": "123"},
		},
		"multi-line value as a block scalar": {
			in:   []byte("nodeName: |-\n  a\n  b\n"),
			want: map[string]string{"nodeName": "a\nb"},
		},
		"empty spec gives an empty object": {
			in:   nil,
			want: map[string]string{},
		},
		"empty YAML map": {
			in:   []byte("{}\n"),
			want: map[string]string{},
		},
		"a YAML list is refused": {
			in:       []byte("- namespace\n- resume\n"),
			wantCode: codes.InvalidArgument,
		},
		"a scalar is refused": {
			in:       []byte("just text"),
			wantCode: codes.InvalidArgument,
		},
		"a number value is refused": {
			in:       []byte("namespace: argo\nnodeID: 3\n"),
			wantCode: codes.InvalidArgument,
		},
		"a boolean value is refused": {
			in:       []byte("namespace: argo\nstage: true\n"),
			wantCode: codes.InvalidArgument,
		},
		"an unquoted octal-looking number is refused, not read as 8": {
			in:       []byte("nodeID: 010\n"),
			wantCode: codes.InvalidArgument,
		},
		"a list value is refused": {
			in:       []byte("namespace:\n- a\n- b\n"),
			wantCode: codes.InvalidArgument,
		},
		"a null value is read as empty": {
			in:   []byte("namespace:\nresume: r\n"),
			want: map[string]string{"namespace": "", "resume": "r"},
		},
		"a map value is refused": {
			in:       []byte("namespace:\n  name: argo\n"),
			wantCode: codes.InvalidArgument,
		},
		"an unknown key is refused": {
			in:       []byte("namespace: argo\nworkflowName: wf\n"),
			wantCode: codes.InvalidArgument,
		},
		"a key in the wrong case is refused": {
			in:       []byte("Namespace: argo\n"),
			wantCode: codes.InvalidArgument,
		},
		"a duplicate key is refused": {
			in:       []byte("namespace: a\nnamespace: b\n"),
			wantCode: codes.InvalidArgument,
		},
		"an oversized spec is refused": {
			in:       []byte("nodeName: " + strings.Repeat("x", 70<<10) + "\n"),
			wantCode: codes.InvalidArgument,
		},
	}
	e := newEnv(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := e.client.FetchResource(t.Context(), &triggerpb.FetchResourceRequest{Resource: tc.in})
			if tc.wantCode != codes.OK {
				if codeOf(err) != tc.wantCode {
					t.Fatalf("FetchResource(%q) = %v, want code %v", tc.in, err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchResource(%q): %v", tc.in, err)
			}
			got := map[string]string{}
			if err := json.Unmarshal(out.GetResource(), &got); err != nil {
				t.Fatalf("FetchResource returned %q, not a JSON object of strings: %v", out.GetResource(), err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FetchResource = %v, want %v", got, tc.want)
			}
		})
	}
	if a := e.actions(t); len(a) != 0 {
		t.Errorf("FetchResource called the API: %v", a)
	}
}

// TestExecuteResume is the original example: a Resume naming Workflow-ID and TemplateName releases the
// step paused after its command, and a redelivery of the same event changes nothing.
func TestExecuteResume(t *testing.T) {
	wf, pod, node := pausedStep(fixture.PauseAfter)
	const uid = "0a1b2c3d-0000-0000-0000-000000000001"
	e := newEnv(t, wf, pod, resumeObj(ns, uid, "wf-1", "main", nil))

	// What the Sensor does: FetchResource of the spec, parameters applied, Execute.
	fetched, err := e.client.FetchResource(t.Context(), &triggerpb.FetchResourceRequest{
		Resource: []byte("namespace: \"\"\nresume: \"\"\nresumeUID: \"\"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]string{}
	if err := json.Unmarshal(fetched.GetResource(), &spec); err != nil {
		t.Fatal(err)
	}
	spec["namespace"], spec["resume"], spec["resumeUID"] = ns, "resume-1", uid
	req := requestJSON(t, spec)

	res, err := e.execute(t, req, "")
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.Phase != v1alpha1.PhaseSucceeded || res.AlreadyFinal || res.Resume != "resume-1" || res.Workflow != "wf-1" || len(res.Released) != 1 {
		t.Fatalf("result = %+v, want Succeeded with one released container", res)
	}
	wantExec := []execCall{{Namespace: ns, Pod: pod.Name, Container: "main", Argv: []string{"touch", "/var/run/argo/ctr/main/after"}}}
	if got := e.exec.Calls(); !reflect.DeepEqual(got, wantExec) {
		t.Fatalf("execs = %+v, want %+v", got, wantExec)
	}

	r := e.resume(t, "resume-1")
	if r.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("Resume phase = %q, want Succeeded (%s)", r.Status.Phase, r.Status.Message)
	}
	if len(r.Status.Released) != 1 {
		t.Fatalf("Resume released = %+v, want one target", r.Status.Released)
	}
	got := r.Status.Released[0]
	if got.Node != node.ID || got.Pod != pod.Name || got.Container != "main" || got.Stage != v1alpha1.StageAfter || got.Via != "" || got.Time.IsZero() {
		t.Errorf("released target = %+v, want node %s pod %s container main stage after", got, node.ID, pod.Name)
	}
	c := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReleased)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != resume.ReasonReleased || c.ObservedGeneration != 1 {
		t.Errorf("Released condition = %+v, want True/%s", c, resume.ReasonReleased)
	}
	if r.Status.ObservedGeneration != 1 {
		t.Errorf("observedGeneration = %d, want 1", r.Status.ObservedGeneration)
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("events = %+v, want one", evs)
	}
	if ref := evs[0].Regarding; ref.Kind != v1alpha1.Kind || ref.Name != "resume-1" || ref.UID != types.UID(uid) || evs[0].Type != corev1.EventTypeNormal || evs[0].Reason != resume.ReasonReleased {
		t.Errorf("event = %+v %s %s, want a Normal Released event on the Resume", ref, evs[0].Type, evs[0].Reason)
	}
	if n := e.requests(t, "resume", "Succeeded"); n != 1 {
		t.Errorf("requests{resume,Succeeded} = %v, want 1", n)
	}

	// The same event again (Sensor crash, retry or EventSource restart).
	e.clearActions(t)
	again, err := e.execute(t, req, "")
	if err != nil {
		t.Fatalf("second Execute: %v", err)
	}
	if !again.AlreadyFinal || again.Phase != v1alpha1.PhaseSucceeded || len(again.Released) != 0 || len(again.AlreadyReleased) != 1 {
		t.Errorf("second result = %+v, want alreadyFinal Succeeded with the earlier release", again)
	}
	if got := e.exec.Calls(); len(got) != 1 {
		t.Errorf("execs after the redelivery = %+v, want still one", got)
	}
	if w := e.writes(t); len(w) != 0 {
		t.Errorf("the redelivery wrote %v, want nothing", w)
	}
	if r2 := e.resume(t, "resume-1"); !reflect.DeepEqual(r2.Status, r.Status) {
		t.Errorf("status changed on redelivery:\n%+v\nwas\n%+v", r2.Status, r.Status)
	}
	if n := e.requests(t, "resume", "AlreadyFinal"); n != 1 {
		t.Errorf("requests{resume,AlreadyFinal} = %v, want 1", n)
	}

	// ApplyPolicy gets Execute's response bytes.
	out, err := e.client.Execute(t.Context(), &triggerpb.ExecuteRequest{Resource: []byte(req)})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := e.client.ApplyPolicy(t.Context(), &triggerpb.ApplyPolicyRequest{Request: out.GetResponse()})
	if err != nil || !pol.GetSuccess() || !strings.Contains(pol.GetMessage(), "already final") {
		t.Errorf("ApplyPolicy = %+v, %v; want success, already final", pol, err)
	}
}

func TestExecuteDirect(t *testing.T) {
	wf, pod, _ := pausedStep(fixture.PauseBefore)
	e := newEnv(t, wf, pod)
	res, err := e.execute(t, requestJSON(t, map[string]string{"namespace": ns, "workflow": "wf-1", "template": "main"}), "")
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.Phase != v1alpha1.PhaseSucceeded || res.Resume != "" || res.Workflow != "wf-1" || len(res.Released) != 1 || res.Released[0].Stage != v1alpha1.StageBefore {
		t.Fatalf("result = %+v, want Succeeded releasing the before pause", res)
	}
	wantExec := []execCall{{Namespace: ns, Pod: pod.Name, Container: "main", Argv: []string{"touch", "/var/run/argo/ctr/main/before"}}}
	if got := e.exec.Calls(); !reflect.DeepEqual(got, wantExec) {
		t.Errorf("execs = %+v, want %+v", got, wantExec)
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("events = %+v, want one", evs)
	}
	if ref := evs[0].Regarding; ref.Kind != "Workflow" || ref.APIVersion != "argoproj.io/v1alpha1" || ref.Name != "wf-1" || ref.UID != wf.UID || evs[0].Type != corev1.EventTypeNormal {
		t.Errorf("event on %+v (%s), want a Normal event on Workflow wf-1", ref, evs[0].Type)
	}
	for _, a := range e.rc.Actions() {
		t.Errorf("a direct request touched Resumes: %s", a.GetVerb())
	}
	if n := e.requests(t, "direct", "Succeeded"); n != 1 {
		t.Errorf("requests{direct,Succeeded} = %v, want 1", n)
	}
}

func TestExecuteErrors(t *testing.T) {
	getWorkflowFails := func(e *env) {
		e.wf.PrependReactor("get", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("etcdserver: request timed out")
		})
	}
	type check struct {
		phase      v1alpha1.Phase // want this Resume phase afterwards ("" = no status)
		msg        string         // the Resume message contains this
		noAPI      bool           // no API call at all
		noWrite    bool           // no write of any kind
		warning    bool           // a Warning Event on the Resume
		resumeName string
	}
	tests := map[string]struct {
		objs     func() []runtime.Object
		setup    func(*env)
		req      map[string]string
		raw      string // used instead of req when set
		payload  string
		wantCode codes.Code
		wantMsg  string
		check    check
	}{
		"invalid JSON is refused before any API call": {
			raw:      `{"namespace":"argo","resume":`,
			wantCode: codes.InvalidArgument,
			check:    check{noAPI: true},
		},
		"unknown request key is refused before any API call": {
			raw:      `{"namespace":"argo","resume":"resume-1","wokflow":"wf-1"}`,
			wantCode: codes.InvalidArgument,
			check:    check{noAPI: true},
		},
		"shell in a container name is refused before any API call": {
			req:      map[string]string{"namespace": ns, "workflow": "wf-1", "template": "main", "container": "main; rm -rf /"},
			wantCode: codes.InvalidArgument,
			wantMsg:  "not a valid container name",
			check:    check{noAPI: true},
		},
		"command substitution in a workflow name is refused before any API call": {
			req:      map[string]string{"namespace": ns, "workflow": "$(id)", "template": "main"},
			wantCode: codes.InvalidArgument,
			check:    check{noAPI: true},
		},
		"path in a resume name is refused before any API call": {
			req:      map[string]string{"namespace": ns, "resume": "../../etc"},
			wantCode: codes.InvalidArgument,
			check:    check{noAPI: true},
		},
		"the wait container is refused before any API call": {
			req:      map[string]string{"namespace": ns, "workflow": "wf-1", "template": "main", "container": "wait"},
			wantCode: codes.InvalidArgument,
			check:    check{noAPI: true},
		},
		"garbage payload is refused before any API call": {
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			payload:  "not a cloudevent",
			wantCode: codes.InvalidArgument,
			wantMsg:  "not a CloudEvent",
			check:    check{noAPI: true},
		},
		"a workflow not created yet leaves the Resume Pending": {
			objs: func() []runtime.Object {
				return []runtime.Object{resumeObj(ns, "u-1", "no-such-wf", "main", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.Unavailable,
			wantMsg:  "workflow no-such-wf not found",
			check:    check{phase: v1alpha1.PhasePending, msg: "waiting for it to be created until", resumeName: "resume-1"},
		},
		"the deleted workflow of a bound Resume fails it with NotFound": {
			objs: func() []runtime.Object {
				return []runtime.Object{resumeObj(ns, "u-1", "no-such-wf", "main", map[string]any{
					"phase": "Pending", "workflow": map[string]any{"name": "no-such-wf", "uid": "wf-uid-old"},
				})}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.NotFound,
			wantMsg:  "workflow no-such-wf (uid wf-uid-old), the run this Resume is bound to, was deleted",
			check:    check{phase: v1alpha1.PhaseFailed, msg: "was deleted", warning: true, resumeName: "resume-1"},
		},
		"a node the running workflow has not reached yet leaves the Resume Pending": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				u := resumeObj(ns, "u-1", "wf-1", "", nil)
				u.Object["spec"] = map[string]any{"Workflow-ID": "wf-1", "nodeName": "wf-1[1].later"}
				return []runtime.Object{wf, pod, u}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.Unavailable,
			wantMsg:  `has not reached node name "wf-1[1].later" yet`,
			check:    check{phase: v1alpha1.PhasePending, msg: `has not reached node name "wf-1[1].later" yet`, resumeName: "resume-1"},
		},
		"a node a finished workflow never reached fails the Resume with NotFound": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				wf.Status.Phase = wfv1.WorkflowSucceeded
				u := resumeObj(ns, "u-1", "wf-1", "", nil)
				u.Object["spec"] = map[string]any{"Workflow-ID": "wf-1", "nodeName": "wf-1[1].later"}
				return []runtime.Object{wf, pod, u}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.NotFound,
			check:    check{phase: v1alpha1.PhaseFailed, msg: "ended Succeeded", warning: true, resumeName: "resume-1"},
		},
		"unknown template fails the Resume with NotFound": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "other", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.NotFound,
			check:    check{phase: v1alpha1.PhaseFailed, msg: "no node matching template other", warning: true, resumeName: "resume-1"},
		},
		"a step that is not paused fails the Resume with FailedPrecondition": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep()
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.FailedPrecondition,
			wantMsg:  "not debug-paused",
			check:    check{phase: v1alpha1.PhaseFailed, msg: "not debug-paused", warning: true, resumeName: "resume-1"},
		},
		"a container pausing both before and after without a stage is InvalidArgument": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseBefore, fixture.PauseAfter)
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.InvalidArgument,
			check:    check{phase: v1alpha1.PhaseFailed, msg: "set stage", warning: true, resumeName: "resume-1"},
		},
		"a Resume in a namespace not served is PermissionDenied and nothing is written": {
			objs: func() []runtime.Object {
				return []runtime.Object{resumeObj("other", "u-1", "wf-1", "main", nil)}
			},
			req:      map[string]string{"namespace": "other", "resume": "resume-1"},
			wantCode: codes.PermissionDenied,
			wantMsg:  "not served",
			check:    check{noAPI: true},
		},
		"a direct request for a namespace not served is PermissionDenied": {
			req:      map[string]string{"namespace": "kube-system", "workflow": "wf-1", "template": "main"},
			wantCode: codes.PermissionDenied,
			check:    check{noAPI: true},
		},
		"a transient API failure is Unavailable and leaves the Resume Pending": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil)}
			},
			setup:    getWorkflowFails,
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.Unavailable,
			wantMsg:  "request timed out",
			check:    check{phase: v1alpha1.PhasePending, msg: "request timed out", resumeName: "resume-1"},
		},
		"a transient API failure on a direct request is Unavailable": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				return []runtime.Object{wf, pod}
			},
			setup:    getWorkflowFails,
			req:      map[string]string{"namespace": ns, "workflow": "wf-1", "template": "main"},
			wantCode: codes.Unavailable,
		},
		"a pod not running yet is Unavailable and leaves the Resume Pending": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				pod.Status.Phase = corev1.PodPending
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1"},
			wantCode: codes.Unavailable,
			check:    check{phase: v1alpha1.PhasePending, msg: "not running yet", resumeName: "resume-1"},
		},
		"a deleted Resume is NotFound": {
			req:      map[string]string{"namespace": ns, "resume": "resume-gone"},
			wantCode: codes.NotFound,
			check:    check{noWrite: true},
		},
		"a Resume created again under the same name is NotFound for the old event": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				return []runtime.Object{wf, pod, resumeObj(ns, "bbbb-0002", "wf-1", "main", nil)}
			},
			req:      map[string]string{"namespace": ns, "resume": "resume-1", "resumeUID": "aaaa-0001"},
			wantCode: codes.NotFound,
			wantMsg:  "deleted and created again",
			check:    check{noWrite: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.objs != nil {
				objs = tc.objs()
			}
			e := newEnv(t, objs...)
			if tc.setup != nil {
				tc.setup(e)
			}
			in := tc.raw
			if in == "" {
				in = requestJSON(t, tc.req)
			}
			res, err := e.execute(t, in, tc.payload)
			if codeOf(err) != tc.wantCode {
				t.Fatalf("Execute = %+v, %v; want code %v", res, err, tc.wantCode)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.wantMsg) {
				t.Errorf("error message %q does not contain %q", status.Convert(err).Message(), tc.wantMsg)
			}
			if calls := e.exec.Calls(); len(calls) != 0 {
				t.Errorf("execs = %+v, want none", calls)
			}
			if tc.check.noAPI {
				if a := e.actions(t); len(a) != 0 {
					t.Errorf("API calls = %v, want none", a)
				}
			}
			if tc.check.noWrite {
				if w := e.writes(t); len(w) != 0 {
					t.Errorf("writes = %v, want none", w)
				}
			}
			if tc.check.resumeName != "" {
				r := e.resume(t, tc.check.resumeName)
				if r.Status.Phase != tc.check.phase {
					t.Errorf("Resume phase = %q, want %q (%s)", r.Status.Phase, tc.check.phase, r.Status.Message)
				}
				if !strings.Contains(r.Status.Message, tc.check.msg) {
					t.Errorf("Resume message = %q, want it to contain %q", r.Status.Message, tc.check.msg)
				}
				c := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReleased)
				wantCond := metav1.ConditionFalse
				if tc.check.phase == v1alpha1.PhasePending {
					wantCond = metav1.ConditionUnknown
				}
				if c == nil || c.Status != wantCond {
					t.Errorf("Released condition = %+v, want %s", c, wantCond)
				}
				var warnings int
				for _, ev := range e.events(t) {
					if ev.Type == corev1.EventTypeWarning && ev.Regarding.Name == tc.check.resumeName {
						warnings++
					}
				}
				if tc.check.warning && warnings != 1 {
					t.Errorf("%d Warning events on the Resume, want 1", warnings)
				}
				if !tc.check.warning && warnings != 0 {
					t.Errorf("%d Warning events on the Resume, want none", warnings)
				}
			}
		})
	}
}

// TestExecuteFailedIsFinal checks the bounded retries: a permanent failure is written once, and every
// retry (or a Resume already Failed) finds the final status and does nothing.
func TestExecuteFailedIsFinal(t *testing.T) {
	tests := map[string]struct {
		objs func() []runtime.Object
		// first, when set, is the Execute whose failure makes the Resume Failed.
		first codes.Code
	}{
		"a Resume already Failed": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep(fixture.PauseAfter)
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", map[string]any{
					"phase": "Failed", "message": "gave up earlier",
					"conditions": []any{map[string]any{
						"type": "Released", "status": "False", "reason": "NotFound", "message": "gave up earlier",
						"lastTransitionTime": "2026-01-01T00:00:00Z",
					}},
				})}
			},
		},
		"a retry after a NotFound failure": {
			objs: func() []runtime.Object {
				return []runtime.Object{resumeObj(ns, "u-1", "no-such-wf", "main", map[string]any{
					"workflow": map[string]any{"name": "no-such-wf", "uid": "wf-uid-old"},
				})}
			},
			first: codes.NotFound,
		},
		"a retry after a FailedPrecondition failure": {
			objs: func() []runtime.Object {
				wf, pod, _ := pausedStep()
				return []runtime.Object{wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil)}
			},
			first: codes.FailedPrecondition,
		},
	}
	req := `{"namespace":"argo","resume":"resume-1"}`
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.objs()...)
			if tc.first != codes.OK {
				if _, err := e.execute(t, req, ""); codeOf(err) != tc.first {
					t.Fatalf("first Execute = %v, want %v", err, tc.first)
				}
			}
			before := e.resume(t, "resume-1")
			if before.Status.Phase != v1alpha1.PhaseFailed {
				t.Fatalf("Resume phase = %q, want Failed", before.Status.Phase)
			}
			evs := len(e.events(t))
			e.clearActions(t)
			res, err := e.execute(t, req, "")
			if err != nil {
				t.Fatalf("Execute on a Failed Resume: %v, want OK", err)
			}
			if !res.AlreadyFinal || res.Phase != v1alpha1.PhaseFailed || res.Message != before.Status.Message {
				t.Errorf("result = %+v, want alreadyFinal Failed %q", res, before.Status.Message)
			}
			if calls := e.exec.Calls(); len(calls) != 0 {
				t.Errorf("execs = %+v, want none", calls)
			}
			if a := e.actions(t); !reflect.DeepEqual(a, []string{"get resumes"}) {
				t.Errorf("API calls = %v, want only the Resume read", a)
			}
			if after := e.resume(t, "resume-1"); !reflect.DeepEqual(after.Status, before.Status) {
				t.Errorf("status changed:\n%+v\nwas\n%+v", after.Status, before.Status)
			}
			if n := len(e.events(t)); n != evs {
				t.Errorf("%d events, want still %d", n, evs)
			}
			pol, err := e.client.ApplyPolicy(t.Context(), &triggerpb.ApplyPolicyRequest{Request: mustJSON(t, res)})
			if err != nil || pol.GetSuccess() {
				t.Errorf("ApplyPolicy = %+v, %v; want success=false", pol, err)
			}
		})
	}
}

func TestExecutePayload(t *testing.T) {
	const event = `{"id":"ev-1","source":"resume-source","specversion":"1.0","type":"resource","subject":"resume",` +
		`"time":"2026-05-04T10:11:12Z","datacontenttype":"application/json","data":{"metadata":{"name":"resume-1","namespace":"argo"}}}`
	tests := map[string]struct {
		payload  string
		wantCode codes.Code
	}{
		"no payload":                  {payload: ""},
		"JSON null payload":           {payload: "null"},
		"structured CloudEvent":       {payload: event},
		"garbage payload":             {payload: "\x00\x01garbage", wantCode: codes.InvalidArgument},
		"payload that is not a event": {payload: `{"object":{"a":1},"eventID":"x"}`, wantCode: codes.InvalidArgument},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wf, pod, _ := pausedStep(fixture.PauseAfter)
			e := newEnv(t, wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil))
			res, err := e.execute(t, `{"namespace":"argo","resume":"resume-1"}`, tc.payload)
			if codeOf(err) != tc.wantCode {
				t.Fatalf("Execute = %v, want %v", err, tc.wantCode)
			}
			wantExecs := 1
			if tc.wantCode != codes.OK {
				wantExecs = 0
				if a := e.actions(t); len(a) != 0 {
					t.Errorf("API calls = %v, want none", a)
				}
			} else if res.Phase != v1alpha1.PhaseSucceeded {
				t.Errorf("phase = %q, want Succeeded", res.Phase)
			}
			if n := len(e.exec.Calls()); n != wantExecs {
				t.Errorf("%d execs, want %d", n, wantExecs)
			}
		})
	}
}

// Every line a request logs carries the triggering event's id and the request's namespace and Resume, a
// failure is logged once, and durations are seconds.
func TestRequestLogLines(t *testing.T) {
	const event = `{"id":"ev-42","source":"resume-source","specversion":"1.0","type":"resource","subject":"resume",` +
		`"time":"2026-05-04T10:11:12Z","datacontenttype":"application/json","data":{}}`
	t.Run("released", func(t *testing.T) {
		wf, pod, _ := pausedStep(fixture.PauseAfter)
		e := newEnv(t, wf, pod, resumeObj(ns, "u-1", "wf-1", "main", nil))
		if _, err := e.execute(t, `{"namespace":"argo","resume":"resume-1"}`, event); err != nil {
			t.Fatal(err)
		}
		checkRequestLines(t, e.logs.AllEntries(), 0)
	})
	t.Run("refused", func(t *testing.T) {
		e := newEnv(t, resumeObj(ns, "u-1", "wf-1", "main", map[string]any{
			"workflow": map[string]any{"name": "wf-1", "uid": "gone"},
		}))
		if _, err := e.execute(t, `{"namespace":"argo","resume":"resume-1"}`, event); codeOf(err) != codes.NotFound {
			t.Fatalf("Execute = %v, want NotFound", err)
		}
		checkRequestLines(t, e.logs.AllEntries(), 1)
	})
}

func checkRequestLines(t *testing.T, entries []*logrus.Entry, warnings int) {
	t.Helper()
	n, warned := 0, 0
	for _, en := range entries {
		if en.Data["method"] != nil {
			continue // the interceptor's line
		}
		n++
		if en.Data["event"] != "ev-42" || en.Data["namespace"] != ns || en.Data["resume"] != "resume-1" {
			t.Errorf("log line %q has fields %v, want event ev-42, namespace %s, resume resume-1", en.Message, en.Data, ns)
		}
		if d, ok := en.Data["duration"]; ok {
			if _, isFloat := d.(float64); !isFloat {
				t.Errorf("log line %q: duration %v (%T), want seconds as a float", en.Message, d, d)
			}
		}
		if en.Level <= logrus.WarnLevel {
			warned++
		}
	}
	if n == 0 {
		t.Fatal("the request logged nothing")
	}
	if warned != warnings {
		t.Errorf("%d warnings or errors, want %d: a failure is logged once", warned, warnings)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestApplyPolicy(t *testing.T) {
	tests := map[string]struct {
		in          []byte
		wantSuccess bool
		wantMsg     string
	}{
		"Succeeded": {
			in:          mustJSON(t, resume.Result{Phase: v1alpha1.PhaseSucceeded, Message: "released p/main (after)"}),
			wantSuccess: true, wantMsg: "Succeeded: released p/main (after)",
		},
		"Succeeded already final": {
			in:          mustJSON(t, resume.Result{Phase: v1alpha1.PhaseSucceeded, AlreadyFinal: true, Message: "x"}),
			wantSuccess: true, wantMsg: "already final, nothing done: Succeeded: x",
		},
		"Failed": {
			in:      mustJSON(t, resume.Result{Phase: v1alpha1.PhaseFailed, Message: "workflow gone"}),
			wantMsg: "Failed: workflow gone",
		},
		"Pending": {
			in:      mustJSON(t, resume.Result{Phase: v1alpha1.PhasePending}),
			wantMsg: "Pending",
		},
		"garbage bytes": {
			in:      []byte("\x00garbage"),
			wantMsg: "not a resume-trigger result",
		},
		"empty bytes": {
			in:      nil,
			wantMsg: "not a resume-trigger result",
		},
	}
	e := newEnv(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := e.client.ApplyPolicy(t.Context(), &triggerpb.ApplyPolicyRequest{Request: tc.in})
			if err != nil {
				t.Fatalf("ApplyPolicy: %v, want no RPC error", err)
			}
			if out.GetSuccess() != tc.wantSuccess {
				t.Errorf("success = %v, want %v", out.GetSuccess(), tc.wantSuccess)
			}
			if !strings.Contains(out.GetMessage(), tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", out.GetMessage(), tc.wantMsg)
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := map[string]struct {
		err  error
		want codes.Code
	}{
		"Invalid":                   {fault.Invalidf("x"), codes.InvalidArgument},
		"NotFound":                  {fault.NotFoundf("x"), codes.NotFound},
		"Precondition":              {fault.Preconditionf("x"), codes.FailedPrecondition},
		"Denied":                    {fault.Deniedf("x"), codes.PermissionDenied},
		"Transient":                 {fault.Transientf("x"), codes.Unavailable},
		"unclassified is retried":   {errors.New("x"), codes.Unavailable},
		"wrapped kind is kept":      {fmt.Errorf("outer: %w", fault.NotFoundf("x")), codes.NotFound},
		"context deadline retried":  {context.DeadlineExceeded, codes.Unavailable},
		"outermost kind wins":       {fault.Transientf("retry: %w", fault.Invalidf("x")), codes.Unavailable},
		"nil has no kind (retried)": {nil, codes.Unavailable},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := trigger.Code(tc.err); got != tc.want {
				t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// handlerFunc is a trigger.Handler made of a function.
type handlerFunc func(ctx context.Context, req request.Request) (resume.Result, error)

func (f handlerFunc) Handle(ctx context.Context, req request.Request) (resume.Result, error) {
	return f(ctx, req)
}

func TestStandbyRefusesOnlyExecute(t *testing.T) {
	log, _ := logtest.NewNullLogger()
	var serving atomic.Bool
	called := 0
	handler := handlerFunc(func(context.Context, request.Request) (resume.Result, error) {
		called++
		return resume.Result{Phase: v1alpha1.PhaseSucceeded}, nil
	})
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(trigger.Standby(serving.Load)))
	triggerpb.RegisterTriggerServer(gs, newServer(t, handler, log))
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); gs.Stop() })
	client := triggerpb.NewTriggerClient(conn)
	req := &triggerpb.ExecuteRequest{Resource: []byte(`{"namespace":"argo","resume":"r"}`)}

	_, err = client.Execute(t.Context(), req)
	if codeOf(err) != codes.Unavailable || !strings.Contains(err.Error(), "standing by") || called != 0 {
		t.Fatalf("Execute on a standby = %v (handler called %d times), want Unavailable standing by and no call", err, called)
	}
	if _, err := client.FetchResource(t.Context(), &triggerpb.FetchResourceRequest{Resource: []byte("namespace: argo")}); err != nil {
		t.Errorf("FetchResource on a standby: %v, want an answer (it acts on nothing)", err)
	}
	serving.Store(true)
	if _, err := client.Execute(t.Context(), req); err != nil || called != 1 {
		t.Fatalf("Execute on the leader = %v (handler called %d times), want it carried out", err, called)
	}
}

func TestInterceptors(t *testing.T) {
	const valid = `{"namespace":"argo","resume":"r"}`
	type seen struct {
		hasDeadline bool
		err         error
		waited      time.Duration
	}
	tests := map[string]struct {
		deadline time.Duration
		handler  func(chan<- seen) handlerFunc
		wantCode codes.Code
		wantMsg  string
		check    func(t *testing.T, s seen, bound time.Duration)
		wantLog  string // a log entry with this message and the method
	}{
		"Recover turns a panicking handler into Internal": {
			deadline: time.Minute,
			handler: func(chan<- seen) handlerFunc {
				return func(context.Context, request.Request) (resume.Result, error) { panic("boom") }
			},
			wantCode: codes.Internal,
			wantMsg:  "internal error in " + triggerpb.Trigger_Execute_FullMethodName,
			wantLog:  "handler panicked",
		},
		"Deadline cancels the handler's context after the bound": {
			deadline: 100 * time.Millisecond,
			handler: func(out chan<- seen) handlerFunc {
				return func(ctx context.Context, _ request.Request) (resume.Result, error) {
					start := time.Now()
					_, ok := ctx.Deadline()
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
					}
					out <- seen{hasDeadline: ok, err: ctx.Err(), waited: time.Since(start)}
					return resume.Result{}, ctx.Err()
				}
			},
			wantCode: codes.Unavailable,
			check: func(t *testing.T, s seen, bound time.Duration) {
				if !s.hasDeadline {
					t.Error("the handler's context had no deadline")
				}
				if !errors.Is(s.err, context.DeadlineExceeded) {
					t.Errorf("handler ctx error = %v, want DeadlineExceeded", s.err)
				}
				if s.waited > bound+2*time.Second {
					t.Errorf("handler waited %s, want about %s", s.waited, bound)
				}
			},
			// Execute's failure is logged by the service, with the request's fields: here only the debug line.
			wantLog: "rpc done",
		},
		"a handler within the bound is not cancelled": {
			deadline: 5 * time.Second,
			handler: func(out chan<- seen) handlerFunc {
				return func(ctx context.Context, _ request.Request) (resume.Result, error) {
					time.Sleep(20 * time.Millisecond)
					out <- seen{err: ctx.Err()}
					return resume.Result{Phase: v1alpha1.PhaseSucceeded}, nil
				}
			},
			check: func(t *testing.T, s seen, _ time.Duration) {
				if s.err != nil {
					t.Errorf("handler ctx error = %v, want none", s.err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			log, hook := logtest.NewNullLogger()
			log.SetLevel(logrus.DebugLevel)
			ch := make(chan seen, 1)
			client := serve(t, newServer(t, tc.handler(ch), log), log, tc.deadline)
			_, err := client.Execute(t.Context(), &triggerpb.ExecuteRequest{Resource: []byte(valid)})
			if codeOf(err) != tc.wantCode {
				t.Fatalf("Execute = %v, want %v", err, tc.wantCode)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", status.Convert(err).Message(), tc.wantMsg)
			}
			if tc.check != nil {
				select {
				case s := <-ch:
					tc.check(t, s, tc.deadline)
				case <-time.After(10 * time.Second):
					t.Fatal("the handler never reported")
				}
			}
			// The server keeps serving after a panic or a timeout.
			if _, err := client.FetchResource(t.Context(), &triggerpb.FetchResourceRequest{}); err != nil {
				t.Errorf("FetchResource after the failure: %v", err)
			}
			if tc.wantLog != "" {
				found := false
				for _, en := range hook.AllEntries() {
					if en.Message == tc.wantLog && en.Data["method"] == triggerpb.Trigger_Execute_FullMethodName {
						found = true
					}
				}
				if !found {
					t.Errorf("no %q log entry for Execute among %d entries", tc.wantLog, len(hook.AllEntries()))
				}
			}
		})
	}
}
