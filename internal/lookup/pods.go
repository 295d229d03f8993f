package lookup

import (
	"context"
	"fmt"
	"strings"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

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
		// Finished, like a phase this version does not know: its pod will not come back.
	}
	return nil, fault.NotFoundf("node %s (%s) is %s and its pod is gone", node.ID, node.Name, node.Phase)
}
