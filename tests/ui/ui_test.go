package ui

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/chromedp/chromedp"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// screenshotsEnv names a directory that receives the screenshots of the three pages (make ui-screenshots
// writes docs/images); unset, they go to the test's temporary directory.
const screenshotsEnv = "UI_SCREENSHOTS"

// uiAgent is the user agent of the page's API requests (internal/ui).
const uiAgent = "resume-trigger-ui"

// The whole story in one browser: people with tokens of their own open the pages the Argo UI links to.
// A person whose Role lacks create on resumes is refused by the API server, and the page says so; nothing
// is released. A person of another namespace sees nothing of this one. A person with the rights sees the
// paused step, clicks Release, and the page follows the Resume to Succeeded with the container released;
// Argo's controller then finishes the Workflow. The API server's audit log proves every request behind the
// page was made as the person, none as the server.
func TestPagesInABrowser(t *testing.T) {
	r := rig.Get(t)
	ns, otherNS := r.Namespace(t), r.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Argo's own executor runs the step: the pause the page shows is the real emissary's.
	wc, err := r.StartWorkflowController(ctx, rig.ControllerOptions{Namespace: ns, Executor: rig.ExecutorArgo})
	if err != nil {
		t.Fatalf("start Argo's workflow-controller: %v", err)
	}
	t.Cleanup(wc.Stop)
	wf, err := rig.ReadmeWorkflow()
	if err != nil {
		t.Fatal(err)
	}
	wf.Namespace = ns
	if _, err := r.Workflows().ArgoprojV1alpha1().Workflows(ns).Create(ctx, wf, metav1.CreateOptions{}); err != nil {
		t.Fatalf("submit %s: %v", wf.Name, err)
	}

	readOnly := []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"resumes"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	}
	releaser := append([]rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"resumes"}, Verbs: []string{"create"}}}, readOnly...)
	alice := person(ctx, t, r, ns, "alice", releaser)
	bob := person(ctx, t, r, ns, "bob", readOnly)
	carol := person(ctx, t, r, otherNS, "carol", releaser)

	base, logs := startServer(t, r, ns)
	pod := waitPaused(ctx, t, r, ns, wf.Name)
	shots := screenshotDir(t)
	browser := newBrowser(t)

	// The namespace page: what is paused now. Every person's pages are opened in the browser's one tab,
	// the one headless chromium paints; the page keeps nothing between people (no cookie, no storage:
	// the token lives in the forms of the page shown).
	tab := browser
	do(t, tab, "namespace page", signIn(base+"/namespaces/"+ns, alice), chromedp.WaitVisible(chromedp.ID("paused")))
	shot(t, tab, filepath.Join(shots, "ui-namespace.png"))
	pausedTable := read(t, tab, chromedp.Text(chromedp.ID("paused")))
	for _, want := range []string{wf.Name, "pause", pod.Name, "main", "after"} {
		if !strings.Contains(pausedTable, want) {
			t.Errorf("namespace page: no %q in\n%s", want, pausedTable)
		}
	}

	// The pod page (the Argo UI's pod link) lands on the workflow page with the step selected.
	do(t, tab, "pod page", signIn(base+"/namespaces/"+ns+"/pods/"+pod.Name, alice), chromedp.WaitVisible(chromedp.CSS("tr.selected")))
	shot(t, tab, filepath.Join(shots, "ui-pod-selected.png"))
	location := read(t, tab, chromedp.Location())
	selected := read(t, tab, chromedp.Text(chromedp.CSS("tr.selected")))
	nodeID := pod.Annotations["workflows.argoproj.io/node-id"]
	if !strings.Contains(location, "/workflows/"+wf.Name+"?node="+nodeID) || !strings.Contains(selected, "releasable") {
		t.Errorf("pod page went to %s, selected row %q", location, selected)
	}

	// Another namespace's person sees nothing of this one: the API server refuses every read.
	for _, page := range []string{"/namespaces/" + ns, "/namespaces/" + ns + "/workflows/" + wf.Name, "/namespaces/" + ns + "/pods/" + pod.Name} {
		do(t, tab, "carol "+page, signIn(base+page, carol), chromedp.WaitVisible(chromedp.ID("error")))
		errText := read(t, tab, chromedp.Text(chromedp.ID("error")))
		html := read(t, tab, chromedp.OuterHTML(chromedp.CSS("main")))
		if !strings.Contains(errText, "forbidden") || !strings.Contains(errText, "system:serviceaccount:"+otherNS+":carol") {
			t.Errorf("carol on %s: error %q", page, errText)
		}
		// Only the API server's refusal, which names what she asked for, and nothing read from the cluster.
		if rest := strings.Replace(html, errText, "", 1); strings.Contains(rest, pod.Name) || strings.Contains(rest, "<table") || strings.Contains(rest, "Release") {
			t.Errorf("carol on %s sees this namespace's pod or a Release button:\n%s", page, html)
		}
	}

	// Bob may read but not create Resumes: the page shows him the button, the API server refuses him.
	mainButton := chromedp.CSS(`button.release[data-container="main"][data-stage="after"]`)
	do(t, tab, "bob releases",
		signIn(base+"/namespaces/"+ns+"/workflows/"+wf.Name, bob),
		chromedp.WaitVisible(mainButton),
		chromedp.Click(mainButton),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	bobError := read(t, tab, chromedp.Text(chromedp.ID("error")))
	if want := `User "system:serviceaccount:` + ns + `:bob" cannot create resource "resumes"`; !strings.Contains(bobError, want) {
		t.Errorf("bob's release: page says %q, want the API server's refusal %q", bobError, want)
	}
	if list, err := r.Dynamic().Resource(v1alpha1.Resource).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Fatalf("after bob's refused release: Resumes %v (%v), want none", list, err)
	}
	if still, err := r.Client().CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil || !r.Paused(still, "main") {
		t.Fatalf("after bob's refused release the container is not paused any more (%v)", err)
	}

	// Alice releases from the workflow page and sees the outcome.
	do(t, tab, "alice opens the workflow", signIn(base+"/namespaces/"+ns+"/workflows/"+wf.Name, alice), chromedp.WaitVisible(chromedp.ID("steps")))
	shot(t, tab, filepath.Join(shots, "ui-workflow.png"))
	steps := read(t, tab, chromedp.Text(chromedp.ID("steps")))
	do(t, tab, "alice releases", chromedp.Click(mainButton), chromedp.WaitVisible(chromedp.ID("phase")))
	shot(t, tab, filepath.Join(shots, "ui-released.png"))
	phase := read(t, tab, chromedp.Text(chromedp.ID("phase")))
	released := read(t, tab, chromedp.Text(chromedp.ID("result")))
	if !strings.Contains(steps, "releasable") || !strings.Contains(steps, "container main is paused after its command") {
		t.Errorf("workflow page steps:\n%s", steps)
	}
	if phase != string(v1alpha1.PhaseSucceeded) || !strings.Contains(released, "pod "+pod.Name+" container main stage after") {
		t.Errorf("release result: phase %q\n%s", phase, released)
	}
	list, err := r.Dynamic().Resource(v1alpha1.Resource).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("Resumes after alice's release: %v (%v), want one", len(list.Items), err)
	}
	var res v1alpha1.Resume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[0].Object, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status.Phase != v1alpha1.PhaseSucceeded || len(res.Status.Released) != 1 || res.Status.Released[0].Pod != pod.Name {
		t.Errorf("Resume %s: %+v", res.Name, res.Status)
	}
	if _, err := r.WaitWorkflow(ctx, ns, wf.Name, func(w *wfv1.Workflow) bool { return w.Status.Phase == wfv1.WorkflowSucceeded }); err != nil {
		t.Fatal(wc.Failure(err))
	}

	// The workflow page now lists the Resume with its phase.
	do(t, tab, "workflow page after", signIn(base+"/namespaces/"+ns+"/workflows/"+wf.Name, alice), chromedp.WaitVisible(chromedp.ID("resumes")))
	if resumes := read(t, tab, chromedp.Text(chromedp.ID("resumes"))); !strings.Contains(resumes, res.Name) || !strings.Contains(resumes, "Succeeded") {
		t.Errorf("Resumes on the workflow page:\n%s", resumes)
	}
	checkAudit(t, r, ns, otherNS, res.Name)
	for who, tok := range map[string]string{"alice": alice, "bob": bob, "carol": carol} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the server logged %s's token", who)
		}
	}
}

// checkAudit proves from the API server's audit log that every request behind the page was made as one of
// the people, that Alice created the Resume, and that Bob's create was refused.
func checkAudit(t *testing.T, r *rig.Rig, ns, otherNS, resume string) {
	t.Helper()
	events, err := r.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	people := map[string]bool{
		"system:serviceaccount:" + ns + ":alice": true, "system:serviceaccount:" + ns + ":bob": true,
		"system:serviceaccount:" + otherNS + ":carol": true,
	}
	var n int
	var aliceCreated, bobRefused bool
	for _, e := range events {
		if !strings.HasPrefix(e.UserAgent, uiAgent) {
			continue
		}
		n++
		if !people[e.Identity()] {
			t.Errorf("the page made a request as %s (%s %s): only the people's tokens may be used", e.Identity(), e.Verb, e.RequestURI)
		}
		if e.Verb == "create" && e.Resource() == "resumes" {
			switch e.Identity() {
			case "system:serviceaccount:" + ns + ":alice":
				aliceCreated = aliceCreated || e.Code() == http.StatusCreated
			case "system:serviceaccount:" + ns + ":bob":
				bobRefused = bobRefused || e.Code() == http.StatusForbidden
			}
		}
	}
	if n == 0 || !aliceCreated || !bobRefused {
		t.Errorf("audit: %d requests of the page; alice created %s: %v; bob refused: %v", n, resume, aliceCreated, bobRefused)
	}
}

// person makes ServiceAccount name in ns with a Role of rules, and returns a token of it (TokenRequest).
func person(ctx context.Context, t *testing.T, r *rig.Rig, ns, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	kube := r.Client()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := r.ServiceAccountTokenConfig(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.BearerToken
}

// startServer runs resume-trigger serving ns with the page on a loopback port over TLS, and returns the
// page's base URL. Its resync (every second here) stands for the Sensor, which the e2e tier runs: it takes
// up a new Resume within a second.
func startServer(t *testing.T, r *rig.Rig, ns string) (string, *rig.LogBuffer) {
	t.Helper()
	certFile, keyFile, pool := serving(t)
	o := app.NewOptions()
	o.Server.GRPCAddress, o.Metrics.Address, o.UI.Address = "127.0.0.1:0", "", "127.0.0.1:0"
	o.Server.Namespaces = ns
	o.Server.TLSCertFile, o.Server.TLSKeyFile = certFile, keyFile
	o.Revisits.Enabled, o.Revisits.Resync, o.Revisits.Interval = true, time.Second, time.Second
	o.Server.ShutdownTimeout = 5 * time.Second
	completed, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	logs := &rig.LogBuffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetLevel(logrus.DebugLevel)
	a, err := app.NewWithConfig(t.Context(), completed, r.AdminConfig(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("resume-trigger: %v", err)
		}
		if t.Failed() {
			t.Logf("resume-trigger log:\n%s", logs)
		}
	})
	// The page is served with the certificate given, and only over TLS.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+a.UIAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("the page over TLS with our certificate: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /: %s, CSP %q", resp.Status, resp.Header.Get("Content-Security-Policy"))
	}
	return "https://" + a.UIAddr(), logs
}

// waitPaused waits until Argo's controller has run the README workflow's pause step and its container is
// held at the pause, with the node Running.
func waitPaused(ctx context.Context, t *testing.T, r *rig.Rig, ns, wf string) corev1.Pod {
	t.Helper()
	var paused corev1.Pod
	if _, err := r.WaitPods(ctx, ns, wf, func(pods []corev1.Pod) bool {
		for i := range pods {
			if r.Paused(&pods[i], "main") {
				paused = pods[i]
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	nodeID := paused.Annotations["workflows.argoproj.io/node-id"]
	if _, err := r.WaitWorkflow(ctx, ns, wf, func(w *wfv1.Workflow) bool { return w.Status.Nodes[nodeID].Phase == wfv1.NodeRunning }); err != nil {
		t.Fatal(err)
	}
	return paused
}

// chromium finds Debian's chromium (apt-get install chromium); the test fails without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install -y chromium; .ci/run does); the page is tested in a real browser or not at all")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // root in CI; the pages are our own
		chromedp.WindowSize(1366, 860),
		// Our test CA is not in the browser's store; the Go client in startServer checked the certificate.
		chromedp.IgnoreCertErrors,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// do runs steps in the tab, each page given a minute; on failure it prints the page.
func do(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		html, _ := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// read runs one action that reads the page.
func read[T any](t *testing.T, tab context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return v
}

// signIn opens url (a GET, as the Argo UI's link does), pastes the token and continues.
func signIn(url, token string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin")),
	)
}

// shot saves a screenshot of the whole page as PNG.
func shot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	png := read(t, tab, chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serving writes a self-signed serving certificate for 127.0.0.1 and returns its files and a pool
// trusting it.
func serving(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "resume-trigger-ui-test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
