// Package kubeapiserver pins the kube-apiserver that the test rig builds; it holds no code of its own.
package kubeapiserver
