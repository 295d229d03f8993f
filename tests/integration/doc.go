// Package integration drives the real resume-trigger server over gRPC, as the Argo Events Sensor does,
// against a real kube-apiserver: Workflows, pods and Resumes are real objects, the release is a real
// pods/exec through the API server into the rig's test kubelet, and RBAC is the shipped manifests'.
package integration
