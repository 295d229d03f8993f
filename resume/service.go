package resume

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/fault"
	"github.com/argocontroller/resume-trigger/lookup"
	"github.com/argocontroller/resume-trigger/release"
	"github.com/argocontroller/resume-trigger/report"
	"github.com/argocontroller/resume-trigger/request"
)

// Resumes reads Resume objects and writes their status.
type Resumes interface {
	Get(ctx context.Context, namespace, name string) (*v1alpha1.Resume, error)
	UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error)
}

// Finder finds the targets of a step.
type Finder interface {
	Find(ctx context.Context, namespace string, step request.Step) (lookup.Result, error)
}

// Releaser releases one target.
type Releaser interface {
	Release(ctx context.Context, t lookup.Target) (release.Outcome, error)
}

// Recorder records Kubernetes Events.
type Recorder interface {
	Normal(ctx context.Context, obj report.Object, reason, message string) error
	Warning(ctx context.Context, obj report.Object, reason, message string) error
}

// Notifier sends a result notification; nil sends none.
type Notifier interface {
	Send(ctx context.Context, outcome, subject string, data any) error
}

// Service handles requests.
type Service struct {
	Namespaces Namespaces
	Resumes    Resumes
	Finder     Finder
	Releaser   Releaser
	Events     Recorder
	Metrics    *report.Metrics
	Notifier   Notifier
	Log        logrus.FieldLogger
	// Timeout bounds one request from start to the last status write.
	Timeout time.Duration

	locks keyedMutex
	now   func() time.Time
}

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
}

// Condition reasons, also used as Event reasons.
const (
	ReasonReleased          = "Released"
	ReasonPartiallyReleased = "PartiallyReleased"
	ReasonWaiting           = "Waiting"
	ReasonInvalid           = "InvalidRequest"
	ReasonNotFound          = "NotFound"
	ReasonNotReleasable     = "NotReleasable"
)

// reportTimeout bounds the writes that record an outcome (status, Events, result event). They get their own
// budget, apart from Timeout: a release that used up its time must still be recorded, or a retry would not
// know it happened.
const reportTimeout = 10 * time.Second

// Handle carries out req. The returned error is classified with fault; the Result is meaningful with or
// without an error. Handling is detached from ctx's cancellation: once a release has started it is
// finished and recorded even if the caller went away, so a redelivered event finds the final status.
// Waiting for a duplicate request, looking up and releasing share Timeout; recording has reportTimeout.
func (s *Service) Handle(ctx context.Context, req request.Request) (Result, error) {
	start := s.clock()
	res := Result{Namespace: req.Namespace, Resume: req.Resume, Workflow: req.Step.Workflow}
	if err := s.Namespaces.Check(req.Namespace); err != nil {
		s.finish(ctx, req, &res, err, start)
		return res, err
	}

	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer cancel()
	unlock, err := s.locks.Lock(work, req.Key())
	if err != nil {
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
	s.finish(ctx, req, &res, err, start)
	return res, err
}

// recording returns the context for writes that record an outcome: detached from ctx's deadline, with
// reportTimeout of its own.
func recording(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
}

func (s *Service) timeout() time.Duration {
	if s.Timeout <= 0 {
		return 30 * time.Second
	}
	return s.Timeout
}

func (s *Service) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Service) handleResume(ctx context.Context, req request.Request, res *Result) error {
	obj, err := s.Resumes.Get(ctx, req.Namespace, req.Resume)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fault.NotFoundf("resume %s/%s not found: it was deleted before it could be carried out", req.Namespace, req.Resume)
		}
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
		return nil
	}
	if err := request.ValidateStep(step); err != nil {
		return s.settle(ctx, obj, res, nil, err)
	}

	done := map[string]bool{}
	for _, r := range obj.Status.Released {
		done[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	found, err := s.Finder.Find(ctx, req.Namespace, step)
	if err != nil {
		return s.settle(ctx, obj, res, found.Skipped, err)
	}
	relErr := s.releaseAll(ctx, found, done, res)
	return s.settle(ctx, obj, res, found.Skipped, relErr)
}

func (s *Service) handleDirect(ctx context.Context, req request.Request, res *Result) error {
	found, err := s.Finder.Find(ctx, req.Namespace, req.Step)
	for _, sk := range found.Skipped {
		res.Skipped = append(res.Skipped, sk.Reason.Error())
	}
	if err != nil {
		res.Phase, res.Reason, res.Message = phaseOf(err), reasonOf(err), err.Error()
		return err
	}
	err = s.releaseAll(ctx, found, nil, res)
	res.Phase, res.Reason, res.Message = s.summary(res, err)
	ctx, cancel := recording(ctx)
	defer cancel()
	wf := report.Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Namespace: req.Namespace, Name: found.Workflow, UID: found.WorkflowUID}
	if len(res.Released) > 0 {
		s.event(ctx, wf, false, "DebugPauseReleased", "released by a direct request: "+res.Message)
	}
	if err != nil && len(res.Released) == 0 {
		s.event(ctx, wf, true, "DebugPauseNotReleased", err.Error())
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
// targets that could not be released.
func (s *Service) releaseAll(ctx context.Context, found lookup.Result, done map[string]bool, res *Result) error {
	var transient error
	var failures []string
	var finalKind fault.Kind
	for _, t := range found.Targets {
		log := s.log().WithFields(logrus.Fields{
			"namespace": t.Namespace, "workflow": t.Workflow, "node": t.Node,
			"pod": t.Pod, "container": t.Container, "stage": t.Stage,
		})
		if done[targetKey(t.Pod, t.Container, t.Stage)] {
			log.WithField("outcome", "already-released").Info("already released")
			continue
		}
		start := s.clock()
		out, err := s.Releaser.Release(ctx, t)
		took := s.clock().Sub(start)
		if err != nil {
			log.WithError(err).WithFields(logrus.Fields{"outcome": "failed", "duration": took}).Warn("release failed")
			if fault.KindOf(err) == fault.Transient || fault.KindOf(err) == fault.Unknown {
				if transient == nil {
					transient = err
				}
			} else {
				failures = append(failures, err.Error())
				finalKind = fault.KindOf(err)
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
		s.Metrics.Release(via, took)
		rt := v1alpha1.ReleasedTarget{Node: t.Node, Pod: t.Pod, Container: t.Container, Stage: t.Stage, Time: metav1.NewTime(s.clock())}
		if out.Via != t.Container {
			rt.Via = out.Via
		}
		res.Released = append(res.Released, rt)
		log.WithFields(logrus.Fields{"outcome": "released", "via": out.Via, "duration": took}).Info("released debug pause")
	}
	if transient != nil {
		return transient
	}
	if len(failures) > 0 {
		return &fault.Error{Kind: finalKind, Err: errors.New(strings.Join(failures, "; "))}
	}
	return nil
}

// settle writes the outcome into the Resume's status. A final failure is written once, as Failed; a
// transient one leaves the Resume Pending (with what was released so far) and is returned for a retry.
func (s *Service) settle(ctx context.Context, obj *v1alpha1.Resume, res *Result, skipped []lookup.Skip, err error) error {
	ctx, cancel := recording(ctx)
	defer cancel()
	for _, sk := range skipped {
		res.Skipped = append(res.Skipped, sk.Reason.Error())
	}
	res.Phase, res.Reason, res.Message = s.summary(res, err)
	res.Message = truncate(res.Message, maxStatusMessage)
	if res.Phase == v1alpha1.PhaseSucceeded && err != nil {
		// Some containers were released: the Resume did its job; the rest is said in the message.
		err = nil
	}

	status := obj.Status.DeepCopy()
	status.Released = append(status.Released, res.Released...)
	status.Phase, status.Message = res.Phase, res.Message
	status.ObservedGeneration = obj.Generation
	cond := metav1.Condition{Type: v1alpha1.ConditionReleased, Reason: res.Reason, Message: res.Message, ObservedGeneration: obj.Generation}
	switch res.Phase {
	case v1alpha1.PhaseSucceeded:
		cond.Status = metav1.ConditionTrue
	case v1alpha1.PhaseFailed:
		cond.Status = metav1.ConditionFalse
	default:
		cond.Status = metav1.ConditionUnknown
	}
	meta.SetStatusCondition(&status.Conditions, cond)

	if err := s.writeStatus(ctx, obj, *status); err != nil {
		return err
	}
	ref := report.Object{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
	switch res.Phase {
	case v1alpha1.PhaseSucceeded:
		s.event(ctx, ref, false, res.Reason, res.Message)
	case v1alpha1.PhaseFailed:
		s.event(ctx, ref, true, res.Reason, res.Message)
	}
	return err
}

// writeStatus updates the status unless it would change nothing. On a conflict it reads the object again:
// if another request finished it meanwhile, that status stands.
func (s *Service) writeStatus(ctx context.Context, obj *v1alpha1.Resume, status v1alpha1.ResumeStatus) error {
	for attempt := 0; ; attempt++ {
		if statusEqual(obj.Status, status) {
			return nil
		}
		next := obj.DeepCopy()
		next.Status = status
		_, err := s.Resumes.UpdateStatus(ctx, next)
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 3 {
			if apierrors.IsNotFound(err) {
				return fault.NotFoundf("resume %s/%s was deleted while it was carried out", obj.Namespace, obj.Name)
			}
			return fault.Transientf("write status of resume %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		fresh, gerr := s.Resumes.Get(ctx, obj.Namespace, obj.Name)
		if gerr != nil {
			return fault.Transientf("write status of resume %s/%s: %w", obj.Namespace, obj.Name, gerr)
		}
		if fresh.UID != obj.UID || fresh.Status.Phase.Final() {
			return nil
		}
		// Keep what the newer object recorded as released, add ours.
		merged := fresh.Status.Released
		seen := map[string]bool{}
		for _, r := range merged {
			seen[targetKey(r.Pod, r.Container, r.Stage)] = true
		}
		for _, r := range status.Released {
			if !seen[targetKey(r.Pod, r.Container, r.Stage)] {
				merged = append(merged, r)
			}
		}
		status.Released = merged
		obj = fresh
	}
}

func statusEqual(a, b v1alpha1.ResumeStatus) bool {
	if a.Phase != b.Phase || a.Message != b.Message || a.ObservedGeneration != b.ObservedGeneration || len(a.Released) != len(b.Released) {
		return false
	}
	ca := meta.FindStatusCondition(a.Conditions, v1alpha1.ConditionReleased)
	cb := meta.FindStatusCondition(b.Conditions, v1alpha1.ConditionReleased)
	if (ca == nil) != (cb == nil) {
		return false
	}
	return ca == nil || (ca.Status == cb.Status && ca.Reason == cb.Reason && ca.Message == cb.Message)
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
	if released > 0 && fault.KindOf(err).Final() {
		fmt.Fprintf(&msg, "; not released: %v", err)
		return v1alpha1.PhaseSucceeded, ReasonPartiallyReleased, msg.String()
	}
	if msg.Len() > 0 {
		msg.WriteString("; ")
	}
	msg.WriteString(err.Error())
	return phaseOf(err), reasonOf(err), msg.String()
}

// maxStatusMessage bounds the message written into a Resume's status and its condition (which the API
// server caps at 32768): a loop with many pods, or containers that print a lot when touch fails, must not
// make the status write itself fail and leave the Resume stuck.
const maxStatusMessage = 4096

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	suffix := fmt.Sprintf(" … (%d more bytes)", len(s)-n)
	cut := n - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

func phaseOf(err error) v1alpha1.Phase {
	if fault.KindOf(err).Final() {
		return v1alpha1.PhaseFailed
	}
	return v1alpha1.PhasePending
}

func reasonOf(err error) string {
	switch fault.KindOf(err) {
	case fault.Invalid:
		return ReasonInvalid
	case fault.NotFound:
		return ReasonNotFound
	case fault.Precondition:
		return ReasonNotReleasable
	default:
		return ReasonWaiting
	}
}

func (s *Service) event(ctx context.Context, obj report.Object, warning bool, reason, message string) {
	if s.Events == nil || obj.Name == "" {
		return
	}
	record := s.Events.Normal
	if warning {
		record = s.Events.Warning
	}
	if err := record(ctx, obj, reason, message); err != nil {
		s.log().WithError(err).Warn("could not record event")
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
	if req.Resume != "" {
		kind = "resume"
	}
	took := s.clock().Sub(start)
	s.Metrics.Request(kind, outcome, took)
	log := s.log().WithFields(logrus.Fields{
		"namespace": req.Namespace, "resume": req.Resume, "workflow": res.Workflow,
		"outcome": outcome, "released": len(res.Released), "duration": took,
	})
	if err != nil {
		log.WithError(err).WithField("kind", fault.KindOf(err).String()).Warn("request not carried out")
	} else {
		log.Info(res.Message)
	}
	if s.Notifier != nil && !res.AlreadyFinal {
		subject := req.Namespace + "/" + res.Workflow
		if req.Resume != "" {
			subject = req.Namespace + "/" + req.Resume
		}
		if nerr := s.Notifier.Send(ctx, outcome, subject, res); nerr != nil {
			log.WithError(nerr).Warn("could not send the result event")
		}
	}
}

func (s *Service) log() logrus.FieldLogger {
	if s.Log == nil {
		return logrus.StandardLogger()
	}
	return s.Log
}

func targetKey(pod, container string, stage v1alpha1.Stage) string {
	return pod + "/" + container + "/" + string(stage)
}

// keyedMutex serialises requests about the same object, so duplicate deliveries of one event run one after
// the other and the second finds the first's status. Waiting is bounded by the caller's context.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	held    chan struct{} // holds a value while the lock is taken
	waiters int
}

// Lock takes the lock for key, or fails when ctx ends first.
func (k *keyedMutex) Lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.waiters++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
