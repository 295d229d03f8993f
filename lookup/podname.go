package lookup

import (
	"hash/fnv"
	"strconv"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// Argo records which pod-name scheme a workflow's pods use in this annotation ("v1" or "v2"; absent or
// anything else means v2, the default since v3.2).
const annotationPodNameFormat = "workflows.argoproj.io/pod-name-format"

// podName computes the name Argo gives the pod of a node. v1 names are the node id. v2 names are the
// workflow name, the template name and the FNV-1a hash of the node name, with the prefix cut so the whole
// name stays within 253 characters.
func podName(wf *wfv1.Workflow, node wfv1.NodeStatus) string {
	if wf.Annotations[annotationPodNameFormat] == "v1" {
		return node.ID
	}
	if node.Name == wf.Name {
		return wf.Name
	}
	prefix := wf.Name
	if t := templateOf(node); t != "" {
		prefix += "-" + t
	}
	const maxPrefix = 253 - 10 - 1 // room for "-" and a 32-bit decimal hash
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(node.Name))
	return prefix + "-" + strconv.FormatUint(uint64(h.Sum32()), 10)
}

// templateOf is the template a node runs, as Argo's readers name it when they compute pod names:
// templateRef.template whenever the node has a templateRef, else templateName.
func templateOf(node wfv1.NodeStatus) string {
	if node.TemplateRef != nil {
		return node.TemplateRef.Template
	}
	return node.TemplateName
}
