package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Step is a debug-paused Workflow step made by Argo's workflow-controller: a running Workflow whose Pod
// node runs in Pod, whose container Container waits for /var/run/argo/ctr/<Container>/<Stage> once the
// pod runs.
type Step struct {
	Namespace, Workflow, Template, NodeID, NodeName, Pod, Container string
	Stage                                                           v1alpha1.Stage
	// WorkflowUID is the run the step belongs to: the UID the API server gave the Workflow.
	WorkflowUID types.UID
}

// MarkerArgv is the exec that releases the step.
func (s *Step) MarkerArgv() []string {
	return []string{"touch", fmt.Sprintf("%s/ctr/%s/%s", rig.MarkerDir, s.Container, s.Stage)}
}

// CreatePausedStep submits Workflow workflow (the README's Workflow under that name: step "pause" of
// template pause, main paused after its command) and returns once Argo's controller runs the step and
// its pod holds main at the pause. It is CreateStep followed by StartStep.
func (c *Chain) CreatePausedStep(ctx context.Context, workflow string) (*Step, error) {
	return c.CreatePausedStepIn(ctx, c.Namespace, workflow)
}

// CreatePausedStepIn is CreatePausedStep in namespace ns: Namespace, or one of Options.ExtraNamespaces.
func (c *Chain) CreatePausedStepIn(ctx context.Context, ns, workflow string) (*Step, error) {
	if err := c.submitReadmeWorkflow(ctx, ns, workflow, rig.HoldNone); err != nil {
		return nil, err
	}
	return c.waitPausedStepIn(ctx, ns, workflow, "pause", "main", v1alpha1.StageAfter)
}

func (c *Chain) submitReadmeWorkflow(ctx context.Context, ns, workflow string, hold rig.Hold) error {
	wf, err := rig.ReadmeWorkflow()
	if err != nil {
		return err
	}
	wf.Name = workflow
	if err := c.Rig.HoldPods(ctx, ns, workflow, hold); err != nil {
		return err
	}
	_, err = c.submitWorkflowIn(ctx, ns, wf)
	return err
}

// CreateStep submits Workflow workflow as CreatePausedStep does, but the test kubelet leaves its pods
// unscheduled: it returns once the controller made the step's node (Pending) and its pod (Pending, bound
// to no node). ScheduleStep binds the pod, StartStep runs it.
func (c *Chain) CreateStep(ctx context.Context, workflow string) (*Step, error) {
	if err := c.submitReadmeWorkflow(ctx, c.Namespace, workflow, rig.HoldUnbound); err != nil {
		return nil, err
	}
	wf, err := c.Rig.WaitWorkflow(ctx, c.Namespace, workflow, func(wf *wfv1.Workflow) bool {
		n := wf.Status.Nodes.FindByDisplayName("pause")
		return n != nil && n.Type == wfv1.NodeTypePod
	})
	if err != nil {
		return nil, err
	}
	node := wf.Status.Nodes.FindByDisplayName("pause")
	pods, err := c.Rig.WaitPods(ctx, c.Namespace, workflow, func(pods []corev1.Pod) bool {
		return slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Annotations[argoNodeID] == node.ID })
	})
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.Annotations[argoNodeID] == node.ID })
	return &Step{Namespace: c.Namespace, Workflow: workflow, Template: argoTemplate(node), NodeID: node.ID, NodeName: node.Name,
		Pod: pods[i].Name, Container: "main", Stage: v1alpha1.StageAfter, WorkflowUID: wf.UID}, nil
}

// ScheduleStep binds the step's pod to the rig's node but starts nothing: Pending, as while its images
// are pulled. StartStep then runs it.
func (c *Chain) ScheduleStep(ctx context.Context, step *Step) (*corev1.Pod, error) {
	if err := c.Rig.HoldPods(ctx, step.Namespace, step.Workflow, rig.HoldScheduled); err != nil {
		return nil, err
	}
	return c.Rig.WaitPod(ctx, step.Namespace, step.Pod, func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
}

// StartStep lets the test kubelet run the step's pod: it returns once the step's container holds at its
// pause, or has already ended (released by a Resume that was waiting for it), with the pod as stored. With a
// Resume already waiting, the marker may be touched as soon as the container runs: on Argo's executor the
// emissary then goes on without ever being seen paused, and the pod can end between two looks.
func (c *Chain) StartStep(ctx context.Context, step *Step) (*corev1.Pod, error) {
	if err := c.Rig.HoldPods(ctx, step.Namespace, step.Workflow, rig.HoldNone); err != nil {
		return nil, err
	}
	return c.Rig.WaitPod(ctx, step.Namespace, step.Pod, func(p *corev1.Pod) bool {
		return c.Rig.Paused(p, step.Container) || rig.Terminated(p, step.Container)
	})
}

// ReplaceWorkflow deletes the step's Workflow (its run's UID as precondition) and what it owns, and
// submits it again under the same name (CreateStep), as deleting and resubmitting the same manifest does:
// a new run with a new UID, whose node, pod name and container are the old ones. No garbage collector
// runs in the rig, so the run's pods and WorkflowTaskResults are deleted here, as it would. The new step's
// pod is not started.
func (c *Chain) ReplaceWorkflow(ctx context.Context, step *Step) (*Step, error) {
	pods := c.Client().CoreV1().Pods(step.Namespace)
	wfs := c.workflows.ArgoprojV1alpha1().Workflows(step.Namespace)
	results := c.workflows.ArgoprojV1alpha1().WorkflowTaskResults(step.Namespace)
	uid := step.WorkflowUID
	if err := wfs.Delete(ctx, step.Workflow, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
		return nil, fmt.Errorf("delete workflow %s (uid %s): %w", step.Workflow, uid, err)
	}
	owned := metav1.ListOptions{LabelSelector: argoWorkflowLabel + "=" + step.Workflow}
	podList, err := pods.List(ctx, owned)
	if err != nil {
		return nil, err
	}
	for _, p := range podList.Items {
		if ownedBy(p.OwnerReferences, uid) {
			if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("delete pod %s: %w", p.Name, err)
			}
		}
	}
	resultList, err := results.List(ctx, owned)
	if err != nil {
		return nil, err
	}
	for _, r := range resultList.Items {
		if ownedBy(r.OwnerReferences, uid) {
			if err := results.Delete(ctx, r.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("delete workflowtaskresult %s: %w", r.Name, err)
			}
		}
	}
	err = rig.Eventually(ctx, func() error {
		if _, err := pods.Get(ctx, step.Pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s is not gone yet (%v)", step.Pod, err)
		}
		if _, err := wfs.Get(ctx, step.Workflow, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("workflow %s is not gone yet (%v)", step.Workflow, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	next, err := c.CreateStep(ctx, step.Workflow)
	if err != nil {
		return nil, err
	}
	if next.WorkflowUID == uid {
		return nil, fmt.Errorf("workflow %s was created again with the old uid %s", step.Workflow, uid)
	}
	return next, nil
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	return slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == uid })
}

func ptr[T any](v T) *T { return &v }

// ResumeOption sets an optional field of a Resume's spec.
type ResumeOption func(spec map[string]any)

// ActiveDeadline sets spec.activeDeadlineSeconds.
func ActiveDeadline(d time.Duration) ResumeOption {
	return func(spec map[string]any) { spec["activeDeadlineSeconds"] = int64(d / time.Second) }
}

// CreateResume creates Resume name for step through the API (dynamic client), as a user would, in the
// step's namespace: spec Workflow-ID and TemplateName, plus what opts set.
func (c *Chain) CreateResume(ctx context.Context, name string, step *Step, opts ...ResumeOption) (*unstructured.Unstructured, error) {
	spec := map[string]any{"Workflow-ID": step.Workflow, "TemplateName": step.Template}
	for _, o := range opts {
		o(spec)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"name": name, "namespace": step.Namespace},
		"spec":       spec,
	}}
	created, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(step.Namespace).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create resume %s: %w", name, err)
	}
	return created, nil
}

// GetResume reads a Resume of Namespace.
func (c *Chain) GetResume(ctx context.Context, name string) (*v1alpha1.Resume, error) {
	return c.GetResumeIn(ctx, c.Namespace, name)
}

// GetResumeIn reads Resume name of namespace ns.
func (c *Chain) GetResumeIn(ctx context.Context, ns, name string) (*v1alpha1.Resume, error) {
	u, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var res v1alpha1.Resume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &res); err != nil {
		return nil, fmt.Errorf("decode resume %s: %w", name, err)
	}
	return &res, nil
}

// WaitResumePhase polls until the Resume's status.phase is phase. It fails early when the Resume reaches
// another final phase.
func (c *Chain) WaitResumePhase(ctx context.Context, name string, phase v1alpha1.Phase) (*v1alpha1.Resume, error) {
	return c.WaitResumeOutcome(ctx, name, phase, "")
}

// WaitResumeOutcome polls until the Resume's status.phase is phase and, unless reason is "", its
// status.reason is reason. It fails early when the Resume reaches another final outcome.
func (c *Chain) WaitResumeOutcome(ctx context.Context, name string, phase v1alpha1.Phase, reason string) (*v1alpha1.Resume, error) {
	want := string(phase)
	if reason != "" {
		want += "/" + reason
	}
	return c.WaitResume(ctx, name, func(res *v1alpha1.Resume) error {
		err := fmt.Errorf("resume %s is %q/%q (%s), want %s", name, res.Status.Phase, res.Status.Reason, res.Status.Message, want)
		switch {
		case res.Status.Phase == phase && (reason == "" || res.Status.Reason == reason):
			return nil
		case res.Status.Phase.Final():
			return Settled(err)
		}
		return err
	})
}

// WaitResume polls the Resume until check returns nil for it, and returns it; otherwise, once ctx ends,
// check's last error (which should say what it waited for and what it saw). A check that wraps its error
// with Settled ends the wait at once: waiting longer cannot help.
func (c *Chain) WaitResume(ctx context.Context, name string, check func(*v1alpha1.Resume) error) (*v1alpha1.Resume, error) {
	var last *v1alpha1.Resume
	var settled settledError
	err := rig.Eventually(ctx, func() error {
		res, err := c.GetResume(ctx, name)
		if err != nil {
			return err
		}
		last = res
		err = check(res)
		if errors.As(err, &settled) {
			return nil // ends the poll; settled.err is returned below
		}
		return err
	})
	if settled.err != nil {
		return last, settled.err
	}
	return last, err
}

// Settled marks an error of a WaitResume check as final: the Resume reached a state it never leaves.
func Settled(err error) error { return settledError{err: err} }

type settledError struct{ err error }

func (e settledError) Error() string { return e.err.Error() }
func (e settledError) Unwrap() error { return e.err }

// MarkerCalls are the execs into the step's pod that created its marker (any outcome).
func (c *Chain) MarkerCalls(step *Step) []rig.Call {
	var out []rig.Call
	for _, call := range c.Rig.Kubelet().CallsFor(step.Namespace) {
		if call.Pod == step.Pod && slices.Equal(call.Argv, step.MarkerArgv()) {
			out = append(out, call)
		}
	}
	return out
}

// SucceededMarkerCalls are MarkerCalls that exited 0.
func (c *Chain) SucceededMarkerCalls(step *Step) []rig.Call {
	var out []rig.Call
	for _, call := range c.MarkerCalls(step) {
		if call.Outcome == "exit 0" {
			out = append(out, call)
		}
	}
	return out
}

// WaitMarker waits until the kubelet has run the step's marker exec successfully and returns that call
// (its Time is when the kubelet received it).
func (c *Chain) WaitMarker(ctx context.Context, step *Step) (rig.Call, error) {
	var got rig.Call
	err := rig.Eventually(ctx, func() error {
		calls := c.SucceededMarkerCalls(step)
		if len(calls) == 0 {
			return fmt.Errorf("no successful %q into %s/%s yet (execs into the namespace: %s)", step.MarkerArgv(), step.Namespace, step.Pod, FormatCalls(c.Calls()))
		}
		got = calls[0]
		return nil
	})
	return got, err
}

// WaitStepDone waits until Argo's controller marks the step's node Succeeded (the emulated emissary ended
// main once its marker existed, and the test kubelet wrote what Argo's wait container writes) and the
// step's pod Succeeded.
func (c *Chain) WaitStepDone(ctx context.Context, step *Step) error {
	if _, err := c.Rig.WaitPodPhase(ctx, step.Namespace, step.Pod, corev1.PodSucceeded); err != nil {
		return err
	}
	_, err := c.Rig.WaitWorkflow(ctx, step.Namespace, step.Workflow, func(wf *wfv1.Workflow) bool {
		return wf.UID == step.WorkflowUID && wf.Status.Nodes[step.NodeID].Phase == wfv1.NodeSucceeded
	})
	return err
}

// WebhookRequest is the JSON body of the webhook EventSource's endpoint.
type WebhookRequest struct {
	Namespace string `json:"namespace"`
	Workflow  string `json:"workflow"`
	Template  string `json:"template,omitempty"`
	NodeID    string `json:"nodeID,omitempty"`
	NodeName  string `json:"nodeName,omitempty"`
	Container string `json:"container,omitempty"`
	Stage     string `json:"stage,omitempty"`
}

// ReleaseRequest is the webhook body that releases step.
func (s *Step) ReleaseRequest() WebhookRequest {
	return WebhookRequest{Namespace: s.Namespace, Workflow: s.Workflow, Template: s.Template}
}

// PostWebhook POSTs body as JSON to the webhook EventSource with "Authorization: Bearer token" (no header
// when token is empty) and returns the HTTP status and response body.
func (c *Chain) PostWebhook(ctx context.Context, token string, body any) (int, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.WebhookURL, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(out)), nil
}

// Metric reads one sample of resume-trigger's /metrics: the series name with exactly labels. A series
// not exported yet reads 0.
func (c *Chain) Metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	body, err := get(ctx, c.MetricsURL+"/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n, lbls, _ := strings.Cut(series, "{")
		if n != name || !sameLabels(strings.TrimSuffix(lbls, "}"), labels) {
			continue
		}
		return strconv.ParseFloat(strings.TrimSpace(value), 64)
	}
	return 0, nil
}

func sameLabels(text string, want map[string]string) bool {
	got := map[string]string{}
	for _, kv := range strings.Split(text, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			got[k] = strings.Trim(v, `"`)
		}
	}
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// FormatCalls renders kubelet calls one a line.
func FormatCalls(calls []rig.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s/%s container %s argv %q -> %s", c.Time.Format("15:04:05.000"), c.Namespace, c.Pod, c.Container, c.Argv, c.Outcome)
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}
