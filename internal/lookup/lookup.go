package lookup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// NoWorkflowError is in the chain of the error Find returns when the named Workflow does not exist.
type NoWorkflowError struct {
	Namespace, Name string
}

func (e *NoWorkflowError) Error() string {
	return fmt.Sprintf("workflow %s not found in namespace %s: check Workflow-ID (the workflow must be in the Resume's own namespace)", e.Name, e.Namespace)
}

// IsNoWorkflow reports whether err says the named Workflow does not exist.
func IsNoWorkflow(err error) bool {
	var e *NoWorkflowError
	return errors.As(err, &e)
}

// Target is one paused container to release.
type Target struct {
	Namespace string
	Workflow  string
	Node      string // node id
	NodeName  string
	Pod       string
	PodUID    types.UID
	Container string
	Stage     v1alpha1.Stage
	// Others are the pod's other containers that mount /var/run/argo and may create the marker when
	// Container's image has no touch; Argo's own containers are never among them.
	Others []string
}

func (t Target) String() string {
	return fmt.Sprintf("pod %s container %s stage %s", t.Pod, t.Container, t.Stage)
}

// Skip is a candidate that was not released, and why.
type Skip struct {
	Node   string
	Pod    string
	Reason error
}

// Result is what a lookup found.
type Result struct {
	Workflow    string
	WorkflowUID types.UID
	Targets     []Target
	Skipped     []Skip
}

// Finder looks steps up with one GET of the Workflow and a GET of each picked node's pod by the name Argo
// gives it, or one label-selected LIST of the workflow's live pods when the names do not decide (or the
// step picks many nodes). It keeps no cache: memory does not grow with the number of workflows in the
// cluster, nor the cost of a lookup with the number of pods in the namespace.
type Finder struct {
	// Workflows reads a Workflow as JSON, which is decoded into argo.Workflow as it arrives: never into
	// Argo's full types, which hold every field a Workflow editor may fill.
	Workflows WorkflowReader
	Pods      kubernetes.Interface
	// Offloaded reads nodes that Argo offloaded to its database; nil refuses such workflows clearly.
	Offloaded NodeSource
}

// WorkflowReader reads one Workflow as the JSON the API server sends.
type WorkflowReader interface {
	Workflow(ctx context.Context, namespace, name string) (io.ReadCloser, error)
}

// RESTWorkflows reads Workflows from the API server with a REST client of the argoproj.io/v1alpha1 group.
type RESTWorkflows struct {
	Client rest.Interface
}

// Workflow implements WorkflowReader.
func (r RESTWorkflows) Workflow(ctx context.Context, namespace, name string) (io.ReadCloser, error) {
	return r.Client.Get().Namespace(namespace).Resource("workflows").Name(name).SetHeader("Accept", "application/json").Stream(ctx)
}

// Find returns the paused containers of the step in namespace ns. It fails when there is nothing to
// release; the error's fault.Kind says whether a retry can help.
func (f *Finder) Find(ctx context.Context, ns string, step request.Step) (Result, error) {
	wf, err := f.read(ctx, ns, step.Workflow)
	return f.find(ctx, ns, step, wf, err)
}

// read reads workflow name in ns. Its error is the API's NotFound as is, or classified.
func (f *Finder) read(ctx context.Context, ns, name string) (*argo.Workflow, error) {
	body, err := f.Workflows.Workflow(ctx, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, err
	case err != nil:
		return nil, apiError(fmt.Sprintf("get workflow %s/%s", ns, name), err)
	}
	defer func() { _ = body.Close() }()
	wf, err := argo.DecodeWorkflow(body)
	var limit *argo.LimitError
	switch {
	case errors.As(err, &limit):
		return nil, fault.Preconditionf("workflow %s/%s cannot be read: %w", ns, name, err)
	case err != nil:
		return nil, fault.Transientf("read workflow %s/%s: %w", ns, name, err)
	}
	return wf, nil
}

// Prefetch starts reading workflow name in ns at once, before the step to look up is known for sure (a
// Resume's spec is read meanwhile). Its Find uses that read for a step of the same workflow.
func (f *Finder) Prefetch(ctx context.Context, ns, name string) *Prefetched {
	p := &Prefetched{f: f, ns: ns, name: name, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.wf, p.err = f.read(ctx, ns, name)
	}()
	return p
}

// Prefetched is a Workflow being read ahead of its lookup.
type Prefetched struct {
	f        *Finder
	ns, name string
	done     chan struct{}
	wf       *argo.Workflow
	err      error
}

// Find is Finder.Find in namespace ns with the prefetched read, when step names the prefetched workflow
// in that namespace; otherwise it reads the step's own workflow.
func (p *Prefetched) Find(ctx context.Context, ns string, step request.Step) (Result, error) {
	if ns != p.ns || step.Workflow != p.name {
		return p.f.Find(ctx, ns, step)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return Result{}, fault.Transientf("get workflow %s/%s: %w", ns, step.Workflow, ctx.Err())
	}
	return p.f.find(ctx, ns, step, p.wf, p.err)
}

// find is the lookup of step once its workflow was read (err is the read's error).
func (f *Finder) find(ctx context.Context, ns string, step request.Step, wf *argo.Workflow, err error) (Result, error) {
	if err != nil {
		if apierrors.IsNotFound(err) {
			return Result{}, &fault.Error{Kind: fault.NotFound, Err: &NoWorkflowError{Namespace: ns, Name: step.Workflow}}
		}
		return Result{}, err
	}
	res := Result{Workflow: wf.Name, WorkflowUID: wf.UID}
	nodes, err := nodesOf(ctx, wf, f.Offloaded)
	if err != nil {
		return res, err
	}
	picks, waiting, err := pick(wf, nodes, step)
	if err != nil {
		return res, err
	}
	res.Skipped = append(res.Skipped, waiting...)
	if len(picks) == 0 {
		return res, nothingToRelease(step, res.Skipped)
	}

	// The step's pods are first read by the names Argo gives them: a GET by name costs the same however
	// many pods the namespace holds, where a label-selected LIST makes the API server scan every pod of
	// the namespace. The names decide only when each picked node's pod is there and is this run's; in any
	// other case (no pod yet, an earlier run's or a stranger's pod by that name, a completed pod) the LIST
	// below decides, as it sees every pod that claims the node.
	if len(picks) <= maxPodGets {
		if targets, skipped, ok, err := f.byName(ctx, ns, wf, picks, step); err != nil {
			return res, err
		} else if ok {
			res.Targets, res.Skipped = targets, append(res.Skipped, skipped...)
			if len(res.Targets) == 0 {
				return res, nothingToRelease(step, res.Skipped)
			}
			return res, nil
		}
	}

	// The pods are listed from the API server's watch cache first (ResourceVersion "0"), which answers at
	// once. A consistent list waits until that cache has caught up with etcd, which after a write
	// elsewhere (the Resume just created) took about 65 ms on a quiet server, most of a release's time.
	// The cache may be a moment behind, so it only decides when everything it shows is settled: if a
	// candidate was skipped for a reason that may pass (no pod yet, not running yet), or nothing was
	// found, the pods are listed again, consistently, and that answer stands.
	base := res.Skipped
	for _, rv := range []string{"0", ""} {
		pods, err := f.listPods(ctx, ns, wf, picks, rv)
		if err != nil {
			return res, err
		}
		res.Targets, res.Skipped = collect(wf, picks, pods, step)
		res.Skipped = append(slices.Clip(base), res.Skipped...)
		if len(res.Targets) > 0 && !slices.ContainsFunc(res.Skipped, func(s Skip) bool { return fault.KindOf(s.Reason) == fault.Transient }) {
			break
		}
	}
	if len(res.Targets) == 0 {
		return res, nothingToRelease(step, res.Skipped)
	}
	return res, nil
}

// apiError classifies an API failure: none of them is the request's fault, so all are retried.
func apiError(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return fault.Transientf("%s: %w (the server's RBAC does not allow it: apply the shipped Role for this namespace)", what, err)
	}
	return fault.Transientf("%s: %w", what, err)
}

// nothingToRelease folds the reasons of every skipped candidate into one error whose kind is the most
// hopeful among them: if any candidate may still become releasable, the caller should retry.
func nothingToRelease(step request.Step, skipped []Skip) error {
	if len(skipped) == 1 {
		return skipped[0].Reason
	}
	kind := fault.NotFound
	var reasons []string
	for _, s := range skipped {
		switch k := fault.KindOf(s.Reason); {
		case k == fault.Transient || k == fault.Unknown:
			kind = fault.Transient
		case k == fault.Invalid && kind != fault.Transient:
			kind = fault.Invalid
		case k == fault.Precondition && kind == fault.NotFound:
			kind = fault.Precondition
		}
		reasons = append(reasons, s.Reason.Error())
	}
	return &fault.Error{Kind: kind, Err: fmt.Errorf("nothing to release for %s: %s", step, strings.Join(reasons, "; "))}
}
