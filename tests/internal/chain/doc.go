// Package chain runs the whole release chain with the real programs and the YAML the project ships:
// a test control plane (tests/internal/rig: etcd, kube-apiserver, test kubelet), Argo's own workflow-controller
// (v3.7.17, namespaced to the chain's namespace: it makes every Workflow's nodes and step pods from the
// submitted spec; the test kubelet binds and runs the pods), nats-server with JetStream and
// TLS as the EventBus, resume-trigger as a separate process, and argo-events' sensor-service and two
// eventsource-service processes (resource, webhook). All of it comes from one shipped overlay
// (Options.Overlay, default manifests/namespace-install) rendered with kustomize's Go API after editing
// its install.yaml as a user would (install namespace, default argo-resume, apart from the served
// namespaces): its RBAC is applied, resume-trigger runs with the Deployment's args as the Deployment's
// ServiceAccount (a TokenRequest token), the argo-events processes run the rendered Sensor and
// EventSources. The chain changes only addresses: the Sensor's serverURL and the server's listen and
// API server addresses. Reinstall switches to another overlay.
//
// Every argo-events process runs in a network namespace and a mount namespace of its own (each binds
// :7777 for metrics, the Sensor and the resource EventSource both write /tmp/graft.log, and secrets are
// read from /argo-events/secrets/<name>/<key>). The namespaces are joined through a re-exec of the
// current binary, so a program using this package must call RunLauncher first thing in main (or
// TestMain):
//
//	func TestMain(m *testing.M) {
//		chain.RunLauncher() // returns unless this process is a launcher
//		...
//	}
//
// Start needs root (ip netns, mount). Stop removes everything Start made. One process may run several
// chains at once (each has its own control plane, NATS, processes and network namespaces; they share one
// build of resume-trigger).
//
// The Sensor acts on one event at a time per trigger, and a call that fails is retried for the trigger's
// whole retryStrategy before the next event's turn (SensorActivity, SensorRetryBudget): a Resume that
// stays Pending holds back the Resumes created after it for about half a minute.
package chain
