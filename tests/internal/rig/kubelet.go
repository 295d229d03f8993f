package rig

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// MarkerDir is where Argo's emissary looks for the debug-pause markers; all containers of a pod
// share it through the var-run-argo emptyDir volume.
const MarkerDir = "/var/run/argo"

// Call is one exec request that reached the test kubelet.
type Call struct {
	Namespace, Pod, Container string
	Argv                      []string
	Time                      time.Time
	// Outcome is how the call ended: "exit 0", "exit 127", "error: ...", "hung until ...", or "" while
	// it is still running.
	Outcome string
}

// ExecFunc is the behaviour of a container for one exec. It returns nil for exit code 0,
// a utilexec.CodeExitError for another exit code, or any other error for a runtime failure (the
// client then sees an internal error status rather than an exit code).
type ExecFunc func(ctx context.Context, call Call, stdout, stderr io.Writer) error

// Behaviour decides what an exec into a container does. The zero value is HasTouch.
type Behaviour struct {
	name string
	fn   func(k *Kubelet) ExecFunc
}

func (b Behaviour) String() string {
	if b.name == "" {
		return "has touch"
	}
	return b.name
}

var (
	// HasTouch is the default: the exec as the container's runtime runs it. In a pod on Argo's executor
	// (ExecutorArgo) the argv really runs in the container (its PATH decides whether touch exists, see
	// Kubelet.SetImage). In a pod a test made by hand, `touch PATH...` creates the paths in the pod's
	// emulated filesystem and exits 0, and any other executable is missing (exit 127).
	HasTouch = Behaviour{name: "has touch"}
	// NoTouch is an image without touch: the shell-style failure, exit 127 and "executable file not
	// found" on stderr, as CRI-O and crun report it.
	NoTouch = Behaviour{name: "no touch", fn: func(*Kubelet) ExecFunc { return missingExecutable }}
	// NoTouchRuntimeError is an image without touch as containerd/runc report it: no exit code, the
	// exec fails with an error status whose message contains `executable file not found in $PATH`.
	NoTouchRuntimeError = Behaviour{name: "no touch (runtime error)", fn: func(*Kubelet) ExecFunc { return missingExecutableRuntime }}
	// Hang blocks until the client goes away, the request ends, or the rig stops.
	Hang = Behaviour{name: "hang", fn: func(*Kubelet) ExecFunc { return hang }}
	// FailAfterTouch does what HasTouch does, waits until the emissary emulation has decided about the
	// marker (a paused container has ended), and then fails the exec with a runtime error instead of its
	// exit status, as a node reports an exec session that broke after its command started: the client
	// sees an error although the touch ran and the container has ended. (Closing the kubelet's connection
	// instead is no error to the client: through the API server's stream translation, client-go's
	// WebSocket executor then reads a success.)
	FailAfterTouch = Behaviour{name: "fail after touch", fn: func(k *Kubelet) ExecFunc { return k.failAfterTouch }}
)

// errAfterTouch is FailAfterTouch's error.
var errAfterTouch = errors.New("exec session broke after the command started: stream reset by the container runtime")

func (k *Kubelet) failAfterTouch(ctx context.Context, call Call, stdout, stderr io.Writer) error {
	seen := len(k.EmissaryEvents(call.Namespace))
	if err := k.touch(ctx, call, stdout, stderr); err != nil {
		return err
	}
	if _, _, ok := parseMarker(call.Argv[len(call.Argv)-1]); ok {
		for len(k.EmissaryEvents(call.Namespace)) <= seen {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return errAfterTouch
}

// Exit returns exit code code without doing anything.
func Exit(code int) Behaviour {
	return Behaviour{name: fmt.Sprintf("exit %d", code), fn: func(*Kubelet) ExecFunc {
		return func(context.Context, Call, io.Writer, io.Writer) error { return exitCode(code) }
	}}
}

// Func runs f for every exec into the container.
func Func(name string, f ExecFunc) Behaviour {
	return Behaviour{name: name, fn: func(*Kubelet) ExecFunc { return f }}
}

// Before runs before for every exec into the container and then does what HasTouch does, unless before
// returned an error (the exec's outcome then) or the exec's context ended meanwhile. A test holds an exec
// in flight with it, to inject a fault while the command runs.
func Before(name string, before ExecFunc) Behaviour {
	return Behaviour{name: name, fn: func(k *Kubelet) ExecFunc {
		return func(ctx context.Context, call Call, stdout, stderr io.Writer) error {
			if err := before(ctx, call, stdout, stderr); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return k.defaultExec(ctx, call, stdout, stderr)
		}
	}}
}

func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code}
}

func missingExecutable(_ context.Context, call Call, _, stderr io.Writer) error {
	_, _ = fmt.Fprintf(stderr, "exec: %q: executable file not found in $PATH\n", call.Argv[0])
	return exitCode(127)
}

func missingExecutableRuntime(_ context.Context, call Call, _, _ io.Writer) error {
	return fmt.Errorf("failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: %q: executable file not found in $PATH: unknown", call.Argv[0])
}

func hang(ctx context.Context, _ Call, _, _ io.Writer) error {
	<-ctx.Done()
	return context.Cause(ctx)
}

type podKey struct{ ns, pod string }

type containerKey struct{ ns, pod, container string }

// Kubelet is the rig's test kubelet: it serves the kubelet exec endpoint the API server proxies
// pods/exec to, and emulates what each container does with the command.
type Kubelet struct {
	srv      *http.Server
	listener net.Listener
	ctx      context.Context // ends when the rig stops
	stop     context.CancelFunc

	// onMarker is called (outside the lock) when an exec creates an Argo marker file.
	onMarker func(ns, pod, container, stage string)
	// client reads pods, to refuse execs into containers that are not running as a kubelet does.
	client kubernetes.Interface

	mu         sync.Mutex
	behaviours map[containerKey]Behaviour // container "" = every container of the pod
	files      map[podKey]map[string]bool // per pod: shared /var/run/argo paths, others as "container:path"
	noEmissary map[podKey]bool
	argoNS     map[string]bool             // namespaces whose pods a real workflow-controller makes (runArgoPods)
	argoQueue  map[string]func(pod string) // per such namespace: has runArgoPods look at a pod again
	holds      map[string]Hold             // "namespace/workflow": how far the Workflow's pods may go
	calls      []*Call
	emissaryEv []EmissaryEvent

	// The container runtime of the namespaces on Argo's executor (runtime.go).
	self        string                       // this binary, which becomes each container's process (container.go)
	execNS      map[string]string            // namespace -> the argoexec binary its controller's pods run
	runtimes    map[podKey]*podRuntime       // the pods running on Argo's executor
	images      map[string]map[string]string // image -> command -> host binary ("": found on the host's PATH)
	imageMu     sync.Mutex                   // serialises making the images' PATH directories
	runtimeErrs []error
	probeOnce   sync.Once
	probeErr    error
}

func startKubelet(ctx context.Context, bindAddress string) (*Kubelet, error) {
	certPEM, keyPEM, err := fixture.SelfSignedCert("rig-kubelet", bindAddress)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	// ctx bounds only the bind: the listener lives until close.
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(bindAddress, "0"))
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the rig's containers run as this binary: %w", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	k := &Kubelet{
		self:       self,
		execNS:     map[string]string{},
		runtimes:   map[podKey]*podRuntime{},
		images:     map[string]map[string]string{},
		listener:   l,
		ctx:        ctx,
		stop:       func() { cancel(errors.New("rig stopped")) },
		behaviours: map[containerKey]Behaviour{},
		files:      map[podKey]map[string]bool{},
		noEmissary: map[podKey]bool{},
		argoNS:     map[string]bool{},
		argoQueue:  map[string]func(string){},
		holds:      map[string]Hold{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", k.serveExec)
	// The kubelet also accepts the pod UID in the path; the API server does not send it, but accept it.
	mux.HandleFunc("/exec/{ns}/{pod}/{uid}/{container}", k.serveExec)
	k.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	go func() { _ = k.srv.Serve(tls.NewListener(l, k.srv.TLSConfig)) }()
	return k, nil
}

// Port is the TCP port the kubelet serves on (the Node's kubeletEndpoint).
func (k *Kubelet) Port() int { return k.listener.Addr().(*net.TCPAddr).Port }

func (k *Kubelet) close() {
	k.stop()
	k.stopRuntimes("")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
	_ = k.srv.Close()
}

// SetBehaviour sets what execs into a container do; container "" sets it for every container of the
// pod that has no behaviour of its own.
func (k *Kubelet) SetBehaviour(namespace, pod, container string, b Behaviour) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.behaviours[containerKey{namespace, pod, container}] = b
}

// SetEmissary turns the emulation of Argo's emissary for a pod on (the default) or off.
func (k *Kubelet) SetEmissary(namespace, pod string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if on {
		delete(k.noEmissary, podKey{namespace, pod})
	} else {
		k.noEmissary[podKey{namespace, pod}] = true
	}
}

func (k *Kubelet) emissary(namespace, pod string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.noEmissary[podKey{namespace, pod}]
}

// Calls returns every exec the kubelet received, oldest first.
func (k *Kubelet) Calls() []Call { return k.callsWhere(func(*Call) bool { return true }) }

// CallsFor returns the execs into pods of one namespace, oldest first.
func (k *Kubelet) CallsFor(namespace string) []Call {
	return k.callsWhere(func(c *Call) bool { return c.Namespace == namespace })
}

func (k *Kubelet) callsWhere(keep func(*Call) bool) []Call {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Call
	for _, c := range k.calls {
		if keep(c) {
			cp := *c
			cp.Argv = slices.Clone(c.Argv)
			out = append(out, cp)
		}
	}
	return out
}

// EmissaryEvents returns the emissary emulation's decisions about the markers created in pods of
// namespace, oldest first. A marker's event appears once the emulation is done with it (the pod status
// written, if it changes).
func (k *Kubelet) EmissaryEvents(namespace string) []EmissaryEvent {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []EmissaryEvent
	for _, ev := range k.emissaryEv {
		if ev.Namespace == namespace {
			out = append(out, ev)
		}
	}
	return out
}

func (k *Kubelet) recordEmissary(ev EmissaryEvent) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.emissaryEv = append(k.emissaryEv, ev)
}

// Files lists the paths created in a pod, sorted: paths under /var/run/argo (shared by all
// containers) as is, other paths as "container:path".
func (k *Kubelet) Files(namespace, pod string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for p := range k.files[podKey{namespace, pod}] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// HasFile reports whether path exists in the pod, as seen from container (container only matters
// outside /var/run/argo).
func (k *Kubelet) HasFile(namespace, pod, container, p string) bool {
	if rt := k.runtime(namespace, pod); rt != nil {
		return rt.hasFile(p)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.files[podKey{namespace, pod}][fileKey(container, p)]
}

// ForgetNamespace drops the behaviours, files, calls and emissary events of a namespace, and kills the
// processes of its pods on Argo's executor.
func (k *Kubelet) ForgetNamespace(namespace string) {
	k.stopRuntimes(namespace)
	k.mu.Lock()
	defer k.mu.Unlock()
	for key := range k.behaviours {
		if key.ns == namespace {
			delete(k.behaviours, key)
		}
	}
	for key := range k.files {
		if key.ns == namespace {
			delete(k.files, key)
		}
	}
	for key := range k.noEmissary {
		if key.ns == namespace {
			delete(k.noEmissary, key)
		}
	}
	k.calls = slices.DeleteFunc(k.calls, func(c *Call) bool { return c.Namespace == namespace })
	k.emissaryEv = slices.DeleteFunc(k.emissaryEv, func(ev EmissaryEvent) bool { return ev.Namespace == namespace })
}

// forgetFiles drops what was created in a pod (its emptyDir volumes and container filesystems).
func (k *Kubelet) forgetFiles(namespace, pod string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.files, podKey{namespace, pod})
}

func fileKey(container, p string) string {
	p = path.Clean(p)
	if p == MarkerDir || strings.HasPrefix(p, MarkerDir+"/") {
		return p
	}
	return container + ":" + p
}

func (k *Kubelet) behaviour(ns, pod, container string) Behaviour {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b, ok := k.behaviours[containerKey{ns, pod, container}]; ok {
		return b
	}
	return k.behaviours[containerKey{ns, pod, ""}]
}

// defaultExec is what an exec does when no Behaviour says otherwise: in a pod on Argo's executor, the argv
// runs for real in the container (runtime.go); in a pod a test made by hand, touch is emulated.
func (k *Kubelet) defaultExec(ctx context.Context, call Call, stdout, stderr io.Writer) error {
	if rt := k.runtime(call.Namespace, call.Pod); rt != nil {
		return rt.exec(ctx, call.Container, call.Argv, stdout, stderr)
	}
	return k.touch(ctx, call, stdout, stderr)
}

// touch is the HasTouch behaviour in a pod a test made by hand: it needs the kubelet for the pod's
// emulated filesystem.
func (k *Kubelet) touch(_ context.Context, call Call, _, stderr io.Writer) error {
	if path.Base(call.Argv[0]) != "touch" {
		_, _ = fmt.Fprintf(stderr, "exec: %q: executable file not found in $PATH\n", call.Argv[0])
		return exitCode(127)
	}
	if len(call.Argv) < 2 {
		_, _ = fmt.Fprintln(stderr, "touch: missing file operand")
		return exitCode(1)
	}
	var markers [][2]string
	k.mu.Lock()
	fs := k.files[podKey{call.Namespace, call.Pod}]
	if fs == nil {
		fs = map[string]bool{}
		k.files[podKey{call.Namespace, call.Pod}] = fs
	}
	for _, p := range call.Argv[1:] {
		if strings.HasPrefix(p, "-") {
			continue // options such as -c change nothing here
		}
		fs[fileKey(call.Container, p)] = true
		if c, stage, ok := parseMarker(p); ok {
			markers = append(markers, [2]string{c, stage})
		}
	}
	k.mu.Unlock()
	if k.onMarker != nil {
		for _, m := range markers {
			k.onMarker(call.Namespace, call.Pod, m[0], m[1])
		}
	}
	return nil
}

// parseMarker recognises /var/run/argo/ctr/<container>/<before|after>.
func parseMarker(p string) (container, stage string, ok bool) {
	rest, found := strings.CutPrefix(path.Clean(p), MarkerDir+"/ctr/")
	if !found {
		return "", "", false
	}
	container, stage, found = strings.Cut(rest, "/")
	if !found || container == "" || (stage != "before" && stage != "after") {
		return "", "", false
	}
	return container, stage, true
}

func (k *Kubelet) serveExec(w http.ResponseWriter, req *http.Request) {
	ns, pod, container := req.PathValue("ns"), req.PathValue("pod"), req.PathValue("container")
	argv := req.URL.Query()["command"]
	if len(argv) == 0 {
		http.Error(w, "missing command", http.StatusBadRequest)
		return
	}
	opts, err := remotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call := &Call{Namespace: ns, Pod: pod, Container: container, Argv: argv, Time: time.Now()}
	k.mu.Lock()
	k.calls = append(k.calls, call)
	k.mu.Unlock()
	if code, msg := k.runnable(req.Context(), ns, pod, container); code != 0 {
		k.mu.Lock()
		call.Outcome = "refused: " + msg
		k.mu.Unlock()
		http.Error(w, msg, code)
		return
	}

	// After the upgrade, net/http no longer ends the request context when the peer goes away, so the
	// hijacked connection is watched to end it: a hung exec then returns once the client gives up.
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	stopOnRigStop := context.AfterFunc(k.ctx, func() { cancel(context.Cause(k.ctx)) })
	defer stopOnRigStop()
	w = &watchedWriter{ResponseWriter: w, onClose: func() { cancel(errors.New("client connection closed")) }}

	ex := &executor{k: k, call: call}
	remotecommand.ServeExec(w, req.WithContext(ctx), ex, ns+"/"+pod, "", container, argv, opts,
		time.Hour, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// runnable checks, as a kubelet does before exec, that the pod is on this node and the container
// is running; it returns an HTTP status and message otherwise.
func (k *Kubelet) runnable(ctx context.Context, ns, name, container string) (int, string) {
	pod, err := k.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return http.StatusNotFound, "pod does not exist"
	case err != nil:
		return http.StatusInternalServerError, err.Error()
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != container {
			continue
		}
		if cs.State.Running == nil {
			return http.StatusInternalServerError, fmt.Sprintf("container %q in pod %s/%s is not running", container, ns, name)
		}
		return 0, ""
	}
	return http.StatusNotFound, fmt.Sprintf("container not found (%q)", container)
}

type executor struct {
	k    *Kubelet
	call *Call
}

func (e *executor) ExecInContainer(ctx context.Context, _, _, _ string, _ []string, _ io.Reader, stdout, stderr io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	call := *e.call
	b := e.k.behaviour(call.Namespace, call.Pod, call.Container)
	f := e.k.defaultExec
	if b.fn != nil {
		f = b.fn(e.k)
	}
	out, errOut := io.Discard, io.Discard
	if stdout != nil {
		out = stdout
	}
	if stderr != nil {
		errOut = stderr
	}
	err := f(ctx, call, out, errOut)
	outcome := "exit 0"
	var exitErr utilexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		outcome = fmt.Sprintf("exit %d", exitErr.ExitStatus())
		err = exitErr // ServeExec only recognises an unwrapped ExitError
	case ctx.Err() != nil:
		outcome = "hung until " + context.Cause(ctx).Error()
	default:
		outcome = "error: " + err.Error()
	}
	e.k.mu.Lock()
	e.call.Outcome = outcome
	e.k.mu.Unlock()
	return err
}

// watchedWriter reports when the hijacked connection fails or is closed.
type watchedWriter struct {
	http.ResponseWriter
	onClose func()
}

func (w *watchedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: conn, onClose: w.onClose}
	// Bytes already buffered from the connection must still be read first.
	var r io.Reader = wc
	if n := brw.Reader.Buffered(); n > 0 {
		buf, _ := brw.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(buf)), wc)
	}
	return wc, bufio.NewReadWriter(bufio.NewReader(r), bufio.NewWriter(wc)), nil
}

func (w *watchedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type watchedConn struct {
	net.Conn
	onClose func()
	once    sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(c.onClose)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.once.Do(c.onClose)
	return c.Conn.Close()
}
