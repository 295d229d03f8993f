package app

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/resume"
)

// ServerOptions are the gRPC service's: where it listens, whom it serves, and its bounds.
type ServerOptions struct {
	GRPCAddress string
	// Namespaces is --namespaces as given; Completed holds it split.
	Namespaces string
	// WebhookNamespaces is --webhook-namespaces: the namespaces a webhook (direct) request may name.
	WebhookNamespaces string
	TLSCertFile       string
	TLSKeyFile        string
	RequestTimeout    time.Duration
	ShutdownTimeout   time.Duration
	MaxStreams        uint
	MaxMessageBytes   int
}

// The gRPC service's defaults. The shutdown timeout leaves a release in flight at SIGTERM its whole
// request timeout plus resume.RecordBudget (TestShutdownTimeoutCoversARelease).
const (
	defaultGRPCAddress     = ":9000"
	defaultShutdownTimeout = 50 * time.Second
	defaultMaxStreams      = 64
	defaultMaxMessageBytes = 1 << 20
)

func newServerOptions() ServerOptions {
	return ServerOptions{
		GRPCAddress:     defaultGRPCAddress,
		RequestTimeout:  resume.DefaultTimeout,
		ShutdownTimeout: defaultShutdownTimeout,
		MaxStreams:      defaultMaxStreams,
		MaxMessageBytes: defaultMaxMessageBytes,
	}
}

func (o *ServerOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.GRPCAddress, "grpc-address", o.GRPCAddress, "address of the gRPC trigger service (and grpc.health.v1)")
	fs.StringVar(&o.Namespaces, "namespaces", o.Namespaces, "comma-separated namespaces the server acts in; empty means its own namespace (env POD_NAMESPACE); * means all")
	fs.StringVar(&o.WebhookNamespaces, "webhook-namespaces", o.WebhookNamespaces, "comma-separated namespaces a webhook request (one without a Resume) may name, each also served by --namespaces; * means every served one; empty (the default) refuses every webhook request")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "serve gRPC over TLS with this certificate (PEM); needs --tls-key-file")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", o.TLSKeyFile, "private key (PEM) for --tls-cert-file")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "bound on one request's wait for a duplicate request, its lookup and its releases; recording the outcome (the status write) gets 10s of its own after it, and reporting it (Events, result event) 10s more")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight requests may finish after SIGTERM")
	fs.UintVar(&o.MaxStreams, "max-concurrent-streams", o.MaxStreams, "gRPC streams allowed per connection")
	fs.IntVar(&o.MaxMessageBytes, "max-message-bytes", o.MaxMessageBytes, "largest gRPC message accepted")
}

// validate checks the group on its own; the namespaces are split and checked by Complete.
func (o *ServerOptions) validate() []error {
	var errs []error
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	if o.RequestTimeout <= 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive: --request-timeout and --shutdown-timeout"))
	}
	if o.MaxStreams == 0 || o.MaxMessageBytes <= 0 {
		errs = append(errs, errors.New("--max-concurrent-streams and --max-message-bytes must be positive"))
	}
	return errs
}

// KubeOptions are the Kubernetes API client's: which cluster, and how fast the server may call it.
type KubeOptions struct {
	Kubeconfig string
	QPS        float64
	Burst      int
}

// The client-side rate limit's defaults, for all the server's API clients together (one token bucket;
// the leader election's Lease has a client of its own). A release costs five or six limited requests (GET
// Resume, GET Workflow, one or two pod GETs, status update, Event; more when the pod LIST decides; the
// exec stream is not limited), so a burst of 300 Resumes is served at full speed and about 160 per
// second are sustained. The API server's own priority and fairness is what protects it: the server's
// ServiceAccount falls in the workload-low priority level, whose queues answer 429 with Retry-After when
// they are full, which client-go waits for and retries; the shipped FlowSchema keeps the Lease renewals
// out of that level. A lower client limit would only queue releases inside the server while the API
// server had room for them.
const (
	DefaultAPIQPS   = 1000
	DefaultAPIBurst = 2000
)

func newKubeOptions() KubeOptions { return KubeOptions{QPS: DefaultAPIQPS, Burst: DefaultAPIBurst} }

func (o *KubeOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file; empty uses $KUBECONFIG, then ~/.kube/config, then the in-cluster service account")
	fs.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "sustained queries per second to the API server, all clients together (client-side limit; a release costs 5 or 6, more when a pod LIST decides); negative turns the client-side limit off and leaves it to the API server's priority and fairness")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "queries to the API server allowed at once above --kube-api-qps")
}

func (o *KubeOptions) validate() []error {
	var errs []error
	if o.QPS == 0 {
		// client-go would read 0 as its default, 5 per second: far too few, and surely not meant.
		errs = append(errs, errors.New("--kube-api-qps must not be 0: give a rate, or a negative value to leave the limiting to the API server"))
	}
	if o.QPS > 0 && o.Burst < 1 {
		errs = append(errs, errors.New("--kube-api-burst must be at least 1 when --kube-api-qps is positive"))
	}
	return errs
}

// ResumeOptions are the resume flow's: how long a Resume may wait, how a step is read and released, and
// where an outcome is sent.
type ResumeOptions struct {
	Deadline        time.Duration
	ExecTimeout     time.Duration
	EphemeralImage  string
	ArgoServerURL   string
	ArgoServerToken string
	ResultSink      string
}

func newResumeOptions() ResumeOptions {
	return ResumeOptions{Deadline: resume.DefaultDeadline, ExecTimeout: release.DefaultTimeout}
}

func (o *ResumeOptions) addFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Deadline, "resume-deadline", o.Deadline, "how long a Resume without spec.activeDeadlineSeconds waits for its step to pause, from its creation; then it ends Failed (DeadlineExceeded)")
	fs.DurationVar(&o.ExecTimeout, "exec-timeout", o.ExecTimeout, "bound on one exec into a container")
	fs.StringVar(&o.EphemeralImage, "ephemeral-image", o.EphemeralImage, "image with touch for the ephemeral-container fallback (needs pods/ephemeralcontainers rights); empty turns the fallback off")
	fs.StringVar(&o.ArgoServerURL, "argo-server-url", o.ArgoServerURL, "argo-server base URL, used to read nodes of workflows whose node status is offloaded")
	fs.StringVar(&o.ArgoServerToken, "argo-server-token-file", o.ArgoServerToken, "file holding the bearer token for --argo-server-url")
	fs.StringVar(&o.ResultSink, "result-sink", o.ResultSink, "URL that receives one CloudEvent per outcome; empty sends none")
}

func (o *ResumeOptions) validate() []error {
	var errs []error
	if o.Deadline <= 0 {
		errs = append(errs, errors.New("--resume-deadline must be positive"))
	}
	if o.ExecTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive: --exec-timeout"))
	}
	if o.ArgoServerToken != "" && o.ArgoServerURL == "" {
		errs = append(errs, errors.New("--argo-server-token-file needs --argo-server-url"))
	}
	return errs
}

// RevisitOptions are the server's own looks at Pending Resumes (resume.Requeue).
type RevisitOptions struct {
	Enabled  bool
	Interval time.Duration
	Rate     float64
	Resync   time.Duration
}

func newRevisitOptions() RevisitOptions {
	return RevisitOptions{
		Enabled:  true,
		Interval: resume.DefaultRevisitInterval,
		Rate:     resume.DefaultRevisitRate,
		Resync:   resume.DefaultResyncPeriod,
	}
}

func (o *RevisitOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Enabled, "revisits", o.Enabled, "look again at Pending Resumes every --revisit-interval, and list them on start and every --resync-period; off, a Resume is looked at only when the Sensor calls, and may stay Pending past its deadline")
	fs.DurationVar(&o.Interval, "revisit-interval", o.Interval, "how soon a Pending Resume is looked at again, so it is released within this long of its step pausing")
	fs.Float64Var(&o.Rate, "revisit-rate", o.Rate, "most revisits of Pending Resumes per second, over all of them, shared round robin between namespaces (one namespace's many Resumes slow only its own); each costs 2 to 6 API calls (6 while it waits for a pod not created yet)")
	fs.DurationVar(&o.Resync, "resync-period", o.Resync, "how often every served Resume is listed, to take up Pending ones no request reached (and on start)")
}

// validate checks the values even with revisits off: the resync period also paces the review of the
// server's rights.
func (o *RevisitOptions) validate() []error {
	if o.Interval <= 0 || o.Resync <= 0 || o.Rate <= 0 {
		return []error{errors.New("--revisit-interval, --revisit-rate and --resync-period must be positive")}
	}
	return nil
}

// LeaderOptions are the leader election's, for more than one replica.
type LeaderOptions struct {
	Enabled bool
	// Namespace of the Lease; Completed fills in the server's own when empty.
	Namespace     string
	ID            string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// The leader election's defaults, client-go's usual ones: a standby takes over within 15s of the leader's
// last renewal.
const (
	defaultLeaderElectionID = "resume-trigger"
	defaultLeaseDuration    = 15 * time.Second
	defaultRenewDeadline    = 10 * time.Second
	defaultRetryPeriod      = 2 * time.Second
)

func newLeaderOptions() LeaderOptions {
	return LeaderOptions{
		ID:            defaultLeaderElectionID,
		LeaseDuration: defaultLeaseDuration,
		RenewDeadline: defaultRenewDeadline,
		RetryPeriod:   defaultRetryPeriod,
	}
}

func (o *LeaderOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Enabled, "leader-elect", o.Enabled, "with more than one replica: only the holder of a Lease serves and revisits, the others stand by (not ready)")
	fs.StringVar(&o.Namespace, "leader-election-namespace", o.Namespace, "namespace of the Lease; empty means the server's own namespace (POD_NAMESPACE)")
	fs.StringVar(&o.ID, "leader-election-id", o.ID, "name of the Lease")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", o.LeaseDuration, "how long a standby waits before it takes over a Lease that was not renewed")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", o.RenewDeadline, "how long the leader tries to renew before it gives up leading (and exits)")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", o.RetryPeriod, "how often the Lease is tried")
}

// complete returns the Lease's namespace (own when none is given); the options are checked only when
// leader election is on.
func (o *LeaderOptions) complete(own string) (string, error) {
	if !o.Enabled {
		return "", nil
	}
	var errs []error
	ns := o.Namespace
	if ns == "" {
		ns = own
	}
	if ns == "" {
		errs = append(errs, errors.New("--leader-elect needs --leader-election-namespace (or POD_NAMESPACE)"))
	}
	if o.RetryPeriod <= 0 || o.RetryPeriod >= o.RenewDeadline || o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, errors.New("leader election needs 0 < retry period < renew deadline < lease duration"))
	}
	return ns, errors.Join(errs...)
}

// LoggingOptions are the server log's.
type LoggingOptions struct {
	Level  string
	Format string
}

const (
	logFormatJSON = "json"
	logFormatText = "text"
)

func newLoggingOptions() LoggingOptions {
	return LoggingOptions{Level: logrus.InfoLevel.String(), Format: logFormatJSON}
}

func (o *LoggingOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", o.Level, "debug, info, warn or error")
	fs.StringVar(&o.Format, "log-format", o.Format, "json or text")
}

// complete returns the parsed level.
func (o *LoggingOptions) complete() (logrus.Level, error) {
	var errs []error
	lvl, err := logrus.ParseLevel(o.Level)
	if err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if o.Format != logFormatJSON && o.Format != logFormatText {
		errs = append(errs, fmt.Errorf("--log-format %q is neither json nor text", o.Format))
	}
	return lvl, errors.Join(errs...)
}

// MetricsOptions are the HTTP endpoint's: /metrics, the probes, and the opt-in extras served there.
type MetricsOptions struct {
	Address   string
	Paused    bool
	Profiling bool
}

const defaultMetricsAddress = ":8080"

func newMetricsOptions() MetricsOptions { return MetricsOptions{Address: defaultMetricsAddress} }

func (o *MetricsOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Address, "metrics-address", o.Address, "address of the HTTP endpoint serving /metrics, /healthz and /readyz; empty turns it off")
	fs.BoolVar(&o.Paused, "paused-metrics", o.Paused, "serve resume_trigger_paused_containers and resume_trigger_oldest_pause_seconds: one pod LIST per served namespace per scrape, at most every 30s")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "serve Go's pprof profiles under /debug/pprof/ on --metrics-address; off by default, as they expose the server's internals")
}

// UIOptions are the web page's (internal/ui); off by default.
type UIOptions struct {
	// Address is --ui-address: the page's own listener; empty turns it off.
	Address string
}

func (o *UIOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Address, "ui-address", o.Address, "address of the web page that shows debug-paused steps and releases them, acting with each person's own bearer token (docs/ui.md); served over TLS with --tls-cert-file when set; empty (the default) turns it off")
}

func (o *MetricsOptions) validate() []error {
	if o.Profiling && o.Address == "" {
		return []error{errors.New("--profiling needs --metrics-address: the profiles are served there")}
	}
	return nil
}
