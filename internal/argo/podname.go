package argo

import (
	"hash/fnv"
	"strconv"
)

// PodName computes the name Argo gives the pod of a node. v1 names are the node id. v2 names are the
// workflow name, the template name and the FNV-1a hash of the node name, with the prefix cut so the whole
// name stays within 253 characters. A Workflow without the annotation is taken as v2, the default since
// v3.2.
func PodName(wf *Workflow, node Node) string {
	if wf.Annotations[AnnotationPodNameFormat] == "v1" {
		return node.ID
	}
	if node.Name == wf.Name {
		return wf.Name
	}
	prefix := wf.Name
	if t := TemplateOf(node); t != "" {
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

// PodNames are the names the pod of a node may have: the one its Workflow's pod-name-format annotation
// says, or, without the annotation (the controller's POD_NAMES decides, which a reader cannot see), the v2
// name then the v1 name.
func PodNames(wf *Workflow, node Node) []string {
	if _, ok := wf.Annotations[AnnotationPodNameFormat]; ok {
		return []string{PodName(wf, node)}
	}
	v2 := PodName(wf, node)
	if v2 == node.ID {
		return []string{v2}
	}
	return []string{v2, node.ID}
}

// TemplateOf is the template a node runs, as Argo's readers name it when they compute pod names:
// templateRef.template whenever the node has a templateRef, else templateName.
func TemplateOf(node Node) string {
	if node.TemplateRef != nil {
		return node.TemplateRef.Template
	}
	return node.TemplateName
}
