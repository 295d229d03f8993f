package resume

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// store is an in-memory Resumes with resourceVersion checks, so conflicts behave as on an API server.
type store struct {
	mu        sync.Mutex
	objs      map[string]*v1alpha1.Resume
	updates   int
	failWith  error // returned by the next UpdateStatus, once (failTimes times if set), after failAfter writes
	failTimes int
	failAfter int
	onUpdate  func(*store)
	getErr    error
	conflicts int // UpdateStatus answers Conflict this many times
	deletes   int
	deleteErr error
	// onConflict runs when UpdateStatus answers Conflict, to change the object as another writer would.
	onConflict func(*store)
}

func newStore(objs ...*v1alpha1.Resume) *store {
	s := &store{objs: map[string]*v1alpha1.Resume{}}
	for _, o := range objs {
		o = o.DeepCopy()
		if o.ResourceVersion == "" {
			o.ResourceVersion = "1"
		}
		s.objs[o.Namespace+"/"+o.Name] = o
	}
	return s
}

var resumeGR = schema.GroupResource{Group: "argocontroller.io", Resource: "resumes"}

func (s *store) Get(_ context.Context, ns, name string) (*v1alpha1.Resume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	o, ok := s.objs[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(resumeGR, name)
	}
	return o.DeepCopy(), nil
}

func (s *store) UpdateStatus(_ context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWith != nil && s.updates >= s.failAfter {
		err := s.failWith
		if s.failTimes--; s.failTimes <= 0 {
			s.failWith = nil
		}
		return nil, err
	}
	key := res.Namespace + "/" + res.Name
	cur, ok := s.objs[key]
	if !ok {
		return nil, apierrors.NewNotFound(resumeGR, res.Name)
	}
	if s.conflicts > 0 || cur.ResourceVersion != res.ResourceVersion {
		if s.conflicts > 0 {
			s.conflicts--
		}
		if s.onConflict != nil {
			s.onConflict(s)
		}
		return nil, apierrors.NewConflict(resumeGR, res.Name, errors.New("the object has been modified"))
	}
	next := cur.DeepCopy()
	next.Status = res.Status
	rv, _ := strconv.Atoi(cur.ResourceVersion)
	next.ResourceVersion = strconv.Itoa(rv + 1)
	s.objs[key] = next
	s.updates++
	if s.onUpdate != nil {
		s.onUpdate(s)
	}
	return next.DeepCopy(), nil
}

func (s *store) Delete(_ context.Context, ns, name string, uid types.UID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.objs[ns+"/"+name]
	if !ok {
		return apierrors.NewNotFound(resumeGR, name)
	}
	if s.deleteErr != nil {
		return s.deleteErr
	}
	if cur.UID != uid {
		return apierrors.NewConflict(resumeGR, name, errors.New("uid precondition failed"))
	}
	delete(s.objs, ns+"/"+name)
	s.deletes++
	return nil
}

// theResume is the stored Resume "r" of namespace ns, the one every lifecycle test makes.
func (s *store) theResume() *v1alpha1.Resume {
	const name = "r"
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[ns+"/"+name].DeepCopy()
}

type finder struct {
	mu     sync.Mutex
	result lookup.Result
	err    error
	calls  atomic.Int32
}

func (f *finder) Find(context.Context, string, request.Step) (lookup.Result, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result, f.err
}

// releaser answers per pod: a nil entry succeeds. Confirm answers per pod from fates (FateRunning when
// not listed), or confirmErr.
type releaser struct {
	mu         sync.Mutex
	errs       map[string]error
	calls      []string
	delay      time.Duration
	after      func() // runs after each release
	fates      map[string]release.Confirmation
	confirmErr error
	confirms   []string
}

func (r *releaser) Confirm(_ context.Context, t lookup.Target) (release.Confirmation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.confirms = append(r.confirms, t.Pod+"/"+t.Container+"/"+string(t.Stage))
	if r.confirmErr != nil {
		return release.Confirmation{}, r.confirmErr
	}
	return r.fates[t.Pod], nil
}

func (r *releaser) Release(ctx context.Context, t lookup.Target) (release.Outcome, error) {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, t.Pod+"/"+t.Container+"/"+string(t.Stage))
	if r.after != nil {
		defer r.after()
	}
	if err := r.errs[t.Pod]; err != nil {
		return release.Outcome{}, err
	}
	return release.Outcome{Via: t.Container}, nil
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Normal(obj report.Object, reason, _ string) { r.add("Normal", obj, reason) }

func (r *recorder) Warning(obj report.Object, reason, _ string) { r.add("Warning", obj, reason) }

func (r *recorder) add(typ string, obj report.Object, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s/%s %s", typ, obj.Kind, obj.Name, reason))
}

type notifier struct{ outcomes []string }

func (n *notifier) Send(_ context.Context, outcome, subject string, _ any) error {
	n.outcomes = append(n.outcomes, outcome+" "+subject)
	return nil
}

const ns = "argo"

func newResume(name string, status v1alpha1.ResumeStatus) *v1alpha1.Resume {
	return &v1alpha1.Resume{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec:       v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "step"},
		Status:     status,
	}
}

func target(pod string) lookup.Target {
	return lookup.Target{Namespace: ns, Workflow: "wf", Node: "wf-" + pod, Pod: pod, Container: "main", Stage: v1alpha1.StageAfter}
}

type fixture struct {
	svc      *Service
	store    *store
	finder   *finder
	releaser *releaser
	events   *recorder
	notifier *notifier
	reg      *prometheus.Registry
}

func newFixture(objs ...*v1alpha1.Resume) *fixture {
	f := &fixture{store: newStore(objs...), finder: &finder{}, releaser: &releaser{errs: map[string]error{}}, events: &recorder{}, notifier: &notifier{}, reg: prometheus.NewRegistry()}
	svc, err := New(Config{
		Namespaces: NewNamespaces(ns),
		Resumes:    f.store,
		Finder:     f.finder,
		Releaser:   f.releaser,
		Events:     f.events,
		Metrics:    report.NewMetrics(f.reg),
		Notifier:   f.notifier,
		Timeout:    5 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	svc.cfg.WebhookNamespaces = NewNamespaces(ns) // the direct-request tests release in ns
	f.svc = svc
	return f
}

func resumeRequest(name string) request.Request {
	return request.Request{Namespace: ns, Resume: name}
}

func TestHandleResume(t *testing.T) {
	transient := fault.Transientf("api server unavailable")
	tests := map[string]struct {
		status   v1alpha1.ResumeStatus
		targets  []lookup.Target
		skipped  []lookup.Skip
		findErr  error
		relErrs  map[string]error
		req      request.Request
		expKind  fault.Kind // Unknown means no error
		expPhase v1alpha1.Phase
		expReas  string
		expCalls []string
		expRel   []string // pods in status.released, in order
		expMsg   string
		expFinal bool
		expEvent []string
	}{
		"the original example is released and recorded": {
			targets:  []lookup.Target{target("p1")},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expRel: []string{"p1"},
			expMsg:   "released p1/main (after)",
			expEvent: []string{"Normal Resume/r Released"},
		},
		"every paused pod of a loop is released": {
			targets:  []lookup.Target{target("p1"), target("p2"), target("p3")},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after", "p2/main/after", "p3/main/after"}, expRel: []string{"p1", "p2", "p3"},
			expEvent: []string{"Normal Resume/r Released"},
		},
		"a final Resume is not acted on again": {
			status:   v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseSucceeded, Message: "released before"},
			targets:  []lookup.Target{target("p1")},
			expPhase: v1alpha1.PhaseSucceeded, expFinal: true, expMsg: "released before",
		},
		"a failed Resume stays failed and is not retried": {
			status:   v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseFailed, Message: "workflow wf not found"},
			targets:  []lookup.Target{target("p1")},
			expPhase: v1alpha1.PhaseFailed, expFinal: true, expMsg: "workflow wf not found",
		},
		"targets released by an earlier attempt are not released twice": {
			status: v1alpha1.ResumeStatus{Phase: v1alpha1.PhasePending, Released: []v1alpha1.ReleasedTarget{
				{Node: "wf-p1", Pod: "p1", Container: "main", Stage: v1alpha1.StageAfter},
			}},
			targets:  []lookup.Target{target("p1"), target("p2")},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p2/main/after"}, expRel: []string{"p1", "p2"},
			expMsg:   "released p1/main (after), p2/main (after)",
			expEvent: []string{"Normal Resume/r Released"},
		},
		"a missing workflow fails the Resume once": {
			findErr: fault.NotFoundf("workflow wf not found in namespace argo"),
			expKind: fault.NotFound, expPhase: v1alpha1.PhaseFailed, expReas: ReasonNotFound,
			expMsg:   "workflow wf not found in namespace argo",
			expEvent: []string{"Warning Resume/r NotFound"},
		},
		"a step that is not paused fails the Resume": {
			findErr: fault.Preconditionf("container main is not debug-paused"),
			expKind: fault.Precondition, expPhase: v1alpha1.PhaseFailed, expReas: ReasonNotReleasable,
			expEvent: []string{"Warning Resume/r NotReleasable"},
		},
		"API trouble leaves the Resume pending": {
			findErr: transient,
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expMsg: "api server unavailable",
		},
		"a transient exec failure keeps what was released and stays pending": {
			targets: []lookup.Target{target("p1"), target("p2")},
			relErrs: map[string]error{"p2": fault.Transientf("exec transport broke")},
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending, expReas: ReasonWaiting,
			expCalls: []string{"p1/main/after", "p2/main/after"}, expRel: []string{"p1"},
			expMsg: "released p1/main (after); exec transport broke",
		},
		"a final failure of one pod of several is a partial release": {
			targets:  []lookup.Target{target("p1"), target("p2")},
			relErrs:  map[string]error{"p2": fault.Preconditionf("no container of pod p2 can create the marker")},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonPartiallyReleased,
			expCalls: []string{"p1/main/after", "p2/main/after"}, expRel: []string{"p1"},
			expMsg:   "released p1/main (after); not released: no container of pod p2 can create the marker",
			expEvent: []string{"Normal Resume/r PartiallyReleased"},
		},
		"a final failure of the only pod fails the Resume": {
			targets: []lookup.Target{target("p1")},
			relErrs: map[string]error{"p1": fault.Preconditionf("no container of pod p1 can create the marker")},
			expKind: fault.Precondition, expPhase: v1alpha1.PhaseFailed, expReas: ReasonNotReleasable,
			expCalls: []string{"p1/main/after"},
			expEvent: []string{"Warning Resume/r NotReleasable"},
		},
		"skipped candidates are reported beside the released ones": {
			targets:  []lookup.Target{target("p1")},
			skipped:  []lookup.Skip{{Node: "wf-p0", Pod: "p0", Reason: fault.Preconditionf("node wf-p0 has finished")}},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased,
			expCalls: []string{"p1/main/after"}, expRel: []string{"p1"},
			expMsg:   "released p1/main (after); left alone: node wf-p0 has finished",
			expEvent: []string{"Normal Resume/r Released"},
		},
		"an event for a deleted and recreated Resume changes nothing": {
			req:     request.Request{Namespace: ns, Resume: "r", ResumeUID: "uid-old"},
			targets: []lookup.Target{target("p1")},
			expKind: fault.NotFound, expPhase: v1alpha1.PhaseFailed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(newResume("r", tc.status))
			f.finder.result = lookup.Result{Workflow: "wf", Targets: tc.targets, Skipped: tc.skipped}
			f.finder.err = tc.findErr
			if tc.relErrs != nil {
				f.releaser.errs = tc.relErrs
			}
			before := f.store.theResume()
			req := tc.req
			if req.Namespace == "" {
				req = resumeRequest("r")
			}
			res, err := f.svc.Handle(t.Context(), req)

			if got := fault.KindOf(err); (err == nil) != (tc.expKind == fault.Unknown) || (err != nil && got != tc.expKind) {
				t.Fatalf("error = %v (kind %s), want kind %s", err, got, tc.expKind)
			}
			if res.Phase != tc.expPhase || res.AlreadyFinal != tc.expFinal {
				t.Fatalf("result phase %s final %v, want %s final %v (message %q)", res.Phase, res.AlreadyFinal, tc.expPhase, tc.expFinal, res.Message)
			}
			if tc.expMsg != "" && res.Message != tc.expMsg {
				t.Errorf("message %q, want %q", res.Message, tc.expMsg)
			}
			if got := strings.Join(f.releaser.calls, ","); got != strings.Join(tc.expCalls, ",") {
				t.Errorf("release calls %q, want %q", got, strings.Join(tc.expCalls, ","))
			}
			if got := strings.Join(f.events.events, ","); got != strings.Join(tc.expEvent, ",") {
				t.Errorf("events %q, want %q", got, strings.Join(tc.expEvent, ","))
			}

			after := f.store.theResume()
			if tc.expFinal || req.ResumeUID != "" {
				if after.ResourceVersion != before.ResourceVersion {
					t.Fatalf("status was written (%+v), want it untouched", after.Status)
				}
				if f.finder.calls.Load() != 0 {
					t.Errorf("the cluster was looked up %d times for a Resume that is not acted on", f.finder.calls.Load())
				}
				return
			}
			if after.Status.Phase != tc.expPhase || after.Status.Message != res.Message {
				t.Errorf("status %s %q, want %s %q", after.Status.Phase, after.Status.Message, tc.expPhase, res.Message)
			}
			var pods []string
			for _, r := range after.Status.Released {
				pods = append(pods, r.Pod)
			}
			if strings.Join(pods, ",") != strings.Join(tc.expRel, ",") {
				t.Errorf("status.released %v, want %v", pods, tc.expRel)
			}
			c := meta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionReleased)
			if c == nil || c.Reason != tc.expReas || c.ObservedGeneration != 1 {
				t.Fatalf("Released condition %+v, want reason %s at generation 1", c, tc.expReas)
			}
			want := map[v1alpha1.Phase]metav1.ConditionStatus{v1alpha1.PhaseSucceeded: metav1.ConditionTrue, v1alpha1.PhaseFailed: metav1.ConditionFalse, v1alpha1.PhasePending: metav1.ConditionUnknown}[tc.expPhase]
			if c.Status != want {
				t.Errorf("condition status %s, want %s", c.Status, want)
			}
			if after.Status.ObservedGeneration != 1 {
				t.Errorf("observedGeneration %d, want 1", after.Status.ObservedGeneration)
			}
		})
	}
}

func TestHandleTwiceReleasesOnce(t *testing.T) {
	f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
	f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
	f.releaser.delay = 20 * time.Millisecond

	var wg sync.WaitGroup
	results := make([]Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.svc.Handle(t.Context(), resumeRequest("r"))
			if err != nil {
				t.Errorf("handle %d: %v", i, err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if len(f.releaser.calls) != 1 {
		t.Fatalf("released %d times (%v), want once", len(f.releaser.calls), f.releaser.calls)
	}
	final := 0
	for _, r := range results {
		if r.Phase != v1alpha1.PhaseSucceeded {
			t.Errorf("phase %s, want Succeeded", r.Phase)
		}
		if r.AlreadyFinal {
			final++
		}
	}
	if final != 3 {
		t.Errorf("%d of 4 duplicate requests found the Resume final, want 3", final)
	}
	// Twice: the release announced in status.releasing before the exec, then its outcome.
	if f.store.updates != 2 {
		t.Errorf("status written %d times, want twice", f.store.updates)
	}
}

func TestStatusConflict(t *testing.T) {
	t.Run("a conflicting writer's release is kept beside ours", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		// Someone else records p0 as released between our read and our write.
		other := f.store.theResume()
		other.Status.Phase = v1alpha1.PhasePending
		other.Status.Released = []v1alpha1.ReleasedTarget{{Pod: "p0", Container: "main", Stage: v1alpha1.StageAfter}}
		f.svc.cfg.Resumes = &racingStore{store: f.store, race: other}

		if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
			t.Fatal(err)
		}
		got := f.store.theResume().Status
		if got.Phase != v1alpha1.PhaseSucceeded || len(got.Released) != 2 || got.Released[0].Pod != "p0" || got.Released[1].Pod != "p1" {
			t.Fatalf("status %+v, want Succeeded with p0 and p1", got)
		}
	})
	t.Run("a Resume finished meanwhile keeps its status", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		other := f.store.theResume()
		other.Status = v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseFailed, Message: "someone else decided"}
		f.svc.cfg.Resumes = &racingStore{store: f.store, race: other}

		if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
			t.Fatal(err)
		}
		if got := f.store.theResume().Status; got.Phase != v1alpha1.PhaseFailed || got.Message != "someone else decided" {
			t.Fatalf("status %+v was overwritten", got)
		}
	})
	t.Run("a status write the API refuses is retried by the caller", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		f.store.failWith, f.store.failAfter = apierrors.NewServiceUnavailable("etcd is down"), 1
		_, err := f.svc.Handle(t.Context(), resumeRequest("r"))
		if fault.KindOf(err) != fault.Transient {
			t.Fatalf("error %v, want Transient", err)
		}
		got := f.store.theResume().Status
		if got.Phase != "" || len(got.Released) != 0 {
			t.Fatalf("status %+v written despite the failure", got)
		}
		if len(got.Releasing) != 1 || got.Releasing[0].Pod != "p1" {
			t.Fatalf("releasing %+v, want p1 announced before its exec", got.Releasing)
		}
	})
	t.Run("a release that cannot be announced is not started", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		f.store.failWith = apierrors.NewServiceUnavailable("etcd is down")
		_, err := f.svc.Handle(t.Context(), resumeRequest("r"))
		if fault.KindOf(err) != fault.Transient {
			t.Fatalf("error %v, want Transient", err)
		}
		if len(f.releaser.calls) != 0 {
			t.Fatalf("exec'd %v although the release could not be recorded first", f.releaser.calls)
		}
	})
	t.Run("endless conflicts give up as transient", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		f.store.conflicts = 100
		_, err := f.svc.Handle(t.Context(), resumeRequest("r"))
		if fault.KindOf(err) != fault.Transient || !apierrors.IsConflict(errors.Unwrap(err)) {
			t.Fatalf("error %v, want a Transient conflict", err)
		}
	})
}

// racingStore applies a competing write just before the first UpdateStatus.
type racingStore struct {
	*store
	race *v1alpha1.Resume
	done bool
}

func (r *racingStore) UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error) {
	if !r.done {
		r.done = true
		if _, err := r.store.UpdateStatus(ctx, r.race); err != nil {
			return nil, err
		}
	}
	return r.store.UpdateStatus(ctx, res)
}

func TestHandleResumeErrors(t *testing.T) {
	tests := map[string]struct {
		getErr  error
		spec    *v1alpha1.ResumeSpec
		req     request.Request
		expKind fault.Kind
		expMsg  string
	}{
		"a deleted Resume": {
			req: resumeRequest("gone"), expKind: fault.NotFound, expMsg: "resume argo/gone not found",
		},
		"the API server is down": {
			getErr: apierrors.NewServiceUnavailable("down"), req: resumeRequest("r"), expKind: fault.Transient,
		},
		"a spec the CRD would refuse is refused here too": {
			spec: &v1alpha1.ResumeSpec{WorkflowID: "wf; rm -rf /", TemplateName: "step"}, req: resumeRequest("r"),
			expKind: fault.Invalid, expMsg: "is not a valid Workflow name",
		},
		"a namespace outside the allow-list": {
			req: request.Request{Namespace: "kube-system", Resume: "r"}, expKind: fault.Denied, expMsg: "namespace kube-system is not served",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newResume("r", v1alpha1.ResumeStatus{})
			if tc.spec != nil {
				r.Spec = *tc.spec
			}
			f := newFixture(r)
			f.store.getErr = tc.getErr
			_, err := f.svc.Handle(t.Context(), tc.req)
			if fault.KindOf(err) != tc.expKind {
				t.Fatalf("error %v (kind %s), want %s", err, fault.KindOf(err), tc.expKind)
			}
			if !strings.Contains(err.Error(), tc.expMsg) {
				t.Errorf("error %q does not say %q", err, tc.expMsg)
			}
			if len(f.releaser.calls) != 0 || f.finder.calls.Load() != 0 && tc.expKind != fault.Invalid {
				t.Errorf("acted on a refused request: %v", f.releaser.calls)
			}
			if tc.expKind == fault.Invalid {
				if got := f.store.theResume().Status; got.Phase != v1alpha1.PhaseFailed {
					t.Errorf("status %+v, want Failed for an invalid spec", got)
				}
			}
		})
	}
}

func TestHandleDirect(t *testing.T) {
	step := request.Step{Workflow: "wf", Template: "step"}
	tests := map[string]struct {
		targets  []lookup.Target
		findErr  error
		relErrs  map[string]error
		expKind  fault.Kind
		expPhase v1alpha1.Phase
		expEvent []string
	}{
		"released with an Event on the Workflow": {
			targets: []lookup.Target{target("p1")}, expPhase: v1alpha1.PhaseSucceeded,
			expEvent: []string{"Normal Workflow/wf DebugPauseReleased"},
		},
		"nothing found is a final error, no event": {
			findErr: fault.NotFoundf("workflow wf not found"), expKind: fault.NotFound, expPhase: v1alpha1.PhaseFailed,
		},
		"a failed release leaves a warning on the Workflow": {
			targets: []lookup.Target{target("p1")}, relErrs: map[string]error{"p1": fault.Preconditionf("no touch")},
			expKind: fault.Precondition, expPhase: v1alpha1.PhaseFailed,
			expEvent: []string{"Warning Workflow/wf DebugPauseNotReleased"},
		},
		"a partial release is a success, with an Event on the Workflow": {
			targets: []lookup.Target{target("p1"), target("p2")}, relErrs: map[string]error{"p2": fault.Preconditionf("no touch")},
			expPhase: v1alpha1.PhaseSucceeded,
			expEvent: []string{"Normal Workflow/wf DebugPauseReleased"},
		},
		"a transient failure beside a release is retried": {
			targets: []lookup.Target{target("p1"), target("p2")}, relErrs: map[string]error{"p2": fault.Transientf("broken pipe")},
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending,
			expEvent: []string{"Normal Workflow/wf DebugPauseReleased"},
		},
		"a transient failure is retried": {
			targets: []lookup.Target{target("p1")}, relErrs: map[string]error{"p1": fault.Transientf("broken pipe")},
			expKind: fault.Transient, expPhase: v1alpha1.PhasePending,
			expEvent: []string{"Warning Workflow/wf DebugPauseNotReleased"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture()
			f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "wf-uid", Targets: tc.targets}
			f.finder.err = tc.findErr
			if tc.relErrs != nil {
				f.releaser.errs = tc.relErrs
			}
			res, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Step: step})
			if fault.KindOf(err) != tc.expKind || (err == nil) != (tc.expKind == fault.Unknown) {
				t.Fatalf("error %v, want kind %s", err, tc.expKind)
			}
			if res.Phase != tc.expPhase {
				t.Errorf("phase %s, want %s (%s)", res.Phase, tc.expPhase, res.Message)
			}
			if got := strings.Join(f.events.events, ","); got != strings.Join(tc.expEvent, ",") {
				t.Errorf("events %q, want %q", got, strings.Join(tc.expEvent, ","))
			}
			if f.store.updates != 0 {
				t.Errorf("a direct request wrote %d Resume statuses", f.store.updates)
			}
		})
	}
}

func TestMetricsAndNotifications(t *testing.T) {
	f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
	f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Handle(t.Context(), request.Request{Namespace: "other", Resume: "r"}); fault.KindOf(err) != fault.Denied {
		t.Fatalf("error %v, want Denied", err)
	}
	const want = `
# HELP resume_trigger_requests_total Requests handled, by kind (resume: the Sensor's call for a Resume; direct: a webhook call; revisit: the server's own look at a Pending Resume) and outcome (Succeeded, Failed, Pending, AlreadyFinal).
# TYPE resume_trigger_requests_total counter
resume_trigger_requests_total{kind="resume",outcome="AlreadyFinal"} 1
resume_trigger_requests_total{kind="resume",outcome="Failed"} 1
resume_trigger_requests_total{kind="resume",outcome="Succeeded"} 1
# HELP resume_trigger_releases_total Paused containers released, by how the marker was created (self, sibling, ephemeral).
# TYPE resume_trigger_releases_total counter
resume_trigger_releases_total{via="self"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "resume_trigger_requests_total", "resume_trigger_releases_total"); err != nil {
		t.Error(err)
	}
	if got := strings.Join(f.notifier.outcomes, ","); got != "Succeeded argo/r,Failed other/r" {
		t.Errorf("notifications %q", got)
	}
}

func TestBounds(t *testing.T) {
	t.Run("a duplicate waits for the first request no longer than Timeout", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		f.svc.cfg.Timeout = 100 * time.Millisecond
		unlock, err := f.svc.locks.Lock(t.Context(), resumeRequest("r").Key())
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		start := time.Now()
		_, err = f.svc.Handle(t.Context(), resumeRequest("r"))
		if fault.KindOf(err) != fault.Transient || !strings.Contains(err.Error(), "another request for argo/r is still being carried out") {
			t.Fatalf("error %v, want a Transient wait error", err)
		}
		t.Logf("gave up after %s", time.Since(start))
		if len(f.releaser.calls) != 0 || f.store.updates != 0 {
			t.Errorf("acted while another request held the Resume: calls %v, %d status writes", f.releaser.calls, f.store.updates)
		}
	})
	t.Run("a release that used up Timeout is still recorded", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
		f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
		f.svc.cfg.Timeout = 50 * time.Millisecond
		f.svc.cfg.Resumes = &deadlineStore{store: f.store}
		f.releaser.delay = 100 * time.Millisecond
		if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
			t.Fatal(err)
		}
		if got := f.store.theResume().Status; got.Phase != v1alpha1.PhaseSucceeded || len(got.Released) != 1 {
			t.Fatalf("status %+v, want the release recorded as Succeeded", got)
		}
	})
	t.Run("an earlier release counts when nothing is left to release", func(t *testing.T) {
		f := newFixture(newResume("r", v1alpha1.ResumeStatus{Phase: v1alpha1.PhasePending, Released: []v1alpha1.ReleasedTarget{
			{Node: "wf-p1", Pod: "p1", Container: "main", Stage: v1alpha1.StageAfter},
		}}))
		f.finder.err = fault.Preconditionf("container main in pod p1 has terminated (exit 0): its pause is over")
		res, err := f.svc.Handle(t.Context(), resumeRequest("r"))
		if err != nil {
			t.Fatal(err)
		}
		got := f.store.theResume().Status
		if res.Reason != ReasonPartiallyReleased || got.Phase != v1alpha1.PhaseSucceeded || len(got.Released) != 1 {
			t.Fatalf("result %s/%s, status %+v: want Succeeded keeping the earlier release", res.Phase, res.Reason, got)
		}
	})
}

// deadlineStore refuses writes whose context has ended, as a real client does.
type deadlineStore struct{ *store }

func (d *deadlineStore) UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.store.UpdateStatus(ctx, res)
}

func TestLongMessagesAreCut(t *testing.T) {
	f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
	var targets []lookup.Target
	errs := map[string]error{}
	for i := range 40 {
		pod := fmt.Sprintf("pod-%02d", i)
		targets = append(targets, target(pod))
		errs[pod] = fault.Preconditionf("no container of pod %s can create the marker: %s", pod, strings.Repeat("é", 200))
	}
	f.finder.result = lookup.Result{Workflow: "wf", Targets: targets}
	f.releaser.errs = errs
	res, err := f.svc.Handle(t.Context(), resumeRequest("r"))
	if fault.KindOf(err) != fault.Precondition {
		t.Fatalf("error %v, want Precondition", err)
	}
	st := f.store.theResume().Status
	if len(st.Message) > maxStatusMessage || !utf8.ValidString(st.Message) || !strings.Contains(st.Message, "more bytes)") {
		t.Fatalf("status message is %d bytes (valid UTF-8: %v), want at most %d ending in a note", len(st.Message), utf8.ValidString(st.Message), maxStatusMessage)
	}
	if res.Message != st.Message || st.Conditions[0].Message != st.Message {
		t.Errorf("result, status and condition messages differ")
	}
}

func TestNamespaces(t *testing.T) {
	tests := map[string]struct {
		list    []string
		ns      string
		allowed bool
	}{
		"listed":            {list: []string{"a", "b"}, ns: "b", allowed: true},
		"not listed":        {list: []string{"a"}, ns: "b"},
		"all":               {list: []string{"*"}, ns: "anything", allowed: true},
		"empty allows none": {list: nil, ns: "a"},
		"blanks ignored":    {list: []string{" a ", ""}, ns: "a", allowed: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := NewNamespaces(tc.list...).Check(tc.ns)
			if (err == nil) != tc.allowed {
				t.Fatalf("Check(%s) = %v, want allowed=%v", tc.ns, err, tc.allowed)
			}
		})
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	_, err := New(Config{Timeout: -time.Second})
	for _, want := range []string{"Config.Resumes", "Config.Finder", "Config.Releaser", "Config.Metrics", "cannot be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with nothing: %v, want it to name %s", err, want)
		}
	}
	f := newFixture()
	if f.svc.cfg.Deadline != DefaultDeadline || f.svc.cfg.Log == nil || f.svc.cfg.Clock == nil {
		t.Errorf("defaults not filled in: %+v", f.svc.cfg)
	}
	if _, err := NewRequeue(RequeueConfig{}); err == nil || !strings.Contains(err.Error(), "Lister") {
		t.Errorf("NewRequeue without a Lister: %v", err)
	}
}

// The Sensor retries a direct (webhook) request as a whole; meanwhile the step's next retry attempt may
// have paused. A retry of the same event acts only on the pods its first try chose, and releases nothing
// twice.
func TestDirectRetryKeepsToItsFirstPods(t *testing.T) {
	step := request.Step{Workflow: "wf", Template: "step"}
	withUID := func(pod string) lookup.Target {
		tg := target(pod)
		tg.PodUID = types.UID("uid-" + pod)
		return tg
	}
	t.Run("released, then the next attempt paused", func(t *testing.T) {
		f := newFixture()
		f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "wf-uid", Targets: []lookup.Target{withUID("attempt-0")}}
		req := request.Request{Namespace: ns, Step: step, Event: "webhook/ev-1"}
		if _, err := f.svc.Handle(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "wf-uid", Targets: []lookup.Target{withUID("attempt-0"), withUID("attempt-1")}}
		res, err := f.svc.Handle(t.Context(), req)
		if err != nil || res.Phase != v1alpha1.PhaseSucceeded || len(res.AlreadyReleased) != 1 {
			t.Fatalf("retry: %v, %s, already released %v", err, res.Phase, res.AlreadyReleased)
		}
		if got := strings.Join(f.releaser.calls, ","); got != "attempt-0/main/after" {
			t.Errorf("releases %s, want attempt-0 once and never attempt-1", got)
		}
		// Another event is another request.
		if _, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Step: step, Event: "webhook/ev-2"}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.releaser.calls, ","); got != "attempt-0/main/after,attempt-0/main/after,attempt-1/main/after" {
			t.Errorf("releases %s after a new event", got)
		}
	})
	t.Run("failed for a moment, retried on the same pod only", func(t *testing.T) {
		f := newFixture()
		f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "wf-uid", Targets: []lookup.Target{withUID("attempt-0")}}
		f.releaser.errs["attempt-0"] = fault.Transientf("stream reset")
		req := request.Request{Namespace: ns, Step: step, Event: "webhook/ev-1"}
		if _, err := f.svc.Handle(t.Context(), req); fault.KindOf(err) != fault.Transient {
			t.Fatalf("first try: %v", err)
		}
		delete(f.releaser.errs, "attempt-0")
		f.finder.result = lookup.Result{Workflow: "wf", WorkflowUID: "wf-uid", Targets: []lookup.Target{withUID("attempt-0"), withUID("attempt-1")}}
		if _, err := f.svc.Handle(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.releaser.calls, ","); got != "attempt-0/main/after,attempt-0/main/after" {
			t.Errorf("releases %s, want attempt-0 tried twice and attempt-1 never", got)
		}
	})
}

// The webhook path has its own allow-list: a served namespace outside it refuses a direct request before
// any lookup or release, while a Resume there is carried out as usual (RBAC on Resumes guards that path).
func TestWebhookNamespaces(t *testing.T) {
	const other = "team-b"
	f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
	f.svc.cfg.Namespaces = NewNamespaces(ns, other)
	f.svc.cfg.WebhookNamespaces = NewNamespaces(ns)
	f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
	step := request.Step{Workflow: "wf", Template: "step"}

	res, err := f.svc.Handle(t.Context(), request.Request{Namespace: other, Step: step})
	if fault.KindOf(err) != fault.Denied || res.Phase != v1alpha1.PhaseFailed || res.Reason != ReasonNotServed {
		t.Fatalf("direct request into %s: %s/%s, error %v; want Failed/%s and Denied", other, res.Phase, res.Reason, err, ReasonNotServed)
	}
	if msg := err.Error(); !strings.Contains(msg, "not open to webhook requests") || !strings.Contains(msg, "--webhook-namespaces") {
		t.Errorf("refusal %q does not say why or what to change", msg)
	}
	if f.finder.calls.Load() != 0 || len(f.releaser.calls) != 0 || f.store.updates != 0 || len(f.events.events) != 0 {
		t.Fatalf("a refused direct request looked up %d times, released %v, wrote %d statuses, recorded %v",
			f.finder.calls.Load(), f.releaser.calls, f.store.updates, f.events.events)
	}

	if _, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Step: step}); err != nil {
		t.Fatalf("direct request into %s, which is open to the webhook: %v", ns, err)
	}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatalf("a Resume is not governed by the webhook list: %v", err)
	}
	if len(f.releaser.calls) != 2 {
		t.Errorf("releases %v, want one for the webhook request and one for the Resume", f.releaser.calls)
	}

	// The zero value opens the webhook nowhere.
	f.svc.cfg.WebhookNamespaces = Namespaces{}
	if _, err := f.svc.Handle(t.Context(), request.Request{Namespace: ns, Step: step}); fault.KindOf(err) != fault.Denied {
		t.Errorf("direct request with no webhook namespaces = %v, want Denied", err)
	}
}
