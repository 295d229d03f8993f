// Package v1alpha1 holds the Resume API: a request to release a debug-paused Argo Workflows step.
//
// +kubebuilder:object:generate=true
// +groupName=argocontroller.io
package v1alpha1
