package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stage names the debug pause of a step: before its command runs, or after it exited.
// +kubebuilder:validation:Enum=before;after
type Stage string

const (
	// StageBefore is the pause that ARGO_DEBUG_PAUSE_BEFORE=true asks for.
	StageBefore Stage = "before"
	// StageAfter is the pause that ARGO_DEBUG_PAUSE_AFTER=true asks for.
	StageAfter Stage = "after"
)

// Phase is where a Resume stands.
type Phase string

const (
	// PhasePending means the release has not happened yet; it is retried.
	PhasePending Phase = "Pending"
	// PhaseSucceeded means every matching paused container was released.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed means the Resume cannot be carried out; the message says why.
	PhaseFailed Phase = "Failed"
)

// Final reports whether a Resume in this phase is never acted on again.
func (p Phase) Final() bool { return p == PhaseSucceeded || p == PhaseFailed }

// ConditionReleased is the condition type that records the outcome of the release.
const ConditionReleased = "Released"

// ResumeSpec names the workflow step to release. The field names Workflow-ID and TemplateName are kept
// as the original hook used them. The workflow is always looked up in the Resume's own namespace.
// +kubebuilder:validation:XValidation:rule="has(self.TemplateName) || has(self.nodeID) || has(self.nodeName)",message="set TemplateName, nodeID or nodeName to say which step to release"
type ResumeSpec struct {
	// WorkflowID is the name of the Workflow in this namespace.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	WorkflowID string `json:"Workflow-ID"`

	// TemplateName selects the step's nodes by template name (templateName or templateRef.template).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$`
	TemplateName string `json:"TemplateName,omitempty"`

	// NodeID selects exactly one node by its id.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	NodeID string `json:"nodeID,omitempty"`

	// NodeName selects nodes whose name or displayName equals it, e.g. "wf[0].step(1:b)".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	NodeName string `json:"nodeName,omitempty"`

	// Container releases only this container; by default every paused container of the step.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Container string `json:"container,omitempty"`

	// Stage is the pause to release; by default the one the container's environment asks for.
	// +optional
	Stage Stage `json:"stage,omitempty"`
}

// ReleasedTarget records one container whose pause was released.
type ReleasedTarget struct {
	// Node is the id of the workflow node the pod runs.
	Node string `json:"node"`
	// Pod is the pod's name.
	Pod string `json:"pod"`
	// Container is the container whose marker was created.
	Container string `json:"container"`
	// Stage is the pause that was released.
	Stage Stage `json:"stage"`
	// Via is the container the marker was created from, when not Container itself.
	// +optional
	Via string `json:"via,omitempty"`
	// Time is when the marker was created.
	Time metav1.Time `json:"time"`
}

// ResumeStatus is written by resume-trigger only.
type ResumeStatus struct {
	// Phase is Pending, Succeeded or Failed. Succeeded and Failed are final.
	// +optional
	// +kubebuilder:validation:Enum=Pending;Succeeded;Failed
	Phase Phase `json:"phase,omitempty"`
	// Message says what happened, or what to change.
	// +optional
	Message string `json:"message,omitempty"`
	// Released lists the containers released so far.
	// +optional
	// +listType=atomic
	Released []ReleasedTarget `json:"released,omitempty"`
	// ObservedGeneration is the generation of the spec this status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions holds the Released condition.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Resume asks resume-trigger to release a debug-paused step of a Workflow in the same namespace.
// The spec cannot change once created: create another Resume instead.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=rsm,categories=argo
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.spec.Workflow-ID`
// +kubebuilder:printcolumn:name="Template",type=string,JSONPath=`.spec.TemplateName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: create a new Resume instead"
type Resume struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   ResumeSpec   `json:"spec"`
	Status ResumeStatus `json:"status,omitempty"`
}

// ResumeList is a list of Resumes.
//
// +kubebuilder:object:root=true
type ResumeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Resume `json:"items"`
}
