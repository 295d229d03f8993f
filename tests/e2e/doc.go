// Package e2e proves the whole release chain with the real programs and the shipped YAML: a Resume (or a
// webhook call) -> argo-events EventSource -> NATS JetStream EventBus -> argo-events Sensor ->
// resume-trigger (a separate process) -> exec touch through the API server into the test kubelet. See
// tests/internal/chain. Needs root; run with `make test-e2e`.
//
// Two chains serve the tests side by side, each one test at a time (main_test.go): the shared one, and a
// quiet one for tests that wait out the Sensor's retries or stop its processes (lifecycle_test.go), and
// the install one, serving team-a beside team-b, for the shipped overlays (install_test.go).
package e2e
