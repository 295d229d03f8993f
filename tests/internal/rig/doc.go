// Package rig runs a real etcd and kube-apiserver with an in-process test kubelet, so integration tests can
// exec into pods through the real API server. StartWorkflowController adds Argo's real workflow-controller
// (v3.7.17 or v4.0.5, ControllerOptions.Argo) for one namespace, and the test kubelet binds and runs the
// pods it creates, so Argo itself makes and finishes the Workflows' state.
//
// # Argo's executor in the loop (ControllerOptions.Executor)
//
// With ExecutorArgo the test kubelet runs a controller-made pod as a node would, on the argoexec of the
// controller's own release (hack/tools.sh builds argoexec and argoexec-v4 from the controllers' modules):
//
//   - init containers, then every container, each as a process (runtime.go): `argoexec init` (which copies
//     argoexec to /var/run/argo and writes the template there), each user container as the controller
//     wrote it (`/var/run/argo/argoexec emissary -- COMMAND`), and `argoexec wait`, which creates,
//     reports and finalises the WorkflowTaskResult through the API server as the pod's ServiceAccount
//     (a TokenRequest bound to the pod, in the projected volume the API server's ServiceAccount admission
//     added; StartWorkflowController grants that ServiceAccount Argo's executor Role);
//   - every container gets the pod's volumes at their mount paths: each process starts in a mount
//     namespace of its own (SysProcAttr Unshareflags CLONE_NEWNS; the mounts are private) and, before it
//     becomes the container's command, bind-mounts the pod's directory of each volume there (container.go;
//     the helper is this same binary, see init). So /var/run/argo is one directory per pod that all its
//     containers share, as the emptyDir is, and /var/run/secrets/kubernetes.io/serviceaccount holds the
//     pod's token, ca.crt and namespace. The rig needs root for this; when the mounts fail,
//     StartWorkflowController says so (probeMounts) and nothing is skipped;
//   - an exec into the pod (resume-trigger's `touch /var/run/argo/ctr/<c>/<stage>`) runs the same way:
//     the argv, the container's environment and bind mounts, so it creates the very file the real
//     emissary polls. The emissary goes on, the real wait reports, the controller marks the node Succeeded;
//   - the container's environment is the controller's, resolved as a kubelet does: downward-API fieldRefs
//     (ARGO_POD_NAME, ARGO_POD_UID, ...), $(VAR) references, KUBERNETES_SERVICE_HOST/PORT naming the
//     rig's API server, HOSTNAME; the pod's status (Running, each container's exit code, Succeeded or
//     Failed) is written from what the processes did.
//
// What stays emulated there, and why:
//
//   - Images. None is pulled (no registry, no image store, no container runtime on these machines). An
//     image is a PATH: a directory of links to host binaries (DefaultImageTools, or Kubelet.SetImage; the
//     argoexec image has the release's argoexec). A command is found as a runtime finds it, by name in
//     that PATH, and a missing one ends like crun's "executable file not found" (exit 127). So an image
//     without touch is emulated only as far as PATH lookups go: `touch` is not found, but an absolute
//     /usr/bin/touch would be the host's, and the rest of the filesystem (/etc, /tmp, /usr) is the host's,
//     not the image's. The user's commands run as root on the host, in the container's own directory
//     (its HOME and working directory).
//   - Isolation. Only the mount namespace is the container's own: no PID, network or user namespace, no
//     cgroup (so no resource limits, no OOM kill), no seccomp or capabilities dropped; processes see the
//     host network, which is how `wait` reaches the API server at the rig's address.
//   - Volumes. emptyDir and the service-account projection only; another kind, a fieldRef other than
//     metadata/spec names and labels/annotations, envFrom or valueFrom of ConfigMaps and Secrets make the
//     pod fail to start, loudly (Kubelet.RuntimeErrors). Mount points are made only under /run (a tmpfs):
//     a script template's /argo/staging, or an artifact's path, are refused. So no input or output
//     artifacts (they need an artifact repository) and no script templates run on the rig's executor;
//     argoexec init still runs for real, with nothing to load. /dev/termination-log is not mounted.
//   - The scheduler and the node's lifecycle: the kubelet binds pods itself (HoldPods holds them back),
//     EvictPod writes an eviction, and a deleted pod's processes are killed at once (no grace period).
//   - Ephemeral containers: the rig does not run them; the ephemeral fallback is tested on the emulation.
//
// # The emulated executor (ExecutorEmulated, and pods a test builds by hand)
//
// With ExecutorEmulated, and for pods a test creates itself (RunPod, ArgoPod: state built by hand, with no
// controller to run them), the kubelet plays the executor: a pause holds until the marker is in the
// kubelet's record of the pod's files (exec's touch writes there), the emissary's decision is recorded
// (EmissaryEvents), and the kubelet writes what Argo's wait container would (runArgoPod). The tests that
// shape Argo's state in ways its executor cannot be made to (a container failing before its pause per
// RIG_FAIL_ATTEMPTS, a hang or an odd exit of exec set by SetBehaviour) keep working there; a Behaviour
// set by a test also applies to pods on Argo's executor, in place of the real exec.
package rig
