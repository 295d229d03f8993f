package rig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// NodeName is the one Node the rig registers; RunPod binds pods to it.
const NodeName = "rig-node"

// Options configure Start. The zero value is a loopback rig.
type Options struct {
	// BindAddress is where the API server and the kubelet listen, and the Node's InternalIP.
	// Default 127.0.0.1; an end-to-end test can use an address of a test network namespace.
	BindAddress string
	// Kubernetes is the kube-apiserver release to run; the zero value is Kubernetes137.
	Kubernetes Kubernetes
	// APIServerFlags are appended to the kube-apiserver command line.
	APIServerFlags []string
	// StartTimeout bounds the whole start; default 2 minutes (binaries already built).
	StartTimeout time.Duration
	// ArgoCRDs are Argo's CRDs to install: MinimalCRDs (the default) or FullCRDsV4.
	ArgoCRDs ArgoCRDs
	// AlsoCRDs, for Main: the tests will also ask GetWithCRDs for rigs with these CRDs; a run of the whole
	// binary starts them in the background, beside the first rig.
	AlsoCRDs []ArgoCRDs
	// AfterTests, if set, runs after every test passed, with the rig still up; an error fails the binary.
	AfterTests func(*Rig) error
}

// Rig is a running control plane with one test kubelet.
type Rig struct {
	opts       Options
	dir        string
	auditLog   string
	reaper     *Reaper
	etcd       *Process
	apiserver  *Process
	kubelet    *Kubelet
	host       string
	caData     []byte
	adminToken string
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	argo       wfclient.Interface
	kubeconfig string

	// StartDuration is how long Start took.
	StartDuration time.Duration

	stopOnce sync.Once

	// apiserverBin and apiserverArgs start kube-apiserver again (RestartAPIServer).
	apiserverBin  string
	apiserverArgs []string
}

// Start starts etcd, kube-apiserver and the test kubelet, installs the CRDs and registers the Node.
// On error everything started so far is gone again.
func Start(ctx context.Context, opts Options) (_ *Rig, err error) {
	began := time.Now()
	if opts.BindAddress == "" {
		opts.BindAddress = "127.0.0.1"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.Kubernetes == (Kubernetes{}) {
		opts.Kubernetes = Kubernetes137
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	// Building the binaries is not bounded by StartTimeout: a cold kube-apiserver build takes minutes.
	apiserverBin, etcdBin, err := binaries(root, opts.Kubernetes)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.StartTimeout, fmt.Errorf("rig did not start within %v", opts.StartTimeout))
	defer cancel()

	dir, err := os.MkdirTemp("", "resume-trigger-rig-")
	if err != nil {
		return nil, err
	}
	r := &Rig{opts: opts, dir: dir}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()
	if r.reaper, err = StartReaper(dir, ""); err != nil {
		_ = os.RemoveAll(dir) // best effort: the reaper's error is the one to report
		return nil, err
	}

	var etcdURL string
	if r.etcd, etcdURL, err = startEtcd(ctx, dir, r.reaper, etcdBin); err != nil {
		return nil, err
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	r.adminToken = hex.EncodeToString(token)
	auditFlags, auditLog, err := writeAuditPolicy(dir)
	if err != nil {
		return nil, err
	}
	r.auditLog = auditLog
	if r.apiserver, r.host, r.caData, r.apiserverArgs, err = startAPIServer(ctx, dir, r.reaper, apiserverBin, etcdURL, opts.BindAddress, r.adminToken, append(auditFlags, opts.APIServerFlags...)); err != nil {
		return nil, err
	}
	r.apiserverBin = apiserverBin
	cfg := r.AdminConfig()
	if r.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if r.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if r.argo, err = wfclient.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if r.kubelet, err = startKubelet(ctx, opts.BindAddress); err != nil {
		return nil, err
	}
	r.kubelet.onMarker = r.onMarker
	r.kubelet.client = r.client

	errs := make(chan error, 2)
	go func() { errs <- r.installCRDs(ctx, root) }()
	go func() { errs <- r.registerNode(ctx) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		return nil, r.apiserver.Failure(err)
	}
	r.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(cfg, r.kubeconfig); err != nil {
		return nil, err
	}
	r.StartDuration = time.Since(began)
	return r, nil
}

// Stop kills the control plane and the kubelet and removes the rig's temporary directory. It is safe
// to call more than once.
func (r *Rig) Stop() {
	r.stopOnce.Do(func() {
		if r.kubelet != nil {
			r.kubelet.close()
		}
		stopProcess(r.apiserver)
		stopProcess(r.etcd)
		r.reaper.Stop()
		_ = os.RemoveAll(r.dir) // Stop has nobody to report to; what is left is only a temporary directory
	})
}

// Dir is the rig's temporary directory (logs, certificates, kubeconfig); it is removed by Stop.
func (r *Rig) Dir() string { return r.dir }

// Host is the API server URL.
func (r *Rig) Host() string { return r.host }

// CAData is the PEM bundle that verifies the API server's serving certificate.
func (r *Rig) CAData() []byte { return r.caData }

// Client is an admin clientset.
func (r *Rig) Client() kubernetes.Interface { return r.client }

// Dynamic is an admin dynamic client.
func (r *Rig) Dynamic() dynamic.Interface { return r.dynamic }

// Kubelet is the test kubelet, to set exec behaviours and read the calls it received.
func (r *Rig) Kubelet() *Kubelet { return r.kubelet }

// KubeconfigFile is an admin kubeconfig, for processes the test starts.
func (r *Rig) KubeconfigFile() string { return r.kubeconfig }

// APIServerLog is the path of the kube-apiserver log.
func (r *Rig) APIServerLog() string { return r.apiserver.Log }

// RestartAPIServer kills kube-apiserver with sig (syscall.SIGKILL for a crash), runs down while it is
// gone (nil: nothing), and starts it again on the same address with the same command line: etcd keeps
// the data, and the serving certificate, the service-account keys and the tokens stay valid. It returns
// once /readyz answers OK, or with down's error after the restart. Not safe to call concurrently with
// itself or Stop.
func (r *Rig) RestartAPIServer(ctx context.Context, sig syscall.Signal, down func() error) error {
	r.apiserver.Stop(sig, 10*time.Second)
	var downErr error
	if down != nil {
		downErr = down()
	}
	p, err := launchAPIServer(ctx, r.dir, r.reaper, r.apiserverBin, r.apiserverArgs, r.host, r.adminToken)
	if err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	r.apiserver = p
	return downErr
}

// AdminConfig returns a new rest.Config of a system:masters user.
func (r *Rig) AdminConfig() *rest.Config {
	return &rest.Config{
		Host:            r.host,
		BearerToken:     r.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: r.caData},
		QPS:             200,
		Burst:           400,
	}
}

// ConfigAs returns a config that impersonates user in groups (system:authenticated is added by the
// API server). RBAC applies to the impersonated user.
func (r *Rig) ConfigAs(user string, groups ...string) *rest.Config {
	cfg := r.AdminConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// ServiceAccountConfig returns a config that impersonates the ServiceAccount namespace/name, with
// the groups the API server gives ServiceAccounts.
func (r *Rig) ServiceAccountConfig(namespace, name string) *rest.Config {
	return r.ConfigAs("system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts", "system:serviceaccounts:"+namespace)
}

// ServiceAccountTokenConfig returns a config that authenticates with a real token of the
// ServiceAccount namespace/name (TokenRequest), as a pod running as it would. The ServiceAccount
// must exist.
func (r *Rig) ServiceAccountTokenConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	exp := int64(3600)
	tr, err := r.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, name, err)
	}
	cfg := r.AdminConfig()
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// WriteKubeconfig writes cfg (token or impersonation based, as the rig's configs are) as a
// kubeconfig file.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["rig"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["rig"] = &clientcmdapi.AuthInfo{
		Token:             cfg.BearerToken,
		Impersonate:       cfg.Impersonate.UserName,
		ImpersonateGroups: cfg.Impersonate.Groups,
	}
	kc.Contexts["rig"] = &clientcmdapi.Context{Cluster: "rig", AuthInfo: "rig", Namespace: "default"}
	kc.CurrentContext = "rig"
	return clientcmd.WriteToFile(*kc, path)
}

// Namespace creates a fresh namespace for the test with its default ServiceAccount (no
// controller-manager runs to create it) and forgets the kubelet state of it when the test ends.
func (r *Rig) Namespace(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	ns, err := r.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: namespacePrefix(tb.Name()),
		Labels:       map[string]string{"rig.resume-trigger/test": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create namespace: %v", err)
	}
	if _, err := r.client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("create default serviceaccount in %s: %v", ns.Name, err)
	}
	tb.Cleanup(func() {
		r.kubelet.ForgetNamespace(ns.Name)
		// It stays Terminating (no namespace controller), which still stops new objects in it.
		_ = r.client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// namespacePrefix turns a test name into a DNS label prefix.
func namespacePrefix(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	if s == "" {
		s = "test"
	}
	return s + "-"
}

var (
	shared   *Rig
	mainOpts Options // what Main started shared with
)

// Main starts one rig for the test binary, runs the tests and stops the rig. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(rig.Main(m)) }
//
// If the rig cannot start, Main prints why and returns 1: tests never silently skip.
func Main(m *testing.M) int { return MainWithOptions(m, Options{}) }

// MainWithOptions is Main with Options.
func MainWithOptions(m *testing.M, opts Options) int {
	if !flag.Parsed() {
		flag.Parse() // for testing.Verbose and -test.run before m.Run
	}
	mainOpts = opts
	defer stopOthers()
	// A whole run starts the other rigs it will need at once, beside the first one; a run of some tests
	// (-run) starts one only when a test asks for it.
	if f := flag.Lookup("test.run"); f == nil || f.Value.String() == "" {
		for _, which := range opts.AlsoCRDs {
			startOther(which)
		}
	}
	r, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rig: cannot start the test control plane: %v\n", err)
		return 1
	}
	shared = r
	defer r.Stop()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "rig: started in %v (%s, kubelet :%d, dir %s)\n", r.StartDuration.Round(time.Millisecond), r.host, r.kubelet.Port(), r.dir)
	}
	code := m.Run()
	if code == 0 && opts.AfterTests != nil {
		if err := opts.AfterTests(r); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: after the tests: %v\n", err)
			return 1
		}
	}
	return code
}

// others are the rigs of the test binary besides the one Main started, one per ArgoCRDs.
var others struct {
	sync.Mutex
	rigs map[ArgoCRDs]*otherRig
}

type otherRig struct {
	ready chan struct{} // closed once r or err is set
	r     *Rig
	err   error
}

// startOther starts the rig with which in the background unless it is started already.
func startOther(which ArgoCRDs) *otherRig {
	others.Lock()
	defer others.Unlock()
	if others.rigs == nil {
		others.rigs = map[ArgoCRDs]*otherRig{}
	}
	o := others.rigs[which]
	if o == nil {
		o = &otherRig{ready: make(chan struct{})}
		others.rigs[which] = o
		opts := mainOpts
		opts.ArgoCRDs, opts.AlsoCRDs, opts.AfterTests = which, nil, nil
		go func() {
			defer close(o.ready)
			o.r, o.err = Start(context.Background(), opts)
		}()
	}
	return o
}

// GetWithCRDs returns a rig of the test binary that installs Argo's CRDs which: the one Main started if it
// installs those, else a second one (a rig installs one Workflow CRD, minimal or full), started on first
// use or by Main (Options.AlsoCRDs), and stopped by Main after the tests. A rig that cannot start fails the
// test, and every later one asking for it.
func GetWithCRDs(tb testing.TB, which ArgoCRDs) *Rig {
	tb.Helper()
	if r := Get(tb); r.opts.ArgoCRDs == which {
		return r
	}
	began := time.Now()
	o := startOther(which)
	<-o.ready
	if o.err != nil {
		tb.Fatalf("rig with %s: cannot start: %v", which, o.err)
	}
	if waited := time.Since(began); waited > time.Second {
		tb.Logf("rig with %s: waited %v for it to start (start took %v)", which, waited.Round(time.Millisecond), o.r.StartDuration.Round(time.Millisecond))
	}
	return o.r
}

func stopOthers() {
	others.Lock()
	defer others.Unlock()
	for which, o := range others.rigs {
		<-o.ready
		if o.r != nil {
			o.r.Stop()
		}
		delete(others.rigs, which)
	}
}

// Get returns the rig Main started; it fails the test if TestMain did not call Main.
func Get(tb testing.TB) *Rig {
	tb.Helper()
	if shared == nil {
		tb.Fatal("rig.Get: no rig; call os.Exit(rig.Main(m)) from TestMain")
	}
	return shared
}
