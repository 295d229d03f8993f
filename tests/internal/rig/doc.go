// Package rig runs a real etcd and kube-apiserver with an in-process test kubelet, so integration tests can exec into pods through the real API server.
package rig
