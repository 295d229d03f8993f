package resume

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// revisits records what the service asked to look at again.
type revisits struct {
	mu      sync.Mutex
	pending []string
	backoff []string
	expire  map[string]time.Time
}

func (r *revisits) Backoff(ref Ref) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backoff = append(r.backoff, ref.String())
}

func (r *revisits) Pending(ref Ref) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, ref.String())
}

func (r *revisits) ExpireAt(ref Ref, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.expire == nil {
		r.expire = map[string]time.Time{}
	}
	r.expire[ref.String()] = at
}

var epoch = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// lifecycleFixture is a fixture whose clock stands at now and whose Resume "r" was created at epoch.
func lifecycleFixture(now time.Time, mutate func(*v1alpha1.Resume)) (*fixture, *revisits) {
	r := newResume("r", v1alpha1.ResumeStatus{})
	r.CreationTimestamp = metav1.NewTime(epoch)
	if mutate != nil {
		mutate(r)
	}
	f := newFixture(r)
	rv := &revisits{}
	f.svc.cfg.Revisits = rv
	f.svc.cfg.Clock = clocktesting.NewFakePassiveClock(now)
	return f, rv
}

func bound(uid string) func(*v1alpha1.Resume) {
	return func(r *v1alpha1.Resume) {
		r.Status.Phase = v1alpha1.PhasePending
		r.Status.Workflow = &v1alpha1.BoundWorkflow{Name: "wf", UID: uid}
	}
}

func notReadyYet(pod string) lookup.Skip {
	return lookup.Skip{Node: "wf-" + pod, Pod: pod, Reason: fault.Transientf("pod %s is not running yet", pod)}
}

func TestLifecycle(t *testing.T) {
	noWorkflow := &fault.Error{Kind: fault.NotFound, Err: &lookup.NoWorkflowError{Namespace: ns, Name: "wf"}}
	tests := map[string]struct {
		now      time.Duration // after epoch
		mutate   func(*v1alpha1.Resume)
		result   lookup.Result
		findErr  error
		expKind  fault.Kind
		expPhase v1alpha1.Phase
		expReas  string
		expMsg   []string // substrings of the message
		expCalls []string
		expBound string // status.workflow.uid
		expWait  []string
		expFind  bool
		expAgain bool // asked to be revisited
	}{
		"the first look binds the Resume to the run it finds, even while it waits": {
			now:     time.Minute,
			result:  lookup.Result{Workflow: "wf", WorkflowUID: "run-a"},
			findErr: fault.Transientf("workflow wf has not reached template step yet"),
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expBound: "run-a", expFind: true, expAgain: true,
		},
		"a release binds the Resume too": {
			now:      time.Minute,
			result:   lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expBound: "run-a", expFind: true,
		},
		"a Resume bound to run A never releases run B of the same name": {
			now:     time.Minute,
			mutate:  bound("run-a"),
			result:  lookup.Result{Workflow: "wf", WorkflowUID: "run-b", Targets: []lookup.Target{target("p1")}},
			expKind: fault.NotFound, expPhase: v1alpha1.PhaseFailed, expReas: ReasonWorkflowReplaced,
			expMsg:   []string{"another run (uid run-b)", "bound to (uid run-a)"},
			expBound: "run-a", expFind: true,
		},
		"the deleted run of a bound Resume ends it": {
			now:     time.Minute,
			mutate:  bound("run-a"),
			findErr: noWorkflow,
			expKind: fault.NotFound, expPhase: v1alpha1.PhaseFailed, expReas: ReasonNotFound,
			expMsg:   []string{"workflow wf (uid run-a), the run this Resume is bound to, was deleted"},
			expBound: "run-a", expFind: true,
		},
		"a workflow that does not exist yet is waited for": {
			now:     time.Minute,
			findErr: noWorkflow,
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expMsg:  []string{"workflow wf not found", "waiting for it to be created until 2026-12-01T10:15:00Z"},
			expFind: true, expAgain: true,
		},
		"past the default deadline the Resume ends with what it last waited for": {
			now: 15 * time.Minute,
			mutate: func(r *v1alpha1.Resume) {
				r.Status.Phase, r.Status.Message = v1alpha1.PhasePending, "pod p1 is not running yet"
			},
			expKind: fault.Precondition, expPhase: v1alpha1.PhaseFailed, expReas: ReasonDeadlineExceeded,
			expMsg: []string{"within 15m0s", "last waiting for: pod p1 is not running yet"},
		},
		"spec.activeDeadlineSeconds is the deadline": {
			now:     31 * time.Second,
			mutate:  func(r *v1alpha1.Resume) { r.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) },
			result:  lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}},
			expKind: fault.Precondition, expPhase: v1alpha1.PhaseFailed, expReas: ReasonDeadlineExceeded,
			expMsg: []string{"within 30s", "never looked at"},
		},
		"a long deadline lets a Resume be released days later": {
			now:      48 * time.Hour,
			mutate:   func(r *v1alpha1.Resume) { r.Spec.ActiveDeadlineSeconds = ptr.To[int64](72 * 3600) },
			result:   lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expBound: "run-a", expFind: true,
		},
		"a loop with an iteration not running yet stays Pending after releasing the others": {
			now: time.Minute,
			result: lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1"), target("p2")},
				Skipped: []lookup.Skip{notReadyYet("p3")}},
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expMsg:   []string{"released p1/main (after), p2/main (after)", "waiting for 1 more of workflow wf template step", "pod p3 is not running yet"},
			expCalls: []string{"p1/main/after", "p2/main/after"}, expBound: "run-a", expWait: []string{"wf-p3"},
			expFind: true, expAgain: true,
		},
		"a finished iteration is not waited for": {
			now: time.Minute,
			result: lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")},
				Skipped: []lookup.Skip{{Node: "wf-p0", Pod: "p0", Reason: fault.NotFoundf("node wf-p0 is Succeeded and its pod is gone")}}},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expBound: "run-a", expFind: true,
		},
		"a Resume narrowed to one node releases what it finds and ends": {
			now:    time.Minute,
			mutate: func(r *v1alpha1.Resume) { r.Spec.NodeName = "wf[0].step(0:a)" },
			result: lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")},
				Skipped: []lookup.Skip{notReadyYet("p3")}},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expBound: "run-a", expFind: true,
		},
		"nothing running yet lists what it waits for": {
			now:     time.Minute,
			result:  lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Skipped: []lookup.Skip{notReadyYet("p1"), notReadyYet("p2")}},
			findErr: fault.Transientf("nothing to release yet"),
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expBound: "run-a", expWait: []string{"wf-p1", "wf-p2"}, expFind: true, expAgain: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, rv := lifecycleFixture(epoch.Add(tc.now), tc.mutate)
			f.finder.result, f.finder.err = tc.result, tc.findErr
			res, err := f.svc.Handle(t.Context(), resumeRequest("r"))
			// A Resume left Pending is the server's from here (it revisits it): the caller gets no error.
			want := tc.expKind
			if want == fault.Transient {
				want = fault.Unknown
			}
			if got := fault.KindOf(err); (err == nil) != (want == fault.Unknown) || (err != nil && got != want) {
				t.Fatalf("error = %v (kind %s), want kind %s", err, got, want)
			}
			if res.Phase != tc.expPhase {
				t.Errorf("result phase %s, want %s", res.Phase, tc.expPhase)
			}
			after := f.store.theResume()
			st := after.Status
			if st.Phase != tc.expPhase || st.Reason != tc.expReas || res.Reason != tc.expReas {
				t.Fatalf("status %s/%s (result reason %s), want %s/%s; message %q", st.Phase, st.Reason, res.Reason, tc.expPhase, tc.expReas, st.Message)
			}
			if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReleased); c == nil || c.Reason != tc.expReas {
				t.Errorf("Released condition %+v, want reason %s", c, tc.expReas)
			}
			for _, m := range tc.expMsg {
				if !strings.Contains(st.Message, m) {
					t.Errorf("message %q lacks %q", st.Message, m)
				}
			}
			if got := strings.Join(f.releaser.calls, ","); got != strings.Join(tc.expCalls, ",") {
				t.Errorf("release calls %q, want %q", got, strings.Join(tc.expCalls, ","))
			}
			gotBound := ""
			if st.Workflow != nil {
				gotBound = st.Workflow.UID
			}
			if gotBound != tc.expBound {
				t.Errorf("bound to %q, want %q", gotBound, tc.expBound)
			}
			var waiting []string
			for _, w := range st.Waiting {
				waiting = append(waiting, w.Node)
			}
			if strings.Join(waiting, ",") != strings.Join(tc.expWait, ",") {
				t.Errorf("status.waiting %v, want %v", waiting, tc.expWait)
			}
			if (f.finder.calls.Load() > 0) != tc.expFind {
				t.Errorf("looked up %d times, want a lookup %v", f.finder.calls.Load(), tc.expFind)
			}
			if again := len(rv.pending) > 0; again != tc.expAgain {
				t.Errorf("asked to revisit: %v (%v), want %v", again, rv.pending, tc.expAgain)
			}
			if st.Deadline == nil {
				t.Errorf("status.deadline not recorded")
			}
			if st.Phase.Final() != (st.CompletionTime != nil) {
				t.Errorf("completionTime %v for phase %s", st.CompletionTime, st.Phase)
			}
		})
	}
}

func TestLoopReleasedAcrossLooks(t *testing.T) {
	f, rv := lifecycleFixture(epoch.Add(time.Minute), nil)
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1"), target("p2")}, Skipped: []lookup.Skip{notReadyYet("p3")}}
	if res, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil || res.Phase != v1alpha1.PhasePending {
		t.Fatalf("first look: %v %s, want Pending taken by the server", err, res.Phase)
	}
	// The revisit finds nothing new: no status write.
	writes := f.store.updates
	if res, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Resume: "r", Revisit: true}); err != nil || res.Phase != v1alpha1.PhasePending {
		t.Fatalf("revisit: %v %s", err, res.Phase)
	}
	if f.store.updates != writes {
		t.Errorf("a revisit that learned nothing wrote the status (%d writes, want %d)", f.store.updates, writes)
	}
	// The third iteration runs now.
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1"), target("p2"), target("p3")}}
	res, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Resume: "r", Revisit: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.releaser.calls, ","); got != "p1/main/after,p2/main/after,p3/main/after" {
		t.Errorf("releases %s, want each pod once", got)
	}
	st := f.store.theResume().Status
	if st.Phase != v1alpha1.PhaseSucceeded || len(st.Released) != 3 || len(st.Waiting) != 0 {
		t.Errorf("status %s released %d waiting %d, want Succeeded with 3 released", st.Phase, len(st.Released), len(st.Waiting))
	}
	if res.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("result %s", res.Phase)
	}
	if len(rv.pending) != 2 {
		t.Errorf("asked to revisit %d times, want after each Pending look (2)", len(rv.pending))
	}
	if len(f.notifier.outcomes) != 2 {
		t.Errorf("notifications %v: a revisit that stays Pending sends none", f.notifier.outcomes)
	}
}

func TestTTLAfterFinished(t *testing.T) {
	finished := func(ttl *int32, done time.Duration) func(*v1alpha1.Resume) {
		return func(r *v1alpha1.Resume) {
			r.Spec.TTLSecondsAfterFinished = ttl
			r.Status.Phase = v1alpha1.PhaseSucceeded
			r.Status.CompletionTime = ptr.To(metav1.NewTime(epoch.Add(done)))
		}
	}
	tests := map[string]struct {
		mutate    func(*v1alpha1.Resume)
		now       time.Duration
		expDelete bool
		expAt     time.Duration // 0: not scheduled
	}{
		"kept without a TTL":              {mutate: finished(nil, time.Minute), now: 24 * time.Hour},
		"deleted once the TTL ran out":    {mutate: finished(ptr.To[int32](60), time.Minute), now: 2 * time.Minute, expDelete: true},
		"scheduled while the TTL runs":    {mutate: finished(ptr.To[int32](600), time.Minute), now: 2 * time.Minute, expAt: 11 * time.Minute},
		"a TTL of zero deletes at once":   {mutate: finished(ptr.To[int32](0), time.Minute), now: time.Minute, expDelete: true},
		"a Pending Resume is not deleted": {mutate: func(r *v1alpha1.Resume) { r.Spec.TTLSecondsAfterFinished = ptr.To[int32](0) }, now: time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, rv := lifecycleFixture(epoch.Add(tc.now), tc.mutate)
			f.finder.err = fault.Transientf("not yet")
			if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil && fault.KindOf(err) != fault.Transient {
				t.Fatal(err)
			}
			if (f.store.deletes == 1) != tc.expDelete {
				t.Errorf("deleted %d times, want deleted %v", f.store.deletes, tc.expDelete)
			}
			at, ok := rv.expire[ns+"/r"]
			if ok != (tc.expAt != 0) || (ok && !at.Equal(epoch.Add(tc.expAt))) {
				t.Errorf("expiry scheduled %v at %v, want at %v", ok, at, epoch.Add(tc.expAt))
			}
		})
	}
}

func TestCompletionTimeStartsTheTTL(t *testing.T) {
	f, rv := lifecycleFixture(epoch.Add(time.Minute), func(r *v1alpha1.Resume) { r.Spec.TTLSecondsAfterFinished = ptr.To[int32](30) })
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatal(err)
	}
	st := f.store.theResume().Status
	if st.CompletionTime == nil || !st.CompletionTime.Time.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("completionTime %v, want %v", st.CompletionTime, epoch.Add(time.Minute))
	}
	if at := rv.expire[ns+"/r"]; !at.Equal(epoch.Add(time.Minute + 30*time.Second)) {
		t.Errorf("expiry at %v, want 30s after completion", at)
	}
}

func TestUnreadableResumeIsRevisitedWithBackoff(t *testing.T) {
	f, rv := lifecycleFixture(epoch, nil)
	f.store.getErr = fault.Transientf("connection refused")
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); fault.KindOf(err) != fault.Transient {
		t.Fatalf("error %v, want transient", err)
	}
	if len(rv.backoff) != 1 || len(rv.pending) != 0 {
		t.Errorf("a Resume that could not be read: backoff %v pending %v, want one backoff", rv.backoff, rv.pending)
	}
}

// A status write that keeps failing (here: the API server refuses it) is looked at again later each
// time, never in a tight loop, and the release it recorded nothing of is not marked done.
func TestStatusWriteFailureBacksOff(t *testing.T) {
	f, rv := lifecycleFixture(epoch.Add(time.Minute), nil)
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}}
	f.store.failWith, f.store.failTimes = apierrors.NewForbidden(resumeGR, "r", errors.New("no update on resumes/status")), 100
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); fault.KindOf(err) != fault.Transient {
		t.Fatalf("error %v, want transient", err)
	}
	if len(rv.backoff) != 1 || len(rv.pending) != 0 {
		t.Errorf("backoff %v pending %v, want one backoff and no quick revisit", rv.backoff, rv.pending)
	}
	if len(f.events.events) != 0 {
		t.Errorf("events %v for an outcome that was not recorded", f.events.events)
	}
}

// Another writer bound the Resume between our read and our write: its binding stands, and a binding to
// another run than the one we found is not overwritten.
func TestStatusConflictKeepsTheBinding(t *testing.T) {
	t.Run("our look found no run", func(t *testing.T) {
		f, _ := lifecycleFixture(epoch.Add(time.Minute), nil)
		f.finder.err = fault.Transientf("get workflow: connection refused") // no workflow seen, nothing to bind
		f.store.conflicts = 1
		f.store.onConflict = func(s *store) {
			o := s.objs[ns+"/r"]
			o.Status.Workflow = &v1alpha1.BoundWorkflow{Name: "wf", UID: "run-a"}
			o.Status.Phase = v1alpha1.PhasePending
			o.ResourceVersion = "7"
		}
		if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
			t.Fatalf("error %v, want the Pending Resume taken", err)
		}
		st := f.store.theResume().Status
		if st.Workflow == nil || st.Workflow.UID != "run-a" || !strings.Contains(st.Message, "connection refused") {
			t.Errorf("status bound to %+v, message %q: want run-a kept and our message written", st.Workflow, st.Message)
		}
	})
	t.Run("another run", func(t *testing.T) {
		f, _ := lifecycleFixture(epoch.Add(time.Minute), nil)
		f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-b", Targets: []lookup.Target{target("p1")}}
		// Between our read and our write, another writer binds the Resume to run-a.
		first := true
		f.store.conflicts = 1
		f.store.onConflict = func(s *store) {
			if first {
				first = false
				o := s.objs[ns+"/r"]
				o.Status.Workflow = &v1alpha1.BoundWorkflow{Name: "wf", UID: "run-a"}
				o.Status.Phase = v1alpha1.PhasePending
				o.ResourceVersion = "7"
			}
		}
		if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); fault.KindOf(err) != fault.Transient {
			t.Fatalf("error %v, want transient (look again)", err)
		}
		if b := f.store.theResume().Status.Workflow; b == nil || b.UID != "run-a" {
			t.Errorf("binding %+v, want run-a kept", b)
		}
	})
}

// The deadline passes while a loop is being released: nothing is released after it.
func TestNoReleaseAfterTheDeadline(t *testing.T) {
	f, _ := lifecycleFixture(epoch.Add(15*time.Minute-time.Second), nil)
	clock := f.svc.cfg.Clock.(*clocktesting.FakePassiveClock)
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1"), target("p2")}}
	f.releaser.after = func() { clock.SetTime(clock.Now().Add(2 * time.Second)) }
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); fault.KindOf(err) != fault.Precondition {
		t.Fatalf("error %v, want the deadline's final error", err)
	}
	if got := strings.Join(f.releaser.calls, ","); got != "p1/main/after" {
		t.Errorf("releases %q, want only p1, before the deadline", got)
	}
	st := f.store.theResume().Status
	if st.Phase != v1alpha1.PhaseFailed || st.Reason != ReasonDeadlineExceeded || len(st.Released) != 1 {
		t.Errorf("status %s/%s released %d, want Failed/DeadlineExceeded with p1 recorded", st.Phase, st.Reason, len(st.Released))
	}
}

// A replica that stopped serving releases nothing more.
func TestInactiveReplicaReleasesNothing(t *testing.T) {
	f, _ := lifecycleFixture(epoch.Add(time.Minute), nil)
	f.svc.cfg.Active = func() bool { return false }
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); fault.KindOf(err) != fault.Transient {
		t.Fatalf("error %v, want transient", err)
	}
	if len(f.releaser.calls) != 0 {
		t.Errorf("released %v", f.releaser.calls)
	}
}

// A loop with one pod that can never be released (no touch) and one not running yet keeps waiting for
// the latter.
func TestLoopWaitsBesideAFailedTarget(t *testing.T) {
	f, _ := lifecycleFixture(epoch.Add(time.Minute), nil)
	f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1"), target("p2")}, Skipped: []lookup.Skip{notReadyYet("p3")}}
	f.releaser.errs["p2"] = fault.Preconditionf("no container of pod p2 can create the marker")
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatalf("error %v, want the Pending Resume taken", err)
	}
	st := f.store.theResume().Status
	if st.Phase != v1alpha1.PhasePending || len(st.Waiting) != 1 || !strings.Contains(st.Message, "not released: no container of pod p2") {
		t.Errorf("status %s waiting %v message %q, want Pending, p3 waiting, p2 named", st.Phase, st.Waiting, st.Message)
	}
}

func TestTTLDeleteFailureBacksOff(t *testing.T) {
	f, rv := lifecycleFixture(epoch.Add(time.Hour), func(r *v1alpha1.Resume) {
		r.Spec.TTLSecondsAfterFinished = ptr.To[int32](1)
		r.Status.Phase = v1alpha1.PhaseFailed
		r.Status.CompletionTime = ptr.To(metav1.NewTime(epoch))
	})
	f.store.deleteErr = apierrors.NewForbidden(resumeGR, "r", errors.New("no delete"))
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatalf("error %v: a final Resume's request succeeds whatever its clean-up does", err)
	}
	if len(rv.backoff) != 1 || len(rv.expire) != 0 {
		t.Errorf("backoff %v expire %v, want one backoff and no immediate expiry", rv.backoff, rv.expire)
	}
}

func TestDeniedIsNotServed(t *testing.T) {
	f, _ := lifecycleFixture(epoch, nil)
	res, err := f.svc.Handle(t.Context(), request.Request{Namespace: "elsewhere", Resume: "r"})
	if fault.KindOf(err) != fault.Denied || res.Phase != v1alpha1.PhaseFailed || res.Reason != ReasonNotServed {
		t.Fatalf("result %s/%s, error %v; want Failed/%s and Denied", res.Phase, res.Reason, err, ReasonNotServed)
	}
}

// lister lists the store.
type lister struct{ s *store }

func (l lister) List(_ context.Context, namespace string, visit func(*v1alpha1.Resume)) error {
	l.s.mu.Lock()
	var objs []*v1alpha1.Resume
	for _, o := range l.s.objs {
		if namespace == "" || o.Namespace == namespace {
			objs = append(objs, o.DeepCopy())
		}
	}
	l.s.mu.Unlock()
	for _, o := range objs {
		visit(o)
	}
	return nil
}

func TestRequeueTakesUpPendingResumesAndReleasesThemLater(t *testing.T) {
	pending := newResume("waiting", v1alpha1.ResumeStatus{Phase: v1alpha1.PhasePending, Message: "pod p1 is not running yet"})
	pending.CreationTimestamp = metav1.Now()
	done := newResume("done", v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseSucceeded})
	f := newFixture(pending, done)
	f.finder.err = fault.Transientf("pod p1 is not running yet")
	released := make(chan struct{})
	var once sync.Once
	f.store.onUpdate = func(s *store) {
		if s.objs[ns+"/waiting"].Status.Phase == v1alpha1.PhaseSucceeded {
			once.Do(func() { close(released) })
		}
	}
	q, err := NewRequeue(RequeueConfig{Lister: lister{f.store}, Namespaces: []string{ns}, Interval: 20 * time.Millisecond, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.Revisits = q
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { q.Run(ctx, f.svc); close(stopped) }()

	// Nothing called the server for this Resume: the first list finds it, and revisits keep it.
	deadline := time.After(5 * time.Second)
	for f.finder.calls.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("revisited %d times in 5s, want repeated revisits", f.finder.calls.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if len(f.releaser.calls) != 0 {
		t.Fatalf("released %v before the step ran", f.releaser.calls)
	}
	f.finder.mu.Lock()
	f.finder.result, f.finder.err = lookup.Result{Workflow: "wf", WorkflowUID: "run-a", Targets: []lookup.Target{target("p1")}}, nil
	f.finder.mu.Unlock()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the Pending Resume was not released by a revisit")
	}
	cancel()
	<-stopped
	if got := strings.Join(f.releaser.calls, ","); got != "p1/main/after" {
		t.Errorf("releases %q, want p1 once", got)
	}
}

// Pending and taken by the server answers OK only where the server revisits: without revisits, or on a
// replica that stopped serving, the caller keeps retrying (Unavailable).
func TestPendingIsTakenOnlyWhenRevisited(t *testing.T) {
	tests := map[string]struct {
		revisits bool
		active   bool
		expErr   bool
	}{
		"revisited: OK, Pending":                        {revisits: true, active: true},
		"no revisits: the caller retries":               {revisits: false, active: true, expErr: true},
		"stopped serving: the caller retries elsewhere": {revisits: true, active: false, expErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, _ := lifecycleFixture(epoch.Add(time.Minute), nil)
			if !tc.revisits {
				f.svc.cfg.Revisits = nil
			}
			f.svc.cfg.Active = func() bool { return tc.active }
			f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "run-a"}
			f.finder.err = fault.Transientf("node wf-p1 has no pod yet")
			res, err := f.svc.Handle(t.Context(), resumeRequest("r"))
			if (err != nil) != tc.expErr || (err != nil && fault.KindOf(err) != fault.Transient) {
				t.Fatalf("error %v, want an error: %v", err, tc.expErr)
			}
			if res.Phase != v1alpha1.PhasePending {
				t.Errorf("phase %s, want Pending", res.Phase)
			}
		})
	}
}
