package resume

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// rights answers every namespace the same.
type rights struct {
	canRecord bool
	err       error
	asked     []string
}

func (r *rights) Permitted(namespace string) (bool, error) {
	r.asked = append(r.asked, namespace)
	if r.err == nil {
		return true, nil
	}
	return r.canRecord, r.err
}

func TestHandleWithoutRights(t *testing.T) {
	advice := errors.New("resume-trigger may not create pods/exec in namespace argo, which it serves: create RoleBinding resume-trigger in namespace argo")
	tests := map[string]struct {
		rights   *rights
		status   v1alpha1.ResumeStatus
		direct   bool
		expKind  fault.Kind
		expPhase v1alpha1.Phase // of the stored Resume; "" when it must stay unwritten
		expReas  string
		expCalls int // releases
		expFinds int32
		expEvent []string
	}{
		"every right held: the Resume is released as usual": {
			rights:   &rights{},
			expPhase: v1alpha1.PhaseSucceeded, expReas: ReasonReleased, expCalls: 1, expFinds: 1,
			expEvent: []string{"Normal Resume/r Released"},
		},
		"a right missing: the Resume ends Failed NotPermitted with the advice, nothing looked up or released": {
			rights:  &rights{canRecord: true, err: advice},
			expKind: fault.Denied, expPhase: v1alpha1.PhaseFailed, expReas: ReasonNotPermitted,
			expEvent: []string{"Warning Resume/r NotPermitted"},
		},
		"no right to write its status: the request is refused and the Resume left as it is": {
			rights:  &rights{canRecord: false, err: advice},
			expKind: fault.Denied, expReas: ReasonNotPermitted,
		},
		"a final Resume stays as it was": {
			rights:   &rights{canRecord: true, err: advice},
			status:   v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseSucceeded, Message: "released before"},
			expPhase: v1alpha1.PhaseSucceeded,
		},
		"a direct request is refused before any lookup": {
			rights:  &rights{canRecord: true, err: advice},
			direct:  true,
			expKind: fault.Denied, expReas: ReasonNotPermitted,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(newResume("r", tc.status))
			f.svc.cfg.Rights = tc.rights
			f.finder.result = lookup.Result{Workflow: "wf", Targets: []lookup.Target{target("p1")}}
			req := resumeRequest("r")
			if tc.direct {
				req = request.Request{Namespace: ns, Step: request.Step{Workflow: "wf", Template: "step"}}
			}
			res, err := f.svc.Handle(t.Context(), req)
			if got := fault.KindOf(err); (err == nil) != (tc.expKind == fault.Unknown) || (err != nil && got != tc.expKind) {
				t.Fatalf("err %v (kind %s), want kind %s", err, got, tc.expKind)
			}
			if tc.expReas != "" && res.Reason != tc.expReas {
				t.Errorf("result reason %q, want %q", res.Reason, tc.expReas)
			}
			if err != nil && !strings.Contains(err.Error(), "create RoleBinding resume-trigger in namespace argo") {
				t.Errorf("error %q does not say which RoleBinding to create", err)
			}
			if len(tc.rights.asked) != 1 || tc.rights.asked[0] != ns {
				t.Errorf("rights asked about %v, want [%s]", tc.rights.asked, ns)
			}
			if got := len(f.releaser.calls); got != tc.expCalls {
				t.Errorf("%d releases, want %d", got, tc.expCalls)
			}
			if got := f.finder.calls.Load(); got != tc.expFinds {
				t.Errorf("%d lookups, want %d", got, tc.expFinds)
			}
			stored := f.store.theResume()
			if tc.expPhase == "" {
				if f.store.updates != 0 {
					t.Errorf("status written %d times, want none: %+v", f.store.updates, stored.Status)
				}
			} else if stored.Status.Phase != tc.expPhase {
				t.Errorf("stored phase %q, want %q (message %q)", stored.Status.Phase, tc.expPhase, stored.Status.Message)
			}
			if tc.expPhase == v1alpha1.PhaseFailed {
				c := meta.FindStatusCondition(stored.Status.Conditions, v1alpha1.ConditionReleased)
				if stored.Status.Reason != ReasonNotPermitted || c == nil || c.Reason != ReasonNotPermitted || stored.Status.Message != advice.Error() {
					t.Errorf("stored reason %q, condition %+v, message %q; want %s with the advice", stored.Status.Reason, c, stored.Status.Message, ReasonNotPermitted)
				}
				if stored.Status.CompletionTime == nil {
					t.Error("a NotPermitted Resume has no completion time: it is not final")
				}
			}
			if got := strings.Join(f.events.events, ","); got != strings.Join(tc.expEvent, ",") {
				t.Errorf("events %q, want %q", got, tc.expEvent)
			}
		})
	}
}
