// Package rig runs a real etcd and kube-apiserver with an in-process test kubelet, so integration tests can
// exec into pods through the real API server. StartWorkflowController adds Argo's real workflow-controller
// (v3.7.17 or v4.0.5, ControllerOptions.Argo) for one namespace: the test kubelet then binds and runs the
// pods it creates (emulating Argo's emissary pause and what its wait container writes), so Argo itself
// makes and finishes the Workflows' state.
package rig
