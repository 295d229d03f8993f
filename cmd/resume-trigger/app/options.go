package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/argocontroller/resume-trigger/internal/resume"
)

// Options are resume-trigger's flags, grouped by what they configure. Each group registers its own flags
// and checks its own values; Complete checks what spans groups and returns a Completed.
type Options struct {
	Server   ServerOptions
	Kube     KubeOptions
	Resume   ResumeOptions
	Revisits RevisitOptions
	Leader   LeaderOptions
	Logging  LoggingOptions
	Metrics  MetricsOptions
	UI       UIOptions
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Server:   newServerOptions(),
		Kube:     newKubeOptions(),
		Resume:   newResumeOptions(),
		Revisits: newRevisitOptions(),
		Leader:   newLeaderOptions(),
		Logging:  newLoggingOptions(),
		Metrics:  newMetricsOptions(),
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	o.Server.addFlags(fs)
	o.Kube.addFlags(fs)
	o.Resume.addFlags(fs)
	o.Revisits.addFlags(fs)
	o.Leader.addFlags(fs)
	o.Logging.addFlags(fs)
	o.Metrics.addFlags(fs)
	o.UI.addFlags(fs)
}

// Completed are Options that Complete checked, with what depends on the environment filled in. Only
// Complete makes one; it holds a copy, so changing the Options afterwards changes nothing here.
type Completed struct {
	Options
	// namespaces is --namespaces split; the server's own namespace when the flag is empty.
	namespaces []string
	// webhookNamespaces is --webhook-namespaces split, each one served by namespaces.
	webhookNamespaces []string
	logLevel          logrus.Level
	// leaseNamespace is --leader-election-namespace, else the server's own; empty without --leader-elect.
	leaseNamespace string
}

// Complete checks the options and fills in the defaults that depend on the environment. Every problem
// is reported at once, so an operator fixes the flags in one go.
func (o *Options) Complete() (*Completed, error) {
	c := &Completed{Options: *o}
	own := ownNamespace()
	errs := o.Server.validate()
	errs = append(errs, o.Kube.validate()...)
	errs = append(errs, o.Resume.validate()...)
	errs = append(errs, o.Revisits.validate()...)
	errs = append(errs, o.Metrics.validate()...)
	errs = append(errs, c.completeNamespaces(own)...)
	if o.Resume.ExecTimeout >= o.Server.RequestTimeout {
		errs = append(errs, fmt.Errorf("--exec-timeout (%s) must be shorter than --request-timeout (%s)", o.Resume.ExecTimeout, o.Server.RequestTimeout))
	}
	var err error
	if c.leaseNamespace, err = o.Leader.complete(own); err != nil {
		errs = append(errs, err)
	}
	if c.logLevel, err = o.Logging.complete(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// completeNamespaces splits --namespaces (the server's own namespace when empty) and
// --webhook-namespaces; each webhook namespace must be served too, since the server has no rights
// anywhere else.
func (c *Completed) completeNamespaces(own string) []error {
	var errs []error
	var err error
	if c.namespaces, err = namespaceList("--namespaces", c.Server.Namespaces); err != nil {
		errs = append(errs, err)
	}
	if len(c.namespaces) == 0 {
		if own == "" {
			errs = append(errs, errors.New("--namespaces is empty and the server's own namespace is unknown (set POD_NAMESPACE or --namespaces)"))
		}
		c.namespaces = []string{own}
	}
	served := resume.NewNamespaces(c.namespaces...)
	list, err := namespaceList("--webhook-namespaces", c.Server.WebhookNamespaces)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range list {
		if ns != resume.AllNamespaces && served.Check(ns) != nil {
			errs = append(errs, fmt.Errorf("--webhook-namespaces names %s, which --namespaces does not serve (%s): add it there too, or drop it", ns, served))
		}
		c.webhookNamespaces = append(c.webhookNamespaces, ns)
	}
	return errs
}

// servesOwnNamespace reports whether the server's own namespace is in --namespaces by name (or by
// default, when the list is empty). The install namespace should run no workflows: the NetworkPolicy
// admits the Sensor's pods by their labels there, and a workflow pod there could carry the same labels.
func (c *Completed) servesOwnNamespace() (string, bool) {
	own := ownNamespace()
	return own, own != "" && slices.Contains(c.namespaces, own)
}

// shutdownShort reports whether a release in flight at SIGTERM could be cut off: it may take the whole
// request timeout and then resume.RecordBudget to record and report its outcome, and cut off before that,
// the marker exists but the Resume does not say so.
func (o *ServerOptions) shutdownShort() bool {
	return o.ShutdownTimeout < o.RequestTimeout+resume.RecordBudget
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
