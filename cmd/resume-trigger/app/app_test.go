package app

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
)

// noAPI is a config whose API server is never there: starting needs no API call.
var noAPI = &rest.Config{Host: "http://127.0.0.1:1"}

const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func TestOptionsComplete(t *testing.T) {
	tests := map[string]struct {
		args       []string
		env        string // POD_NAMESPACE
		wantNS     []string
		wantHook   []string // --webhook-namespaces, completed
		wantLevel  logrus.Level
		wantErr    string
		wantLease  string // namespace of the leader election Lease
		needNoSAns bool   // the row assumes no service account namespace file
	}{
		"defaults with namespaces from the flag": {
			args:      []string{"--namespaces", "argo"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
		},
		"comma-separated namespaces, empties dropped": {
			args:      []string{"--namespaces", "argo,team-a,,"},
			env:       "ignored",
			wantNS:    []string{"argo", "team-a"},
			wantLevel: logrus.InfoLevel,
		},
		"a space in the namespace list (the Sensor's filter would not match it)": {
			args:    []string{"--namespaces", "argo, team-a"},
			wantErr: `--namespaces "argo, team-a": " team-a" is not a namespace name; write the names separated by commas, without spaces`,
		},
		"not a namespace name": {
			args:    []string{"--namespaces", "argo,Team_A", "--webhook-namespaces", "argo "},
			wantErr: `"Team_A" is not a namespace name`,
		},
		"a space in the webhook namespace list": {
			args:    []string{"--namespaces", "team-a", "--webhook-namespaces", " team-a"},
			wantErr: `--webhook-namespaces " team-a": " team-a" is not a namespace name`,
		},
		"webhook namespaces must be served": {
			args:      []string{"--namespaces", "team-a,team-b", "--webhook-namespaces", "team-a,"},
			wantNS:    []string{"team-a", "team-b"},
			wantHook:  []string{"team-a"},
			wantLevel: logrus.InfoLevel,
		},
		"a webhook namespace the server does not serve": {
			args:    []string{"--namespaces", "team-a", "--webhook-namespaces", "team-a,team-b"},
			wantErr: "--webhook-namespaces names team-b, which --namespaces does not serve (team-a)",
		},
		"webhook into every served namespace": {
			args:      []string{"--namespaces", "team-a", "--webhook-namespaces", "*"},
			wantNS:    []string{"team-a"},
			wantHook:  []string{"*"},
			wantLevel: logrus.InfoLevel,
		},
		"webhook namespaces under --namespaces=*": {
			args:      []string{"--namespaces", "*", "--webhook-namespaces", "team-b"},
			wantNS:    []string{"*"},
			wantHook:  []string{"team-b"},
			wantLevel: logrus.InfoLevel,
		},
		"all namespaces": {
			args:      []string{"--namespaces", "*"},
			wantNS:    []string{"*"},
			wantLevel: logrus.InfoLevel,
		},
		"own namespace from POD_NAMESPACE": {
			env:       "workflows",
			wantNS:    []string{"workflows"},
			wantLevel: logrus.InfoLevel,
		},
		"neither flag nor POD_NAMESPACE": {
			wantErr:    "--namespaces is empty and the server's own namespace is unknown",
			needNoSAns: true,
		},
		"blank flag and no POD_NAMESPACE": {
			args:       []string{"--namespaces", ","},
			wantErr:    "own namespace is unknown",
			needNoSAns: true,
		},
		"TLS pair": {
			args:      []string{"--namespaces", "argo", "--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
		},
		"TLS cert without key": {
			args:    []string{"--namespaces", "argo", "--tls-cert-file", "c.pem"},
			wantErr: "--tls-cert-file and --tls-key-file go together",
		},
		"TLS key without cert": {
			args:    []string{"--namespaces", "argo", "--tls-key-file", "k.pem"},
			wantErr: "--tls-cert-file and --tls-key-file go together",
		},
		"exec timeout equal to the request timeout": {
			args:    []string{"--namespaces", "argo", "--exec-timeout", "30s", "--request-timeout", "30s"},
			wantErr: "--exec-timeout (30s) must be shorter than --request-timeout (30s)",
		},
		"exec timeout longer than the request timeout": {
			args:    []string{"--namespaces", "argo", "--exec-timeout", "1m", "--request-timeout", "30s"},
			wantErr: "must be shorter than --request-timeout",
		},
		"exec timeout shorter than the request timeout": {
			args:      []string{"--namespaces", "argo", "--exec-timeout", "29s", "--request-timeout", "30s"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
		},
		"zero shutdown timeout": {
			args:    []string{"--namespaces", "argo", "--shutdown-timeout", "0s"},
			wantErr: "timeouts must be positive",
		},
		"bad log level": {
			args:    []string{"--namespaces", "argo", "--log-level", "loud"},
			wantErr: "--log-level",
		},
		"debug log level": {
			args:      []string{"--namespaces", "argo", "--log-level", "debug"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.DebugLevel,
		},
		"bad log format": {
			args:    []string{"--namespaces", "argo", "--log-format", "xml"},
			wantErr: `--log-format "xml" is neither json nor text`,
		},
		"argo-server token without URL": {
			args:    []string{"--namespaces", "argo", "--argo-server-token-file", "/tok"},
			wantErr: "--argo-server-token-file needs --argo-server-url",
		},
		"zero streams": {
			args:    []string{"--namespaces", "argo", "--max-concurrent-streams", "0"},
			wantErr: "must be positive",
		},
		"leader election in the own namespace": {
			args:      []string{"--namespaces", "argo", "--leader-elect"},
			env:       "argo-resume",
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
			wantLease: "argo-resume",
		},
		"leader election in a named namespace": {
			args:      []string{"--namespaces", "argo", "--leader-elect", "--leader-election-namespace", "ops"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
			wantLease: "ops",
		},
		"leader election without a namespace": {
			args:       []string{"--namespaces", "argo", "--leader-elect"},
			wantErr:    "--leader-elect needs --leader-election-namespace",
			needNoSAns: true,
		},
		"leader election timings out of order": {
			args:    []string{"--namespaces", "argo", "--leader-elect", "--leader-election-namespace", "ops", "--leader-election-renew-deadline", "20s"},
			wantErr: "retry period < renew deadline < lease duration",
		},
		"zero revisit interval": {
			args:    []string{"--namespaces", "argo", "--revisit-interval", "0s"},
			wantErr: "--revisit-interval",
		},
		"zero resume deadline": {
			args:    []string{"--namespaces", "argo", "--resume-deadline", "0s"},
			wantErr: "--resume-deadline",
		},
		"a client-side limit without burst": {
			args:    []string{"--namespaces", "argo", "--kube-api-qps", "10", "--kube-api-burst", "0"},
			wantErr: "--kube-api-burst must be at least 1",
		},
		"zero QPS": {
			args:    []string{"--namespaces", "argo", "--kube-api-qps", "0"},
			wantErr: "--kube-api-qps must not be 0",
		},
		"no client-side limit": {
			args:      []string{"--namespaces", "argo", "--kube-api-qps", "-1", "--kube-api-burst", "0"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
		},
		"profiling without a metrics endpoint": {
			args:    []string{"--namespaces", "argo", "--profiling", "--metrics-address", ""},
			wantErr: "--profiling needs --metrics-address",
		},
		"profiling on the metrics endpoint": {
			args:      []string{"--namespaces", "argo", "--profiling"},
			wantNS:    []string{"argo"},
			wantLevel: logrus.InfoLevel,
		},
		"every error is reported at once": {
			args:    []string{"--namespaces", "argo", "--tls-key-file", "k", "--log-level", "loud", "--log-format", "xml"},
			wantErr: "go together\n--log-level: not a valid logrus Level: \"loud\"\n--log-format",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.needNoSAns {
				if _, err := os.Stat(serviceAccountNamespace); err == nil {
					t.Skip("running in a pod: the service account namespace file exists")
				}
			}
			t.Setenv("POD_NAMESPACE", tc.env)
			o := NewOptions()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := o.Complete()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Complete = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if !reflect.DeepEqual(c.namespaces, tc.wantNS) {
				t.Errorf("namespaces = %q, want %q", c.namespaces, tc.wantNS)
			}
			if !reflect.DeepEqual(c.webhookNamespaces, tc.wantHook) {
				t.Errorf("webhook namespaces = %q, want %q", c.webhookNamespaces, tc.wantHook)
			}
			if c.logLevel != tc.wantLevel {
				t.Errorf("log level = %v, want %v", c.logLevel, tc.wantLevel)
			}
			if c.leaseNamespace != tc.wantLease {
				t.Errorf("lease namespace = %q, want %q", c.leaseNamespace, tc.wantLease)
			}
			if !reflect.DeepEqual(c.Options, *o) {
				t.Errorf("Complete changed the options:\n %+v\nwant\n %+v", c.Options, *o)
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		want func(*Options)
	}{
		"no flags keeps the defaults": {
			want: func(*Options) {},
		},
		"every flag": {
			args: []string{
				"--grpc-address", "127.0.0.1:9100", "--metrics-address", "", "--kubeconfig", "/kc",
				"--namespaces", "a,b", "--webhook-namespaces", "b", "--tls-cert-file", "/c", "--tls-key-file", "/k",
				"--request-timeout", "45s", "--exec-timeout", "5s", "--shutdown-timeout", "3s",
				"--ephemeral-image", "busybox:1.36", "--argo-server-url", "https://argo:2746",
				"--argo-server-token-file", "/t", "--result-sink", "http://sink", "--log-level", "debug",
				"--log-format", "text", "--max-concurrent-streams", "8", "--max-message-bytes", "4096",
				"--kube-api-qps", "5.5", "--kube-api-burst", "7", "--profiling",
			},
			want: func(o *Options) {
				o.Server.GRPCAddress, o.Metrics.Address, o.Kube.Kubeconfig = "127.0.0.1:9100", "", "/kc"
				o.Server.Namespaces, o.Server.WebhookNamespaces, o.Server.TLSCertFile, o.Server.TLSKeyFile = "a,b", "b", "/c", "/k"
				o.Server.RequestTimeout, o.Resume.ExecTimeout, o.Server.ShutdownTimeout = 45*time.Second, 5*time.Second, 3*time.Second
				o.Resume.EphemeralImage, o.Resume.ArgoServerURL, o.Resume.ArgoServerToken = "busybox:1.36", "https://argo:2746", "/t"
				o.Resume.ResultSink, o.Logging.Level, o.Logging.Format = "http://sink", "debug", "text"
				o.Server.MaxStreams, o.Server.MaxMessageBytes, o.Kube.QPS, o.Kube.Burst = 8, 4096, 5.5, 7
				o.Metrics.Profiling = true
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := NewOptions()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			got.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			want := NewOptions()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("options =\n %+v\nwant\n %+v", got, want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		o := NewOptions()
		if o.Server.GRPCAddress != ":9000" || o.Metrics.Address != ":8080" || o.Server.RequestTimeout != 30*time.Second || o.Resume.ExecTimeout != 10*time.Second || o.Logging.Format != "json" ||
			o.Kube.QPS != 1000 || o.Kube.Burst != 2000 || o.Metrics.Profiling || o.Resume.Deadline != 15*time.Minute ||
			!o.Revisits.Enabled || o.Revisits.Interval != 2*time.Second || o.Revisits.Rate != 5 || o.Revisits.Resync != time.Minute ||
			o.Leader.ID != "resume-trigger" || o.Leader.LeaseDuration != 15*time.Second || o.Leader.RenewDeadline != 10*time.Second || o.Leader.RetryPeriod != 2*time.Second {
			t.Errorf("defaults = %+v", o)
		}
	})
	t.Run("a bad duration is a parse error", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		NewOptions().AddFlags(fs)
		if err := fs.Parse([]string{"--request-timeout", "soon"}); err == nil {
			t.Error("Parse accepted --request-timeout soon")
		}
	})
}

// testOptions parses args on top of the settings every started server in these tests uses.
func testOptions(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.AddFlags(fs)
	base := []string{"--grpc-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--namespaces", "argo,team-b", "--webhook-namespaces", "argo", "--shutdown-timeout", "3s"}
	if err := fs.Parse(append(base, args...)); err != nil {
		t.Fatal(err)
	}
	return o
}

// testCompleted is testOptions completed.
func testCompleted(t *testing.T, args ...string) *Completed {
	t.Helper()
	c, err := testOptions(t, args...).Complete()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func quietLog() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

// started is a server running in a goroutine.
type started struct {
	app    *App
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, c *Completed) *started {
	t.Helper()
	a, err := NewWithConfig(t.Context(), c, noAPI, quietLog())
	if err != nil {
		t.Fatalf("NewWithConfig: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{app: a, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Logf("Run ended with: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after the test")
		}
	})
	return s
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitServing polls the health service until service is SERVING.
func waitServing(t *testing.T, h healthpb.HealthClient, service string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %q = %v, %v; want SERVING", service, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRun(t *testing.T) {
	s := start(t, testCompleted(t))
	conn := dial(t, s.app.GRPCAddr(), insecure.NewCredentials())
	h := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", triggerService} {
		waitServing(t, h, svc)
	}
	if _, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service = %v, want NotFound", err)
	}

	base := "http://" + s.app.MetricsAddr()
	// Profiles are opt-in (--profiling): off, the endpoint does not serve them.
	probes := map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusOK, "/nope": http.StatusNotFound, "/debug/pprof/": http.StatusNotFound}
	for path, want := range probes {
		if code, body := httpGet(t, base+path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}

	// One round as the Sensor makes it. The API server is not there, so the request is transient.
	client := triggerpb.NewTriggerClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fetched, err := client.FetchResource(ctx, &triggerpb.FetchResourceRequest{Resource: []byte("namespace: \"\"\ntemplate: \"\"\nworkflow: \"\"\n")})
	if err != nil {
		t.Fatalf("FetchResource: %v", err)
	}
	if got := string(fetched.GetResource()); got != `{"namespace":"","template":"","workflow":""}` {
		t.Errorf("FetchResource = %s", got)
	}
	_, err = client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: []byte(`{"namespace":"argo","template":"main","workflow":"wf-1"}`)})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Execute with no API server = %v, want Unavailable", err)
	}
	_, err = client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: []byte(`{"namespace":"elsewhere","template":"main","workflow":"wf-1"}`)})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Execute outside --namespaces = %v, want PermissionDenied", err)
	}
	// Served, but not open to webhook requests: refused before any API call, with the flag to change.
	_, err = client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: []byte(`{"namespace":"team-b","template":"main","workflow":"wf-1"}`)})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "--webhook-namespaces") {
		t.Errorf("webhook Execute outside --webhook-namespaces = %v, want PermissionDenied naming --webhook-namespaces", err)
	}
	_, body := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`resume_trigger_requests_total{kind="direct",outcome="Pending"} 1`,
		`resume_trigger_build_info{commit="unknown",goversion="` + runtime.Version() + `",version="dev"} 1`,
		`resume_trigger_requests_total{kind="direct",outcome="Failed"} 2`,
		"resume_trigger_request_duration_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Shutdown: a health watcher sees NOT_SERVING, then Run returns nil within the shutdown timeout.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watch, err := h.Watch(wctx, &healthpb.HealthCheckRequest{Service: triggerService})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := watch.Recv(); err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first watch update = %v, %v; want SERVING", first, err)
	}
	stopAt := time.Now()
	s.cancel()
	next, err := watch.Recv()
	if err != nil || next.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch update after cancel = %v, %v; want NOT_SERVING", next, err)
	}
	wcancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if took := time.Since(stopAt); took > 3*time.Second+time.Second {
			t.Errorf("Run took %s to return, want within the 3s shutdown timeout", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("the gRPC server still answers after Run returned")
	}
	c := &http.Client{Timeout: time.Second}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Error("the metrics endpoint still answers after Run returned")
	}
}

// TestRunProfiling checks that --profiling serves Go's profiles on the metrics endpoint.
func TestRunProfiling(t *testing.T) {
	s := start(t, testCompleted(t, "--profiling"))
	base := "http://" + s.app.MetricsAddr()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/heap?debug=1":      "heap profile:",
		"/debug/pprof/cmdline":           "",
	} {
		code, body := httpGet(t, base+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %.80q, want 200 with %q", path, code, body, want)
		}
	}
}

// TestRunShutdownBound checks that a client holding a stream open cannot keep Run from returning: after
// --shutdown-timeout the server stops anyway.
func TestRunShutdownBound(t *testing.T) {
	s := start(t, testCompleted(t, "--shutdown-timeout", "500ms", "--metrics-address", ""))
	if s.app.MetricsAddr() != "" {
		t.Errorf("MetricsAddr = %q with the endpoint off", s.app.MetricsAddr())
	}
	h := healthpb.NewHealthClient(dial(t, s.app.GRPCAddr(), insecure.NewCredentials()))
	waitServing(t, h, triggerService)
	watch, err := h.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: triggerService})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if took := time.Since(stopAt); took < 400*time.Millisecond || took > 3*time.Second {
			t.Errorf("Run returned after %s, want about the 500ms shutdown timeout", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with a stream held open")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and localhost and its key, returning their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := fixture.SelfSignedCert("resume-trigger", "127.0.0.1", "resume-trigger.argo.svc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRunTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	s := start(t, testCompleted(t, "--tls-cert-file", certFile, "--tls-key-file", keyFile))
	tests := map[string]struct {
		creds  func(t *testing.T) credentials.TransportCredentials
		wantOK bool
	}{
		"the Sensor's client: CA from the cert file, no override": {
			creds: func(t *testing.T) credentials.TransportCredentials {
				c, err := credentials.NewClientTLSFromFile(certFile, "")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			wantOK: true,
		},
		"the Sensor's client with serverNameOverride": {
			creds: func(t *testing.T) credentials.TransportCredentials {
				c, err := credentials.NewClientTLSFromFile(certFile, "resume-trigger.argo.svc")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			wantOK: true,
		},
		"a server name the cert does not hold": {
			creds: func(t *testing.T) credentials.TransportCredentials {
				c, err := credentials.NewClientTLSFromFile(certFile, "other.example")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
		},
		"a client not trusting the cert": {
			creds: func(*testing.T) credentials.TransportCredentials { return credentials.NewClientTLSFromCert(nil, "") },
		},
		"a plaintext client": {
			creds: func(*testing.T) credentials.TransportCredentials { return insecure.NewCredentials() },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := triggerpb.NewTriggerClient(dial(t, s.app.GRPCAddr(), tc.creds(t)))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			out, err := client.FetchResource(ctx, &triggerpb.FetchResourceRequest{Resource: []byte("resume: \"\"\n")})
			if !tc.wantOK {
				if err == nil {
					t.Fatalf("FetchResource over an untrusted connection = %s, want an error", out.GetResource())
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchResource over TLS: %v", err)
			}
			if got := string(out.GetResource()); got != `{"resume":""}` {
				t.Errorf("FetchResource = %s", got)
			}
		})
	}
}

func TestNewWithConfigErrors(t *testing.T) {
	taken, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	badPEM := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(badPEM, []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"gRPC address in use": {
			args:    []string{"--grpc-address", taken.Addr().String()},
			wantErr: "listen on --grpc-address",
		},
		"metrics address in use": {
			args:    []string{"--metrics-address", taken.Addr().String()},
			wantErr: "listen on --metrics-address",
		},
		"unreadable TLS files": {
			args:    []string{"--tls-cert-file", badPEM, "--tls-key-file", badPEM},
			wantErr: "load TLS certificate",
		},
		"options that do not complete": {
			args:    []string{"--log-level", "loud"},
			wantErr: "--log-level",
		},
		"a bad result sink": {
			args:    []string{"--result-sink", "::not a url"},
			wantErr: "result sink",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := testOptions(t, tc.args...).Complete()
			var a *App
			if err == nil {
				a, err = NewWithConfig(t.Context(), c, noAPI, quietLog())
			}
			if err == nil {
				a.grpcLn.Close()
				if a.httpLn != nil {
					a.httpLn.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewWithConfig = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRunFromKubeconfig(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		env     string // KUBECONFIG
		wantErr string
	}{
		"a kubeconfig file, stopped at once": {
			args: []string{"--kubeconfig", kubeconfig},
		},
		"KUBECONFIG when the flag is empty": {
			env: kubeconfig,
		},
		"the flag over KUBECONFIG": {
			args:    []string{"--kubeconfig", filepath.Join(t.TempDir(), "none")},
			env:     kubeconfig,
			wantErr: "kubernetes client config",
		},
		"a missing kubeconfig file": {
			args:    []string{"--kubeconfig", filepath.Join(t.TempDir(), "none")},
			wantErr: "kubernetes client config",
		},
		"options that do not complete": {
			args:    []string{"--kubeconfig", kubeconfig, "--log-format", "xml"},
			wantErr: "--log-format",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			go func() { done <- Run(ctx, testOptions(t, tc.args...)) }()
			select {
			case err := <-done:
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("Run = %v, want nil", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Run = %v, want an error containing %q", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return with a cancelled context")
			}
		})
	}
}

func TestShutdownTimeoutCoversARelease(t *testing.T) {
	tests := map[string]struct {
		shutdown, request time.Duration
		short             bool
	}{
		"the defaults leave room to record a release": {shutdown: NewOptions().Server.ShutdownTimeout, request: NewOptions().Server.RequestTimeout},
		"shorter than a request plus recording":       {shutdown: 20 * time.Second, request: 30 * time.Second, short: true},
		"a request and one of the two recordings":     {shutdown: 40 * time.Second, request: 30 * time.Second, short: true},
		"just enough": {shutdown: 50 * time.Second, request: 30 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := &ServerOptions{ShutdownTimeout: tc.shutdown, RequestTimeout: tc.request}
			if got := o.shutdownShort(); got != tc.short {
				t.Fatalf("shutdownShort() = %v, want %v", got, tc.short)
			}
		})
	}
}

// The shipped Deployment's worst case fits: a request that uses its whole --request-timeout, then records
// and reports its outcome (resume.RecordBudget), fits in --shutdown-timeout, and that plus the HTTP
// endpoint's shutdown fits in terminationGracePeriodSeconds, so the kubelet's SIGKILL never cuts off a
// release between its marker and its status.
func TestDeploymentShutdownBudget(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "manifests", "base", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	var args []string
	for _, c := range spec.Containers {
		if c.Name == "resume-trigger" {
			args = c.Args
		}
	}
	o := NewOptions()
	fs := flag.NewFlagSet("resume-trigger", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the Deployment's args %q: %v", args, err)
	}
	if o.Server.shutdownShort() {
		t.Errorf("--shutdown-timeout %s < --request-timeout %s + %s to record", o.Server.ShutdownTimeout, o.Server.RequestTimeout, resume.RecordBudget)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("the Deployment sets no terminationGracePeriodSeconds (default 30s)")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if need := o.Server.ShutdownTimeout + httpShutdownTimeout; grace < need {
		t.Errorf("terminationGracePeriodSeconds %s < --shutdown-timeout %s + %s for the HTTP endpoint", grace, o.Server.ShutdownTimeout, httpShutdownTimeout)
	}
	t.Logf("worst case %s of work + %s to record <= shutdown %s; + %s HTTP <= grace %s",
		o.Server.RequestTimeout, resume.RecordBudget, o.Server.ShutdownTimeout, httpShutdownTimeout, grace)
}

func TestSoftMemoryLimit(t *testing.T) {
	tests := map[string]struct {
		env    map[string]string
		limit  int64
		wantOK bool
	}{
		"90% of the container's limit": {env: map[string]string{MemoryLimitEnv: "268435456"}, limit: 241591905, wantOK: true},
		"GOMEMLIMIT set stands":        {env: map[string]string{MemoryLimitEnv: "268435456", "GOMEMLIMIT": "200MiB"}},
		"no limit known":               {env: map[string]string{}},
		"not a number":                 {env: map[string]string{MemoryLimitEnv: "256Mi"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			limit, ok := SoftMemoryLimit(func(k string) string { return tc.env[k] })
			if ok != tc.wantOK || limit != tc.limit {
				t.Errorf("SoftMemoryLimit = %d, %v; want %d, %v", limit, ok, tc.limit, tc.wantOK)
			}
		})
	}
}

// The three clients share one token bucket: a burst through one of them leaves the others nothing.
func TestClientConfigSharesOneLimit(t *testing.T) {
	opts := NewOptions().Kube
	opts.QPS, opts.Burst = 1, 3
	cfg := clientConfig(&rest.Config{Host: "https://example.invalid"}, opts)
	if cfg.RateLimiter == nil || cfg.UserAgent != "resume-trigger" {
		t.Fatalf("RateLimiter %v, UserAgent %q", cfg.RateLimiter, cfg.UserAgent)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := wfclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []flowcontrol.RateLimiter{kube.CoreV1().RESTClient().GetRateLimiter(), wf.ArgoprojV1alpha1().RESTClient().GetRateLimiter()} {
		if l != cfg.RateLimiter {
			t.Errorf("a client has a limiter of its own: %p, want the shared %p", l, cfg.RateLimiter)
		}
	}
	for range 3 {
		if !cfg.RateLimiter.TryAccept() {
			t.Fatal("the burst of 3 is not there")
		}
	}
	if cfg.RateLimiter.TryAccept() {
		t.Error("a fourth request at once was let through")
	}

	opts.QPS = -1
	if cfg := clientConfig(&rest.Config{Host: "https://example.invalid", RateLimiter: flowcontrol.NewFakeAlwaysRateLimiter()}, opts); cfg.RateLimiter != nil || cfg.QPS >= 0 {
		t.Errorf("negative QPS: RateLimiter %v, QPS %v; want none", cfg.RateLimiter, cfg.QPS)
	}
}

func TestServesOwnNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "argo-resume")
	for args, want := range map[string]bool{
		"team-a,team-b":      false,
		"team-a,argo-resume": true,
		"*":                  false, // every namespace, by choice: cluster-install
		"":                   true,  // empty: the server's own namespace
	} {
		o := NewOptions()
		o.Server.Namespaces = args
		c, err := o.Complete()
		if err != nil {
			t.Fatal(err)
		}
		if own, got := c.servesOwnNamespace(); got != want || own != "argo-resume" {
			t.Errorf("--namespaces %q: servesOwnNamespace() = %s, %v; want argo-resume, %v", args, own, got, want)
		}
	}
}
