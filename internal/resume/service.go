package resume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
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

// Result is the outcome of one request, as the response reports it.
type Result struct {
	Phase     v1alpha1.Phase `json:"phase"`
	Reason    string         `json:"reason"`
	Message   string         `json:"message"`
	Namespace string         `json:"namespace"`
	Resume    string         `json:"resume,omitempty"`
	Workflow  string         `json:"workflow,omitempty"`
	// Released are the containers released by this request.
	Released []v1alpha1.ReleasedTarget `json:"released,omitempty"`
	// AlreadyReleased are the containers an earlier request had released.
	AlreadyReleased []v1alpha1.ReleasedTarget `json:"alreadyReleased,omitempty"`
	// Skipped says why candidates were left alone.
	Skipped []string `json:"skipped,omitempty"`
	// AlreadyFinal is true when the Resume was already final and nothing was done.
	AlreadyFinal bool `json:"alreadyFinal,omitempty"`

	// taken is true when the Resume is recorded Pending and the server revisits it until it ends.
	taken bool
	// unreleased are the keys of the targets this request found not released: their release failed for
	// good, or the touch answered non-zero.
	unreleased []string
	// recorded is how many of Released the Resume's status lists already.
	recorded int
}

// Condition reasons, also used as Event reasons.
const (
	ReasonReleased          = "Released"
	ReasonPartiallyReleased = "PartiallyReleased"
	ReasonWaiting           = "Waiting"
	ReasonInvalid           = "InvalidRequest"
	ReasonNotFound          = "NotFound"
	ReasonNotReleasable     = "NotReleasable"
	ReasonDeadlineExceeded  = "DeadlineExceeded"
	ReasonWorkflowReplaced  = "WorkflowReplaced"
	ReasonNotServed         = "NotServed"
)

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

func (s *Service) handleResume(ctx context.Context, req request.Request, res *Result) error {
	canRecord, denied := s.permitted(req.Namespace)
	if denied != nil && !canRecord {
		return denied
	}
	finder := s.cfg.Finder
	if p, ok := finder.(Prefetcher); ok && req.WorkflowHint != "" && denied == nil {
		finder = p.Prefetch(ctx, req.Namespace, req.WorkflowHint)
	}
	obj, err := s.cfg.Resumes.Get(ctx, req.Namespace, req.Resume)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fault.NotFoundf("resume %s/%s not found: it was deleted before it could be carried out", req.Namespace, req.Resume)
		}
		// Look again later even if the caller gives up: the Resume must not be lost to an outage.
		s.backoff(Ref{Namespace: req.Namespace, Name: req.Resume, UID: req.ResumeUID})
		return fault.Transientf("get resume %s/%s: %w", req.Namespace, req.Resume, err)
	}
	if req.ResumeUID != "" && obj.UID != req.ResumeUID {
		return fault.NotFoundf("resume %s/%s was deleted and created again (uid %s, the event was for %s): the new object is handled by its own event", req.Namespace, req.Resume, obj.UID, req.ResumeUID)
	}
	step := request.StepOf(obj.Spec)
	res.Workflow = step.Workflow
	res.AlreadyReleased = obj.Status.Released
	if obj.Status.Phase.Final() {
		res.Phase, res.Message, res.AlreadyFinal = obj.Status.Phase, obj.Status.Message, true
		if c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReleased); c != nil {
			res.Reason = c.Reason
		}
		return s.finished(ctx, obj)
	}
	p := progress{deadline: s.deadlineOf(obj)}
	if denied != nil {
		return s.settle(ctx, obj, res, p, denied)
	}
	// Releases an earlier look started and could not record come first: they happened before the
	// deadline, whatever the clock says now.
	c := s.confirm(ctx, obj, obj.Status.Releasing)
	late := !s.clock().Before(p.deadline)
	if late && len(c.released) == 0 && len(c.open) == 0 {
		return s.settle(ctx, obj, res, p, deadlineExceeded(obj, p.deadline, s.clock()))
	}
	if err := request.ValidateStep(step); err != nil {
		return s.settle(ctx, obj, res, p, err)
	}

	// The step is the Resume's own spec, whatever the request said: the prefetched workflow is used only
	// when the spec names it.
	found, err := finder.Find(ctx, req.Namespace, step)
	if err != nil && fault.KindOf(err).Final() && len(c.open) > 0 {
		// A container that still ran when it was confirmed may have ended before the lookup saw it.
		c.merge(s.confirm(ctx, obj, c.open))
	}
	res.Released = append(res.Released, c.released...)
	p.drop = c.drop
	done := map[string]bool{}
	for _, r := range append(slices.Clone(obj.Status.Released), c.released...) {
		done[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	found.Skipped = withoutConfirmed(found.Skipped, c.released)
	p.skipped = found.Skipped
	if err := s.bind(obj, found, err, &p); err != nil {
		return s.settle(ctx, obj, res, p, err)
	}
	if err != nil && (len(c.released) == 0 || !fault.KindOf(err).Final()) {
		if late {
			// Nothing is waited for past the deadline, not even a lookup that may work later.
			err = deadlineExceeded(obj, p.deadline, s.clock())
		}
		return s.settle(ctx, obj, res, p, err)
	}
	started := startedKeys(c.open)
	left := 0
	if late {
		// Past the deadline only a release started before it is finished (touching again is safe).
		n := len(found.Targets)
		found.Targets = slices.DeleteFunc(found.Targets, func(t lookup.Target) bool { return !started[targetKey(t.Pod, t.Container, t.Stage)] })
		left = n - len(found.Targets)
	}
	mark := func(batch []lookup.Target) error {
		status := obj.Status.DeepCopy()
		status.Released, status.ReleasedCount = addReleased(status.Released, status.ReleasedCount, res.Released[res.recorded:])
		status.Releasing = releasingOf(status.Releasing, settledKeys(status, res, p.drop), batch, s.clock())
		if status.Workflow == nil && p.bind != nil {
			status.Workflow = p.bind
		}
		if status.Deadline == nil {
			status.Deadline = &metav1.Time{Time: p.deadline}
		}
		written, err := s.writeStatus(ctx, obj, *status)
		if err != nil {
			// Nothing was started. settle records why, or backs off if it cannot write either.
			return fmt.Errorf("record the releases about to start, before starting them: %w", err)
		}
		if written == nil {
			return fault.Transientf("resume %s/%s was finished by another writer meanwhile", obj.Namespace, obj.Name)
		}
		obj, res.recorded = written, len(res.Released)
		return nil
	}
	relErr := s.releaseAll(ctx, found, done, res, func(t lookup.Target) error {
		if err := s.active(); err != nil {
			return err
		}
		if now := s.clock(); !now.Before(p.deadline) && !started[targetKey(t.Pod, t.Container, t.Stage)] {
			return deadlineExceeded(obj, p.deadline, now)
		}
		return nil
	}, mark)
	for _, k := range res.unreleased {
		p.drop[k] = true
	}
	var de *deadlineError
	if !narrowed(step) && (relErr == nil || (fault.KindOf(relErr).Final() && !errors.As(relErr, &de))) {
		// Nodes that may still pause keep the Resume waiting, also beside a target that failed for good.
		if werr := waitForTheRest(step, found.Skipped); werr != nil {
			if relErr != nil {
				werr = fault.Transientf("%v; not released: %v", werr, relErr)
			}
			relErr = werr
		}
	}
	if late && (relErr != nil || left > 0 || len(res.Released) == 0) {
		// The releases started before the deadline are settled; nothing else is waited for after it.
		relErr = deadlineExceeded(obj, p.deadline, s.clock())
	}
	return s.settle(ctx, obj, res, p, relErr)
}

func (s *Service) handleDirect(ctx context.Context, req request.Request, res *Result) error {
	if _, err := s.permitted(req.Namespace); err != nil {
		return err
	}
	found, err := s.cfg.Finder.Find(ctx, req.Namespace, req.Step)
	for _, sk := range found.Skipped {
		res.Skipped = append(res.Skipped, sk.Reason.Error())
	}
	if err != nil {
		res.Phase, res.Reason, res.Message = phaseOf(err), reasonOf(err), err.Error()
		return err
	}
	var done map[string]bool
	if req.Event != "" {
		if pods, released, list, ok := s.direct.recall(req.Event, s.clock()); ok {
			// A retry of the same event: only the pods its first try chose, nothing released twice.
			kept := found.Targets[:0:0]
			for _, t := range found.Targets {
				if pods[t.PodUID] {
					kept = append(kept, t)
				} else {
					res.Skipped = append(res.Skipped, fmt.Sprintf("pod %s was not chosen by this event's first try (event %s)", t.Pod, req.Event))
				}
			}
			found.Targets, done, res.AlreadyReleased = kept, released, list
		}
	}
	err = s.releaseAll(ctx, found, done, res, func(lookup.Target) error { return s.active() }, nil)
	if req.Event != "" {
		s.direct.remember(req.Event, s.clock(), found.Targets, res.Released)
	}
	res.Phase, res.Reason, res.Message = s.summary(res, err)
	wf := report.Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Namespace: req.Namespace, Name: found.Workflow, UID: found.WorkflowUID}
	if len(res.Released) > 0 {
		s.event(wf, false, "DebugPauseReleased", "released by a direct request: "+res.Message)
	}
	if err != nil && len(res.Released) == 0 {
		s.event(wf, true, "DebugPauseNotReleased", err.Error())
	}
	// As for a Resume: some released and the rest never will be is a success; anything that may still
	// change (transient or unclassified) is returned for a retry.
	if len(res.Released) > 0 && fault.KindOf(err).Final() {
		return nil
	}
	return err
}

// releaseAll releases every target not yet done (done lists what earlier requests released; they are in
// res.AlreadyReleased already). It returns the first transient error, or else a final error describing the
// targets that could not be released. Before each release it asks stop: a non-nil answer (the deadline
// passed, this replica lost the Lease) ends the releases with that error. Before each batch of at most
// maxReleasing releases it calls mark, unless nil, with the batch: a failing mark ends the releases
// before their exec.
func (s *Service) releaseAll(ctx context.Context, found lookup.Result, done map[string]bool, res *Result, stop func(lookup.Target) error, mark func([]lookup.Target) error) error {
	var transient error
	var failures []string
	var finalKind fault.Kind
	var todo []lookup.Target
	for _, t := range found.Targets {
		if done[targetKey(t.Pod, t.Container, t.Stage)] {
			s.targetLogger(ctx, t).WithField(logging.Outcome, "already-released").Debug("already released")
			continue
		}
		todo = append(todo, t)
	}
	for len(todo) > 0 {
		batch := todo[:min(len(todo), maxReleasing)]
		todo = todo[len(batch):]
		if err := stop(batch[0]); err != nil {
			return err
		}
		if mark != nil {
			if err := mark(batch); err != nil {
				return err
			}
		}
		for _, t := range batch {
			log := s.targetLogger(ctx, t)
			if err := stop(t); err != nil {
				return err
			}
			start := s.clock()
			out, err := s.cfg.Releaser.Release(ctx, t)
			took := s.clock().Sub(start)
			if err != nil {
				// Not a warning of its own: the request's outcome says what failed, once.
				log.WithError(err).WithFields(logrus.Fields{logging.Outcome: "failed", logging.Duration: logging.Seconds(took)}).Debug("release failed")
				var answered *release.ExitError
				retry := fault.KindOf(err) == fault.Transient || fault.KindOf(err) == fault.Unknown
				if retry {
					if transient == nil {
						transient = err
					}
				} else {
					failures = append(failures, err.Error())
					finalKind = fault.KindOf(err)
				}
				if !retry || errors.As(err, &answered) {
					// Not released, for sure: failed for good, or the touch itself answered non-zero. A
					// transport error keeps the announcement: the touch may have run.
					res.unreleased = append(res.unreleased, targetKey(t.Pod, t.Container, t.Stage))
				}
				continue
			}
			via := "self"
			switch {
			case out.Ephemeral:
				via = "ephemeral"
			case out.Via != t.Container:
				via = "sibling"
			}
			s.cfg.Metrics.Release(via, took)
			rt := v1alpha1.ReleasedTarget{Node: t.Node, Pod: t.Pod, Container: t.Container, Stage: t.Stage, Time: metav1.NewTime(s.clock()), ExitCode: out.ExitCode}
			if out.Via != t.Container {
				rt.Via = out.Via
			}
			res.Released = append(res.Released, rt)
			log.WithFields(logrus.Fields{logging.Outcome: "released", logging.Via: out.Via, logging.Duration: logging.Seconds(took)}).Info("released debug pause")
		}
	}
	if transient != nil {
		return transient
	}
	if len(failures) > 0 {
		return &fault.Error{Kind: finalKind, Err: errors.New(strings.Join(failures, "; "))}
	}
	return nil
}

func (s *Service) targetLogger(ctx context.Context, t lookup.Target) logrus.FieldLogger {
	return s.logger(ctx).WithFields(logrus.Fields{
		logging.Workflow: t.Workflow, logging.Node: t.Node,
		logging.Pod: t.Pod, logging.Container: t.Container, logging.Stage: t.Stage,
	})
}

// summary decides the phase, reason and message of a request from what was released and the error.
func (s *Service) summary(res *Result, err error) (v1alpha1.Phase, string, string) {
	released := len(res.Released) + len(res.AlreadyReleased)
	var msg strings.Builder
	if released > 0 {
		var names []string
		for _, r := range append(append([]v1alpha1.ReleasedTarget{}, res.AlreadyReleased...), res.Released...) {
			names = append(names, fmt.Sprintf("%s/%s (%s)", r.Pod, r.Container, r.Stage))
		}
		sort.Strings(names)
		fmt.Fprintf(&msg, "released %s", strings.Join(names, ", "))
	}
	if err == nil {
		if len(res.Skipped) > 0 {
			fmt.Fprintf(&msg, "; left alone: %s", strings.Join(res.Skipped, "; "))
		}
		return v1alpha1.PhaseSucceeded, ReasonReleased, msg.String()
	}
	var de *deadlineError
	if released > 0 && fault.KindOf(err).Final() && !errors.As(err, &de) {
		fmt.Fprintf(&msg, "; not released: %v", err)
		return v1alpha1.PhaseSucceeded, ReasonPartiallyReleased, msg.String()
	}
	if msg.Len() > 0 {
		msg.WriteString("; ")
	}
	msg.WriteString(err.Error())
	return phaseOf(err), reasonOf(err), msg.String()
}

func phaseOf(err error) v1alpha1.Phase {
	if fault.KindOf(err).Final() {
		return v1alpha1.PhaseFailed
	}
	return v1alpha1.PhasePending
}

func reasonOf(err error) string {
	var de *deadlineError
	var we *replacedError
	var np *notPermittedError
	switch {
	case errors.As(err, &np):
		return ReasonNotPermitted
	case errors.As(err, &de):
		return ReasonDeadlineExceeded
	case errors.As(err, &we):
		return ReasonWorkflowReplaced
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		return ReasonInvalid
	case fault.NotFound:
		return ReasonNotFound
	case fault.Precondition:
		return ReasonNotReleasable
	case fault.Denied:
		return ReasonNotServed
	case fault.Transient, fault.Unknown:
		return ReasonWaiting
	default:
		return ReasonWaiting
	}
}

func (s *Service) event(obj report.Object, warning bool, reason, message string) {
	switch {
	case s.cfg.Events == nil || obj.Name == "":
	case warning:
		s.cfg.Events.Warning(obj, reason, message)
	default:
		s.cfg.Events.Normal(obj, reason, message)
	}
}

// finish logs, counts and notifies the outcome of a request.
func (s *Service) finish(ctx context.Context, req request.Request, res *Result, err error, start time.Time) {
	ctx, cancel := recording(ctx)
	defer cancel()
	if res.Phase == "" {
		res.Phase, res.Reason, res.Message = phaseOf(err), reasonOf(err), err.Error()
	}
	outcome := string(res.Phase)
	if res.AlreadyFinal {
		outcome = "AlreadyFinal"
	}
	kind := "direct"
	switch {
	case req.Revisit:
		kind = "revisit"
	case req.Resume != "":
		kind = "resume"
	}
	// A revisit of a Resume that still waits, or is already final, is routine: it happens every few
	// seconds per Pending Resume and says nothing new.
	quiet := req.Revisit && len(res.Released) == 0 && (res.AlreadyFinal || res.Phase == v1alpha1.PhasePending)
	took := s.clock().Sub(start)
	s.cfg.Metrics.Request(kind, outcome, took)
	log := s.logger(ctx).WithFields(logrus.Fields{
		logging.Workflow: res.Workflow, logging.Outcome: outcome, logging.Released: len(res.Released), logging.Duration: logging.Seconds(took),
	})
	switch {
	case quiet:
		log.WithError(err).Debug("revisited a Pending Resume")
	case err != nil:
		log.WithError(err).WithField(logging.Kind, fault.KindOf(err).String()).Warn("request not carried out")
	default:
		log.Info(res.Message)
	}
	if s.cfg.Notifier != nil && !res.AlreadyFinal && !quiet {
		subject := req.Namespace + "/" + res.Workflow
		if req.Resume != "" {
			subject = req.Namespace + "/" + req.Resume
		}
		if nerr := s.cfg.Notifier.Send(ctx, outcome, subject, res); nerr != nil {
			log.WithError(nerr).Warn("could not send the result event")
		}
	}
}

// logger is the request's logger: the one the caller put in ctx (with the event's id and source), or the
// service's own with the request's namespace and Resume.
func (s *Service) logger(ctx context.Context) logrus.FieldLogger {
	return logging.FromContext(ctx, s.cfg.Log)
}

// requestLogger puts a logger with the request's fields into ctx, unless the caller already did.
func (s *Service) requestLogger(ctx context.Context, req request.Request) context.Context {
	if logging.Carried(ctx) {
		return ctx
	}
	base := s.cfg.Log
	fields := logrus.Fields{logging.Namespace: req.Namespace, logging.Resume: req.Resume, logging.Workflow: req.Workflow()}
	if req.Revisit {
		fields["revisit"] = true
	}
	return logging.WithLogger(ctx, base.WithFields(fields))
}

func targetKey(pod, container string, stage v1alpha1.Stage) string {
	return pod + "/" + container + "/" + string(stage)
}
