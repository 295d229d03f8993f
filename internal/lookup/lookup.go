package lookup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		return res, nothingToRelease(wf.Name, step, res.Skipped)
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
				return res, nothingToRelease(wf.Name, step, res.Skipped)
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
		return res, nothingToRelease(wf.Name, step, res.Skipped)
	}
	return res, nil
}

// maxPodGets is the most picked nodes whose pods are read one GET each; a step with more (a loop's
// iterations) is read with one LIST, which costs one request however many pods it returns.
const maxPodGets = 4

// listPage bounds one page of a pod LIST, so a loop with thousands of live pods is read in pieces.
const listPage = 500

// maxClaims is the most pods kept for one node: Argo runs one, and anyone may create pods that claim a
// node (its annotation, its name, the workflow's labels); past a few, the node is refused, not read on.
const maxClaims = 8

// listPods lists the workflow's live pods (podSelector) a page at a time; rv "0" reads the API server's
// watch cache, "" reads consistently. Of each page it keeps only the pods that may be a picked node's
// (claiming it by the node-id annotation, or named as Argo names its pod): a loop's thousands of other
// live pods are dropped page by page, not held.
func (f *Finder) listPods(ctx context.Context, ns string, wf *argo.Workflow, picks []pickedNode, rv string) ([]corev1.Pod, error) {
	wanted := map[string]bool{}   // node ids
	byName := map[string]string{} // pod name → node id
	for _, p := range picks {
		wanted[p.node.ID] = true
		for _, n := range argo.PodNames(wf, p.node) {
			byName[n] = p.node.ID
		}
	}
	claims := map[string]int{}
	opts := metav1.ListOptions{LabelSelector: podSelector(wf.Name), ResourceVersion: rv, Limit: listPage}
	var pods []corev1.Pod
	for {
		page, err := f.Pods.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, apiError(fmt.Sprintf("list pods of workflow %s/%s", ns, wf.Name), err)
		}
		for i := range page.Items {
			pod := &page.Items[i]
			node := pod.Annotations[argo.AnnotationNodeID]
			if !wanted[node] {
				if node = byName[pod.Name]; node == "" {
					continue
				}
			}
			if claims[node]++; claims[node] > maxClaims {
				return nil, fault.Preconditionf("node %s of workflow %s/%s is claimed by more than %d pods (Argo runs one): refusing to pick among them", node, ns, wf.Name, maxClaims)
			}
			pods = append(pods, *pod)
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			return pods, nil
		}
		// A continued list is read at the resource version of its first page.
		opts.ResourceVersion = ""
	}
}

// byName reads the pods of picks by the names Argo computes for their nodes (both names when the
// Workflow does not say which format its controller used), all at once. ok is true when the names decide:
// every picked node has exactly one pod among them that is live (not labelled completed) and controlled by
// this run of the workflow; then targets and skipped are the answer. Otherwise, or when a GET is forbidden, the
// caller lists the pods.
func (f *Finder) byName(ctx context.Context, ns string, wf *argo.Workflow, picks []pickedNode, step request.Step) (targets []Target, skipped []Skip, ok bool, err error) {
	var names []string
	seen := map[string]bool{}
	for _, p := range picks {
		for _, n := range argo.PodNames(wf, p.node) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	got := make([]*corev1.Pod, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			got[i], errs[i] = f.Pods.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	wg.Wait()
	var pods []corev1.Pod
	for i, p := range got {
		switch {
		case apierrors.IsNotFound(errs[i]):
			continue
		case apierrors.IsForbidden(errs[i]):
			// A reader allowed to list pods but not to get them (kubectl resume's users may be): the
			// LIST decides, and says so if it is refused too.
			return nil, nil, false, nil
		case errs[i] != nil:
			return nil, nil, false, apiError(fmt.Sprintf("get pod %s/%s of workflow %s", ns, names[i], wf.Name), errs[i])
		case p.Labels[argo.LabelCompleted] == "true" || p.Labels[argo.LabelWorkflow] != wf.Name:
			// Not what the LIST would show: let it decide.
			return nil, nil, false, nil
		}
		pods = append(pods, *p)
	}
	byNode, byName := indexPods(pods)
	for _, p := range picks {
		// Only a pod that claims the node by its annotation decides here: podOf falls back to the name
		// for a pod without one, which is right only when no other pod claims the node, and only the LIST
		// shows the others.
		if pod, err := podOf(wf, p.node, byNode, byName); err != nil || pod == nil || pod.Annotations[argo.AnnotationNodeID] != p.node.ID {
			return nil, nil, false, nil
		}
	}
	targets, skipped = collect(wf, picks, pods, step)
	return targets, skipped, true, nil
}

// podSelector selects a workflow's pods that Argo has not finished with: a completed pod has nothing to
// release, and a long loop's thousands of completed pods would otherwise be listed (and held) on every
// request.
func podSelector(workflow string) string {
	return argo.LabelWorkflow + "=" + workflow + "," + argo.LabelCompleted + "!=true"
}

// collect maps the picked nodes to their pods and the pods' paused containers.
func collect(wf *argo.Workflow, picks []pickedNode, pods []corev1.Pod, step request.Step) ([]Target, []Skip) {
	byNode, byName := indexPods(pods)
	var targets []Target
	var skipped []Skip
	for _, p := range picks {
		pod, err := podOf(wf, p.node, byNode, byName)
		if err != nil {
			skipped = append(skipped, Skip{Node: p.node.ID, Reason: err})
			continue
		}
		t, s := containersOf(wf, p, pod, step)
		targets = append(targets, t...)
		skipped = append(skipped, s...)
	}
	return targets, skipped
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
func nothingToRelease(wf string, step request.Step, skipped []Skip) error {
	if len(skipped) == 1 {
		return skipped[0].Reason
	}
	kind := fault.NotFound
	var reasons []string
	for _, s := range skipped {
		k := fault.KindOf(s.Reason)
		if k == fault.Transient || k == fault.Unknown {
			kind = fault.Transient
		} else if k == fault.Invalid && kind != fault.Transient {
			kind = fault.Invalid
		} else if k == fault.Precondition && kind == fault.NotFound {
			kind = fault.Precondition
		}
		reasons = append(reasons, s.Reason.Error())
	}
	return &fault.Error{Kind: kind, Err: fmt.Errorf("nothing to release for %s: %s", step, strings.Join(reasons, "; "))}
}

// pickedNode is a node that runs a pod, with the container the request's node implies (containerSet).
type pickedNode struct {
	node      argo.Node
	container string
}

// pick selects the nodes the step names and maps each to the node that owns a pod: a Retry node to its last
// attempt, a containerSet Container node to its pod node and container. A Retry node that is between
// attempts is returned as a transient skip: its next attempt will run, and pause, soon.
func pick(wf *argo.Workflow, nodes argo.Nodes, step request.Step) ([]pickedNode, []Skip, error) {
	var matched []argo.Node
	for _, n := range nodes {
		if step.NodeID != "" && n.ID != step.NodeID {
			continue
		}
		if step.NodeName != "" && n.Name != step.NodeName && n.DisplayName != step.NodeName {
			continue
		}
		if step.Template != "" && n.TemplateName != step.Template && (n.TemplateRef == nil || n.TemplateRef.Template != step.Template) {
			continue
		}
		matched = append(matched, n)
	}
	if len(matched) == 0 {
		switch {
		case workflowFinished(wf.Status.Phase):
			return nil, nil, fault.NotFoundf("workflow %s has no node matching %s and ended %s%s", wf.Name, describeSelector(step), wf.Status.Phase, podTemplates(nodes))
		case step.Template != "" && !mayRunTemplate(wf, step.Template):
			return nil, nil, fault.NotFoundf("workflow %s has no node matching %s%s, and no template of it is named %s", wf.Name, describeSelector(step), podTemplates(nodes), step.Template)
		}
		// A Resume made before its workflow reached the step, whatever selects it: the node will come.
		return nil, nil, fault.Transientf("workflow %s has not reached %s yet: no node matches it so far%s", wf.Name, describeSelector(step), podTemplates(nodes))
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID < matched[j].ID })

	explicit := step.NodeID != "" || step.NodeName != ""
	seen := map[string]bool{}
	var picks []pickedNode
	var waiting []Skip
	var wrongTypes []string
	add := func(n argo.Node, container string) {
		key := n.ID + "/" + container
		if !seen[key] {
			seen[key] = true
			picks = append(picks, pickedNode{node: n, container: container})
		}
	}
	for _, n := range matched {
		switch n.Type {
		case wfv1.NodeTypePod:
			add(n, "")
		case wfv1.NodeTypeRetry:
			last, ok := lastAttempt(nodes, n)
			switch {
			case ok && last.Type != wfv1.NodeTypePod:
				// A retryStrategy on a steps or DAG template: its attempts run steps, not one pod.
				wrongTypes = append(wrongTypes, fmt.Sprintf("retry node %s retries a %s template (name a step inside it)", n.ID, last.Type))
			case ok && (!finished(last.Phase) || finished(n.Phase)):
				add(last, "")
			case !finished(n.Phase):
				waiting = append(waiting, Skip{Node: n.ID, Reason: fault.Transientf("retry node %s (%s) is between attempts: the next attempt has no pod yet", n.ID, n.Name)})
			default:
				wrongTypes = append(wrongTypes, fmt.Sprintf("retry node %s is %s", n.ID, n.Phase))
			}
		case wfv1.NodeTypeContainer:
			podNode, ok := nodes[n.BoundaryID]
			if !ok || podNode.Type != wfv1.NodeTypePod || !strings.HasPrefix(n.Name, podNode.Name+".") {
				wrongTypes = append(wrongTypes, fmt.Sprintf("container node %s has no pod node", n.ID))
				continue
			}
			add(podNode, strings.TrimPrefix(n.Name, podNode.Name+"."))
		case wfv1.NodeTypeSteps, wfv1.NodeTypeStepGroup, wfv1.NodeTypeDAG, wfv1.NodeTypeTaskGroup, wfv1.NodeTypeSkipped,
			wfv1.NodeTypeSuspend, wfv1.NodeTypeHTTP, wfv1.NodeTypePlugin:
			wrongTypes = append(wrongTypes, fmt.Sprintf("node %s is of type %s", n.ID, n.Type))
		default:
			wrongTypes = append(wrongTypes, fmt.Sprintf("node %s is of type %s", n.ID, n.Type))
		}
	}
	// A whole pod node covers every container of it; drop the narrower picks of the same pod.
	whole := map[string]bool{}
	for _, p := range picks {
		if p.container == "" {
			whole[p.node.ID] = true
		}
	}
	picks = slices.DeleteFunc(picks, func(p pickedNode) bool { return p.container != "" && whole[p.node.ID] })
	if len(picks) == 0 && len(waiting) > 0 {
		return nil, waiting, nil
	}
	if len(picks) == 0 {
		err := fmt.Sprintf("%s selects no node that runs a pod (%s): name a step that runs a container, script or containerSet template", describeSelector(step), strings.Join(wrongTypes, ", "))
		if explicit {
			return nil, nil, fault.Invalidf("workflow %s: %s", wf.Name, err)
		}
		return nil, nil, fault.NotFoundf("workflow %s: %s%s", wf.Name, err, podTemplates(nodes))
	}
	return picks, waiting, nil
}

// definesTemplate reports whether the workflow's own spec, or the spec or templates it stored from a
// WorkflowTemplate, has a template of that name.
func definesTemplate(wf *argo.Workflow, name string) bool {
	specs := []*argo.WorkflowSpec{&wf.Spec, wf.Status.StoredWorkflowSpec}
	for _, spec := range specs {
		if spec == nil {
			continue
		}
		for _, t := range spec.Templates {
			if t.Name == name {
				return true
			}
		}
	}
	for _, t := range wf.Status.StoredTemplates {
		if t.Name == name {
			return true
		}
	}
	return false
}

// lastAttempt returns the newest attempt of a Retry node: its last child named as an attempt,
// "<retry node>(<n>)". Argo also appends a lifecycle hook's node ("<retry node>.hooks.<name>") to the
// Retry node's children; that is never an attempt.
func lastAttempt(nodes argo.Nodes, retry argo.Node) (argo.Node, bool) {
	for i := len(retry.Children) - 1; i >= 0; i-- {
		if c, ok := nodes[retry.Children[i]]; ok && strings.HasPrefix(c.Name, retry.Name+"(") {
			return c, true
		}
	}
	return argo.Node{}, false
}

func describeSelector(step request.Step) string {
	var parts []string
	if step.Template != "" {
		parts = append(parts, "template "+step.Template)
	}
	if step.NodeID != "" {
		parts = append(parts, "node id "+step.NodeID)
	}
	if step.NodeName != "" {
		parts = append(parts, fmt.Sprintf("node name %q", step.NodeName))
	}
	return strings.Join(parts, " and ")
}

// podTemplates lists the templates that run pods in the workflow, to help a user correct a typo.
func podTemplates(nodes argo.Nodes) string {
	set := map[string]bool{}
	for _, n := range nodes {
		if n.Type == wfv1.NodeTypePod {
			if t := argo.TemplateOf(n); t != "" {
				set[t] = true
			}
		}
	}
	if len(set) == 0 {
		return " (it has no pod nodes yet)"
	}
	names := make([]string, 0, len(set))
	for t := range set {
		names = append(names, t)
	}
	sort.Strings(names)
	return " (templates with pods: " + strings.Join(names, ", ") + ")"
}

func indexPods(pods []corev1.Pod) (byNode map[string][]*corev1.Pod, byName map[string]*corev1.Pod) {
	byNode = map[string][]*corev1.Pod{}
	byName = map[string]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		if id := p.Annotations[argo.AnnotationNodeID]; id != "" {
			byNode[id] = append(byNode[id], p)
		}
		byName[p.Name] = p
	}
	return byNode, byName
}

// podOf finds a node's pod among the workflow's pods: by the node-id annotation, else by the name Argo
// computes for it. The pod must be controlled by this workflow, so a look-alike pod never gets an exec.
func podOf(wf *argo.Workflow, node argo.Node, byNode map[string][]*corev1.Pod, byName map[string]*corev1.Pod) (*corev1.Pod, error) {
	candidates := byNode[node.ID]
	if len(candidates) == 0 {
		// Without the node-id annotation, by the name Argo gives the node's pod: the Workflow's pod-name
		// format says which; a Workflow without the annotation follows its controller's POD_NAMES, unknown
		// here, so both names are tried (the owner check below still applies).
		for _, name := range argo.PodNames(wf, node) {
			if p, ok := byName[name]; ok && (p.Annotations[argo.AnnotationNodeID] == "" || p.Annotations[argo.AnnotationNodeID] == node.ID) {
				candidates = []*corev1.Pod{p}
				break
			}
		}
	}
	var owned []*corev1.Pod
	var strangers, earlierRun []string
	for _, p := range candidates {
		ref := metav1.GetControllerOf(p)
		switch {
		case ref != nil && ref.UID == wf.UID && ref.Kind == "Workflow":
			owned = append(owned, p)
		case ref != nil && ref.Kind == "Workflow" && ref.Name == wf.Name:
			// Controlled by a Workflow of this name with another UID: an earlier run (deleted and created
			// again; two Workflows cannot share a name), whose pods the garbage collector is removing. Never
			// exec'd into; this run's pod will come.
			earlierRun = append(earlierRun, p.Name)
		default:
			strangers = append(strangers, p.Name)
		}
	}
	switch {
	case len(owned) == 1:
		return owned[0], nil
	case len(owned) > 1:
		names := make([]string, len(owned))
		for i, p := range owned {
			names[i] = p.Name
		}
		return nil, fault.Preconditionf("node %s has %d pods (%s): Argo keeps one; wait until the old one is gone", node.ID, len(owned), strings.Join(names, ", "))
	case len(strangers) == 0 && len(earlierRun) > 0:
		return nil, fault.Transientf("pod %s belongs to an earlier run of workflow %s (not uid %s) and goes with it: waiting for this run's pod", strings.Join(earlierRun, ", "), wf.Name, wf.UID)
	case len(strangers) > 0:
		return nil, fault.Preconditionf("pod %s claims node %s but is not controlled by workflow %s (uid %s): refusing to exec into it", strings.Join(strangers, ", "), node.ID, wf.Name, wf.UID)
	}
	switch node.Phase {
	case wfv1.NodePending, wfv1.NodeRunning, "":
		return nil, fault.Transientf("node %s (%s) has no pod yet", node.ID, node.Name)
	case wfv1.NodeSucceeded, wfv1.NodeSkipped, wfv1.NodeFailed, wfv1.NodeError, wfv1.NodeOmitted:
		return nil, fault.NotFoundf("node %s (%s) is %s and its pod is gone", node.ID, node.Name, node.Phase)
	default:
		return nil, fault.NotFoundf("node %s (%s) is %s and its pod is gone", node.ID, node.Name, node.Phase)
	}
}
