// Package fault injects faults into the whole release chain (tests/internal/chain: the real API server
// and etcd, Argo's workflow-controller, nats-server, argo-events' Sensor and EventSources, resume-trigger as
// a separate process) while debug-paused steps are released, and counts for each fault: the faults
// injected, wrong execs (an exec other than the marker of a targeted container: must be 0), lost Resumes
// (a Resume of a paused step that never reaches a final phase: must be 0) and duplicate releases (a marker
// touched more than once: allowed, since delivery is at least once and touch is idempotent, but counted).
// It prints the counts as a Markdown table. Needs root; run with `make test-fault`.
//
// Every fault is bounded in time and count, and all traffic stays on this machine. The Sensor reaches
// resume-trigger through a small TCP front (front_test.go) that, like a Kubernetes Service, forwards each
// connection to a ready replica, so a second replica can take over.
package fault
