package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/argocontroller/resume-trigger/internal/resume"
)

// Options are resume-trigger's flags.
type Options struct {
	GRPCAddress    string
	MetricsAddress string
	// UIAddress is --ui-address: the web page's own listener (internal/ui); empty turns it off.
	UIAddress       string
	Kubeconfig      string
	Namespaces      string
	TLSCertFile     string
	TLSKeyFile      string
	RequestTimeout  time.Duration
	ExecTimeout     time.Duration
	ShutdownTimeout time.Duration
	EphemeralImage  string
	ArgoServerURL   string
	ArgoServerToken string
	ResultSink      string
	LogLevel        string
	LogFormat       string
	MaxStreams      uint
	MaxMessageBytes int
	APIQPS          float64
	APIBurst        int

	ResumeDeadline  time.Duration
	Revisits        bool
	RevisitInterval time.Duration
	RevisitRate     float64
	ResyncPeriod    time.Duration

	PausedMetrics bool
	Profiling     bool

	LeaderElect        bool
	LeaderElectionNS   string
	LeaderElectionID   string
	LeaseDuration      time.Duration
	LeaseRenewDeadline time.Duration
	LeaseRetryPeriod   time.Duration

	// WebhookNamespaces is --webhook-namespaces: the namespaces a webhook (direct) request may name.
	WebhookNamespaces string

	// Completed by Complete.
	namespaces []string
	logLevel   logrus.Level
	// webhookNamespaces is WebhookNamespaces split, each one checked against namespaces.
	webhookNamespaces []string
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

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		GRPCAddress:     ":9000",
		MetricsAddress:  ":8080",
		RequestTimeout:  30 * time.Second,
		ExecTimeout:     10 * time.Second,
		ShutdownTimeout: 50 * time.Second,
		LogLevel:        "info",
		LogFormat:       "json",
		MaxStreams:      64,
		MaxMessageBytes: 1 << 20,
		APIQPS:          DefaultAPIQPS,
		APIBurst:        DefaultAPIBurst,

		ResumeDeadline:  15 * time.Minute,
		Revisits:        true,
		RevisitInterval: 2 * time.Second,
		RevisitRate:     5,
		ResyncPeriod:    time.Minute,

		LeaderElectionID:   "resume-trigger",
		LeaseDuration:      15 * time.Second,
		LeaseRenewDeadline: 10 * time.Second,
		LeaseRetryPeriod:   2 * time.Second,
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.GRPCAddress, "grpc-address", o.GRPCAddress, "address of the gRPC trigger service (and grpc.health.v1)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", o.MetricsAddress, "address of the HTTP endpoint serving /metrics, /healthz and /readyz; empty turns it off")
	fs.StringVar(&o.UIAddress, "ui-address", o.UIAddress, "address of the web page that shows debug-paused steps and releases them, acting with each person's own bearer token (docs/ui.md); served over TLS with --tls-cert-file when set; empty (the default) turns it off")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file; empty uses $KUBECONFIG, then ~/.kube/config, then the in-cluster service account")
	fs.StringVar(&o.Namespaces, "namespaces", o.Namespaces, "comma-separated namespaces the server acts in; empty means its own namespace (env POD_NAMESPACE); * means all")
	fs.StringVar(&o.WebhookNamespaces, "webhook-namespaces", o.WebhookNamespaces, "comma-separated namespaces a webhook request (one without a Resume) may name, each also served by --namespaces; * means every served one; empty (the default) refuses every webhook request")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "serve gRPC over TLS with this certificate (PEM); needs --tls-key-file")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", o.TLSKeyFile, "private key (PEM) for --tls-cert-file")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "bound on one request's wait for a duplicate request, its lookup and its releases; recording the outcome (the status write) gets 10s of its own after it, and reporting it (Events, result event) 10s more")
	fs.DurationVar(&o.ExecTimeout, "exec-timeout", o.ExecTimeout, "bound on one exec into a container")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight requests may finish after SIGTERM")
	fs.StringVar(&o.EphemeralImage, "ephemeral-image", o.EphemeralImage, "image with touch for the ephemeral-container fallback (needs pods/ephemeralcontainers rights); empty turns the fallback off")
	fs.StringVar(&o.ArgoServerURL, "argo-server-url", o.ArgoServerURL, "argo-server base URL, used to read nodes of workflows whose node status is offloaded")
	fs.StringVar(&o.ArgoServerToken, "argo-server-token-file", o.ArgoServerToken, "file holding the bearer token for --argo-server-url")
	fs.StringVar(&o.ResultSink, "result-sink", o.ResultSink, "URL that receives one CloudEvent per outcome; empty sends none")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "json or text")
	fs.UintVar(&o.MaxStreams, "max-concurrent-streams", o.MaxStreams, "gRPC streams allowed per connection")
	fs.IntVar(&o.MaxMessageBytes, "max-message-bytes", o.MaxMessageBytes, "largest gRPC message accepted")
	fs.Float64Var(&o.APIQPS, "kube-api-qps", o.APIQPS, "sustained queries per second to the API server, all clients together (client-side limit; a release costs 5 or 6, more when a pod LIST decides); negative turns the client-side limit off and leaves it to the API server's priority and fairness")
	fs.IntVar(&o.APIBurst, "kube-api-burst", o.APIBurst, "queries to the API server allowed at once above --kube-api-qps")
	fs.DurationVar(&o.ResumeDeadline, "resume-deadline", o.ResumeDeadline, "how long a Resume without spec.activeDeadlineSeconds waits for its step to pause, from its creation; then it ends Failed (DeadlineExceeded)")
	fs.BoolVar(&o.Revisits, "revisits", o.Revisits, "look again at Pending Resumes every --revisit-interval, and list them on start and every --resync-period; off, a Resume is looked at only when the Sensor calls, and may stay Pending past its deadline")
	fs.DurationVar(&o.RevisitInterval, "revisit-interval", o.RevisitInterval, "how soon a Pending Resume is looked at again, so it is released within this long of its step pausing")
	fs.Float64Var(&o.RevisitRate, "revisit-rate", o.RevisitRate, "most revisits of Pending Resumes per second, over all of them, shared round robin between namespaces (one namespace's many Resumes slow only its own); each costs 2 to 6 API calls (6 while it waits for a pod not created yet)")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "how often every served Resume is listed, to take up Pending ones no request reached (and on start)")
	fs.BoolVar(&o.PausedMetrics, "paused-metrics", o.PausedMetrics, "serve resume_trigger_paused_containers and resume_trigger_oldest_pause_seconds: one pod LIST per served namespace per scrape, at most every 30s")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "serve Go's pprof profiles under /debug/pprof/ on --metrics-address; off by default, as they expose the server's internals")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "with more than one replica: only the holder of a Lease serves and revisits, the others stand by (not ready)")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS, "namespace of the Lease; empty means the server's own namespace (POD_NAMESPACE)")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "name of the Lease")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", o.LeaseDuration, "how long a standby waits before it takes over a Lease that was not renewed")
	fs.DurationVar(&o.LeaseRenewDeadline, "leader-election-renew-deadline", o.LeaseRenewDeadline, "how long the leader tries to renew before it gives up leading (and exits)")
	fs.DurationVar(&o.LeaseRetryPeriod, "leader-election-retry-period", o.LeaseRetryPeriod, "how often the Lease is tried")
}

// servesOwnNamespace reports whether the server's own namespace is in --namespaces by name (or by
// default, when the list is empty). The install namespace should run no workflows: the NetworkPolicy
// admits the Sensor's pods by their labels there, and a workflow pod there could carry the same labels.
func (o *Options) servesOwnNamespace() (string, bool) {
	own := ownNamespace()
	return own, own != "" && slices.Contains(o.namespaces, own)
}

// shutdownShort reports whether a release in flight at SIGTERM could be cut off: it may take the whole
// request timeout and then resume.RecordBudget to record and report its outcome, and cut off before that,
// the marker exists but the Resume does not say so.
func (o *Options) shutdownShort() bool {
	return o.ShutdownTimeout < o.RequestTimeout+resume.RecordBudget
}

// Complete checks the options and fills in the defaults that depend on the environment.
func (o *Options) Complete() error {
	var errs []error
	var err error
	if o.namespaces, err = namespaceList("--namespaces", o.Namespaces); err != nil {
		errs = append(errs, err)
	}
	own := ownNamespace()
	if len(o.namespaces) == 0 {
		if own == "" {
			errs = append(errs, errors.New("--namespaces is empty and the server's own namespace is unknown (set POD_NAMESPACE or --namespaces)"))
		}
		o.namespaces = []string{own}
	}
	errs = append(errs, o.completeWebhookNamespaces()...)
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	if o.Profiling && o.MetricsAddress == "" {
		errs = append(errs, errors.New("--profiling needs --metrics-address: the profiles are served there"))
	}
	if o.RequestTimeout <= 0 || o.ExecTimeout <= 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if o.ExecTimeout >= o.RequestTimeout {
		errs = append(errs, fmt.Errorf("--exec-timeout (%s) must be shorter than --request-timeout (%s)", o.ExecTimeout, o.RequestTimeout))
	}
	if o.ArgoServerToken != "" && o.ArgoServerURL == "" {
		errs = append(errs, errors.New("--argo-server-token-file needs --argo-server-url"))
	}
	if o.APIQPS == 0 {
		// client-go would read 0 as its default, 5 per second: far too few, and surely not meant.
		errs = append(errs, errors.New("--kube-api-qps must not be 0: give a rate, or a negative value to leave the limiting to the API server"))
	}
	if o.APIQPS > 0 && o.APIBurst < 1 {
		errs = append(errs, errors.New("--kube-api-burst must be at least 1 when --kube-api-qps is positive"))
	}
	if o.MaxStreams == 0 || o.MaxMessageBytes <= 0 {
		errs = append(errs, errors.New("--max-concurrent-streams and --max-message-bytes must be positive"))
	}
	if o.ResumeDeadline <= 0 || o.RevisitInterval <= 0 || o.ResyncPeriod <= 0 || o.RevisitRate <= 0 {
		errs = append(errs, errors.New("--resume-deadline, --revisit-interval, --revisit-rate and --resync-period must be positive"))
	}
	if o.LeaderElect {
		if o.LeaderElectionNS == "" {
			o.LeaderElectionNS = own
		}
		if o.LeaderElectionNS == "" {
			errs = append(errs, errors.New("--leader-elect needs --leader-election-namespace (or POD_NAMESPACE)"))
		}
		if o.LeaseRetryPeriod <= 0 || o.LeaseRetryPeriod >= o.LeaseRenewDeadline || o.LeaseRenewDeadline >= o.LeaseDuration {
			errs = append(errs, errors.New("leader election needs 0 < retry period < renew deadline < lease duration"))
		}
	}
	lvl, err := logrus.ParseLevel(o.LogLevel)
	if err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	o.logLevel = lvl
	if o.LogFormat != "json" && o.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q is neither json nor text", o.LogFormat))
	}
	return errors.Join(errs...)
}

// completeWebhookNamespaces splits --webhook-namespaces; each must be served by --namespaces (already
// completed), since the server has no rights anywhere else.
func (o *Options) completeWebhookNamespaces() []error {
	var errs []error
	served := resume.NewNamespaces(o.namespaces...)
	list, err := namespaceList("--webhook-namespaces", o.WebhookNamespaces)
	if err != nil {
		errs = append(errs, err)
	}
	o.webhookNamespaces = nil
	for _, ns := range list {
		if ns != resume.AllNamespaces && served.Check(ns) != nil {
			errs = append(errs, fmt.Errorf("--webhook-namespaces names %s, which --namespaces does not serve (%s): add it there too, or drop it", ns, served))
		}
		o.webhookNamespaces = append(o.webhookNamespaces, ns)
	}
	return errs
}

// namespaceList splits a comma-separated list of namespaces; empty entries (a trailing comma) are
// dropped. Every other entry must be * or a namespace name exactly, without spaces: the shipped Sensor
// filters Resumes by the same string (install.yaml's namespaces) and compares the names exactly, so
// "argo, team-a" would serve team-a here while the Sensor passes none of its Resumes on.
func namespaceList(flag, value string) ([]string, error) {
	var list []string
	var bad []string
	for _, ns := range strings.Split(value, ",") {
		switch {
		case ns == "":
		case ns == resume.AllNamespaces || len(validation.IsDNS1123Label(ns)) == 0:
			list = append(list, ns)
		default:
			bad = append(bad, strconv.Quote(ns))
		}
	}
	if len(bad) > 0 {
		return list, fmt.Errorf("%s %q: %s is not a namespace name; write the names separated by commas, without spaces", flag, value, strings.Join(bad, ", "))
	}
	return list, nil
}

// ownNamespace is the namespace the server runs in, if it can tell.
func ownNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(data))
	}
	return ""
}

// MemoryLimitEnv carries the container's memory limit in bytes (the Deployment sets it from the Downward
// API: resourceFieldRef limits.memory).
const MemoryLimitEnv = "RESUME_TRIGGER_MEMORY_LIMIT"

// SoftMemoryLimit is the Go runtime's soft memory limit for a container limit read from getenv: 90% of
// it, so the garbage collector works harder before the kernel's OOM killer would. ok is false when
// GOMEMLIMIT is set (the operator's choice stands) or no limit is known.
func SoftMemoryLimit(getenv func(string) string) (limit int64, ok bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(getenv(MemoryLimitEnv)), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n / 10 * 9, true
}
