package resume

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// Resumes reads Resume objects and writes their status.
type Resumes interface {
	Get(ctx context.Context, namespace, name string) (*v1alpha1.Resume, error)
	UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error)
	// Delete deletes the Resume if it still has uid.
	Delete(ctx context.Context, namespace, name string, uid types.UID) error
}

// Finder finds the targets of a step.
type Finder interface {
	Find(ctx context.Context, namespace string, step request.Step) (lookup.Result, error)
}

// Prefetcher is a Finder that can start reading a step's workflow before the step is known for sure.
// A Resume's request names its workflow (the Sensor maps it from the object), so the workflow is read
// while the Resume is, and the lookup saves a round trip when the Resume's spec names the same one.
type Prefetcher interface {
	Prefetch(ctx context.Context, namespace, workflow string) *lookup.Prefetched
}

// Releaser releases one target, and confirms a release whose outcome was lost.
type Releaser interface {
	Release(ctx context.Context, t lookup.Target) (release.Outcome, error)
	// Confirm tells what became of t's container after a release was started for it.
	Confirm(ctx context.Context, t lookup.Target) (release.Confirmation, error)
}

// Recorder records Kubernetes Events. It only queues them: the outcome is in the Resume's status
// before any Event is written, and a request never waits for one.
type Recorder interface {
	Normal(obj report.Object, reason, message string)
	Warning(obj report.Object, reason, message string)
}

// Notifier sends a result notification; nil sends none.
type Notifier interface {
	Send(ctx context.Context, outcome, subject string, data any) error
}

// Config is what a Service works with. New checks it and fills in the defaults.
type Config struct {
	// Namespaces is the allow-list of namespaces served; its zero value serves none.
	Namespaces Namespaces
	// WebhookNamespaces is the allow-list of namespaces a direct (webhook) request may name, on top of
	// Namespaces; its zero value allows none, so the webhook path is closed unless opened.
	WebhookNamespaces Namespaces
	// Resumes reads Resume objects and writes their status (required).
	Resumes Resumes
	// Finder finds a step's targets (required).
	Finder Finder
	// Releaser releases one target (required).
	Releaser Releaser
	// Metrics counts requests and releases (required).
	Metrics *report.Metrics
	// Events records Kubernetes Events; nil records none.
	Events Recorder
	// Notifier sends one result event per outcome; nil sends none.
	Notifier Notifier
	// Log is the logger of requests that carry none in their context; the standard logger by default.
	Log logrus.FieldLogger
	// Timeout bounds one request from start to the last status write; 30s by default.
	Timeout time.Duration
	// Deadline is how long a Resume without spec.activeDeadlineSeconds waits for its step; 15 minutes by
	// default.
	Deadline time.Duration
	// Revisits is told which Resumes to look at again (Pending ones, and finished ones with a TTL); nil
	// looks at a Resume only when asked.
	Revisits Revisits
	// Active reports whether this replica may release (it holds the leader Lease); nil means always. It
	// is asked before each release, so a replica that lost the Lease stops within one exec.
	Active func() bool
	// Clock tells the time; the real clock by default.
	Clock clock.PassiveClock
	// Rights says where the server lacks a right a release needs: a Resume there ends Failed
	// (NotPermitted) before anything is looked up; nil assumes every right is held.
	Rights Rights
}

// Service carries requests through the flow. Make one with New.
type Service struct {
	cfg    Config
	locks  keyedMutex
	direct directMemory
}

// New returns a Service for c, or an error naming every missing dependency.
func New(c Config) (*Service, error) {
	var errs []error
	if c.Resumes == nil {
		errs = append(errs, errors.New("resume: Config.Resumes is required"))
	}
	if c.Finder == nil {
		errs = append(errs, errors.New("resume: Config.Finder is required"))
	}
	if c.Releaser == nil {
		errs = append(errs, errors.New("resume: Config.Releaser is required"))
	}
	if c.Metrics == nil {
		errs = append(errs, errors.New("resume: Config.Metrics is required"))
	}
	if c.Timeout < 0 || c.Deadline < 0 {
		errs = append(errs, errors.New("resume: Config.Timeout and Config.Deadline cannot be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return &Service{cfg: c}, nil
}

// Namespaces is the allow-list the Service serves.
func (s *Service) Namespaces() Namespaces { return s.cfg.Namespaces }

// WebhookNamespaces is the allow-list of namespaces a direct (webhook) request may name.
func (s *Service) WebhookNamespaces() Namespaces { return s.cfg.WebhookNamespaces }

// DefaultTimeout bounds one request when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// reportTimeout bounds the writes that record an outcome (status, Events, result event). They get their own
// budget, apart from Timeout: a release that used up its time must still be recorded, or a retry would not
// know it happened.
const reportTimeout = 10 * time.Second

// RecordBudget is the most a request spends after its Timeout is used up: recording its outcome on the
// Resume (or a direct request's Events, or a finished Resume's TTL delete) and then reporting it (log,
// metrics, Events, the result event) each get reportTimeout. A shutdown that waits less than Timeout plus
// RecordBudget may cut off a release whose marker exists before its Resume says so.
const RecordBudget = 2 * reportTimeout

// Handle carries out req. The returned error is classified with fault; the Result is meaningful with or
// without an error. Handling is detached from ctx's cancellation: once a release has started it is
// finished and recorded even if the caller went away, so a redelivered event finds the final status.
// Waiting for a duplicate request, looking up and releasing share Timeout; recording has reportTimeout.
func (s *Service) Handle(ctx context.Context, req request.Request) (Result, error) {
	ctx = s.requestLogger(ctx, req)
	start := s.clock()
	res := Result{Namespace: req.Namespace, Resume: req.Resume, Workflow: req.Workflow()}
	if err := s.cfg.Namespaces.Check(req.Namespace); err != nil {
		s.finish(ctx, req, &res, err, start)
		return res, err
	}
	if req.Resume == "" {
		if err := s.cfg.WebhookNamespaces.CheckWebhook(req.Namespace); err != nil {
			s.finish(ctx, req, &res, err, start)
			return res, err
		}
	}

	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer cancel()
	unlock, err := s.locks.Lock(work, req.Key())
	if err != nil {
		s.pending(Ref{Namespace: req.Namespace, Name: req.Resume, UID: req.ResumeUID})
		err = fault.Transientf("another request for %s is still being carried out: %w", strings.TrimPrefix(req.Key(), "resume/"), err)
		s.finish(ctx, req, &res, err, start)
		return res, err
	}
	defer unlock()

	if req.Resume != "" {
		err = s.handleResume(work, req, &res)
	} else {
		err = s.handleDirect(work, req, &res)
	}
	if err != nil && res.taken && !fault.KindOf(err).Final() {
		// The server owns a Pending Resume from here: it is recorded, and revisited until it is released
		// or its deadline passes. Answering OK (phase Pending) frees the caller: argo-events handles one
		// event at a time per trigger, and an error would hold every later Resume behind this one's
		// whole retry budget.
		err = nil
	}
	s.finish(ctx, req, &res, err, start)
	return res, err
}

// active returns an error once this replica may no longer release.
func (s *Service) active() error {
	if s.cfg.Active != nil && !s.cfg.Active() {
		return fault.Transientf("this resume-trigger replica stopped serving (shutting down, or it lost the leader Lease): another one takes over")
	}
	return nil
}

// recording returns the context for writes that record an outcome: detached from ctx's deadline, with
// reportTimeout of its own.
func recording(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
}

func (s *Service) timeout() time.Duration { return s.cfg.Timeout }

func (s *Service) clock() time.Time { return s.cfg.Clock.Now() }
