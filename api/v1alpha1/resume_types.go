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

	// ActiveDeadlineSeconds bounds how long the Resume waits for its step to pause, counted from its
	// creation. Past it, a Resume that is not done ends Failed with reason DeadlineExceeded. By default the
	// server's --resume-deadline (15 minutes).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2592000
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// TTLSecondsAfterFinished deletes the Resume this many seconds after it ended Succeeded or Failed.
	// By default it is kept.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// BoundWorkflow is the one run of a Workflow a Resume acts on: a Workflow created again under the same
// name has another UID and is never acted on.
type BoundWorkflow struct {
	// Name is the Workflow's name.
	Name string `json:"name"`
	// UID is the Workflow's UID.
	UID string `json:"uid"`
}

// WaitingTarget is a node the Resume selects that cannot be released yet.
type WaitingTarget struct {
	// Node is the node's id.
	Node string `json:"node"`
	// Pod is the node's pod, when it has one.
	// +optional
	Pod string `json:"pod,omitempty"`
	// Reason says what it waits for.
	Reason string `json:"reason"`
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
	// ExitCode is the container's exit code, when its release was confirmed by the container having ended
	// after the touch (the exec's own answer, or the status write that would have recorded it, was lost).
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
}

// ReleasingTarget records a container whose marker is about to be created: it is written before the exec,
// so a release whose outcome is lost (the status write after it failed, the exec's stream was cut, the
// server stopped) is still known to the next look, which confirms it.
type ReleasingTarget struct {
	// Node is the id of the workflow node the pod runs.
	Node string `json:"node"`
	// Pod is the pod's name.
	Pod string `json:"pod"`
	// PodUID is the pod's UID: a pod created again under the same name is another one. Argo's pods never
	// restart a container (restartPolicy Never), so the pod's UID and the container's name name one
	// container instance.
	PodUID string `json:"podUID"`
	// Container is the container whose marker is being created.
	Container string `json:"container"`
	// Stage is the pause being released.
	Stage Stage `json:"stage"`
	// Time is when the release was started.
	Time metav1.Time `json:"time"`
}

// ResumeStatus is written by resume-trigger only.
type ResumeStatus struct {
	// Phase is Pending, Succeeded or Failed. Succeeded and Failed are final.
	// +optional
	// +kubebuilder:validation:Enum=Pending;Succeeded;Failed
	Phase Phase `json:"phase,omitempty"`
	// Reason is the reason of the Released condition, in one word: Released, PartiallyReleased, Waiting,
	// DeadlineExceeded, WorkflowReplaced, InvalidRequest, NotFound or NotReleasable.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says what happened, or what to change.
	// +optional
	Message string `json:"message,omitempty"`
	// Workflow is the run the Resume is bound to: recorded the first time the Resume found its Workflow.
	// +optional
	Workflow *BoundWorkflow `json:"workflow,omitempty"`
	// Deadline is when the Resume stops waiting for its step (creation plus activeDeadlineSeconds).
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// CompletionTime is when the Resume became Succeeded or Failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Released lists the containers released so far, the most recent 500 when there were more.
	// +optional
	// +listType=atomic
	Released []ReleasedTarget `json:"released,omitempty"`
	// ReleasedCount is how many containers were released in all, listed in released or not.
	// +optional
	ReleasedCount int32 `json:"releasedCount,omitempty"`
	// Releasing lists the containers whose release was started and is not confirmed yet (at most 50).
	// +optional
	// +listType=atomic
	Releasing []ReleasingTarget `json:"releasing,omitempty"`
	// Waiting lists the selected nodes that could not be released yet (at most 20), while Pending.
	// +optional
	// +listType=atomic
	Waiting []WaitingTarget `json:"waiting,omitempty"`
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
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=rsm,categories=argo
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.spec.Workflow-ID`
// +kubebuilder:printcolumn:name="Template",type=string,JSONPath=`.spec.TemplateName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.status.workflow.uid`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
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
