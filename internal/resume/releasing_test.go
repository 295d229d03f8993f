package resume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	wffake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	fx "github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
)

// emissary is an Executor that does what Argo's emissary does once the marker exists: the paused
// container ends (here with exit code 3, the command's own). cut, when set, is the error the exec then
// reports instead of its exit status: its stream broke after the touch ran.
type emissary struct {
	kube  *k8sfake.Clientset
	cut   error
	execs int
}

func (e *emissary) Exec(ctx context.Context, namespace, pod, container string, argv []string) error {
	e.execs++
	p, err := e.kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	fx.SetTerminated(p, container, 3)
	if _, err := e.kube.CoreV1().Pods(namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return e.cut
}

// A release that happened ends Succeeded with the pod named, however its outcome was lost: through the
// real lookup and releaser over fake clients, the released container ends (as Argo's emissary makes it),
// so the next look finds it terminated. Before status.releasing, that look recorded Failed/NotReleasable.
func TestALostOutcomeIsNotAFailure(t *testing.T) {
	tests := map[string]struct {
		cut         error // the exec's stream breaks after the touch
		failWrite   bool  // the status write after the touch fails once
		expLooks    int   // looks until the Resume is Succeeded
		expExecs    int
		expReleased bool // the first look's answer already names the release
	}{
		"the status write after the touch fails": {failWrite: true, expLooks: 2, expExecs: 1},
		"the exec's stream is cut after the touch": {
			cut: errors.New("error reading from error stream: next reader: websocket: close 1006 (abnormal closure): unexpected EOF"), expLooks: 1, expExecs: 1, expReleased: true,
		},
		"both": {
			cut: errors.New("stream error: stream ID 3; INTERNAL_ERROR"), failWrite: true, expLooks: 2, expExecs: 1, expReleased: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			node := fx.PodNode("wf", "wf[0].step", "step", "step")
			wf := fx.Workflow(ns, "wf", node)
			pod := fx.Pod(wf, node, "wf-step-1", fx.Container("main", fx.PauseAfter))
			kube := k8sfake.NewClientset(pod)
			exec := &emissary{kube: kube, cut: tc.cut}
			rel, err := release.New(release.Config{Exec: exec, Pods: kube, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(newResume("r", v1alpha1.ResumeStatus{}))
			f.svc.cfg.Finder = &lookup.Finder{Workflows: fx.Workflows{Client: wffake.NewSimpleClientset(wf)}, Pods: kube}
			f.svc.cfg.Releaser = rel
			if tc.failWrite {
				// The announcement before the exec is written; the outcome after it is not.
				f.store.failWith, f.store.failAfter = apierrors.NewServiceUnavailable("etcd leader changed"), 1
			}

			var res Result
			for look := 1; look <= tc.expLooks; look++ {
				res, err = f.svc.Handle(t.Context(), resumeRequest("r"))
				if look == 1 && tc.expReleased && (len(res.Released) != 1 || res.Released[0].Pod != pod.Name) {
					t.Errorf("first look released %+v, want %s", res.Released, pod.Name)
				}
				if look < tc.expLooks && fault.KindOf(err) != fault.Transient {
					t.Fatalf("look %d: %v, want a transient error (the outcome was not recorded)", look, err)
				}
			}
			if err != nil {
				t.Fatalf("last look: %v", err)
			}
			st := f.store.theResume().Status
			if st.Phase != v1alpha1.PhaseSucceeded || st.Reason != ReasonReleased {
				t.Fatalf("status %s/%s %q, want Succeeded/Released", st.Phase, st.Reason, st.Message)
			}
			if len(st.Released) != 1 || st.Released[0].Pod != pod.Name || st.Released[0].Container != "main" || st.Released[0].Stage != v1alpha1.StageAfter {
				t.Fatalf("released %+v, want %s/main (after)", st.Released, pod.Name)
			}
			if c := st.Released[0].ExitCode; c == nil || *c != 3 {
				t.Errorf("released exit code %v, want the container's 3", c)
			}
			if st.ReleasedCount != 1 || len(st.Releasing) != 0 {
				t.Errorf("releasedCount %d, releasing %+v: want 1 and none left", st.ReleasedCount, st.Releasing)
			}
			if exec.execs != tc.expExecs {
				t.Errorf("%d execs, want %d", exec.execs, tc.expExecs)
			}
		})
	}
}

// The next look decides each announced release by what became of its container.
func TestReleasingIsConfirmed(t *testing.T) {
	announced := func(pods ...string) func(*v1alpha1.Resume) {
		return func(r *v1alpha1.Resume) {
			r.Status.Phase = v1alpha1.PhasePending
			for _, p := range pods {
				r.Status.Releasing = append(r.Status.Releasing, v1alpha1.ReleasingTarget{
					Node: "wf-" + p, Pod: p, PodUID: "uid-" + p, Container: "main", Stage: v1alpha1.StageAfter, Time: metav1.NewTime(epoch),
				})
			}
		}
	}
	ended := func(code int32) release.Confirmation {
		return release.Confirmation{Fate: release.FateEnded, ExitCode: &code}
	}
	terminated := func(pod string) lookup.Skip {
		return lookup.Skip{Node: "wf-" + pod, Pod: pod, Reason: fault.Preconditionf("container main in pod %s has terminated (exit 0): its pause is over", pod)}
	}
	tests := map[string]struct {
		now        time.Duration // after epoch; the deadline is at 15 minutes
		mutate     func(*v1alpha1.Resume)
		fates      map[string]release.Confirmation
		confirmErr error
		result     lookup.Result
		findErr    error
		expPhase   v1alpha1.Phase
		expReason  string
		expCalls   []string
		expRel     []string // pods in status.released
		expExit    map[string]int32
		expOpen    []string // pods left in status.releasing
	}{
		"ended after the touch: released, with its exit code": {
			mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": ended(7)},
			result: lookup.Result{Workflow: "wf", Skipped: []lookup.Skip{terminated("p1")}}, findErr: terminated("p1").Reason,
			expPhase: v1alpha1.PhaseSucceeded, expReason: ReasonReleased, expRel: []string{"p1"}, expExit: map[string]int32{"p1": 7},
		},
		"the pod is gone (Argo's pod GC after the release): released": {
			mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateGone}},
			findErr:  fault.Preconditionf("node wf-p1 has finished (Succeeded): nothing is paused"),
			expPhase: v1alpha1.PhaseSucceeded, expReason: ReasonReleased, expRel: []string{"p1"},
		},
		"still running: touched again (touch is idempotent)": {
			mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateRunning}},
			result:   lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}},
			expPhase: v1alpha1.PhaseSucceeded, expReason: ReasonReleased, expCalls: []string{"p1/main/after"}, expRel: []string{"p1"},
		},
		"the pod was replaced: not released by us, the lookup decides": {
			mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateReplaced}},
			findErr:  fault.Preconditionf("container main in pod p1 has terminated (exit 1): its pause is over"),
			expPhase: v1alpha1.PhaseFailed, expReason: ReasonNotReleasable,
		},
		"the pod cannot be read: the announcement stays, the lookup decides what may": {
			mutate: announced("p1"), confirmErr: fault.Transientf("connection refused"),
			findErr:  fault.Transientf("get workflow: connection refused"),
			expPhase: v1alpha1.PhasePending, expReason: ReasonWaiting, expOpen: []string{"p1"},
		},
		"past the deadline, a started release is still confirmed": {
			now: 20 * time.Minute, mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": ended(0)},
			findErr:  terminated("p1").Reason,
			expPhase: v1alpha1.PhaseSucceeded, expReason: ReasonReleased, expRel: []string{"p1"}, expExit: map[string]int32{"p1": 0},
		},
		"past the deadline, a started release of a running container is finished, nothing else": {
			now: 20 * time.Minute, mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateRunning}},
			result:   lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1"), target("p2")}},
			expPhase: v1alpha1.PhaseFailed, expReason: ReasonDeadlineExceeded, expCalls: []string{"p1/main/after"}, expRel: []string{"p1"},
		},
		"past the deadline, a started release whose pod is not running any more ends it": {
			now: 20 * time.Minute, mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateRunning}},
			findErr:  fault.Transientf("pod p1 is being deleted"),
			expPhase: v1alpha1.PhaseFailed, expReason: ReasonDeadlineExceeded, expOpen: []string{"p1"},
		},
		"past the deadline, a started release the lookup does not find again ends it": {
			now: 20 * time.Minute, mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": {Fate: release.FateRunning}},
			result:   lookup.Result{Workflow: "wf"},
			expPhase: v1alpha1.PhaseFailed, expReason: ReasonDeadlineExceeded, expOpen: []string{"p1"},
		},
		"past the deadline with nothing started: DeadlineExceeded, nothing touched": {
			now: 20 * time.Minute, mutate: bound("run-a"),
			result:   lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}},
			expPhase: v1alpha1.PhaseFailed, expReason: ReasonDeadlineExceeded,
		},
		"a template's other pods still waiting keep it Pending beside the confirmed release": {
			mutate: announced("p1"), fates: map[string]release.Confirmation{"p1": ended(0)},
			result:   lookup.Result{Workflow: "wf", Skipped: []lookup.Skip{terminated("p1"), notReadyYet("p2")}},
			findErr:  fault.Transientf("nothing to release yet"),
			expPhase: v1alpha1.PhasePending, expReason: ReasonWaiting, expRel: []string{"p1"}, expExit: map[string]int32{"p1": 0},
		},
		"an entry already released is not confirmed again": {
			mutate: func(r *v1alpha1.Resume) {
				announced("p1")(r)
				r.Status.Released = []v1alpha1.ReleasedTarget{{Node: "wf-p1", Pod: "p1", Container: "main", Stage: v1alpha1.StageAfter}}
			},
			fates:    map[string]release.Confirmation{"p1": ended(9)},
			findErr:  terminated("p1").Reason,
			expPhase: v1alpha1.PhaseSucceeded, expReason: ReasonPartiallyReleased, expRel: []string{"p1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, _ := lifecycleFixture(epoch.Add(tc.now), tc.mutate)
			f.releaser.fates, f.releaser.confirmErr = tc.fates, tc.confirmErr
			f.finder.result, f.finder.err = tc.result, tc.findErr
			_, _ = f.svc.Handle(t.Context(), resumeRequest("r"))
			st := f.store.theResume().Status
			if st.Phase != tc.expPhase || st.Reason != tc.expReason {
				t.Fatalf("status %s/%s %q, want %s/%s", st.Phase, st.Reason, st.Message, tc.expPhase, tc.expReason)
			}
			if !slices.Equal(f.releaser.calls, tc.expCalls) {
				t.Errorf("released %v, want %v", f.releaser.calls, tc.expCalls)
			}
			var rel, open []string
			for _, r := range st.Released {
				rel = append(rel, r.Pod)
				want, ok := tc.expExit[r.Pod]
				switch {
				case ok && (r.ExitCode == nil || *r.ExitCode != want):
					t.Errorf("%s exit code %v, want %d", r.Pod, r.ExitCode, want)
				case !ok && r.ExitCode != nil:
					t.Errorf("%s exit code %d, want none", r.Pod, *r.ExitCode)
				}
			}
			for _, r := range st.Releasing {
				open = append(open, r.Pod)
			}
			if !slices.Equal(rel, tc.expRel) || !slices.Equal(open, tc.expOpen) {
				t.Errorf("released %v releasing %v, want %v and %v", rel, open, tc.expRel, tc.expOpen)
			}
		})
	}
}

// A loop of thousands of pods does not grow the status without bound: the most recent releases are
// listed, releasedCount counts them all, and each status write announces at most maxReleasing releases.
func TestReleasedIsBounded(t *testing.T) {
	const pods = maxReleased + 120
	f, _ := lifecycleFixture(epoch, nil)
	for i := range pods {
		f.finder.result.Targets = append(f.finder.result.Targets, target(fmt.Sprintf("p%04d", i)))
	}
	f.finder.result.Workflow = "wf"
	var most int
	f.store.onUpdate = func(s *store) {
		for _, o := range s.objs {
			most = max(most, len(o.Status.Releasing))
		}
	}
	if _, err := f.svc.Handle(t.Context(), resumeRequest("r")); err != nil {
		t.Fatal(err)
	}
	st := f.store.theResume().Status
	if st.Phase != v1alpha1.PhaseSucceeded || st.ReleasedCount != pods || len(st.Released) != maxReleased {
		t.Fatalf("phase %s, releasedCount %d, %d listed: want Succeeded, %d, %d", st.Phase, st.ReleasedCount, len(st.Released), pods, maxReleased)
	}
	if last := st.Released[len(st.Released)-1].Pod; last != fmt.Sprintf("p%04d", pods-1) {
		t.Errorf("last listed %s, want the most recent release", last)
	}
	if most == 0 || most > maxReleasing {
		t.Errorf("at most %d releases announced in one write, want 1..%d", most, maxReleasing)
	}
	if len(st.Releasing) != 0 {
		t.Errorf("%d releases left announced", len(st.Releasing))
	}
	if len(f.releaser.calls) != pods {
		t.Errorf("%d releases, want %d", len(f.releaser.calls), pods)
	}
}

func TestAddReleased(t *testing.T) {
	rt := func(pod string) v1alpha1.ReleasedTarget {
		return v1alpha1.ReleasedTarget{Pod: pod, Container: "main", Stage: v1alpha1.StageAfter}
	}
	t.Run("a Resume written before releasedCount counts its list", func(t *testing.T) {
		list, count := addReleased([]v1alpha1.ReleasedTarget{rt("a"), rt("b")}, 0, []v1alpha1.ReleasedTarget{rt("b"), rt("c")})
		if count != 3 || len(list) != 3 {
			t.Fatalf("count %d, %d listed, want 3 and 3", count, len(list))
		}
	})
	t.Run("the most recent are kept", func(t *testing.T) {
		var add []v1alpha1.ReleasedTarget
		for i := range maxReleased + 1 {
			add = append(add, rt(fmt.Sprint(i)))
		}
		list, count := addReleased(nil, 0, add)
		if count != maxReleased+1 || len(list) != maxReleased || list[0].Pod != "1" {
			t.Fatalf("count %d, %d listed from %s, want %d, %d from 1", count, len(list), list[0].Pod, maxReleased+1, maxReleased)
		}
	})
}

func TestReleasingOfIsBounded(t *testing.T) {
	var start []lookup.Target
	for i := range maxReleasing + 5 {
		tg := target(fmt.Sprint(i))
		tg.PodUID = types.UID(fmt.Sprint("uid-", i))
		start = append(start, tg)
	}
	out := releasingOf(nil, nil, start, epoch)
	if len(out) != maxReleasing || out[len(out)-1].Pod != fmt.Sprint(maxReleasing+4) || out[0].PodUID != "uid-5" {
		t.Fatalf("%d entries from %s to %s, want the newest %d", len(out), out[0].Pod, out[len(out)-1].Pod, maxReleasing)
	}
}

// What a failed exec leaves announced: a transport error may have come after the touch ran, so its
// announcement stays for the next look to confirm; a touch that answered non-zero, or a release that failed
// for good, created no marker, and a container that ends later was not released by it.
func TestAnnouncementAfterAFailedExec(t *testing.T) {
	tests := map[string]struct {
		err     error
		expOpen bool
	}{
		"the stream broke: kept":          {err: fault.Transientf("exec into pod p1 container main failed: %w", errors.New("unexpected EOF")), expOpen: true},
		"the touch exited 1: dropped":     {err: fault.Transientf("exec into pod p1 container main failed: %w", &release.ExitError{Code: 1, Output: "read-only file system"})},
		"the pod was deleted: dropped":    {err: fault.NotFoundf("pod p1 was deleted while releasing it")},
		"no container has touch: dropped": {err: fault.Preconditionf("no container of pod p1 can create the marker")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, _ := lifecycleFixture(epoch, nil)
			f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
			f.releaser.errs["p1"] = tc.err
			_, _ = f.svc.Handle(t.Context(), resumeRequest("r"))
			st := f.store.theResume().Status
			if open := len(st.Releasing) == 1 && st.Releasing[0].Pod == "p1"; open != tc.expOpen || len(st.Releasing) > 1 {
				t.Fatalf("releasing %+v, want p1 kept: %v", st.Releasing, tc.expOpen)
			}
		})
	}
}
