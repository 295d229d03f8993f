package argo

// What a template calls, as far as a lookup needs to know whether a Workflow can still learn templates
// it does not hold yet: a call through templateRef (a step, a DAG task or a lifecycle hook) brings in a
// WorkflowTemplate's templates, which Argo stores only when the run reaches the call.

// maxInlineDepth bounds the walk into inline templates; a deeper nest is taken to call out.
const maxInlineDepth = 8

// calls is the lean shape of a template's steps and DAG, decoded from at most MaxValueBytes of JSON.
type calls struct {
	Steps [][]call `json:"steps,omitempty"`
	DAG   *struct {
		Tasks []call `json:"tasks,omitempty"`
	} `json:"dag,omitempty"`
}

// call is a step or a DAG task: whether it names a templateRef, its hooks, and its inline template.
type call struct {
	TemplateRef *struct{} `json:"templateRef,omitempty"`
	Hooks       hooks     `json:"hooks,omitempty"`
	Inline      *calls    `json:"inline,omitempty"`
}

// hooks are lifecycle hooks by event name; only whether each names a templateRef is kept.
type hooks map[string]struct {
	TemplateRef *struct{} `json:"templateRef,omitempty"`
}

func (h hooks) callOut() bool {
	for _, hook := range h {
		if hook.TemplateRef != nil {
			return true
		}
	}
	return false
}

// callsOut reports whether the template calls, or may call, a template through templateRef.
func (c *calls) callsOut(depth int) bool {
	if depth > maxInlineDepth {
		return true
	}
	var all []call
	for _, group := range c.Steps {
		all = append(all, group...)
	}
	if c.DAG != nil {
		all = append(all, c.DAG.Tasks...)
	}
	for i := range all {
		s := &all[i]
		if s.TemplateRef != nil || s.Hooks.callOut() || (s.Inline != nil && s.Inline.callsOut(depth+1)) {
			return true
		}
	}
	return false
}

// has reports whether the template has steps or a DAG.
func (c *calls) has() bool {
	return len(c.Steps) > 0 || c.DAG != nil
}
