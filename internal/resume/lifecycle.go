package resume

import (
	"context"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
	"github.com/argocontroller/resume-trigger/internal/text"
)

// A Resume's life: it binds to the first run of its Workflow it sees, waits (Pending) until its step can
// be released or its deadline passes, ends Succeeded or Failed, and is deleted ttlSecondsAfterFinished
// later if it asks for that.

// DefaultDeadline is how long a Resume waits for its step when neither the Resume nor the server says.
const DefaultDeadline = 15 * time.Minute

// Ref names one Resume object; the UID keeps a re-created Resume of the same name apart.
type Ref struct {
	Namespace string
	Name      string
	UID       types.UID
}

func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// Revisits is told which Resumes need another look and when.
type Revisits interface {
	// Pending asks for another look at a Resume that is still waiting.
	Pending(ref Ref)
	// ExpireAt asks for a look at a finished Resume when its TTL runs out.
	ExpireAt(ref Ref, at time.Time)
	// Backoff asks for another look after a failure that a look now would repeat (the Resume could not
	// be read, its status not written, it could not be deleted): later each time it fails again.
	Backoff(ref Ref)
}

// maxWaiting bounds status.waiting, so a loop of thousands of iterations cannot make the status write fail.
const maxWaiting = 20

// progress is what one look at a Resume learned besides the outcome: when it gives up, the run it binds
// to, and the selected nodes that are not ready yet.
type progress struct {
	deadline time.Time
	bind     *v1alpha1.BoundWorkflow
	skipped  []lookup.Skip
	// drop are the keys of status.releasing entries found never released (their pod was replaced, their
	// exec failed for good).
	drop map[string]bool
}

// deadlineError ends a Resume whose step did not become releasable in time.
type deadlineError struct{ err error }

func (e *deadlineError) Error() string { return e.err.Error() }
func (e *deadlineError) Unwrap() error { return e.err }

// replacedError ends a Resume whose Workflow was deleted and created again: the new run is not the one it
// was made for.
type replacedError struct{ err error }

func (e *replacedError) Error() string { return e.err.Error() }
func (e *replacedError) Unwrap() error { return e.err }

func (s *Service) deadlineOf(obj *v1alpha1.Resume) time.Time {
	if obj.Status.Deadline != nil {
		return obj.Status.Deadline.Time
	}
	created := obj.CreationTimestamp.Time
	if created.IsZero() {
		// Only objects that never went through an API server lack it.
		created = s.clock()
	}
	d := s.cfg.Deadline
	if obj.Spec.ActiveDeadlineSeconds != nil && *obj.Spec.ActiveDeadlineSeconds > 0 {
		d = time.Duration(*obj.Spec.ActiveDeadlineSeconds) * time.Second
	}
	return created.Add(d).Truncate(time.Second)
}

// deadlineExceeded is the final error of a Resume past its deadline; it carries what the Resume last
// waited for, so the user sees why the step never became releasable.
func deadlineExceeded(obj *v1alpha1.Resume, deadline, now time.Time) error {
	last := obj.Status.Message
	if last == "" {
		last = "the Resume was never looked at before it (was resume-trigger running?)"
	}
	waited := deadline.Sub(obj.CreationTimestamp.Time).Round(time.Second)
	if obj.CreationTimestamp.IsZero() {
		waited = 0
	}
	return &deadlineError{err: fault.Preconditionf("deadline exceeded: the step did not become releasable within %s (deadline %s, now %s); last waiting for: %s",
		waited, deadline.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), last)}
}

// bind checks the Workflow a lookup found against the run the Resume is bound to, and binds an unbound
// Resume to it. A non-nil error ends the look at the Resume: another run, or the bound run deleted, are
// final; a Workflow that does not exist yet is waited for within the deadline.
func (s *Service) bind(obj *v1alpha1.Resume, found lookup.Result, findErr error, p *progress) error {
	bound := obj.Status.Workflow
	switch {
	case found.WorkflowUID != "" && bound != nil && types.UID(bound.UID) != found.WorkflowUID:
		return &replacedError{err: fault.NotFoundf("workflow %s is another run (uid %s) than the one this Resume is bound to (uid %s): create a new Resume to release a step of the new run", found.Workflow, found.WorkflowUID, bound.UID)}
	case found.WorkflowUID != "" && bound == nil:
		p.bind = &v1alpha1.BoundWorkflow{Name: found.Workflow, UID: string(found.WorkflowUID)}
	case lookup.IsNoWorkflow(findErr) && bound != nil:
		return fault.NotFoundf("workflow %s (uid %s), the run this Resume is bound to, was deleted", bound.Name, bound.UID)
	case lookup.IsNoWorkflow(findErr):
		return fault.Transientf("%v; waiting for it to be created until %s", findErr, p.deadline.UTC().Format(time.RFC3339))
	}
	return nil
}

// narrowed reports whether a step names one node or container: such a Resume releases what it finds and
// ends, while a Resume for a whole template also waits for the template's other nodes (loops, fan-out).
func narrowed(step request.Step) bool {
	return step.NodeID != "" || step.NodeName != "" || step.Container != ""
}

// waitForTheRest returns a transient error while selected nodes that may still pause (no pod yet, pod or
// container not running yet, between retry attempts) are left; settle lists them in status.waiting.
func waitForTheRest(step request.Step, skipped []lookup.Skip) error {
	var reasons []string
	for _, sk := range skipped {
		if mayStillPause(sk) {
			reasons = append(reasons, sk.Reason.Error())
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return fault.Transientf("waiting for %d more of %s: %s", len(reasons), step, strings.Join(reasons, "; "))
}

// mayStillPause reports whether a skipped candidate may yet become releasable.
func mayStillPause(sk lookup.Skip) bool {
	k := fault.KindOf(sk.Reason)
	return k == fault.Transient || k == fault.Unknown
}

// waitingOf lists the skipped candidates that may still pause, for status.waiting (at most maxWaiting).
func waitingOf(skipped []lookup.Skip) []v1alpha1.WaitingTarget {
	var out []v1alpha1.WaitingTarget
	for _, sk := range skipped {
		if mayStillPause(sk) && len(out) < maxWaiting {
			out = append(out, v1alpha1.WaitingTarget{Node: sk.Node, Pod: sk.Pod, Reason: text.Cut(sk.Reason.Error(), 256)})
		}
	}
	return out
}

// schedule tells Revisits about a Resume after its status was written or read.
func (s *Service) schedule(obj *v1alpha1.Resume) {
	if s.cfg.Revisits == nil {
		return
	}
	ref := Ref{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
	if !obj.Status.Phase.Final() {
		s.cfg.Revisits.Pending(ref)
		return
	}
	if due, ok := expiry(obj); ok {
		s.cfg.Revisits.ExpireAt(ref, due)
	}
}

func (s *Service) pending(ref Ref) {
	if s.cfg.Revisits != nil && ref.Name != "" {
		s.cfg.Revisits.Pending(ref)
	}
}

func (s *Service) backoff(ref Ref) {
	if s.cfg.Revisits != nil && ref.Name != "" {
		s.cfg.Revisits.Backoff(ref)
	}
}

// expiry is when a finished Resume with ttlSecondsAfterFinished is to be deleted.
func expiry(obj *v1alpha1.Resume) (time.Time, bool) {
	ttl := obj.Spec.TTLSecondsAfterFinished
	if ttl == nil || !obj.Status.Phase.Final() {
		return time.Time{}, false
	}
	done := obj.CreationTimestamp.Time
	if obj.Status.CompletionTime != nil {
		done = obj.Status.CompletionTime.Time
	}
	return done.Add(time.Duration(*ttl) * time.Second), true
}

// finished handles a look at a Resume that is already final: nothing is released again; its TTL, if it
// has one and it ran out, deletes it.
func (s *Service) finished(ctx context.Context, obj *v1alpha1.Resume) error {
	due, ok := expiry(obj)
	if !ok {
		return nil
	}
	if s.clock().Before(due) {
		s.schedule(obj)
		return nil
	}
	ctx, cancel := recording(ctx)
	defer cancel()
	err := s.cfg.Resumes.Delete(ctx, obj.Namespace, obj.Name, obj.UID)
	switch {
	case err == nil:
		s.logger(ctx).Info("deleted a finished Resume after its ttlSecondsAfterFinished")
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or another object of that name now: nothing of ours to delete.
	default:
		// Not the caller's failure: the Resume is final either way. Try again later, less often each time
		// (a missing delete right would otherwise be tried in a tight loop).
		s.logger(ctx).WithError(err).Warn("could not delete a finished Resume after its ttlSecondsAfterFinished")
		s.backoff(Ref{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID})
	}
	return nil
}
