// Package argo holds what resume-trigger relies on of Argo Workflows: the labels and annotations the
// workflow-controller puts on a step's pod, the debug-pause environment variables, the /var/run/argo volume
// and its marker paths, Argo's own containers, and the rule that names a node's pod. A test in the tests
// module pins these to argo-workflows' own constants and functions, so an Argo bump that changes one fails
// loudly.
package argo
