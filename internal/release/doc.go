// Package release creates the marker file that ends a debug pause: it execs the fixed argv
// `touch /var/run/argo/ctr/<container>/<stage>` into the pod through the API server, with no shell, and
// falls back to another container of the pod or, when enabled, to an ephemeral container.
package release
