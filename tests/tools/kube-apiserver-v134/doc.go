// Package kubeapiserverv134 pins the oldest kube-apiserver the test rig builds (Kubernetes v1.34, the
// oldest release the module proxy serves here): the integration tier installs resume-trigger and releases
// one Resume on it beside the current one, so the minimum Kubernetes version in the README is a tested one.
// It holds no code of its own.
package kubeapiserverv134
