package argo

import (
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/types"
)

// Workflow is the part of an Argo Workflow that resume-trigger reads. Anyone who may edit a Workflow
// writes its status (Argo's CRD has no status subresource), so it is decoded by DecodeWorkflow, which
// never materialises the fields left out here and bounds what it keeps. Its JSON names are Argo's,
// pinned by a test against Argo's own types (v3 and v4).
type Workflow struct {
	ObjectMeta `json:"metadata"`
	Spec       WorkflowSpec   `json:"spec"`
	Status     WorkflowStatus `json:"status"`
}

// ObjectMeta is the Workflow metadata a lookup reads; managedFields, which lists every node of a large
// Workflow once more, is never decoded.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	UID         types.UID         `json:"uid,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// WorkflowSpec holds the names of a Workflow's templates (not their bodies) and its workflowTemplateRef.
type WorkflowSpec struct {
	Templates           []Template           `json:"templates,omitempty"`
	WorkflowTemplateRef *WorkflowTemplateRef `json:"workflowTemplateRef,omitempty"`
	// HooksCallOut is true when a workflow-level lifecycle hook calls a template through templateRef.
	HooksCallOut bool `json:"-"`
}

// Template is a template's name, and of its body only what tells whether it makes calls.
type Template struct {
	Name string `json:"name,omitempty"`
	// Calls is true when the template has steps or a DAG.
	Calls bool `json:"-"`
	// CallsOut is true when the template calls, or may call, a template through templateRef (in a
	// step, a DAG task, a hook or an inline template).
	CallsOut bool `json:"-"`
}

// WorkflowTemplateRef names the WorkflowTemplate (or ClusterWorkflowTemplate) a Workflow runs.
type WorkflowTemplateRef struct {
	Name         string `json:"name,omitempty"`
	ClusterScope bool   `json:"clusterScope,omitempty"`
}

// WorkflowStatus is what a lookup reads of a Workflow's status.
type WorkflowStatus struct {
	Phase                    wfv1.WorkflowPhase  `json:"phase,omitempty"`
	Nodes                    Nodes               `json:"nodes,omitempty"`
	CompressedNodes          string              `json:"compressedNodes,omitempty"`
	OffloadNodeStatusVersion string              `json:"offloadNodeStatusVersion,omitempty"`
	StoredTemplates          map[string]Template `json:"storedTemplates,omitempty"`
	StoredWorkflowSpec       *WorkflowSpec       `json:"storedWorkflowTemplateSpec,omitempty"`
}

// Fulfilled reports whether the workflow has ended, as Argo's WorkflowStatus.Fulfilled does.
func (s WorkflowStatus) Fulfilled() bool {
	return s.Phase.Completed()
}

// Nodes is a Workflow's node status by node id.
type Nodes map[string]Node

// Node is what a lookup reads of one node of a Workflow: which step it is, where it stands in the tree,
// and its phase. Inputs, outputs, messages and the rest are never decoded.
type Node struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	DisplayName  string         `json:"displayName,omitempty"`
	Type         wfv1.NodeType  `json:"type"`
	TemplateName string         `json:"templateName,omitempty"`
	TemplateRef  *TemplateRef   `json:"templateRef,omitempty"`
	Phase        wfv1.NodePhase `json:"phase,omitempty"`
	BoundaryID   string         `json:"boundaryID,omitempty"`
	Children     []string       `json:"children,omitempty"`
	Daemoned     *bool          `json:"daemoned,omitempty"`
	NodeFlag     *NodeFlag      `json:"nodeFlag,omitempty"`
	// TaskResultSynced is false while Argo has not read the node's task result yet; Fulfilled reads it.
	TaskResultSynced *bool `json:"taskResultSynced,omitempty"`
}

// TemplateRef names the WorkflowTemplate template a node runs.
type TemplateRef struct {
	Name         string `json:"name,omitempty"`
	Template     string `json:"template,omitempty"`
	ClusterScope bool   `json:"clusterScope,omitempty"`
}

// NodeFlag is Argo's history of a node: run by a lifecycle hook, or an attempt of a retry.
type NodeFlag struct {
	Hooked  bool `json:"hooked,omitempty"`
	Retried bool `json:"retried,omitempty"`
}

// IsDaemoned reports whether the node is a daemoned step, as Argo's NodeStatus.IsDaemoned does.
func (n Node) IsDaemoned() bool {
	return n.Daemoned != nil && *n.Daemoned
}

// Fulfilled reports whether the node has ended (or is a running daemon), by Argo's own rule
// (NodeStatus.Fulfilled).
func (n Node) Fulfilled() bool {
	synced := n.TaskResultSynced == nil || *n.TaskResultSynced
	return n.Phase.Fulfilled(n.TaskResultSynced) && synced || n.IsDaemoned() && n.Phase != wfv1.NodePending
}
