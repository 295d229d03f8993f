package lookup

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// pickedNode is a node that runs a pod, with the container the request's node implies (containerSet).
type pickedNode struct {
	node      argo.Node
	container string
}

// pick selects the nodes the step names and maps each to the node that owns a pod: a Retry node to its last
// attempt, a containerSet Container node to its pod node and container. A Retry node that is between
// attempts is returned as a transient skip: its next attempt will run, and pause, soon.
func pick(wf *argo.Workflow, nodes argo.Nodes, step request.Step) ([]pickedNode, []Skip, error) {
	matched := matching(nodes, step)
	if len(matched) == 0 {
		return nil, nil, noMatch(wf, nodes, step)
	}
	p := picker{nodes: nodes, seen: map[string]bool{}}
	for _, n := range matched {
		p.take(n)
	}
	picks := p.widest()
	if len(picks) == 0 && len(p.waiting) > 0 {
		return nil, p.waiting, nil
	}
	if len(picks) == 0 {
		err := fmt.Sprintf("%s selects no node that runs a pod (%s): name a step that runs a container, script or containerSet template", describeSelector(step), strings.Join(p.wrongTypes, ", "))
		if step.NodeID != "" || step.NodeName != "" {
			return nil, nil, fault.Invalidf("workflow %s: %s", wf.Name, err)
		}
		return nil, nil, fault.NotFoundf("workflow %s: %s%s", wf.Name, err, podTemplates(nodes))
	}
	return picks, p.waiting, nil
}

// matching returns the nodes that every selector of step matches, ordered by id.
func matching(nodes argo.Nodes, step request.Step) []argo.Node {
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
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID < matched[j].ID })
	return matched
}

// noMatch says why no node matches step: final when the workflow ended or can never run the template,
// else transient, since the node will come.
func noMatch(wf *argo.Workflow, nodes argo.Nodes, step request.Step) error {
	switch {
	case workflowFinished(wf.Status.Phase):
		return fault.NotFoundf("workflow %s has no node matching %s and ended %s%s", wf.Name, describeSelector(step), wf.Status.Phase, podTemplates(nodes))
	case step.Template != "" && !mayRunTemplate(wf, step.Template):
		return fault.NotFoundf("workflow %s has no node matching %s%s, and no template of it is named %s", wf.Name, describeSelector(step), podTemplates(nodes), step.Template)
	}
	// A Resume made before its workflow reached the step, whatever selects it: the node will come.
	return fault.Transientf("workflow %s has not reached %s yet: no node matches it so far%s", wf.Name, describeSelector(step), podTemplates(nodes))
}

// picker gathers the picks of one lookup, the nodes that will have a pod soon (waiting), and the
// matched nodes that never run one (wrongTypes), for the error.
type picker struct {
	nodes      argo.Nodes
	seen       map[string]bool
	picks      []pickedNode
	waiting    []Skip
	wrongTypes []string
}

func (p *picker) add(n argo.Node, container string) {
	key := n.ID + "/" + container
	if !p.seen[key] {
		p.seen[key] = true
		p.picks = append(p.picks, pickedNode{node: n, container: container})
	}
}

// take maps one matched node to the node that owns its pod.
func (p *picker) take(n argo.Node) {
	switch n.Type {
	case wfv1.NodeTypePod:
		p.add(n, "")
		return
	case wfv1.NodeTypeRetry:
		p.takeRetry(n)
		return
	case wfv1.NodeTypeContainer:
		podNode, ok := p.nodes[n.BoundaryID]
		if !ok || podNode.Type != wfv1.NodeTypePod || !strings.HasPrefix(n.Name, podNode.Name+".") {
			p.wrongTypes = append(p.wrongTypes, fmt.Sprintf("container node %s has no pod node", n.ID))
			return
		}
		p.add(podNode, strings.TrimPrefix(n.Name, podNode.Name+"."))
		return
	case wfv1.NodeTypeSteps, wfv1.NodeTypeStepGroup, wfv1.NodeTypeDAG, wfv1.NodeTypeTaskGroup, wfv1.NodeTypeSkipped,
		wfv1.NodeTypeSuspend, wfv1.NodeTypeHTTP, wfv1.NodeTypePlugin:
		// These run no pod of their own, like a type this version does not know.
	}
	p.wrongTypes = append(p.wrongTypes, fmt.Sprintf("node %s is of type %s", n.ID, n.Type))
}

// takeRetry picks a Retry node's last attempt, or says why there is none to release.
func (p *picker) takeRetry(n argo.Node) {
	last, ok := lastAttempt(p.nodes, n)
	switch {
	case ok && last.Type != wfv1.NodeTypePod:
		// A retryStrategy on a steps or DAG template: its attempts run steps, not one pod.
		p.wrongTypes = append(p.wrongTypes, fmt.Sprintf("retry node %s retries a %s template (name a step inside it)", n.ID, last.Type))
	case ok && (!finished(last.Phase) || finished(n.Phase)):
		p.add(last, "")
	case !finished(n.Phase):
		p.waiting = append(p.waiting, Skip{Node: n.ID, Reason: fault.Transientf("retry node %s (%s) is between attempts: the next attempt has no pod yet", n.ID, n.Name)})
	default:
		p.wrongTypes = append(p.wrongTypes, fmt.Sprintf("retry node %s is %s", n.ID, n.Phase))
	}
}

// widest drops the picks of one container of a pod also picked whole: the whole pod node covers every
// container of it.
func (p *picker) widest() []pickedNode {
	whole := map[string]bool{}
	for _, pk := range p.picks {
		if pk.container == "" {
			whole[pk.node.ID] = true
		}
	}
	return slices.DeleteFunc(p.picks, func(pk pickedNode) bool { return pk.container != "" && whole[pk.node.ID] })
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
