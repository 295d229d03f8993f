// Package workflowcontrollerv4 pins Argo Workflows' workflow-controller v4, the second controller of the
// version matrix: the integration tests run the same shapes against it and against v3.7 (tests/tools/
// workflow-controller). It holds no code of its own. v4.0.5 is the newest /v4 release the module proxy
// serves here; its go.mod has no replace directives to copy.
package workflowcontrollerv4
