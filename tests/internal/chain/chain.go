package chain

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Component is one restartable process of the chain.
type Component string

const (
	// Server is resume-trigger, in the host's namespaces.
	Server Component = "resume-trigger"
	// Sensor is `argo-events sensor-service` with sensor/sensor.yaml.
	Sensor Component = "sensor"
	// ResourceEventSource is `argo-events eventsource-service` with eventsource/resource.yaml.
	ResourceEventSource Component = "eventsource-resource"
	// WebhookEventSource is `argo-events eventsource-service` with eventsource/webhook/webhook.yaml.
	WebhookEventSource Component = "eventsource-webhook"
)

// argoComponents run in network namespaces 0, 1, 2 in this order.
var argoComponents = []Component{Sensor, ResourceEventSource, WebhookEventSource}

// Options configure Start. The zero value works.
type Options struct {
	// Logf receives progress lines (one per step, with timings); nil is silent.
	Logf func(format string, args ...any)
	// Namespace is the Kubernetes namespace the chain serves; default "e2e".
	Namespace string
	// Overlay is the shipped kustomize overlay the chain installs, rendered after editing its install.yaml
	// as a user would (rig.RenderInstall); default manifests/namespace-install. Of the rendered objects the
	// chain applies the RBAC, runs the server with the Deployment's args and the argo-events processes with
	// the Sensor and EventSources as rendered, changing only the Sensor's serverURL (the address).
	Overlay string
	// InstallNamespace is install.yaml's namespace: the server's, Sensor's and EventSources'; default
	// DefaultInstallNamespace.
	InstallNamespace string
	// Namespaces are install.yaml's served namespaces; default Namespace (["*"] with cluster-install).
	Namespaces []string
	// WebhookNamespaces are install.yaml's webhook namespaces; default Namespace, so that webhook calls
	// release there.
	WebhookNamespaces []string
	// ExtraNamespaces are made beside Namespace, each with a workflow-controller of its own; served or not
	// as Namespaces says.
	ExtraNamespaces []string
	// WebhookToken is the webhook EventSource's bearer token; default random.
	WebhookToken string
	// Executor runs the step pods of the workflow-controllers; default rig.ExecutorArgo, Argo's own
	// argoexec (the emissary holds the step, the wait container reports it).
	Executor rig.ExecutorKind
	// ExecTimeout is resume-trigger's --exec-timeout; default 5s.
	ExecTimeout time.Duration
	// ServerArgs are appended to resume-trigger's command line.
	ServerArgs []string
	// ReadyTimeout bounds the wait for each process to become ready; default 90s.
	ReadyTimeout time.Duration
	// Render, when set, renders the install in place of Overlay (which then only names it in logs): the
	// Helm chart, say. It is given the same values an overlay's install.yaml would be.
	Render Renderer
	// TLS serves resume-trigger over TLS as manifests/tls sets it up: the Sensor rendered with that
	// Component (secure, certSecret, serverNameOverride), the server given a certificate for the names of
	// manifests/tls/cert-manager's Certificate from a CA of the chain (RotateServerCert replaces it).
	TLS bool
}

// Chain is a running chain. Its fields are read-only.
type Chain struct {
	Rig *rig.Rig
	// Argo is Argo's workflow-controller for Namespace: it makes the Workflows' nodes and step pods.
	Argo *rig.WorkflowController
	// Namespace is where Workflows, pods and Resumes go; the Sensor, EventSources and server serve it.
	Namespace string
	// InstallNamespace is where the server, Sensor and EventSources run (their ServiceAccounts, RBAC).
	InstallNamespace string
	// WebhookURL is the webhook EventSource's endpoint (POST JSON with Authorization: Bearer WebhookToken).
	WebhookURL   string
	WebhookToken string
	// HostIP is the host-side address the namespaces reach: API server, kubelet, NATS, resume-trigger.
	HostIP string
	// ServerAddress is resume-trigger's gRPC address (the Sensor's serverURL); MetricsURL its HTTP base.
	ServerAddress string
	MetricsURL    string
	// NATSURL is the EventBus (TLS, self-signed); NATSMonitorURL its plain-HTTP monitoring on loopback.
	NATSURL        string
	NATSMonitorURL string
	// Dir holds binaries, configs and logs; removed by Stop.
	Dir string
	// ServerServiceAccount is the ServiceAccount (from the overlay, in InstallNamespace) whose token
	// resume-trigger uses.
	ServerServiceAccount string
	// Argos are the workflow-controllers of ExtraNamespaces, by namespace.
	Argos map[string]*rig.WorkflowController

	opts       Options
	root       string
	install    *install
	workflows  wfclient.Interface
	netns      []*netNS
	argoEvents string
	natsServer string
	serverBin  string
	objects    map[Component]object
	envelopes  map[Component]string
	kubeconfig map[Component][]byte
	// serverKubeconfig is resume-trigger's kubeconfig: a token of ServerServiceAccount.
	serverKubeconfig string
	triggers         int
	webhookIP        string
	webhookPort      string
	webhookPath      string
	secretPath       string
	// tls is the server's certificate and the Sensor's CA when Options.TLS is set.
	tls *serverTLS

	reaper *rig.Reaper

	mu       sync.Mutex
	procs    map[Component]*rig.Process
	nats     *rig.Process
	natsConf string
	runs     map[Component]int
	logs     []string
	cleanups []func()
	stopOnce sync.Once
}

func (c *Chain) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// onStop registers f to run at Stop, last registered first.
func (c *Chain) onStop(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

// Start brings the chain up in order (network namespaces, control plane, NATS, resume-trigger, Sensor,
// EventSources) and returns once every piece is ready: the Sensor's JetStream consumers exist, the
// resource EventSource runs its informer and the webhook answers /health. On error everything started so
// far is gone again.
func Start(ctx context.Context, opts Options) (_ *Chain, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("chain: needs root (network and mount namespaces)")
	}
	if opts.Namespace == "" {
		opts.Namespace = "e2e"
	}
	if opts.Overlay == "" {
		opts.Overlay = rig.NamespaceInstallDir
	}
	if opts.InstallNamespace == "" {
		opts.InstallNamespace = DefaultInstallNamespace
	}
	if opts.Namespaces == nil {
		opts.Namespaces = []string{opts.Namespace}
	}
	if opts.WebhookNamespaces == nil {
		opts.WebhookNamespaces = []string{opts.Namespace}
	}
	if opts.WebhookToken == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		opts.WebhookToken = hex.EncodeToString(b)
	}
	if opts.Executor == "" {
		opts.Executor = rig.ExecutorArgo
	}
	if opts.ExecTimeout == 0 {
		opts.ExecTimeout = 5 * time.Second
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	began := time.Now()
	c := &Chain{
		opts: opts, Namespace: opts.Namespace, InstallNamespace: opts.InstallNamespace, WebhookToken: opts.WebhookToken,
		Argos: map[string]*rig.WorkflowController{},
		procs: map[Component]*rig.Process{}, runs: map[Component]int{},
		envelopes: map[Component]string{}, kubeconfig: map[Component][]byte{},
	}
	defer func() {
		if err != nil {
			if c.Dir != "" {
				err = fmt.Errorf("%w\n%s", err, c.LogTails(30))
			}
			c.Stop()
		}
	}()
	if c.root, err = rig.RepoRoot(); err != nil {
		return nil, err
	}
	sweepStaleDirs()
	if c.Dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid())); err != nil {
		return nil, err
	}
	dir := c.Dir
	c.onStop(func() { _ = os.RemoveAll(dir) }) // a leftover is removed by a later Start (sweepStaleDirs)
	if c.reaper, err = rig.StartReaper(dir, reaperCleanup); err != nil {
		return nil, err
	}
	c.onStop(c.reaper.Stop) // runs next to last: all but the directory is gone by then
	for _, d := range []string{"bin", "logs", "nats"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}

	// Binaries first: a cold build is not bounded by ctx's deadline for the rest.
	step := time.Now()
	if err := c.binaries(); err != nil {
		return nil, err
	}
	c.logf("chain: binaries ready in %v (argo-events %s)", time.Since(step).Round(time.Millisecond), c.argoEvents)

	if err := c.loadObjects(); err != nil {
		return nil, err
	}
	if opts.TLS {
		if c.tls, err = checkTLS(c.install.objects, c.Dir); err != nil {
			return nil, err
		}
	}

	step = time.Now()
	sweepStaleNetNS(ctx)
	if c.netns, err = addNetNSes(ctx, len(argoComponents)); err != nil {
		return nil, err
	}
	for _, n := range c.netns {
		c.onStop(func() { _ = n.delete() })
	}
	c.HostIP = c.netns[0].HostIP
	c.webhookIP = c.netns[2].IP
	c.WebhookURL = "http://" + net.JoinHostPort(c.webhookIP, c.webhookPort) + c.webhookPath
	c.logf("chain: network namespaces %s (host side %s) in %v", strings.Join(c.netnsNames(), ", "), c.HostIP, time.Since(step).Round(time.Millisecond))
	if err := ownArgoEventsDir(); err != nil {
		return nil, err
	}
	c.onStop(releaseArgoEventsDir)

	step = time.Now()
	r, err := rig.Start(ctx, rig.Options{BindAddress: c.HostIP})
	if err != nil {
		return nil, fmt.Errorf("start the control plane on %s: %w", c.HostIP, err)
	}
	c.Rig = r
	c.onStop(r.Stop)
	if c.workflows, err = wfclient.NewForConfig(r.AdminConfig()); err != nil {
		return nil, err
	}
	c.logf("chain: control plane up at %s in %v", r.Host(), time.Since(step).Round(time.Millisecond))

	if err := c.setupNamespace(ctx); err != nil {
		return nil, err
	}
	step = time.Now()
	if c.Argo, err = r.StartWorkflowController(ctx, rig.ControllerOptions{Namespace: c.Namespace, Executor: opts.Executor}); err != nil {
		return nil, fmt.Errorf("start Argo's workflow-controller: %w", err)
	}
	c.onStop(c.Argo.Stop)
	c.addLog(c.Argo.Log())
	c.logf("chain: Argo workflow-controller %s (executor: %s) for namespace %s in %v", c.Argo.Argo, opts.Executor, c.Namespace, time.Since(step).Round(time.Millisecond))
	for _, ns := range opts.ExtraNamespaces {
		step = time.Now()
		wc, err := r.StartWorkflowController(ctx, rig.ControllerOptions{Namespace: ns, Executor: opts.Executor})
		if err != nil {
			return nil, fmt.Errorf("start Argo's workflow-controller for %s: %w", ns, err)
		}
		c.onStop(wc.Stop)
		c.addLog(wc.Log())
		c.Argos[ns] = wc
		c.logf("chain: Argo workflow-controller for namespace %s in %v", ns, time.Since(step).Round(time.Millisecond))
	}
	if err := c.startNATS(ctx); err != nil {
		return nil, err
	}
	grpcPort, err := rig.FreePort(ctx, c.HostIP)
	if err != nil {
		return nil, err
	}
	c.ServerAddress = net.JoinHostPort(c.HostIP, strconv.Itoa(grpcPort))
	metricsPort, err := rig.FreePort(ctx, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	c.MetricsURL = "http://127.0.0.1:" + strconv.Itoa(metricsPort)
	if err := c.adaptObjects(); err != nil {
		return nil, err
	}
	// The Sensor first: its consumers start at new messages, so it must listen before anything emits.
	for _, comp := range []Component{Server, Sensor, ResourceEventSource, WebhookEventSource} {
		if err := c.StartComponent(ctx, comp); err != nil {
			return nil, err
		}
	}
	c.logf("chain: ready in %v; webhook %s", time.Since(began).Round(time.Millisecond), c.WebhookURL)
	return c, nil
}

func (c *Chain) netnsNames() []string {
	var out []string
	for _, n := range c.netns {
		out = append(out, n.Name)
	}
	return out
}

func (c *Chain) binaries() error {
	tools, err := rig.Tools(c.root, "argo-events", "nats-server")
	if err != nil {
		return err
	}
	c.argoEvents, c.natsServer = tools[0], tools[1]
	bin, err := buildServer(c.root)
	if err != nil {
		return err
	}
	c.onStop(releaseServer)
	c.serverBin = filepath.Join(c.Dir, "bin", "resume-trigger")
	return os.Link(bin, c.serverBin)
}

// serverBuild is the resume-trigger binary this process built: chains running at the same time share
// one build of the checkout, so they run the same server and the second does not wait for a build.
var serverBuild struct {
	mu    sync.Mutex
	users int
	dir   string
}

// buildServer builds ./cmd/resume-trigger of the checkout at root unless a live chain of this process
// has, and returns the binary; every successful call needs a releaseServer.
func buildServer(root string) (string, error) {
	serverBuild.mu.Lock()
	defer serverBuild.mu.Unlock()
	if serverBuild.users == 0 {
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-build-", dirPrefix, os.Getpid()))
		if err != nil {
			return "", err
		}
		// Not bounded: a cold build takes what it takes.
		cmd := exec.CommandContext(context.Background(), "go", "build", "-o", filepath.Join(dir, "resume-trigger"), "./cmd/resume-trigger")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("go build ./cmd/resume-trigger: %w\n%s", err, out)
		}
		serverBuild.dir = dir
	}
	serverBuild.users++
	return filepath.Join(serverBuild.dir, "resume-trigger"), nil
}

// releaseServer removes the build when no chain of this process uses it any more (each chain runs a hard
// link of its own).
func releaseServer() {
	serverBuild.mu.Lock()
	defer serverBuild.mu.Unlock()
	if serverBuild.users--; serverBuild.users == 0 {
		_ = os.RemoveAll(serverBuild.dir)
	}
}

// installValues are what the chain sets in the overlay's install.yaml, and with Options.TLS the TLS
// Components added to it, as a user would.
func (c *Chain) installValues(namespaces, webhookNamespaces []string) rig.InstallValues {
	v := rig.InstallValues{Namespace: c.InstallNamespace, Namespaces: namespaces, WebhookNamespaces: webhookNamespaces}
	if c.opts.TLS {
		v.Components = []string{TLSComponentDir, CertManagerDir}
	}
	return v
}

// loadObjects renders the overlay and takes the Sensor and EventSources from it.
func (c *Chain) loadObjects() error {
	in, err := renderInstall(c.root, c.opts.Overlay, c.installValues(c.opts.Namespaces, c.opts.WebhookNamespaces), c.opts.Render)
	if err != nil {
		return err
	}
	c.install = in
	c.objects = map[Component]object{Sensor: in.sensor, ResourceEventSource: in.resource, WebhookEventSource: in.webhook}
	port, endpoint, secret, key, err := webhookEndpoint(c.objects[WebhookEventSource])
	if err != nil {
		return fmt.Errorf("%s: %w", c.opts.Overlay, err)
	}
	c.secretPath = filepath.Join("/argo-events/secrets", secret, key)
	c.webhookPort, c.webhookPath = port, endpoint
	return nil
}

// adaptObjects points the Sensor at the server's address (the one change the chain makes to the rendered
// objects) and builds each argo-events process's object envelope.
func (c *Chain) adaptObjects() error {
	var err error
	if c.triggers, err = adaptSensor(c.objects[Sensor], c.ServerAddress); err != nil {
		return fmt.Errorf("%s: Sensor: %w", c.opts.Overlay, err)
	}
	for comp, o := range c.objects {
		if c.envelopes[comp], err = o.envelope(c.InstallNamespace); err != nil {
			return err
		}
	}
	return nil
}

// setupNamespace creates the install namespace and the served ones, each with its default ServiceAccount,
// applies the overlay's RBAC and writes kubeconfigs: the resource EventSource acts as its shipped
// ServiceAccount, the Sensor and the webhook EventSource (which never call the API) as the default one,
// resume-trigger as the Deployment's ServiceAccount (TokenRequest), so each has exactly the rights a
// user's install gives it.
func (c *Chain) setupNamespace(ctx context.Context) error {
	cs := c.Rig.Client()
	for _, ns := range append([]string{c.InstallNamespace, c.Namespace}, c.opts.ExtraNamespaces...) {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	applied, err := applyRBAC(ctx, c.Rig.Dynamic(), c.install)
	if err != nil {
		return err
	}
	for comp, sa := range map[Component]string{Sensor: "default", ResourceEventSource: c.install.resourceSA, WebhookEventSource: "default"} {
		cfg, err := c.Rig.ServiceAccountTokenConfig(ctx, c.InstallNamespace, sa)
		if err != nil {
			return err
		}
		path := filepath.Join(c.Dir, string(comp)+".kubeconfig")
		if err := rig.WriteKubeconfig(cfg, path); err != nil {
			return err
		}
		if c.kubeconfig[comp], err = os.ReadFile(path); err != nil {
			return err
		}
	}
	c.ServerServiceAccount = c.install.serverSA
	cfg, err := c.Rig.ServiceAccountTokenConfig(ctx, c.InstallNamespace, c.ServerServiceAccount)
	if err != nil {
		return err
	}
	c.serverKubeconfig = filepath.Join(c.Dir, string(Server)+".kubeconfig")
	if err := rig.WriteKubeconfig(cfg, c.serverKubeconfig); err != nil {
		return err
	}
	c.logf("chain: %s rendered for install namespace %s serving %s (webhook %s); applied %s; resume-trigger acts as serviceaccount %s/%s, the resource EventSource as %s",
		c.opts.Overlay, c.InstallNamespace, strings.Join(c.opts.Namespaces, ","), strings.Join(c.opts.WebhookNamespaces, ","),
		strings.Join(applied, ", "), c.InstallNamespace, c.ServerServiceAccount, c.install.resourceSA)
	return nil
}

// Reinstall renders overlay (a kustomize overlay, whatever Options.Render) again with namespaces and
// webhookNamespaces in install.yaml, applies its
// RBAC (what the previous install applied stays, as after `kubectl apply -k` of another overlay) and
// restarts the server and the Sensor with the new rendering. The EventSources keep running: both
// overlays ship the same ones.
func (c *Chain) Reinstall(ctx context.Context, overlay string, namespaces, webhookNamespaces []string) error {
	in, err := renderInstall(c.root, overlay, c.installValues(namespaces, webhookNamespaces), nil)
	if err != nil {
		return err
	}
	if in.serverSA != c.ServerServiceAccount {
		return fmt.Errorf("%s runs the server as %s, the chain's token is for %s", overlay, in.serverSA, c.ServerServiceAccount)
	}
	applied, err := applyRBAC(ctx, c.Rig.Dynamic(), in)
	if err != nil {
		return err
	}
	for _, comp := range []Component{Server, Sensor} {
		if err := c.Kill(comp, syscall.SIGTERM); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.install = in
	c.opts.Overlay, c.opts.Namespaces, c.opts.WebhookNamespaces = overlay, namespaces, webhookNamespaces
	c.objects[Sensor] = in.sensor
	c.mu.Unlock()
	if err := c.adaptObjects(); err != nil {
		return err
	}
	c.logf("chain: reinstalled from %s serving %s (webhook %s); applied %s", overlay, strings.Join(namespaces, ","), strings.Join(webhookNamespaces, ","), strings.Join(applied, ", "))
	for _, comp := range []Component{Server, Sensor} {
		if err := c.StartComponent(ctx, comp); err != nil {
			return err
		}
	}
	return nil
}

// ServerArgs is resume-trigger's command line as the chain runs it now.
func (c *Chain) ServerArgs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serverArgs()
}

// serverArgs is the rendered Deployment's args (install.server), then what the chain sets: addresses,
// kubeconfig, exec timeout, JSON logs, and Options.ServerArgs. A later flag wins.
func (c *Chain) serverArgs() []string {
	args := append([]string{}, c.install.serverArgs...)
	args = append(args,
		"--grpc-address", c.ServerAddress,
		"--metrics-address", strings.TrimPrefix(c.MetricsURL, "http://"),
		"--kubeconfig", c.serverKubeconfig,
		"--exec-timeout", c.opts.ExecTimeout.String(),
		"--log-format", "json",
	)
	if c.tls != nil {
		args = append(args, "--tls-cert-file", c.tls.certFile, "--tls-key-file", c.tls.keyFile)
	}
	return append(args, c.opts.ServerArgs...)
}

func (c *Chain) startNATS(ctx context.Context) error {
	step := time.Now()
	port, err := rig.FreePort(ctx, c.HostIP)
	if err != nil {
		return err
	}
	mport, err := rig.FreePort(ctx, "127.0.0.1")
	if err != nil {
		return err
	}
	listen := net.JoinHostPort(c.HostIP, strconv.Itoa(port))
	if c.natsConf, err = natsConfig(filepath.Join(c.Dir, "nats"), listen, mport); err != nil {
		return err
	}
	c.NATSURL = "nats://" + listen
	c.NATSMonitorURL = "http://127.0.0.1:" + strconv.Itoa(mport)
	if err := c.runNATS(ctx); err != nil {
		return err
	}
	c.logf("chain: nats-server (JetStream, TLS) at %s in %v", c.NATSURL, time.Since(step).Round(time.Millisecond))
	return nil
}

// runNATS starts nats-server with the chain's configuration and waits until JetStream is healthy.
func (c *Chain) runNATS(ctx context.Context) error {
	log := filepath.Join(c.Dir, "logs", "nats-server.log")
	c.mu.Lock()
	first := c.nats == nil
	c.mu.Unlock()
	if first {
		c.addLog(log) // a restart appends to the same log
	}
	p, err := c.startProc("nats-server", log, exec.Command(c.natsServer, "-c", c.natsConf)) //nolint:noctx // long-lived: stopped by Stop and reaped by the chain's reaper, never by a context
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nats = p
	c.mu.Unlock()
	c.onStop(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	return c.poll(ctx, p, "JetStream healthy", func(ctx context.Context) (bool, error) {
		return HTTPOK(ctx, c.NATSMonitorURL+"/healthz?js-enabled-only=true"), nil
	})
}

// HTTPOK reports whether a GET of url answers 200 within ctx and at most 2 seconds.
func HTTPOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := get(ctx, url)
	return err == nil
}

// get returns the body of url's answer, which must be 200 OK.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// poll calls f every 100ms until it is done, p exits, or ReadyTimeout (or ctx) ends.
func (c *Chain) poll(ctx context.Context, p *rig.Process, what string, f func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := f(ctx)
		if err != nil {
			return p.Failure(err)
		}
		if done {
			return nil
		}
		if p.Exited() {
			return p.Failure(fmt.Errorf("exited (%v) before %s", p.Err(), what))
		}
		select {
		case <-ctx.Done():
			return p.Failure(fmt.Errorf("not %s within %v", what, c.opts.ReadyTimeout))
		case <-t.C:
		}
	}
}

func (c *Chain) addLog(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs = append(c.logs, path)
}

// StartComponent starts comp (which must not be running) and waits until it is ready. Each run logs to
// a file of its own (LogFiles).
func (c *Chain) StartComponent(ctx context.Context, comp Component) error {
	c.mu.Lock()
	if p := c.procs[comp]; p != nil && !p.Exited() {
		c.mu.Unlock()
		return fmt.Errorf("%s is running", comp)
	}
	c.runs[comp]++
	run := c.runs[comp]
	c.mu.Unlock()
	log := filepath.Join(c.Dir, "logs", fmt.Sprintf("%s-%d.log", comp, run))
	c.addLog(log)
	step := time.Now()
	var p *rig.Process
	var err error
	if comp == Server {
		c.mu.Lock()
		cmd := exec.Command(c.serverBin, c.serverArgs()...) //nolint:noctx // long-lived: outlives ctx; stopped by Kill/Stop and reaped by the chain's reaper, never by a context
		cmd.Env = append(os.Environ(), c.install.serverEnv...)
		c.mu.Unlock()
		p, err = c.startProc(string(comp), log, cmd)
	} else {
		p, err = c.startLaunched(string(comp), log, c.launchSpec(comp))
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[comp] = p
	c.mu.Unlock()
	c.onStop(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	if err := c.waitReady(ctx, comp, p); err != nil {
		return err
	}
	c.logf("chain: %s (run %d, pid %d) ready in %v", comp, run, p.Pid(), time.Since(step).Round(time.Millisecond))
	return nil
}

func (c *Chain) launchSpec(comp Component) launchSpec {
	var idx int
	for i, a := range argoComponents {
		if a == comp {
			idx = i
		}
	}
	busConfig := fmt.Sprintf(`{"jetstream":{"url":%q,"streamConfig":"replicas: 1\n"}}`, c.NATSURL)
	objectEnv, sub := "EVENTSOURCE_OBJECT", "eventsource-service"
	if comp == Sensor {
		objectEnv, sub = "SENSOR_OBJECT", "sensor-service"
	}
	spec := launchSpec{
		NetNS: c.netns[idx].Name,
		Tmpfs: []string{"/tmp"},
		Files: []launchFile{{Path: "/tmp/kubeconfig", Data: c.kubeconfig[comp], Mode: 0o600}},
		Argv:  []string{c.argoEvents, sub},
		Dir:   "/tmp",
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=/tmp",
			objectEnv + "=" + c.envelopes[comp],
			"EVENTBUS_CONFIG=" + base64.StdEncoding.EncodeToString([]byte(busConfig)),
			"EVENTBUS_SUBJECT=eventbus-" + c.InstallNamespace,
			"POD_NAME=" + string(comp) + "-0",
			"KUBECONFIG=/tmp/kubeconfig",
		},
	}
	if comp == WebhookEventSource {
		spec.Tmpfs = append(spec.Tmpfs, "/argo-events")
		spec.Files = append(spec.Files, launchFile{Path: c.secretPath, Data: []byte(c.WebhookToken), Mode: 0o400})
	}
	if comp == Sensor && c.tls != nil {
		// Where the sensor controller mounts certSecret; the CA as of this start.
		spec.Tmpfs = append(spec.Tmpfs, "/argo-events")
		spec.Files = append(spec.Files, launchFile{Path: c.tls.caPath, Data: c.tls.caPEM(), Mode: 0o400})
	}
	return spec
}

func (c *Chain) waitReady(ctx context.Context, comp Component, p *rig.Process) error {
	switch comp {
	case Server:
		return c.poll(ctx, p, "ready (/readyz)", func(ctx context.Context) (bool, error) {
			return HTTPOK(ctx, c.MetricsURL+"/readyz"), nil
		})
	case Sensor:
		// "Subscribing to subject" is logged before each PullSubscribe; the durable consumers then exist
		// on stream default. One per trigger: each trigger names one dependency in its conditions.
		return c.poll(ctx, p, fmt.Sprintf("subscribed (%d JetStream consumers)", c.triggers), func(ctx context.Context) (bool, error) {
			if logCount(p.Log, "Subscribing to subject") < c.triggers {
				return false, nil
			}
			n, err := consumerCount(ctx, c.NATSMonitorURL, "default")
			return err == nil && n >= c.triggers, nil
		})
	case ResourceEventSource:
		return c.poll(ctx, p, "running its informer", func(context.Context) (bool, error) {
			return logCount(p.Log, "running informer") > 0, nil
		})
	case WebhookEventSource:
		base := "http://" + net.JoinHostPort(c.webhookIP, c.webhookPort)
		return c.poll(ctx, p, "answering /health", func(ctx context.Context) (bool, error) {
			return HTTPOK(ctx, base+"/health"), nil
		})
	}
	return fmt.Errorf("unknown component %q", comp)
}

func logCount(path, substr string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), substr)
}

// Kill sends sig to comp (syscall.SIGKILL for a crash) and waits until it has exited.
func (c *Chain) Kill(comp Component, sig syscall.Signal) error {
	c.mu.Lock()
	p := c.procs[comp]
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s was never started", comp)
	}
	p.Stop(sig, 10*time.Second)
	c.logf("chain: %s (pid %d) stopped with %v", comp, p.Pid(), sig)
	return nil
}

// Restart stops comp with SIGTERM and starts it again, waiting until it is ready.
func (c *Chain) Restart(ctx context.Context, comp Component) error {
	if err := c.Kill(comp, syscall.SIGTERM); err != nil {
		return err
	}
	return c.StartComponent(ctx, comp)
}

// Running reports whether comp runs (it was started and has not exited).
func (c *Chain) Running(comp Component) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[comp]
	return p != nil && !p.Exited()
}

// LogFile is the log of comp's latest run.
func (c *Chain) LogFile(comp Component) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[comp]; p != nil {
		return p.Log
	}
	return ""
}

// ReadLog returns the text of a log file (one of LogFiles).
func ReadLog(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// LogFiles lists every log: nats-server, kube-apiserver, and each run of each component.
func (c *Chain) LogFiles() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.logs...)
	if c.Rig != nil {
		out = append(out, c.Rig.APIServerLog())
	}
	sort.Strings(out)
	return out
}

// LogTails returns the last n lines of every log, for a failing test to print.
func (c *Chain) LogTails(n int) string {
	var b strings.Builder
	for _, l := range c.LogFiles() {
		fmt.Fprintf(&b, "--- last %d lines of %s ---\n%s\n", n, l, rig.Tail(l, n))
	}
	return b.String()
}

// Stop kills every process, deletes the network namespaces and removes the temporary directories. It is
// safe to call more than once, and on a partly started chain.
func (c *Chain) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		cleanups := c.cleanups
		c.cleanups = nil
		c.mu.Unlock()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		c.logf("chain: stopped")
	})
}

// Client is an admin clientset.
func (c *Chain) Client() kubernetes.Interface { return c.Rig.Client() }

// Dynamic is an admin dynamic client.
func (c *Chain) Dynamic() dynamic.Interface { return c.Rig.Dynamic() }

// Workflows is an admin Argo clientset.
func (c *Chain) Workflows() wfclient.Interface { return c.workflows }

// ServerKubeconfig is the kubeconfig resume-trigger runs with: a token of ServerServiceAccount.
func (c *Chain) ServerKubeconfig() string { return c.serverKubeconfig }

// Calls are the execs that reached the test kubelet in the chain's namespace, oldest first.
func (c *Chain) Calls() []rig.Call { return c.Rig.Kubelet().CallsFor(c.Namespace) }

// CallsIn are the execs that reached the test kubelet in namespace ns, oldest first.
func (c *Chain) CallsIn(ns string) []rig.Call { return c.Rig.Kubelet().CallsFor(ns) }
