package resume

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/text"
)

// settle writes the outcome into the Resume's status. A final failure is written once, as Failed; a
// transient one leaves the Resume Pending (with what was released so far) and is returned for a retry.
func (s *Service) settle(ctx context.Context, obj *v1alpha1.Resume, res *Result, p progress, relErr error) error {
	ctx, cancel := recording(ctx)
	defer cancel()
	for _, sk := range p.skipped {
		res.Skipped = append(res.Skipped, sk.Reason.Error())
	}
	res.Phase, res.Reason, res.Message = s.summary(res, relErr)
	res.Message = text.Cut(res.Message, maxStatusMessage)
	if res.Phase == v1alpha1.PhaseSucceeded && relErr != nil {
		// Some containers were released: the Resume did its job; the rest is said in the message.
		relErr = nil
	}

	status := obj.Status.DeepCopy()
	status.Released, status.ReleasedCount = addReleased(status.Released, status.ReleasedCount, res.Released[res.recorded:])
	status.Releasing = releasingOf(status.Releasing, settledKeys(status, res, p.drop), nil, s.clock())
	status.Phase, status.Reason, status.Message = res.Phase, res.Reason, res.Message
	status.ObservedGeneration = obj.Generation
	if status.Workflow == nil && p.bind != nil {
		status.Workflow = p.bind
	}
	if status.Deadline == nil && !p.deadline.IsZero() {
		status.Deadline = &metav1.Time{Time: p.deadline}
	}
	status.Waiting = nil
	if res.Phase == v1alpha1.PhasePending {
		status.Waiting = waitingOf(p.skipped)
	}
	if res.Phase.Final() && status.CompletionTime == nil {
		status.CompletionTime = &metav1.Time{Time: s.clock().Truncate(time.Second)}
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReleased, Reason: res.Reason, Message: res.Message, ObservedGeneration: obj.Generation}
	switch res.Phase {
	case v1alpha1.PhaseSucceeded:
		cond.Status = metav1.ConditionTrue
	case v1alpha1.PhaseFailed:
		cond.Status = metav1.ConditionFalse
	case v1alpha1.PhasePending:
		cond.Status = metav1.ConditionUnknown
	default:
		cond.Status = metav1.ConditionUnknown
	}
	meta.SetStatusCondition(&status.Conditions, cond)

	written, err := s.writeStatus(ctx, obj, *status)
	if err != nil {
		// The outcome is not recorded. What was released is in status.releasing, written before the exec:
		// the next look confirms it from the pods, so look again soon.
		s.backoff(Ref{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID})
		return err
	}
	if written == nil {
		// Another writer finished the Resume meanwhile: its status and its Events stand, not ours.
		return nil
	}
	s.schedule(written)
	res.taken = written.Status.Phase == v1alpha1.PhasePending && s.cfg.Revisits != nil && s.active() == nil
	ref := report.Object{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
	switch written.Status.Phase {
	case v1alpha1.PhaseSucceeded:
		s.event(ref, false, res.Reason, res.Message)
	case v1alpha1.PhaseFailed:
		s.event(ref, true, res.Reason, res.Message)
	case v1alpha1.PhasePending:
		// Waiting is said in the status; an Event per look would flood the namespace.
	}
	return relErr
}

// writeStatus updates the status unless it would change nothing, and returns the Resume as written (nil
// when another writer finished it meanwhile, whose status then stands). On a conflict it reads the object
// again and keeps what the other writer recorded: the releases it made, and the run, deadline and
// completion it recorded. A Resume that the other writer bound to another run than ours is not written:
// the next look decides again from the object as it is.
func (s *Service) writeStatus(ctx context.Context, obj *v1alpha1.Resume, status v1alpha1.ResumeStatus) (*v1alpha1.Resume, error) {
	for attempt := 0; ; attempt++ {
		next := obj.DeepCopy()
		next.Status = status
		if statusEqual(obj.Status, status) {
			return next, nil
		}
		updated, err := s.cfg.Resumes.UpdateStatus(ctx, next)
		if err == nil {
			if updated == nil {
				updated = next
			}
			return updated, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 3 {
			if apierrors.IsNotFound(err) {
				return nil, fault.NotFoundf("resume %s/%s was deleted while it was carried out", obj.Namespace, obj.Name)
			}
			return nil, fault.Transientf("write status of resume %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		fresh, gerr := s.cfg.Resumes.Get(ctx, obj.Namespace, obj.Name)
		if gerr != nil {
			return nil, fault.Transientf("write status of resume %s/%s: %w", obj.Namespace, obj.Name, gerr)
		}
		if fresh.UID != obj.UID || fresh.Status.Phase.Final() {
			return nil, nil
		}
		if b := fresh.Status.Workflow; b != nil {
			if status.Workflow != nil && status.Workflow.UID != b.UID {
				return nil, fault.Transientf("resume %s/%s was bound to run %s by another writer while this one found run %s: looking again", obj.Namespace, obj.Name, b.UID, status.Workflow.UID)
			}
			status.Workflow = b
		}
		if fresh.Status.Deadline != nil {
			status.Deadline = fresh.Status.Deadline
		}
		// Keep what the newer object recorded as released and as being released, add ours.
		status.Released, status.ReleasedCount = addReleased(fresh.Status.Released, fresh.Status.ReleasedCount, added(obj.Status.Released, status.Released))
		released := map[string]bool{}
		for _, r := range status.Released {
			released[targetKey(r.Pod, r.Container, r.Stage)] = true
		}
		status.Releasing = unionReleasing(fresh.Status.Releasing, status.Releasing, released)
		obj = fresh
	}
}

func statusEqual(a, b v1alpha1.ResumeStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// maxStatusMessage bounds the message written into a Resume's status and its condition (which the API
// server caps at 32768): a loop with many pods, or containers that print a lot when touch fails, must not
// make the status write itself fail and leave the Resume stuck.
const maxStatusMessage = 4096
