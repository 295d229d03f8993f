package rig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// DefaultImageTools are the host commands an image has in the rig when no SetImage names it: the step
// images (busybox, alpine, ...) are never pulled, their commands run as the host's binaries of the same
// name, found through the container's PATH (a directory of links to exactly these).
var DefaultImageTools = []string{"sh", "echo", "sleep", "true", "false", "cat", "touch", "test", "env", "ls", "mkdir", "rm", "date", "printf"}

// SetImage says which host commands image has (see DefaultImageTools): SetImage(img, "sh", "sleep")
// is an image without touch, as distroless or scratch-based images are. It applies to containers started
// afterwards.
func (k *Kubelet) SetImage(image string, tools ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.images[image] = map[string]string{}
	for _, t := range tools {
		k.images[image][t] = ""
	}
}

// setImageBinary puts the binary bin in image as name (the argoexec image's argoexec).
func (k *Kubelet) setImageBinary(image, name, bin string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.images[image] = map[string]string{name: bin}
}

// imageBin is the directory that is image's PATH: links to the host binaries the image has. It is made
// once per image and content.
func (r *Rig) imageBin(image string) (string, error) {
	k := r.kubelet
	k.mu.Lock()
	tools, ok := k.images[image]
	k.mu.Unlock()
	if !ok {
		tools = map[string]string{}
		for _, t := range DefaultImageTools {
			tools[t] = ""
		}
	}
	var b strings.Builder
	b.WriteString(image)
	resolved := map[string]string{}
	for name, bin := range tools {
		if bin == "" {
			p, err := exec.LookPath(name)
			if err != nil {
				return "", unsupported("image %s: the host has no %s to stand for it: %v", image, name, err)
			}
			bin = p
		}
		if bin, err := filepath.Abs(bin); err == nil {
			resolved[name] = bin
		}
		fmt.Fprintf(&b, "\x00%s=%s", name, resolved[name])
	}
	sum := sha256.Sum256([]byte(b.String()))
	dir := filepath.Join(r.dir, "images", hex.EncodeToString(sum[:8]), "bin")
	k.imageMu.Lock()
	defer k.imageMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp) // a half-made directory of an earlier failure
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	for name, bin := range resolved {
		if err := os.Symlink(bin, filepath.Join(tmp, name)); err != nil {
			return "", err
		}
	}
	return dir, os.Rename(tmp, dir)
}

// podRuntime runs one pod of a workflow-controller whose namespace is on Argo's executor
// (ExecutorArgo): its init containers one after the other, then every container, each as a process of
// its own (container.go) that sees the pod's volumes at their mount paths. It writes the pod's status as
// a kubelet does, from what the processes do.
type podRuntime struct {
	r        *Rig
	ns, name string
	uid      types.UID
	dir      string
	pod      *corev1.Pod // as the runtime started it

	volumes map[string]string // volume name -> directory
	mounts  map[string][]mount
	env     map[string][]string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	procs   map[string]*Process
	inits   []corev1.ContainerStatus
	states  map[string]corev1.ContainerState
	started metav1.Time
	changed chan struct{}
}

// runtime is the pod runtime of ns/name, if Argo's executor runs it.
func (k *Kubelet) runtime(ns, name string) *podRuntime {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.runtimes[podKey{ns, name}]
}

// startRealPod starts the runtime of a bound, not started pod, unless one runs for it already.
func (r *Rig) startRealPod(pod *corev1.Pod) {
	k := r.kubelet
	key := podKey{pod.Namespace, pod.Name}
	k.mu.Lock()
	old := k.runtimes[key]
	if old != nil && old.uid == pod.UID {
		k.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(k.ctx)
	rt := &podRuntime{
		r: r, ns: pod.Namespace, name: pod.Name, uid: pod.UID, pod: pod.DeepCopy(),
		dir:     filepath.Join(r.dir, "pods", string(pod.UID)),
		volumes: map[string]string{}, mounts: map[string][]mount{}, env: map[string][]string{},
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		procs: map[string]*Process{}, states: map[string]corev1.ContainerState{}, changed: make(chan struct{}, 1),
	}
	k.runtimes[key] = rt
	k.mu.Unlock()
	if old != nil { // a pod of the same name before this one (a resubmitted Workflow)
		old.kill()
	}
	go func() {
		defer close(rt.done)
		if err := rt.run(); err != nil && ctx.Err() == nil {
			k.runtimeFailed(fmt.Errorf("pod %s/%s: %w", rt.ns, rt.name, err))
		}
	}()
}

// runtimeFailed records what kept the rig from running a pod as a node would, and says so at once: a
// test then fails on it (Kubelet.RuntimeErrors) instead of waiting for a pause that never comes.
func (k *Kubelet) runtimeFailed(err error) {
	fmt.Fprintf(os.Stderr, "rig: %v\n", err)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.runtimeErrs = append(k.runtimeErrs, err)
}

// RuntimeErrors are the failures of the rig's container runtime (a volume it cannot make, a mount that
// fails), oldest first.
func (k *Kubelet) RuntimeErrors() []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]error(nil), k.runtimeErrs...)
}

// stopRuntimes kills the pod runtimes of namespace ns ("" for all) and waits for them.
func (k *Kubelet) stopRuntimes(ns string) {
	k.mu.Lock()
	var rts []*podRuntime
	for key, rt := range k.runtimes {
		if ns == "" || key.ns == ns {
			rts = append(rts, rt)
			delete(k.runtimes, key)
		}
	}
	k.mu.Unlock()
	for _, rt := range rts {
		rt.kill()
	}
}

// forgetRuntime kills the runtime of ns/name when the pod is gone or another pod took its name.
func (k *Kubelet) forgetRuntime(ns, name string, uid types.UID) {
	k.mu.Lock()
	rt := k.runtimes[podKey{ns, name}]
	if rt == nil || rt.uid == uid {
		k.mu.Unlock()
		return
	}
	delete(k.runtimes, podKey{ns, name})
	k.mu.Unlock()
	rt.kill()
}

// kill ends every process of the pod (SIGKILL to each process group, as a kubelet whose pod is deleted
// after its grace) and removes the pod's directories.
func (rt *podRuntime) kill() {
	rt.cancel()
	<-rt.done
	rt.mu.Lock()
	procs := rt.procs
	rt.mu.Unlock()
	for _, p := range procs {
		p.Stop(syscall.SIGKILL, 0)
	}
	_ = os.RemoveAll(rt.dir) // a test's temporary files; Rig.Stop removes whatever is left with its directory
}

func (rt *podRuntime) run() error {
	if err := rt.untilDone(rt.prepare); err != nil {
		return err
	}
	pod := rt.pod
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		p, err := rt.start(c)
		if err != nil {
			return err
		}
		start := metav1.Now()
		select {
		case <-p.done:
		case <-rt.ctx.Done():
			return nil
		}
		code, reason := exitOf(p)
		rt.mu.Lock()
		rt.inits = append(rt.inits, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "rig://" + c.Image, ContainerID: containerID(pod, c.Name), Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason, StartedAt: start, FinishedAt: metav1.Now(), ContainerID: containerID(pod, c.Name),
			}},
		})
		rt.mu.Unlock()
		if code != 0 {
			rt.containerFailed(c.Name, code, p)
			return rt.untilDone(func() error { return rt.writeStatus(true) })
		}
	}
	rt.mu.Lock()
	rt.started = metav1.Now()
	rt.mu.Unlock()
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		p, err := rt.start(c)
		if err != nil {
			return err
		}
		rt.mu.Lock()
		rt.states[c.Name] = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: rt.started}}
		rt.mu.Unlock()
		go rt.watch(c.Name, p)
	}
	for {
		if err := rt.untilDone(func() error { return rt.writeStatus(false) }); err != nil {
			return err
		}
		if rt.ended() {
			// The copy of argoexec that init made (213 MB) is of no use once every container ended;
			// the markers and exit codes stay for the test to read.
			_ = os.Remove(filepath.Join(rt.volumes[varRunArgoVolume], "argoexec"))
			return nil
		}
		select {
		case <-rt.changed:
		case <-rt.ctx.Done():
			return nil
		}
	}
}

// untilDone calls f until it succeeds, fails for good (a pod the rig cannot run), or the runtime stops:
// the API server may be away for a while (a fault test restarts it), and a kubelet keeps trying.
func (rt *podRuntime) untilDone(f func() error) error {
	for {
		err := f()
		var u *unsupportedError
		if err == nil || errors.As(err, &u) || rt.ctx.Err() != nil {
			return err
		}
		select {
		case <-rt.ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// unsupportedError is a pod the rig's executor cannot run, whatever the API server says.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

func unsupported(format string, args ...any) error {
	return &unsupportedError{msg: fmt.Sprintf(format, args...)}
}

// varRunArgoVolume is the emptyDir Argo's controller mounts at /var/run/argo in every container.
const varRunArgoVolume = "var-run-argo"

// watch records how container name's process ended.
func (rt *podRuntime) watch(name string, p *Process) {
	select {
	case <-p.done:
	case <-rt.ctx.Done():
		return
	}
	code, reason := exitOf(p)
	rt.mu.Lock()
	started := rt.started
	rt.states[name] = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: metav1.Now(), ContainerID: containerID(rt.pod, name),
	}}
	rt.mu.Unlock()
	if code != 0 {
		rt.containerFailed(name, code, p)
	}
	select {
	case rt.changed <- struct{}{}:
	default:
	}
}

// containerFailed says loudly when the rig itself could not start a container (the helper's 128: a mount
// that failed, a working directory); a command's own non-zero exit is the test's business.
func (rt *podRuntime) containerFailed(name string, code int32, p *Process) {
	if code == 128 {
		rt.r.kubelet.runtimeFailed(p.Failure(fmt.Errorf("pod %s/%s: container %s could not start", rt.ns, rt.name, name)))
	}
}

func (rt *podRuntime) ended() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, c := range rt.pod.Spec.Containers {
		if s, ok := rt.states[c.Name]; !ok || s.Terminated == nil {
			return false
		}
	}
	return true
}

func exitOf(p *Process) (int32, string) {
	err := p.Err()
	if err == nil {
		return 0, "Completed"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return int32(128 + ws.Signal()), "Error"
		}
		return int32(ee.ExitCode()), "Error"
	}
	return 128, "StartError"
}

func containerID(pod *corev1.Pod, name string) string {
	return "rig://" + string(pod.UID) + "/" + name
}

// writeStatus writes the pod's status from the runtime's containers: Running while one runs, then
// Succeeded or Failed (failedInit: an init container failed, nothing else ran).
func (rt *podRuntime) writeStatus(failedInit bool) error {
	pods := rt.r.client.CoreV1().Pods(rt.ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(rt.ctx, rt.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && pod.UID != rt.uid) {
			return nil
		}
		if err != nil {
			return err
		}
		st := rt.r.runningStatus(pod)
		rt.mu.Lock()
		st.InitContainerStatuses = append([]corev1.ContainerStatus(nil), rt.inits...)
		done, failed := true, failedInit
		for i := range st.ContainerStatuses {
			cs := &st.ContainerStatuses[i]
			cs.ContainerID = containerID(pod, cs.Name)
			s, ok := rt.states[cs.Name]
			switch {
			case failedInit || !ok:
				cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
				cs.Ready, cs.Started, cs.ContainerID = false, ptr(false), ""
			case s.Terminated != nil:
				cs.State, cs.Ready, cs.Started = s, false, ptr(false)
				if s.Terminated.ExitCode != 0 {
					failed = true
				}
			default:
				cs.State = s
				done = false
			}
		}
		rt.mu.Unlock()
		if done || failedInit {
			st.Phase = corev1.PodSucceeded
			if failed {
				st.Phase = corev1.PodFailed
			}
			for i := range st.Conditions {
				if c := &st.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
					c.Status, c.Reason = corev1.ConditionFalse, "PodCompleted"
				}
			}
		}
		if pod.Status.StartTime != nil {
			st.StartTime = pod.Status.StartTime
		}
		pod.Status = st
		_, err = pods.UpdateStatus(rt.ctx, pod, metav1.UpdateOptions{})
		return err
	})
}

// prepare makes the pod's volumes and each container's environment and mounts.
func (rt *podRuntime) prepare() error {
	pod := rt.pod
	rt.volumes, rt.mounts, rt.env = map[string]string{}, map[string][]mount{}, map[string][]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(rt.dir, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		switch {
		case v.EmptyDir != nil:
			// 0777 as the kubelet makes an emptyDir: Argo's containers may run as other users.
			if err := os.Chmod(dir, 0o777); err != nil {
				return err
			}
		case v.Projected != nil:
			if err := rt.project(dir, v.Projected); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		default:
			return unsupported("volume %s: only emptyDir and the service-account projection run on the rig's executor", v.Name)
		}
		rt.volumes[v.Name] = dir
	}
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	for i := range all {
		c := &all[i]
		for _, vm := range c.VolumeMounts {
			src, ok := rt.volumes[vm.Name]
			if !ok {
				return unsupported("container %s mounts volume %s, which the pod does not have", c.Name, vm.Name)
			}
			if vm.SubPath != "" {
				src = filepath.Join(src, filepath.Clean("/"+vm.SubPath))
				if err := os.MkdirAll(src, 0o777); err != nil {
					return err
				}
			}
			rt.mounts[c.Name] = append(rt.mounts[c.Name], mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
		}
		env, err := rt.containerEnv(c)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		rt.env[c.Name] = env
		if err := os.MkdirAll(rt.home(c.Name), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// home is the container's working directory and $HOME: an empty directory of its own, so that nothing
// the command writes by a relative path lands on the host, and no ~/.kube/config of the host is read.
func (rt *podRuntime) home(container string) string {
	return filepath.Join(rt.dir, "home", container)
}

// project fills a projected volume as the kubelet does for the API server's kube-api-access volume: a
// token of the pod's ServiceAccount bound to the pod (TokenRequest), the cluster's CA (what
// kube-root-ca.crt would hold; no controller-manager publishes it here) and the namespace.
func (rt *podRuntime) project(dir string, p *corev1.ProjectedVolumeSource) error {
	for _, src := range p.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			sa := rt.pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			exp := int64(3607)
			if src.ServiceAccountToken.ExpirationSeconds != nil {
				exp = *src.ServiceAccountToken.ExpirationSeconds
			}
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: &exp,
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: rt.name, UID: rt.uid},
			}}
			if a := src.ServiceAccountToken.Audience; a != "" {
				req.Spec.Audiences = []string{a}
			}
			tr, err := rt.r.client.CoreV1().ServiceAccounts(rt.ns).CreateToken(rt.ctx, sa, req, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token of serviceaccount %s/%s: %w", rt.ns, sa, err)
			}
			if err := os.WriteFile(filepath.Join(dir, src.ServiceAccountToken.Path), []byte(tr.Status.Token), 0o644); err != nil {
				return err
			}
		case src.ConfigMap != nil && src.ConfigMap.Name == "kube-root-ca.crt":
			for _, it := range src.ConfigMap.Items {
				if it.Key == "ca.crt" {
					if err := os.WriteFile(filepath.Join(dir, it.Path), rt.r.caData, 0o644); err != nil {
						return err
					}
				}
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				if it.FieldRef == nil {
					return unsupported("downwardAPI item %s: only fieldRef", it.Path)
				}
				v, err := fieldRef(rt.pod, it.FieldRef.FieldPath)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(v), 0o644); err != nil {
					return err
				}
			}
		default:
			return unsupported("only the service-account token, kube-root-ca.crt and downwardAPI sources are projected")
		}
	}
	return nil
}

// containerEnv is the environment of container c as a node gives it: the image's (PATH, HOME), the
// kubelet's (HOSTNAME, the kubernetes Service's KUBERNETES_SERVICE_HOST/PORT), then the container's env
// in order, valueFrom resolved and $(VAR) references expanded, a later entry replacing an earlier one.
func (rt *podRuntime) containerEnv(c *corev1.Container) ([]string, error) {
	bin, err := rt.r.imageBin(c.Image)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rt.r.host)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	var names []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	set("PATH", bin)
	set("HOME", rt.home(c.Name))
	set("HOSTNAME", rt.name)
	set("KUBERNETES_SERVICE_HOST", host)
	set("KUBERNETES_SERVICE_PORT", port)
	set("KUBERNETES_SERVICE_PORT_HTTPS", port)
	set("KUBERNETES_PORT", "tcp://"+u.Host)
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	if len(c.EnvFrom) > 0 {
		return nil, unsupported("envFrom does not run on the rig's executor")
	}
	for _, e := range c.Env {
		v := expand(e.Value, lookup)
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, unsupported("env %s: only fieldRef valueFrom runs on the rig's executor", e.Name)
			}
			if v, err = fieldRef(rt.pod, e.ValueFrom.FieldRef.FieldPath); err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		set(e.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// fieldRef is the downward API's value of path for pod.
func fieldRef(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return "10.244.0.10", nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", unsupported("fieldRef %s does not run on the rig's executor", path)
}

// expand replaces $(NAME) by NAME's value where lookup knows it, and $$ by $, as Kubernetes expands
// env values, commands and args; an unknown reference stays as written.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := lookup(name); ok {
					b.WriteString(v)
				} else {
					b.WriteString(s[i : i+3+end])
				}
				i += 2 + end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// argv is the container's command and args, $(VAR) expanded against its environment.
func (rt *podRuntime) argv(c *corev1.Container) ([]string, error) {
	vals := map[string]string{}
	for _, kv := range rt.env[c.Name] {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	var out []string
	for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
		out = append(out, expand(a, lookup))
	}
	if len(out) == 0 {
		return nil, unsupported("container %s has no command (an image's entrypoint is unknown to the rig)", c.Name)
	}
	return out, nil
}

func (rt *podRuntime) logPath(container string) string {
	return filepath.Join(rt.dir, "logs", container+".log")
}

// start starts container c as its own process.
func (rt *podRuntime) start(c *corev1.Container) (*Process, error) {
	argv, err := rt.argv(c)
	if err != nil {
		return nil, err
	}
	cmd, err := containerCommand(rt.r.kubelet.self, containerSpec{Mounts: rt.mounts[c.Name], Dir: rt.home(c.Name), Argv: argv}, rt.env[c.Name])
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(rt.logPath(c.Name)), 0o755); err != nil {
		return nil, err
	}
	p, err := StartProcess(rt.name+"/"+c.Name, rt.logPath(c.Name), cmd)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	rt.procs[c.Name] = p
	rt.mu.Unlock()
	if err := rt.r.reaper.Watch(p); err != nil {
		p.Stop(syscall.SIGKILL, 0)
		return nil, err
	}
	return p, nil
}

// exec runs argv in container as the runtime's exec does: the container's environment and mounts, its
// own mount namespace joined by the same bind mounts, so /var/run/argo is the very directory the
// container's emissary polls.
func (rt *podRuntime) exec(ctx context.Context, container string, argv []string, stdout, stderr io.Writer) error {
	rt.mu.Lock()
	p := rt.procs[container]
	rt.mu.Unlock()
	if p == nil || p.Exited() {
		return fmt.Errorf("container %q in pod %s/%s is not running", container, rt.ns, rt.name)
	}
	cmd, err := containerCommand(rt.r.kubelet.self, containerSpec{Mounts: rt.mounts[container], Dir: rt.home(container), Argv: argv}, rt.env[container])
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited //nolint:errcheck // killed: its exit says nothing the context does not
		return context.Cause(ctx)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCode(ee.ExitCode())
	}
	return err
}

// varRunArgo is where the pod's /var/run/argo is on the host.
func (rt *podRuntime) varRunArgo() string { return rt.volumes[varRunArgoVolume] }

// hasFile reports whether p, a path under /var/run/argo, exists in the pod's volume.
func (rt *podRuntime) hasFile(p string) bool {
	rel, ok := strings.CutPrefix(filepath.Clean(p), MarkerDir+"/")
	if !ok || rt.varRunArgo() == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(rt.varRunArgo(), rel))
	return err == nil
}

// paused reports whether Argo's emissary holds container c at a debug pause: the container runs, its
// pause env is set, the marker is missing, and the emissary got there (before: it made its ctr
// directory, which it does first; after: it logged that the command exited).
func (rt *podRuntime) paused(c *corev1.Container) bool {
	rt.mu.Lock()
	p := rt.procs[c.Name]
	rt.mu.Unlock()
	if p == nil || p.Exited() {
		return false
	}
	for _, stage := range []string{"before", "after"} {
		if !debugPause(c, stage) || rt.hasFile(fmt.Sprintf("%s/ctr/%s/%s", MarkerDir, c.Name, stage)) {
			continue
		}
		if stage == "before" {
			return rt.hasFile(fmt.Sprintf("%s/ctr/%s", MarkerDir, c.Name))
		}
		log, _ := os.ReadFile(rt.logPath(c.Name))
		return strings.Contains(string(log), emissaryExitedLine)
	}
	return false
}

// emissaryExitedLine is what Argo's emissary logs once the command ended, before its after pause
// (cmd/argoexec/commands/emissary.go, v3.7.17 and v4.0.5).
const emissaryExitedLine = "sub-process exited"

// ContainerLog is what a container of a pod run on Argo's executor wrote (stdout and stderr).
func (k *Kubelet) ContainerLog(ns, pod, container string) (string, error) {
	rt := k.runtime(ns, pod)
	if rt == nil {
		return "", fmt.Errorf("pod %s/%s does not run on Argo's executor here", ns, pod)
	}
	b, err := os.ReadFile(rt.logPath(container))
	return string(b), err
}

// probeMounts proves once that this machine lets the rig give a process its own mount namespace and
// bind-mount there (root, CAP_SYS_ADMIN): without it no pod runs on Argo's executor, and the rig says
// why instead of skipping.
func (r *Rig) probeMounts() error {
	r.kubelet.probeOnce.Do(func() {
		dir := filepath.Join(r.dir, "probe")
		if err := os.MkdirAll(filepath.Join(dir, "vol"), 0o755); err != nil {
			r.kubelet.probeErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "vol", "seen"), nil, 0o644); err != nil {
			r.kubelet.probeErr = err
			return
		}
		test, err := exec.LookPath("test")
		if err != nil {
			r.kubelet.probeErr = err
			return
		}
		cmd, err := containerCommand(r.kubelet.self, containerSpec{
			Mounts: []mount{{Source: filepath.Join(dir, "vol"), Target: MarkerDir, ReadOnly: true}},
			Dir:    dir, Argv: []string{test, "-e", MarkerDir + "/seen"},
		}, nil)
		if err != nil {
			r.kubelet.probeErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := runWithContext(ctx, cmd)
		if err != nil {
			r.kubelet.probeErr = fmt.Errorf("the rig cannot run a container here (a mount namespace of its own with %s bind-mounted; needs root): %w: %s", MarkerDir, err, out)
		}
	})
	return r.kubelet.probeErr
}

func runWithContext(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return []byte(out.String()), err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited //nolint:errcheck // killed: its exit says nothing the context does not
		return []byte(out.String()), context.Cause(ctx)
	}
}
