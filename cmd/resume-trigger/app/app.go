package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/argocontroller/resume-trigger/internal/access"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/servingcert"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
)

// triggerService is the service name health checks may ask about.
var triggerService = triggerpb.Trigger_ServiceDesc.ServiceName

// App is a configured server with its listeners open.
type App struct {
	opts   *Completed
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
	a, err := New(ctx, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New checks opts, builds the server with the Kubernetes client configuration they name, and opens its
// listeners (ctx bounds only the opening).
func New(ctx context.Context, opts *Options) (*App, error) {
	c, err := opts.Complete()
	if err != nil {
		return nil, err
	}
	log := newLogger(c)
	// client-go's usual loading: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.Kube.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	return NewWithConfig(ctx, c, cfg, log)
}

// newLogger is the server's one log, in the format and at the level c names; klog (client-go's) writes
// to it too.
func newLogger(c *Completed) *logrus.Logger {
	log := logrus.New()
	log.SetLevel(c.logLevel)
	log.SetOutput(os.Stderr)
	if c.Logging.Format == logFormatJSON {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	logging.RouteKlog(log)
	return log
}

// NewWithConfig builds the server from completed options against an explicit rest.Config, and opens its
// listeners (ctx bounds only the opening).
func NewWithConfig(ctx context.Context, c *Completed, cfg *rest.Config, log *logrus.Logger) (*App, error) {
	if own, ok := c.servesOwnNamespace(); ok {
		log.Warnf("the server serves its own namespace %s: keep workflows out of the install namespace and serve the namespaces they run in (a workflow pod there could carry the Sensor's labels, which the NetworkPolicy admits to the gRPC port)", own)
	}
	if s := c.Server; s.shutdownShort() {
		log.Warnf("--shutdown-timeout %s is shorter than --request-timeout %s plus %s to record: a release in flight at SIGTERM may not be recorded", s.ShutdownTimeout, s.RequestTimeout, resume.RecordBudget)
	}
	cl, err := newClients(cfg, c.Kube)
	if err != nil {
		return nil, err
	}
	a := &App{opts: c, log: log, config: cl.config, health: health.NewServer(), reg: newRegistry(c, cl)}
	if err := a.buildService(cl); err != nil {
		return nil, err
	}
	if err := a.buildGRPC(); err != nil {
		return nil, err
	}
	if err := a.listen(ctx); err != nil {
		return nil, err
	}
	return a, nil
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

// Leading reports whether this replica serves (it holds the Lease, or leader election is off).
func (a *App) Leading() bool { return a.leading.Load() }
