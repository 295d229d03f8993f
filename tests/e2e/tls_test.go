package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// setupTLS gives a test the chain whose Sensor calls resume-trigger over TLS, as manifests/tls sets it up.
func setupTLS(t *testing.T) *chain.Chain {
	t.Helper()
	c := tlsLane.acquire(t)
	if !c.ServesTLS() {
		t.Fatal("the tls chain does not serve TLS")
	}
	return c
}

// releaseOverTLS creates a paused step and releases it with a Resume, through the Sensor's TLS
// connection (the server's gRPC port speaks nothing but TLS).
func releaseOverTLS(t *testing.T, c *chain.Chain, wf string) {
	t.Helper()
	step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), wf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(rig.Context(t, 10*time.Second), "resume-"+wf, step); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitMarker(rig.Context(t, 60*time.Second), step); err != nil {
		t.Fatalf("Resume resume-%s did not release %s over TLS: %v", wf, step.Pod, err)
	}
	if _, err := c.WaitResumePhase(rig.Context(t, 30*time.Second), "resume-"+wf, v1alpha1.PhaseSucceeded); err != nil {
		t.Fatal(err)
	}
	expectOneRelease(t, c, step)
}

// The shipped Sensor, rendered with manifests/tls (secure, certSecret ca.crt, serverNameOverride), calls
// the server over TLS: a Resume and a webhook call are both released. The server has the certificate
// cert-manager would issue for manifests/tls/cert-manager's Certificate; the Sensor reads the CA where
// the argo-events sensor controller mounts certSecret.
func TestSensorCallsServerOverTLS(t *testing.T) {
	c := setupTLS(t)
	if _, err := c.ServedCertSerial(rig.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("no TLS handshake with resume-trigger as the Sensor makes it: %v", err)
	}
	releaseOverTLS(t, c, "tls-api")
	checkProbesWithTLS(t, c)

	step, err := c.CreatePausedStep(rig.Context(t, 20*time.Second), "tls-webhook")
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := c.PostWebhook(rig.Context(t, 30*time.Second), c.WebhookToken, step.ReleaseRequest())
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("webhook answered %d %q, want 200", code, body)
	}
	if _, err := c.WaitMarker(rig.Context(t, 60*time.Second), step); err != nil {
		t.Fatalf("the webhook call did not release %s over TLS: %v", step.Pod, err)
	}
	expectOneRelease(t, c, step)
}

// checkProbesWithTLS checks the probes of the Deployment rendered with manifests/tls: the real API server
// accepts the patched Deployment (dry run), each probe is an HTTP GET on the metrics port (the one of
// --metrics-address), and the server, serving TLS, answers 200 there; the kubelet's plaintext gRPC probe,
// which the Component replaces, would fail against the TLS port.
func checkProbesWithTLS(t *testing.T, c *chain.Chain) {
	t.Helper()
	d, err := c.TLSDeployment()
	if err != nil {
		t.Fatal(err)
	}
	d.SetNamespace(c.Namespace)
	deployments := c.Dynamic().Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"})
	if _, err := deployments.Namespace(c.Namespace).Create(rig.Context(t, 10*time.Second), d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("the API server refuses the Deployment rendered with manifests/tls: %v", err)
	}
	var deploy appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(d.Object, &deploy); err != nil {
		t.Fatal(err)
	}
	ctr := deploy.Spec.Template.Spec.Containers[0]
	metricsPort := ""
	for _, a := range ctr.Args {
		if v, ok := strings.CutPrefix(a, "--metrics-address="); ok {
			_, metricsPort, _ = strings.Cut(v, ":")
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.GRPC != nil {
			t.Errorf("%s probe %+v: want an HTTP GET (the kubelet's gRPC probe cannot speak TLS)", name, p)
			continue
		}
		i := slices.IndexFunc(ctr.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.HTTPGet.Port.String() })
		if i < 0 || strconv.Itoa(int(ctr.Ports[i].ContainerPort)) != metricsPort {
			t.Errorf("%s probe port %s is not the --metrics-address port %s", name, p.HTTPGet.Port.String(), metricsPort)
		}
		req, _ := http.NewRequestWithContext(rig.Context(t, 5*time.Second), http.MethodGet, c.MetricsURL+p.HTTPGet.Path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s probe GET %s: %v", name, p.HTTPGet.Path, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s probe GET %s on the TLS-serving server = %d, want 200", name, p.HTTPGet.Path, resp.StatusCode)
		}
	}
	conn, err := grpc.NewClient(c.ServerAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(rig.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a plaintext gRPC health check passed against the TLS port")
	}
}

// The certificate is replaced in its Secret volume (the kubelet's ..data swap) by one from a new CA while
// the server runs. The server serves it to the next handshake without a restart. The Sensor then starts
// again trusting only the new CA (its running connection would keep the old session, as it does in a
// cluster until it reconnects), so the later release can only happen over the new certificate.
func TestServerServesRotatedCertWithoutRestart(t *testing.T) {
	c := setupTLS(t)
	serverLog := c.LogFile(chain.Server)
	before, err := c.ServedCertSerial(rig.Context(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := c.RotateServerCert()
	if err != nil {
		t.Fatal(err)
	}
	rotatedAt := time.Now()
	// The server reads the files every 5 seconds; with a little room for a loaded machine.
	ctx := rig.Context(t, 30*time.Second)
	for {
		served, err := c.ServedCertSerial(ctx)
		if err == nil && served.Cmp(rotated) == 0 {
			break
		}
		// Until it reloads, the old certificate fails verification against the new CA.
		if ctx.Err() != nil {
			t.Fatalf("30s after the rotation the server still does not serve the new certificate (serial %x; before: %x; last: %v, %v)", rotated, before, served, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("the server served the rotated certificate %v after the files changed", time.Since(rotatedAt).Round(time.Millisecond))
	if got := c.LogFile(chain.Server); got != serverLog || !c.Running(chain.Server) {
		t.Fatalf("the server was restarted (log %s, was %s)", got, serverLog)
	}
	log, err := chain.ReadLog(serverLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "loaded a new TLS certificate") {
		t.Errorf("the server's log does not say it loaded the new certificate:\n%s", log)
	}

	if err := c.Restart(rig.Context(t, 2*time.Minute), chain.Sensor); err != nil {
		t.Fatal(err)
	}
	releaseOverTLS(t, c, "tls-rotated")
}
