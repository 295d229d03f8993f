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
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Step is a debug-paused Workflow step: a running Workflow whose Pod node runs in Pod, whose container
// Container waits for /var/run/argo/ctr/<Container>/after once the pod runs (StartStep).
type Step struct {
	Namespace, Workflow, Template, NodeID, NodeName, Pod, Container string
	Stage                                                           v1alpha1.Stage
	// WorkflowUID is the run the step belongs to: the UID the API server gave the Workflow.
	WorkflowUID types.UID

	pod *corev1.Pod // what StartStep runs
}

// MarkerArgv is the exec that releases the step.
func (s *Step) MarkerArgv() []string {
	return []string{"touch", fmt.Sprintf("%s/ctr/%s/%s", rig.MarkerDir, s.Container, s.Stage)}
}

// CreatePausedStep creates Workflow workflow (root Steps node, step group, Pod node of template "pause")
// and its Argo-shaped pod (wait + main with ARGO_DEBUG_PAUSE_AFTER=true), running on the test kubelet.
// It is CreateStep followed by StartStep.
func (c *Chain) CreatePausedStep(ctx context.Context, workflow string) (*Step, error) {
	step, err := c.CreateStep(ctx, workflow)
	if err != nil {
		return nil, err
	}
	if _, err := c.StartStep(ctx, step); err != nil {
		return nil, err
	}
	return step, nil
}

// CreateStep creates Workflow workflow (root Steps node, step group, Running Pod node of template
// "pause") as the workflow-controller records it once it has decided to run the step and before the
// step's pod exists. A Resume for it waits (Pending) until StartStep runs the pod.
func (c *Chain) CreateStep(ctx context.Context, workflow string) (*Step, error) {
	const template = "pause"
	nodeName := workflow + "[0]." + template
	group := fixture.Node(workflow, workflow+"[0]", "[0]", wfv1.NodeTypeStepGroup, "")
	node := fixture.PodNode(workflow, nodeName, template, template)
	group.Children = []string{node.ID}
	wf := fixture.Workflow(c.Namespace, workflow, group, node)
	root := wf.Status.Nodes[workflow]
	root.Children = []string{group.ID}
	wf.Status.Nodes[workflow] = root
	wf.UID = ""
	created, err := c.workflows.ArgoprojV1alpha1().Workflows(c.Namespace).Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create workflow %s: %w", workflow, err)
	}
	pod := fixture.Pod(created, node, rig.ArgoPodName(workflow, template, nodeName), fixture.Container("main", fixture.PauseAfter))
	pod.UID = ""
	fixture.Own(pod, created)
	return &Step{Namespace: c.Namespace, Workflow: workflow, Template: template, NodeID: node.ID, NodeName: nodeName,
		Pod: pod.Name, Container: "main", Stage: v1alpha1.StageAfter, WorkflowUID: created.UID, pod: pod}, nil
}

// ScheduleStep creates the step's pod, controlled by the step's Workflow run, as scheduled but not
// started yet: Pending, every container Waiting (ContainerCreating). StartStep then starts it.
func (c *Chain) ScheduleStep(ctx context.Context, step *Step) (*corev1.Pod, error) {
	if step.pod == nil {
		return nil, fmt.Errorf("step %s/%s was not made by CreateStep", step.Workflow, step.NodeName)
	}
	return c.Rig.RunPod(ctx, step.pod, rig.Pending())
}

// StartStep sets the step's pod running on the test kubelet, creating it first unless ScheduleStep did:
// main now waits for its marker. It returns once the API server stores the pod as Running, with the pod
// as stored.
func (c *Chain) StartStep(ctx context.Context, step *Step) (*corev1.Pod, error) {
	if step.pod == nil {
		return nil, fmt.Errorf("step %s/%s was not made by CreateStep", step.Workflow, step.NodeName)
	}
	pods := c.Client().CoreV1().Pods(step.Namespace)
	pod, err := pods.Get(ctx, step.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return c.Rig.RunPod(ctx, step.pod)
	case err != nil:
		return nil, err
	case pod.Status.Phase != corev1.PodPending:
		return nil, fmt.Errorf("pod %s is %s, not Pending: it was started before", pod.Name, pod.Status.Phase)
	}
	fixture.SetRunning(pod)
	for i := range pod.Status.Conditions {
		pod.Status.Conditions[i].Status = corev1.ConditionTrue
		pod.Status.Conditions[i].LastTransitionTime = metav1.Now()
	}
	pod.Status.StartTime = &metav1.Time{Time: time.Now()}
	updated, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("start pod %s: %w", pod.Name, err)
	}
	return updated, nil
}

// ReplaceWorkflow deletes the step's Workflow, and its pod if it has one, waits until both are gone and
// creates the Workflow again under the same name, as deleting and resubmitting the same manifest does: a
// new run with a new UID, whose node, pod name and container are the old ones. The new step's pod is not
// started.
func (c *Chain) ReplaceWorkflow(ctx context.Context, step *Step) (*Step, error) {
	pods := c.Client().CoreV1().Pods(step.Namespace)
	wfs := c.workflows.ArgoprojV1alpha1().Workflows(step.Namespace)
	if err := pods.Delete(ctx, step.Pod, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("delete pod %s: %w", step.Pod, err)
	}
	uid := step.WorkflowUID
	if err := wfs.Delete(ctx, step.Workflow, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
		return nil, fmt.Errorf("delete workflow %s (uid %s): %w", step.Workflow, uid, err)
	}
	err := rig.Eventually(ctx, func() error {
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

func ptr[T any](v T) *T { return &v }

// ResumeOption sets an optional field of a Resume's spec.
type ResumeOption func(spec map[string]any)

// ActiveDeadline sets spec.activeDeadlineSeconds.
func ActiveDeadline(d time.Duration) ResumeOption {
	return func(spec map[string]any) { spec["activeDeadlineSeconds"] = int64(d / time.Second) }
}

// CreateResume creates Resume name for step through the API (dynamic client), as a user would:
// spec Workflow-ID and TemplateName, plus what opts set.
func (c *Chain) CreateResume(ctx context.Context, name string, step *Step, opts ...ResumeOption) (*unstructured.Unstructured, error) {
	spec := map[string]any{"Workflow-ID": step.Workflow, "TemplateName": step.Template}
	for _, o := range opts {
		o(spec)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"name": name, "namespace": c.Namespace},
		"spec":       spec,
	}}
	created, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(c.Namespace).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create resume %s: %w", name, err)
	}
	return created, nil
}

// GetResume reads a Resume.
func (c *Chain) GetResume(ctx context.Context, name string) (*v1alpha1.Resume, error) {
	u, err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(c.Namespace).Get(ctx, name, metav1.GetOptions{})
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

// WaitStepDone waits until the step's pod Succeeded (the emulated emissary ends main once its marker exists).
func (c *Chain) WaitStepDone(ctx context.Context, step *Step) error {
	_, err := c.Rig.WaitPodPhase(ctx, step.Namespace, step.Pod, corev1.PodSucceeded)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MetricsURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
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
