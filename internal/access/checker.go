package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// AllNamespaces in Config.Namespaces means the server serves every namespace: its rights are reviewed
// once, cluster-wide, and must come from a ClusterRoleBinding.
const AllNamespaces = "*"

// installName is what the shipped install calls the server's ServiceAccount, ClusterRole and bindings;
// the ServiceAccount's own name is used instead when the server learns it.
const installName = "resume-trigger"

// Config is what a Checker works with. New checks it and fills in the defaults.
type Config struct {
	// Reviews creates SelfSubjectAccessReviews (required). Every authenticated user may create them
	// (ClusterRole system:basic-user), so they need no rule in the server's role.
	Reviews authorizationv1client.SelfSubjectAccessReviewsGetter
	// Identity creates a SelfSubjectReview, to name the ServiceAccount the advice binds; nil names none.
	// Also allowed to every authenticated user by system:basic-user.
	Identity authenticationv1client.SelfSubjectReviewsGetter
	// Namespaces are the served namespaces; "*" reviews the rights once, cluster-wide.
	Namespaces []string
	// Ephemeral also reviews EphemeralFallback (--ephemeral-image is set).
	Ephemeral bool
	// Registerer receives the gauge resume_trigger_namespace_ready; nil registers nothing.
	Registerer prometheus.Registerer
	// Log is the standard logger by default.
	Log logrus.FieldLogger
	// Timeout bounds one round of reviews (30s by default).
	Timeout time.Duration
}

// Checker knows, per served namespace, whether the server holds every right a release needs there.
// Until a namespace's first review answers, it counts as permitted: an unreachable API server at start
// must not fail Resumes that the real calls might well serve.
type Checker struct {
	cfg   Config
	gauge *prometheus.GaugeVec

	mu    sync.Mutex
	user  string // the server's username, once a SelfSubjectReview told it
	state map[string]verdict
}

// verdict is the last complete review of one served namespace.
type verdict struct {
	missing   []Right
	ephemeral bool // EphemeralFallback is missing (only reviewed with Config.Ephemeral)
	advice    string
}

// New returns a Checker for c.
func New(c Config) (*Checker, error) {
	if c.Reviews == nil {
		return nil, errors.New("access: Config.Reviews is required")
	}
	if c.Timeout < 0 {
		return nil, errors.New("access: Config.Timeout cannot be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	var keys []string
	for _, ns := range c.Namespaces {
		if ns == AllNamespaces {
			keys = []string{AllNamespaces}
			break
		}
		if ns != "" && !slices.Contains(keys, ns) {
			keys = append(keys, ns)
		}
	}
	c.Namespaces = keys
	ch := &Checker{cfg: c, state: map[string]verdict{}}
	ch.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "resume_trigger_namespace_ready",
		Help: "1 when the server holds every right a release needs in the served namespace (* when it serves all), 0 when one is missing; reviewed at start and every --resync-period.",
	}, []string{"served_namespace"})
	if c.Registerer != nil {
		if err := c.Registerer.Register(ch.gauge); err != nil {
			return nil, fmt.Errorf("access: register gauge: %w", err)
		}
	}
	return ch, nil
}

// Run reviews the rights again every period until ctx ends (call Check once first). While a namespace
// is not ready it is reviewed sooner (2s, 4s, … up to every): a RoleBinding applied together with the
// server may reach the API server's authorizer a moment after the first review.
func (c *Checker) Run(ctx context.Context, every time.Duration) {
	soon := time.Duration(0)
	for {
		next := every
		if c.anyNotReady() {
			soon = min(max(2*soon, 2*time.Second), every)
			next = soon
		} else {
			soon = 0
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			c.Check(ctx)
		}
	}
}

func (c *Checker) anyNotReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.state {
		if len(v.missing) > 0 {
			return true
		}
	}
	return false
}

// Check reviews every right in every served namespace and updates the verdicts and the gauge. A
// namespace whose reviews fail keeps its last verdict.
func (c *Checker) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.learnIdentity(ctx)
	for _, key := range c.cfg.Namespaces {
		v, err := c.review(ctx, key)
		if err != nil {
			if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
				c.cfg.Log.WithError(err).WithField("served_namespace", key).Warn("could not review the server's rights; the last verdict stands until the next resync")
			}
			continue
		}
		c.record(key, v)
	}
}

// review asks the API server about each right in namespace key.
func (c *Checker) review(ctx context.Context, key string) (verdict, error) {
	ns := key
	if key == AllNamespaces {
		ns = ""
	}
	var v verdict
	for _, r := range c.rights() {
		ok, err := c.allowed(ctx, ns, r)
		if err != nil {
			return verdict{}, fmt.Errorf("SelfSubjectAccessReview for %s in %q: %w", r, ns, err)
		}
		switch {
		case ok:
		case r == EphemeralFallback:
			v.ephemeral = true
		default:
			v.missing = append(v.missing, r)
		}
	}
	if len(v.missing) > 0 {
		v.advice = c.advise(key, v.missing)
	}
	return v, nil
}

func (c *Checker) rights() []Right {
	if c.cfg.Ephemeral {
		return append(slices.Clone(Needed), EphemeralFallback)
	}
	return Needed
}

func (c *Checker) allowed(ctx context.Context, ns string, r Right) (bool, error) {
	review, err := c.cfg.Reviews.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Group: r.Group, Resource: r.Resource, Subresource: r.Subresource, Verb: r.Verb,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}

// record stores v and says what changed: a log line at each change of a namespace's verdict (not at
// every resync), and the gauge always.
func (c *Checker) record(key string, v verdict) {
	c.mu.Lock()
	old, seen := c.state[key]
	c.state[key] = v
	c.mu.Unlock()
	log := c.cfg.Log.WithField("served_namespace", key)
	ready := len(v.missing) == 0
	if ready {
		c.gauge.WithLabelValues(key).Set(1)
	} else {
		c.gauge.WithLabelValues(key).Set(0)
	}
	switch {
	case !ready && (!seen || old.advice != v.advice):
		log.WithField("missing", rightNames(v.missing)).Error(v.advice)
	case ready && seen && len(old.missing) > 0:
		log.Info("the server now holds every right a release needs here")
	}
	if v.ephemeral && (!seen || !old.ephemeral) {
		log.Warnf("--ephemeral-image is set but the server may not %s here: the ephemeral-container fallback is refused until the ClusterRole has the rule of manifests/ephemeral-fallback", EphemeralFallback)
	}
}

// Permitted returns nil when the server holds every right a release in namespace needs (or no review
// has answered yet), else an error saying which are missing and which binding grants them. canRecord
// says whether the server may still read a Resume there and write its status.
func (c *Checker) Permitted(namespace string) (canRecord bool, err error) {
	key := namespace
	c.mu.Lock()
	v, ok := c.state[key]
	if !ok && slices.Equal(c.cfg.Namespaces, []string{AllNamespaces}) {
		key = AllNamespaces
		v, ok = c.state[key]
	}
	c.mu.Unlock()
	if !ok || len(v.missing) == 0 {
		return true, nil
	}
	canRecord = true
	for _, r := range recording {
		if slices.Contains(v.missing, r) {
			canRecord = false
		}
	}
	return canRecord, errors.New(v.advice)
}

// Ready reports the last verdict of a served namespace ("*" when serving all): known is false before
// its first review answered.
func (c *Checker) Ready(key string) (ready, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.state[key]
	return ok && len(v.missing) == 0, ok
}

// learnIdentity asks once who the server is, to name the ServiceAccount in the advice.
func (c *Checker) learnIdentity(ctx context.Context) {
	c.mu.Lock()
	known := c.user != ""
	c.mu.Unlock()
	if known || c.cfg.Identity == nil {
		return
	}
	r, err := c.cfg.Identity.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		c.cfg.Log.WithError(err).Debug("could not learn the server's own username (SelfSubjectReview); the advice names the install's ServiceAccount")
		return
	}
	c.mu.Lock()
	c.user = r.Status.UserInfo.Username
	c.mu.Unlock()
}

// advise says what is missing in a served namespace and the binding the install would have made there.
func (c *Checker) advise(key string, missing []Right) string {
	c.mu.Lock()
	user := c.user
	c.mu.Unlock()
	name, subject := installName, "the server's ServiceAccount ("+installName+" in the install namespace)"
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		if ns, sa, ok := strings.Cut(rest, ":"); ok {
			name, subject = sa, "ServiceAccount "+ns+"/"+sa
		}
	} else if user != "" {
		subject = "user " + user
	}
	if key == AllNamespaces {
		return fmt.Sprintf("resume-trigger serves every namespace but may not %s cluster-wide: create ClusterRoleBinding %s (roleRef ClusterRole %s, subject %s), as manifests/cluster-install does",
			rightNames(missing), name, name, subject)
	}
	return fmt.Sprintf("resume-trigger may not %s in namespace %s, which it serves: create RoleBinding %s in namespace %s (roleRef ClusterRole %s, subject %s), as the install does for each served namespace",
		rightNames(missing), key, name, key, name, subject)
}

func rightNames(rs []Right) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}
