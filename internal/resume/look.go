package resume

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// The Resume path: read the Resume, find its step's targets, release them in batches announced in its
// status beforehand, and settle the outcome into its status.

func (s *Service) handleResume(ctx context.Context, req request.Request, res *Result) error {
	canRecord, denied := s.permitted(req.Namespace)
	if denied != nil && !canRecord {
		return denied
	}
	finder := s.cfg.Finder
	if p, ok := finder.(Prefetcher); ok && req.WorkflowHint != "" && denied == nil {
		finder = p.Prefetch(ctx, req.Namespace, req.WorkflowHint)
	}
	obj, err := s.readResume(ctx, req)
	if err != nil {
		return err
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
	return s.look(ctx, finder, obj, step, res, p)
}

// readResume reads the request's Resume, the very object its event was about.
func (s *Service) readResume(ctx context.Context, req request.Request) (*v1alpha1.Resume, error) {
	obj, err := s.cfg.Resumes.Get(ctx, req.Namespace, req.Resume)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fault.NotFoundf("resume %s/%s not found: it was deleted before it could be carried out", req.Namespace, req.Resume)
		}
		// Look again later even if the caller gives up: the Resume must not be lost to an outage.
		s.backoff(Ref{Namespace: req.Namespace, Name: req.Resume, UID: req.ResumeUID})
		return nil, fault.Transientf("get resume %s/%s: %w", req.Namespace, req.Resume, err)
	}
	if req.ResumeUID != "" && obj.UID != req.ResumeUID {
		return nil, fault.NotFoundf("resume %s/%s was deleted and created again (uid %s, the event was for %s): the new object is handled by its own event", req.Namespace, req.Resume, obj.UID, req.ResumeUID)
	}
	return obj, nil
}

// look carries out a Resume that is not final: it confirms the releases an earlier look started, finds
// the step's targets, binds the Resume to their run, releases them and settles the outcome.
func (s *Service) look(ctx context.Context, finder Finder, obj *v1alpha1.Resume, step request.Step, res *Result, p progress) error {
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
	found, err := finder.Find(ctx, obj.Namespace, step)
	if err != nil && fault.KindOf(err).Final() && len(c.open) > 0 {
		// A container that still ran when it was confirmed may have ended before the lookup saw it.
		c.merge(s.confirm(ctx, obj, c.open))
	}
	res.Released = append(res.Released, c.released...)
	p.drop = c.drop
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
	obj, err = s.releaseFound(ctx, obj, step, found, c, res, &p, late)
	return s.settle(ctx, obj, res, p, err)
}

// releaseFound releases what a look found and was not released yet, and returns the Resume as last
// written with the error that settles it. Past the deadline only the releases started before it are
// finished.
func (s *Service) releaseFound(ctx context.Context, obj *v1alpha1.Resume, step request.Step, found lookup.Result, c confirmation, res *Result, p *progress, late bool) (*v1alpha1.Resume, error) {
	done := map[string]bool{}
	for _, r := range append(slices.Clone(obj.Status.Released), c.released...) {
		done[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	started := startedKeys(c.open)
	left := 0
	if late {
		// Touching again is safe.
		n := len(found.Targets)
		found.Targets = slices.DeleteFunc(found.Targets, func(t lookup.Target) bool { return !started[targetKey(t.Pod, t.Container, t.Stage)] })
		left = n - len(found.Targets)
	}
	stop := func(t lookup.Target) error {
		if err := s.active(); err != nil {
			return err
		}
		if now := s.clock(); !now.Before(p.deadline) && !started[targetKey(t.Pod, t.Container, t.Stage)] {
			return deadlineExceeded(obj, p.deadline, now)
		}
		return nil
	}
	mark := func(batch []lookup.Target) error {
		written, err := s.mark(ctx, obj, res, p, batch)
		if err == nil {
			obj = written
		}
		return err
	}
	relErr := s.releaseAll(ctx, found, done, res, stop, mark)
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
	return obj, relErr
}

// mark writes into obj's status the batch about to be released, and what was released since the last
// write, before any exec of the batch: a release whose outcome is lost is then still known to the next
// look. It returns the Resume as written.
func (s *Service) mark(ctx context.Context, obj *v1alpha1.Resume, res *Result, p *progress, batch []lookup.Target) (*v1alpha1.Resume, error) {
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
		return nil, fmt.Errorf("record the releases about to start, before starting them: %w", err)
	}
	if written == nil {
		return nil, fault.Transientf("resume %s/%s was finished by another writer meanwhile", obj.Namespace, obj.Name)
	}
	res.recorded = len(res.Released)
	return written, nil
}
