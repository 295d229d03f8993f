// Package workflowcontroller pins Argo Workflows' workflow-controller, which the tests run against the
// rig's API server so that Argo's own controller makes the Workflows' nodes and step pods; it holds no
// code of its own. The replace directive is copied from argo-workflows v3.7.17's go.mod (replace
// directives of a dependency do not apply to the main module).
package workflowcontroller
