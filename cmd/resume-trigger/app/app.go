package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/argocontroller/resume-trigger/internal/access"
	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/servingcert"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/internal/ui"
	"github.com/argocontroller/resume-trigger/internal/version"
	"github.com/argocontroller/resume-trigger/trigger"
)

// triggerService is the service name health checks may ask about.
var triggerService = triggerpb.Trigger_ServiceDesc.ServiceName

// App is a configured server with its listeners open.
type App struct {
	opts   *Options
	log    *logrus.Logger
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	grpcLn net.Listener
	httpLn net.Listener
	// ui and uiLn serve --ui-address; nil when it is off.
	ui      *http.Server
	uiLn    net.Listener
	config  *rest.Config
	Service *resume.Service
	Requeue *resume.Requeue
	// Rights reviews the server's own rights in each served namespace, at start and every resync.
	Rights  *access.Checker
	leading atomic.Bool
	// certs serves the TLS certificate; nil without --tls-cert-file.
	certs *servingcert.Reloader
	// reg is what /metrics serves.
	reg *prometheus.Registry
	// events writes the Kubernetes Events the requests record; Run flushes it at shutdown.
	events *report.Events
}

// Run builds the server from opts and serves until ctx ends.
func Run(ctx context.Context, opts *Options) error {
	a, err := New(opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New builds the server and opens its listeners.
func New(opts *Options) (*App, error) {
	if err := opts.Complete(); err != nil {
		return nil, err
	}
	log := logrus.New()
	log.SetLevel(opts.logLevel)
	log.SetOutput(os.Stderr)
	if opts.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	logging.RouteKlog(log)

	// client-go's usual loading: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	return NewWithConfig(opts, cfg, log)
}

// NewWithConfig builds the server against an explicit rest.Config; opts must be completed or are
// completed here.
func NewWithConfig(opts *Options, cfg *rest.Config, log *logrus.Logger) (*App, error) {
	if opts.namespaces == nil {
		if err := opts.Complete(); err != nil {
			return nil, err
		}
	}
	if own, ok := opts.servesOwnNamespace(); ok {
		log.Warnf("the server serves its own namespace %s: keep workflows out of the install namespace and serve the namespaces they run in (a workflow pod there could carry the Sensor's labels, which the NetworkPolicy admits to the gRPC port)", own)
	}
	if opts.shutdownShort() {
		log.Warnf("--shutdown-timeout %s is shorter than --request-timeout %s plus %s to record: a release in flight at SIGTERM may not be recorded", opts.ShutdownTimeout, opts.RequestTimeout, resume.RecordBudget)
	}
	cfg = clientConfig(cfg, opts)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	wf, err := wfclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("workflow client: %w", err)
	}
	rc, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("resume client: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	if opts.PausedMetrics {
		reg.MustRegister(report.NewPaused(report.PausedConfig{Pods: kube, Namespaces: resume.Listed(opts.namespaces)}))
	}
	host, _ := os.Hostname()
	finder := &lookup.Finder{Workflows: lookup.RESTWorkflows{Client: wf.ArgoprojV1alpha1().RESTClient()}, Pods: kube}
	if opts.ArgoServerURL != "" {
		finder.Offloaded = &lookup.ArgoServer{URL: opts.ArgoServerURL, TokenFile: opts.ArgoServerToken, Client: &http.Client{Timeout: opts.ExecTimeout}}
	}
	resumes := resume.APIResumes{Client: rc}
	releaser, err := release.New(release.Config{
		Exec:           &release.APIExecutor{Config: cfg, Client: kube},
		Pods:           kube,
		Timeout:        opts.ExecTimeout,
		EphemeralImage: opts.EphemeralImage,
	})
	if err != nil {
		return nil, err
	}
	events, err := report.NewEvents(report.EventsConfig{Client: kube, Log: log})
	if err != nil {
		return nil, err
	}
	a := &App{opts: opts, log: log, config: cfg, health: health.NewServer(), reg: reg, events: events}
	if a.Rights, err = access.New(access.Config{
		Reviews:    kube.AuthorizationV1(),
		Identity:   kube.AuthenticationV1(),
		Namespaces: opts.namespaces,
		Ephemeral:  opts.EphemeralImage != "",
		Registerer: reg,
		Log:        log,
	}); err != nil {
		return nil, err
	}
	// Before the server serves: a Resume in a namespace whose binding is missing ends NotPermitted from
	// the first request on, not with a 403 from the middle of its release.
	review, cancelReview := context.WithTimeout(context.Background(), rightsReviewTimeout)
	a.Rights.Check(review)
	cancelReview()
	svcCfg := resume.Config{
		Namespaces: resume.NewNamespaces(opts.namespaces...),
		Resumes:    resumes,
		Finder:     finder,
		Releaser:   releaser,
		Events:     events,
		Metrics:    report.NewMetrics(reg),
		Log:        log,
		Timeout:    opts.RequestTimeout,
		Deadline:   opts.ResumeDeadline,
		Active:     a.leading.Load,
		Rights:     a.Rights,
	}
	// Direct (webhook) requests: "*" means every served namespace, since the Service checks Namespaces first.
	svcCfg.WebhookNamespaces = resume.NewNamespaces(opts.webhookNamespaces...)
	if opts.Revisits {
		if a.Requeue, err = resume.NewRequeue(resume.RequeueConfig{
			Lister:     resumes,
			Namespaces: opts.namespaces,
			Interval:   opts.RevisitInterval,
			Resync:     opts.ResyncPeriod,
			Rate:       opts.RevisitRate,
			Log:        log,
		}); err != nil {
			return nil, err
		}
		svcCfg.Revisits = a.Requeue
	}
	if opts.ResultSink != "" {
		sink, err := report.NewSink(opts.ResultSink, "resume-trigger/"+host)
		if err != nil {
			return nil, err
		}
		svcCfg.Notifier = sink
	}
	if a.Service, err = resume.New(svcCfg); err != nil {
		return nil, err
	}
	srv, err := trigger.New(trigger.Config{Handler: a.Service, Log: log})
	if err != nil {
		return nil, err
	}

	serverOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.MaxConcurrentStreams(uint32(opts.MaxStreams)),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// The per-RPC bound is a little longer than the flow's own, so the flow can still record its outcome.
		grpc.ChainUnaryInterceptor(trigger.Recover(log), trigger.Log(log), trigger.Standby(a.leading.Load), trigger.Deadline(opts.RequestTimeout+5*time.Second)),
	}
	if opts.TLSCertFile != "" {
		// Read again while serving (Run), so a renewed certificate reaches the next handshake without a
		// restart; the Sensor dials anew whenever its connection is not ready.
		if a.certs, err = servingcert.New(servingcert.Config{CertFile: opts.TLSCertFile, KeyFile: opts.TLSKeyFile, Log: log}); err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(&tls.Config{GetCertificate: a.certs.GetCertificate, MinVersion: tls.VersionTLS12})))
	}
	a.grpc = grpc.NewServer(serverOpts...)
	triggerpb.RegisterTriggerServer(a.grpc, srv)
	healthpb.RegisterHealthServer(a.grpc, a.health)

	var lc net.ListenConfig
	if a.grpcLn, err = lc.Listen(context.Background(), "tcp", opts.GRPCAddress); err != nil {
		return nil, fmt.Errorf("listen on --grpc-address: %w", err)
	}
	if opts.MetricsAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			resp, err := a.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: triggerService})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				http.Error(w, "not serving", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		if opts.Profiling {
			// Opt-in: profiles tell where a release spends its time, and also reveal the server's internals.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		if a.httpLn, err = lc.Listen(context.Background(), "tcp", opts.MetricsAddress); err != nil {
			_ = a.grpcLn.Close()
			return nil, fmt.Errorf("listen on --metrics-address: %w", err)
		}
	}
	if opts.UIAddress != "" {
		if err := a.listenUI(&lc); err != nil {
			_ = a.grpcLn.Close()
			if a.httpLn != nil {
				_ = a.httpLn.Close()
			}
			return nil, err
		}
	}
	return a, nil
}

// listenUI opens --ui-address. The page acts with each person's token and never with the server's
// credentials: the UI is handed the server's config only to know where the API server is and how to trust it.
func (a *App) listenUI(lc *net.ListenConfig) error {
	h, err := ui.New(ui.Config{API: a.config, Log: a.log, TLS: a.certs != nil})
	if err != nil {
		return err
	}
	a.ui = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// A release follows its Resume for up to ui.DefaultReleaseWait before the page is written.
		WriteTimeout:   ui.DefaultReleaseWait + 15*time.Second,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: ui.MaxHeaderBytes,
	}
	if a.certs != nil {
		a.ui.TLSConfig = &tls.Config{GetCertificate: a.certs.GetCertificate, MinVersion: tls.VersionTLS12}
	} else {
		a.log.Warn("--ui-address without --tls-cert-file: the page carries people's bearer tokens in plain text; serve it only behind a proxy that terminates TLS")
	}
	if a.uiLn, err = lc.Listen(context.Background(), "tcp", a.opts.UIAddress); err != nil {
		return fmt.Errorf("listen on --ui-address: %w", err)
	}
	return nil
}

// UIAddr is the address of the web page, empty when it is off.
func (a *App) UIAddr() string {
	if a.uiLn == nil {
		return ""
	}
	return a.uiLn.Addr().String()
}

// Registry is the Prometheus registry /metrics serves: what the docs may name as a metric.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// GRPCAddr is the address the gRPC service listens on.
func (a *App) GRPCAddr() string { return a.grpcLn.Addr().String() }

// MetricsAddr is the address of the metrics endpoint, empty when it is off.
func (a *App) MetricsAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully: health turns NOT_SERVING first, so probes and
// new callers go elsewhere, and in-flight requests get --shutdown-timeout to finish.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, 4)
	go func() { errc <- a.grpc.Serve(a.grpcLn) }()
	if a.ui != nil {
		go func() {
			var err error
			if a.ui.TLSConfig != nil {
				err = a.ui.ServeTLS(a.uiLn, "", "")
			} else {
				err = a.ui.Serve(a.uiLn)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if a.http != nil {
		go func() {
			if err := a.http.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_NOT_SERVING)
	a.log.WithFields(logrus.Fields{"grpc": a.GRPCAddr(), "metrics": a.MetricsAddr(), "ui": a.UIAddr(), "namespaces": a.Service.Namespaces().String(), "webhookNamespaces": a.Service.WebhookNamespaces().String(), "tls": a.opts.TLSCertFile != "", "leaderElect": a.opts.LeaderElect}).Info("resume-trigger serving")
	a.log.WithFields(logrus.Fields{"version": version.Version, "commit": version.Commit, "go": version.GoVersion()}).Info(version.String())

	// Two lifetimes, ended in order at shutdown: revisits stop (and their in-flight look finishes) before
	// the Lease is handed over, so the next leader never acts on a Resume this replica is still handling.
	revisits, stopRevisits := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRevisits()
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	if a.certs != nil {
		go a.certs.Run(work)
	}
	go a.Rights.Run(work, a.opts.ResyncPeriod)
	var (
		mu          sync.Mutex
		closing     bool
		revisiting  sync.WaitGroup
		electing    sync.WaitGroup
		leaseLost   = make(chan struct{})
		loseLeaseMu sync.Once
	)
	// lead serves and revisits until leading ends; it does nothing once shutdown began (a Lease won at
	// that moment is handed back at once).
	lead := func(leading context.Context) {
		mu.Lock()
		if closing {
			mu.Unlock()
			return
		}
		revisiting.Add(1)
		mu.Unlock()
		defer revisiting.Done()
		a.leading.Store(true)
		a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_SERVING)
		if a.Requeue == nil {
			return
		}
		rctx, cancel := context.WithCancel(leading)
		defer cancel()
		defer context.AfterFunc(revisits, cancel)()
		a.Requeue.Run(rctx, a.Service)
	}
	if a.opts.LeaderElect {
		elector, err := a.elector(lead, func() {
			a.leading.Store(false)
			a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_NOT_SERVING)
			if ctx.Err() == nil {
				loseLeaseMu.Do(func() { close(leaseLost) })
			}
		})
		if err != nil {
			a.grpc.Stop()
			return err
		}
		electing.Add(1)
		go func() { defer electing.Done(); elector.Run(work) }()
	} else {
		go lead(work)
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case <-leaseLost:
		err = errors.New("lost the leader Lease: stopping so that only the new leader acts")
	}
	a.log.Info("shutting down")
	// From here on nothing new is released: Execute is refused (Unavailable, the Sensor retries on the
	// next leader), no revisit starts, and a release in progress stops before its next target.
	a.leading.Store(false)
	a.health.Shutdown()
	mu.Lock()
	closing = true
	mu.Unlock()
	stopRevisits()
	drained := make(chan struct{})
	go func() { a.grpc.GracefulStop(); revisiting.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(a.opts.ShutdownTimeout):
		a.log.Warn("in-flight requests did not finish in time; stopping")
		a.grpc.Stop()
	}
	stopWork()
	electing.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	// Nothing records an Event any more: write the ones queued.
	a.events.Shutdown(sctx)
	for _, s := range []*http.Server{a.http, a.ui} {
		if s != nil {
			_ = s.Shutdown(sctx)
		}
	}
	return err
}

// clientConfig is cfg with the server's user agent and client-side rate limit: one token bucket for
// every client made from it, so --kube-api-qps and --kube-api-burst bound what the server sends in all
// (client-go would give each client a bucket of its own). A negative QPS leaves no client-side limit.
func clientConfig(cfg *rest.Config, opts *Options) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(opts.APIQPS), opts.APIBurst
	cfg.RateLimiter = nil
	if opts.APIQPS > 0 {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(opts.APIQPS), opts.APIBurst)
	}
	cfg.UserAgent = "resume-trigger"
	return cfg
}

// rightsReviewTimeout bounds the review of the server's rights at start: an API server that does not
// answer leaves every namespace permitted (the real calls then tell), and the server starts anyway.
const rightsReviewTimeout = 10 * time.Second

// httpShutdownTimeout bounds what follows the gRPC drain, writing the Events still queued and the metrics
// and probe endpoint's shutdown: the pod's terminationGracePeriodSeconds must cover --shutdown-timeout
// plus this.
const httpShutdownTimeout = 5 * time.Second

// elector holds the Lease named by --leader-election-id: while it does, this replica serves the Trigger
// service and revisits Pending Resumes; the others stand by, not ready. ReleaseOnCancel hands the Lease
// over at once on a clean shutdown.
func (a *App) elector(lead func(context.Context), lost func()) (*leaderelection.LeaderElector, error) {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s_%s", host, uuid.NewUUID())
	// A client of its own: renewing the Lease must not wait behind a burst of releases on the shared
	// client-side rate limit, or the Lease is lost under load.
	cfg := rest.CopyConfig(a.config)
	cfg.QPS, cfg.Burst, cfg.RateLimiter = 5, 10, nil
	cfg.UserAgent = "resume-trigger/leader-election"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, a.opts.LeaderElectionNS, a.opts.LeaderElectionID,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   a.opts.LeaseDuration,
		RenewDeadline:   a.opts.LeaseRenewDeadline,
		RetryPeriod:     a.opts.LeaseRetryPeriod,
		ReleaseOnCancel: true,
		Name:            a.opts.LeaderElectionID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				a.log.WithField("identity", id).Info("holding the leader Lease: serving")
				lead(ctx)
			},
			OnStoppedLeading: lost,
			OnNewLeader: func(identity string) {
				if identity != id {
					a.log.WithField("leader", identity).Info("standing by: another replica holds the leader Lease")
				}
			},
		},
	})
}

// Leading reports whether this replica serves (it holds the Lease, or leader election is off).
func (a *App) Leading() bool { return a.leading.Load() }

// buildInfo is the resume_trigger_build_info gauge: always 1, its labels say which build runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "resume_trigger_build_info",
		Help: "The running build: version, commit and Go version as labels; always 1.",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(version.Version, version.Commit, version.GoVersion()).Set(1)
	return g
}
