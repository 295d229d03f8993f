package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// marker is the one exec the suite expects: the release of container main after its command.
var marker = []string{"touch", rig.MarkerDir + "/ctr/main/after"}

// target is one paused pod of a fan Workflow and the Resume that names its node.
type target struct {
	Workflow, Node, Pod, Resume string
	UID                         string // the Resume's, once created
	// anyFinal: the fault destroyed the pod, so any final phase is right (Failed: nothing to release).
	anyFinal bool
}

// fanWorkflow runs n pods of template fan side by side, each paused after its command.
func fanWorkflow(name string, n int) *wfv1.Workflow {
	count := intstr.FromInt(n)
	return &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: wfv1.WorkflowSpec{
			Entrypoint: "main",
			Templates: []wfv1.Template{
				{Name: "main", Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{Name: "fan", Template: "fan", WithSequence: &wfv1.Sequence{Count: &count}}}}}},
				{Name: "fan", Container: &corev1.Container{
					Image: "busybox", Command: []string{"echo", "step ran"},
					Env: []corev1.EnvVar{{Name: "ARGO_DEBUG_PAUSE_AFTER", Value: "true"}},
				}},
			},
		},
	}
}

// fan submits a fan Workflow of n pods and returns once Argo's controller runs all of them and each holds
// main at its pause. Its pods become targets of the suite.
func (s *suite) fan(t *testing.T, workflow string, n int) []*target {
	t.Helper()
	ctx := rig.Context(t, 3*time.Minute)
	began := time.Now()
	if _, err := s.c.SubmitWorkflow(ctx, fanWorkflow(workflow, n)); err != nil {
		t.Fatal(err)
	}
	pods, err := s.c.Rig.WaitPods(ctx, namespace, workflow, func(pods []corev1.Pod) bool {
		paused := 0
		for i := range pods {
			if s.c.Rig.Paused(&pods[i], "main") {
				paused++
			}
		}
		return paused == n
	})
	if err != nil {
		t.Fatal(err)
	}
	wf, err := s.c.Rig.WaitWorkflow(ctx, namespace, workflow, func(wf *wfv1.Workflow) bool {
		for _, p := range pods {
			if n, ok := wf.Status.Nodes[p.Annotations["workflows.argoproj.io/node-id"]]; !ok || n.Type != wfv1.NodeTypePod {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*target
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pods {
		node := wf.Status.Nodes[p.Annotations["workflows.argoproj.io/node-id"]]
		out = append(out, &target{Workflow: workflow, Node: node.Name, Pod: p.Name, Resume: "r-" + p.Name})
		s.pods[p.Name] = true
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	t.Logf("%d paused pods of workflow %s in %v", n, workflow, time.Since(began).Round(time.Millisecond))
	return out
}

// createResume creates the Resume of tg: its workflow, template fan and its node by name.
func (s *suite) createResume(ctx context.Context, tg *target) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"name": tg.Resume, "namespace": namespace},
		"spec":       map[string]any{"Workflow-ID": tg.Workflow, "TemplateName": "fan", "nodeName": tg.Node},
	}}
	created, err := s.c.Dynamic().Resource(v1alpha1.Resource).Namespace(namespace).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create resume %s: %w", tg.Resume, err)
	}
	tg.UID = string(created.GetUID())
	return nil
}

// createResumes creates the Resumes of targets with up to workers at once (a burst, as a script or
// another controller makes them).
func (s *suite) createResumes(t *testing.T, targets []*target, workers int) {
	t.Helper()
	ctx := rig.Context(t, 2*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, len(targets))
	next := atomic.Int32{}
	for range min(workers, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(targets); i = int(next.Add(1)) - 1 {
				if err := s.createResume(ctx, targets[i]); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// resumes reads the suite's Resumes by name.
func (s *suite) resumes(ctx context.Context) (map[string]*v1alpha1.Resume, error) {
	list, err := s.c.Dynamic().Resource(v1alpha1.Resource).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]*v1alpha1.Resume{}
	for _, u := range list.Items {
		var res v1alpha1.Resume
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &res); err != nil {
			return nil, fmt.Errorf("decode resume %s: %w", u.GetName(), err)
		}
		out[res.Name] = &res
	}
	return out, nil
}

// gate holds the first exec into a pod's main until it is opened or the exec's client goes away (the
// exec then ends without a marker); later execs run at once. What the held exec returns once opened is
// fail (nil: touch as usual).
type gate struct {
	arrived, opened      chan struct{}
	arriveOnce, openOnce sync.Once
	n                    atomic.Int32
	fail                 error
}

func (s *suite) gate(pod string, fail error) *gate {
	g := &gate{arrived: make(chan struct{}), opened: make(chan struct{}), fail: fail}
	s.c.Rig.Kubelet().SetBehaviour(namespace, pod, "main", rig.Before("gated", func(ctx context.Context, _ rig.Call, _, _ io.Writer) error {
		if g.n.Add(1) > 1 {
			return nil
		}
		g.arriveOnce.Do(func() { close(g.arrived) })
		select {
		case <-g.opened:
			return g.fail
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}))
	return g
}

// wait returns once the first exec reached the gate, within a minute.
func (g *gate) wait(t *testing.T) {
	t.Helper()
	const within = time.Minute
	select {
	case <-g.arrived:
	case <-time.After(within):
		t.Fatalf("no exec reached the gated pod within %v (execs: %s)", within, chain.FormatCalls(s.c.Calls()))
	}
}

func (g *gate) open() { g.openOnce.Do(func() { close(g.opened) }) }

// window is where a fault's execs start: indexes into the kubelet's calls and the API server's audit log.
type window struct {
	calls, audit int
	began        time.Time
}

// begin marks the start of a fault.
func (s *suite) begin(t *testing.T) window {
	t.Helper()
	events, err := s.c.Rig.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	return window{calls: len(s.c.Calls()), audit: len(events), began: time.Now()}
}

// serverExec is an exec resume-trigger asked the API server for, as the audit log shows it.
type serverExec struct {
	Namespace, Pod, Container string
	Argv                      []string
	Code                      int
}

// serverExecs are the pods/exec requests of resume-trigger's identity (every replica has it) among the
// audit events from index from on. The API server audits the exec's container and command in the
// request URI, so an exec the server attempted is seen even if it never reached a kubelet.
func (s *suite) serverExecs(from int) ([]serverExec, error) {
	events, err := s.c.Rig.AuditEvents()
	if err != nil {
		return nil, err
	}
	identity := "system:serviceaccount:" + namespace + ":" + s.c.ServerServiceAccount
	var out []serverExec
	for _, e := range events[min(from, len(events)):] {
		if e.Identity() != identity || e.Resource() != "pods/exec" {
			continue
		}
		u, err := url.Parse(e.RequestURI)
		if err != nil {
			return nil, fmt.Errorf("audit event %s: request URI %q: %w", e.AuditID, e.RequestURI, err)
		}
		// /api/v1/namespaces/<ns>/pods/<pod>/exec
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		x := serverExec{Argv: u.Query()["command"], Container: u.Query().Get("container"), Code: e.Code()}
		if len(parts) == 7 && parts[2] == "namespaces" && parts[4] == "pods" && parts[6] == "exec" {
			x.Namespace, x.Pod = parts[3], parts[5]
		}
		out = append(out, x)
	}
	return out, nil
}

// wrongExecs are the execs of w that are not a release of a targeted container: any exec resume-trigger
// asked for other than a target's marker in its main, and any marker exec that reached a kubelet outside
// the targets (whoever asked). Argo's own execs (its controller signals wait containers) are neither.
func (s *suite) wrongExecs(w window) ([]string, error) {
	execs, err := s.serverExecs(w.audit)
	if err != nil {
		return nil, err
	}
	calls := s.c.Calls()
	s.mu.Lock()
	defer s.mu.Unlock()
	var wrong []string
	for _, x := range execs {
		if x.Namespace != namespace || !s.pods[x.Pod] || x.Container != "main" || !slices.Equal(x.Argv, marker) {
			wrong = append(wrong, fmt.Sprintf("resume-trigger asked for %q in %s/%s container %s (HTTP %d)", x.Argv, x.Namespace, x.Pod, x.Container, x.Code))
		}
	}
	for _, call := range calls[min(w.calls, len(calls)):] {
		if slices.Equal(call.Argv, marker) && !s.pods[call.Pod] {
			wrong = append(wrong, fmt.Sprintf("marker exec into %s/%s container %s, not a target (%s)", call.Namespace, call.Pod, call.Container, call.Outcome))
		}
	}
	return wrong, nil
}

// judge waits until every target's Resume is final (or the wait ends), then counts what the fault did:
// wrong execs since w began, lost Resumes, duplicate releases. It fails the test on a wrong exec, a lost
// Resume, or an outcome that is not the truth (Succeeded without a marker, not Succeeded although the pod
// was left alone), and returns the counts.
func (s *suite) judge(t *testing.T, injected int, targets []*target, w window) row {
	t.Helper()
	ctx := rig.Context(t, 3*time.Minute)
	var last map[string]*v1alpha1.Resume
	waitErr := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := s.resumes(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // the API server may be coming back; the deadline bounds the wait
		}
		last = got
		for _, tg := range targets {
			if r := got[tg.Resume]; r == nil || !r.Status.Phase.Final() {
				return false, nil
			}
		}
		return true, nil
	})
	took := time.Since(w.began)

	r := row{Injected: injected, Resumes: len(targets), Took: took}
	wrong, err := s.wrongExecs(w)
	if err != nil {
		t.Fatal(err)
	}
	r.WrongExecs = len(wrong)
	calls := s.c.Calls()
	var lost, untrue []string
	for _, tg := range targets {
		released := len(successfulMarkers(calls, tg.Pod))
		if released > 0 {
			r.Released++
			r.Duplicate += released - 1
		}
		res := last[tg.Resume]
		switch {
		case res == nil || !res.Status.Phase.Final():
			phase := "missing"
			if res != nil {
				phase = fmt.Sprintf("%q (%s)", res.Status.Phase, res.Status.Message)
			}
			lost = append(lost, tg.Resume+": "+phase)
		case res.Status.Phase == v1alpha1.PhaseSucceeded && released == 0:
			untrue = append(untrue, fmt.Sprintf("%s is Succeeded but its pod %s was never released", tg.Resume, tg.Pod))
		case res.Status.Phase != v1alpha1.PhaseSucceeded && !tg.anyFinal:
			untrue = append(untrue, fmt.Sprintf("%s is %s/%s (%s) although its pod %s was left paused", tg.Resume, res.Status.Phase, res.Status.Reason, res.Status.Message, tg.Pod))
		}
	}
	r.LostResumes = len(lost)
	if len(wrong) > 0 {
		t.Errorf("wrong execs:\n%s", strings.Join(wrong, "\n"))
	}
	if len(lost) > 0 {
		t.Errorf("lost Resumes (not final within the wait: %v): %s", waitErr, strings.Join(lost, "; "))
	}
	if len(untrue) > 0 {
		t.Errorf("outcomes that are not the truth: %s", strings.Join(untrue, "; "))
	}
	if t.Failed() {
		t.Logf("kubelet execs since the fault began: %s\n%s", chain.FormatCalls(calls[min(w.calls, len(calls)):]), s.c.LogTails(40))
	}
	return r
}

// resumeEvent is the request the Sensor sends for a Resume: the trigger's keys as FetchResource returned
// them with the Sensor's parameters applied, and the CloudEvent as payload.
func resumeEvent(tg *target, seq int) (resource, payload []byte, err error) {
	resource, err = json.Marshal(map[string]string{
		"namespace": namespace, "resume": tg.Resume, "resumeUID": tg.UID, "workflow": tg.Workflow,
		"template": "fan", "nodeID": "", "nodeName": tg.Node, "container": "", "stage": "",
	})
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": v1alpha1.Kind,
		"metadata": map[string]any{"name": tg.Resume, "namespace": namespace, "uid": tg.UID},
		"spec":     map[string]any{"Workflow-ID": tg.Workflow, "TemplateName": "fan", "nodeName": tg.Node},
	})
	if err != nil {
		return nil, nil, err
	}
	payload, err = json.Marshal(map[string]any{
		"id": fmt.Sprintf("fault-%s-%d", tg.Resume, seq), "source": "resume-resource", "specversion": "1.0",
		"type": "resource", "subject": "resumes", "time": time.Now().UTC().Format(time.RFC3339Nano),
		"datacontenttype": "application/json", "data": json.RawMessage(data),
	})
	return resource, payload, err
}
