// Package lookup finds what a request asks to release: the Workflow, its nodes for the step, each node's
// pod and the debug-paused containers in it. It reads the cluster and never changes it.
package lookup
