package argo

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Labels and annotations the workflow-controller puts on every pod it creates for a node.
const (
	// LabelWorkflow names the pod's Workflow.
	LabelWorkflow = "workflows.argoproj.io/workflow"
	// LabelCompleted is "true" once Argo has finished with the pod.
	LabelCompleted = "workflows.argoproj.io/completed"
	// AnnotationNodeID is the id of the node the pod runs.
	AnnotationNodeID = "workflows.argoproj.io/node-id"
	// AnnotationNodeName is the full name of that node.
	AnnotationNodeName = "workflows.argoproj.io/node-name"
	// AnnotationPodNameFormat, on the Workflow, says which pod-name scheme its pods use ("v1" or "v2").
	AnnotationPodNameFormat = "workflows.argoproj.io/pod-name-format"
)

// The environment variables that make Argo's emissary wait for a marker file before or after the
// container's command; only the exact value "true" pauses.
const (
	EnvPauseBefore = "ARGO_DEBUG_PAUSE_BEFORE"
	EnvPauseAfter  = "ARGO_DEBUG_PAUSE_AFTER"
)

// VolumeVarRunArgo is the emptyDir Argo mounts at VarRunArgo in every container of a workflow pod; the
// markers live there.
const (
	VolumeVarRunArgo = "var-run-argo"
	VarRunArgo       = "/var/run/argo"
)

// Argo's own containers in a workflow pod. Argo v4.1's init-less layout has a supervisor in place of
// wait (and no init).
const (
	ContainerInit       = "init"
	ContainerWait       = "wait"
	ContainerSupervisor = "supervisor"
)

// MarkerPath is the file whose existence ends container's pause at stage ("before" or "after").
func MarkerPath(container, stage string) string {
	return VarRunArgo + "/ctr/" + container + "/" + stage
}

// IsArgoContainer reports whether a container is one of Argo's own (init, wait, v4.1's supervisor, and
// the artifact containers of v4); none of them is ever paused, and their images have no touch.
func IsArgoContainer(name string) bool {
	switch name {
	case ContainerWait, ContainerInit, ContainerSupervisor:
		return true
	}
	return strings.HasPrefix(name, "init-artifact-") || strings.HasPrefix(name, "artifact-plugin-")
}

// PausedIndirectly reports whether c may pause at the env variable name through a value this server does
// not read: the variable set from a Secret, ConfigMap or field (valueFrom), or any envFrom source (which
// may hold it). Argo's emissary honours those; resume-trigger never reads Secrets to find out.
func PausedIndirectly(c corev1.Container, name string) bool {
	if _, indirect := EnvValue(c, name); indirect {
		return true
	}
	return len(c.EnvFrom) > 0
}

// EnvValue is the value a container's process sees for name: Kubernetes applies the env list in order,
// so the last entry wins. An entry set from a Secret, ConfigMap or field has no literal value here
// (indirect reports it) and is never read.
func EnvValue(c corev1.Container, name string) (value string, indirect bool) {
	for _, e := range c.Env {
		if e.Name == name {
			value, indirect = e.Value, e.ValueFrom != nil
		}
	}
	return value, indirect
}

// Pauses reports whether c's emissary pauses at the env variable name ("true", set literally).
func Pauses(c corev1.Container, name string) bool {
	v, indirect := EnvValue(c, name)
	return v == "true" && !indirect
}

// MountsVarRunArgo reports whether c sees the whole shared /var/run/argo (a subPath would put a marker
// elsewhere than where the emissary looks).
func MountsVarRunArgo(c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == VolumeVarRunArgo && m.MountPath == VarRunArgo && m.SubPath == "" {
			return true
		}
	}
	return false
}
