package report

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

const testNS = "argo"

// newDynamic returns a fake dynamic client that knows resumes → ResumeList, seeded with objs.
func newDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.Resource: v1alpha1.Kind + "List"}, objs...)
}

// unstructuredResume is a Resume as the API server would hold it.
func unstructuredResume(name string, spec, status map[string]any) *unstructured.Unstructured {
	obj := map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata": map[string]any{
			"name":            name,
			"namespace":       testNS,
			"uid":             "uid-" + name,
			"generation":      int64(3),
			"resourceVersion": "41",
		},
		"spec": spec,
	}
	if status != nil {
		obj["status"] = status
	}
	return &unstructured.Unstructured{Object: obj}
}

var released = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func TestResumesGet(t *testing.T) {
	full := unstructuredResume("full", map[string]any{
		"Workflow-ID":  "wf-1",
		"TemplateName": "build",
		"nodeID":       "wf-1-123",
		"nodeName":     "wf-1[0].build",
		"container":    "main",
		"stage":        "after",
	}, map[string]any{
		"phase":              "Succeeded",
		"message":            "released 1 container",
		"observedGeneration": int64(3),
		"released": []any{map[string]any{
			"node": "wf-1-123", "pod": "wf-1-build-123", "container": "main", "stage": "after",
			"via": "wait", "time": "2026-01-02T03:04:05Z",
		}},
		"conditions": []any{map[string]any{
			"type": "Released", "status": "True", "reason": "Released", "message": "done",
			"observedGeneration": int64(3), "lastTransitionTime": "2026-01-02T03:04:05Z",
		}},
	})
	minimal := unstructuredResume("minimal", map[string]any{"Workflow-ID": "wf-2", "TemplateName": "test"}, nil)
	badPhase := unstructuredResume("bad", map[string]any{"Workflow-ID": "wf-3", "TemplateName": "t"}, map[string]any{"phase": int64(7)})

	tests := map[string]struct {
		name       string
		wantSpec   v1alpha1.ResumeSpec
		wantStatus v1alpha1.ResumeStatus
		wantErr    func(error) bool
		errText    string
	}{
		"decodes every spec field and the status": {
			name: "full",
			wantSpec: v1alpha1.ResumeSpec{
				WorkflowID: "wf-1", TemplateName: "build", NodeID: "wf-1-123", NodeName: "wf-1[0].build",
				Container: "main", Stage: v1alpha1.StageAfter,
			},
			wantStatus: v1alpha1.ResumeStatus{
				Phase: v1alpha1.PhaseSucceeded, Message: "released 1 container", ObservedGeneration: 3,
				Released: []v1alpha1.ReleasedTarget{{
					Node: "wf-1-123", Pod: "wf-1-build-123", Container: "main", Stage: v1alpha1.StageAfter, Via: "wait", Time: released,
				}},
				Conditions: []metav1.Condition{{
					Type: v1alpha1.ConditionReleased, Status: metav1.ConditionTrue, Reason: "Released", Message: "done",
					ObservedGeneration: 3, LastTransitionTime: released,
				}},
			},
		},
		"optional spec fields and a missing status stay empty": {
			name:     "minimal",
			wantSpec: v1alpha1.ResumeSpec{WorkflowID: "wf-2", TemplateName: "test"},
		},
		"a missing object is an API NotFound": {
			name:    "absent",
			wantErr: apierrors.IsNotFound,
		},
		"an undecodable object is a decode error naming it": {
			name:    "bad",
			wantErr: func(err error) bool { return err != nil && !apierrors.IsNotFound(err) },
			errText: "decode resume argo/bad",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &Resumes{Client: newDynamic(full, minimal, badPhase)}
			got, err := r.Get(t.Context(), testNS, tc.name)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("Get error = %v, not the error wanted", err)
				}
				if !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("Get error %q does not contain %q", err, tc.errText)
				}
				if got != nil {
					t.Errorf("Get returned %+v with the error, want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.Name != tc.name || got.Namespace != testNS || string(got.UID) != "uid-"+tc.name || got.Generation != 3 || got.ResourceVersion != "41" {
				t.Errorf("metadata = %+v, want %s/%s uid-%s generation 3 resourceVersion 41", got.ObjectMeta, testNS, tc.name, tc.name)
			}
			if got.Spec != tc.wantSpec {
				t.Errorf("spec = %+v, want %+v", got.Spec, tc.wantSpec)
			}
			if !equality.Semantic.DeepEqual(got.Status, tc.wantStatus) {
				t.Errorf("status = %+v, want %+v", got.Status, tc.wantStatus)
			}
		})
	}
}

func TestResumesUpdateStatus(t *testing.T) {
	status := v1alpha1.ResumeStatus{
		Phase:              v1alpha1.PhaseSucceeded,
		Message:            "released 2 containers",
		ObservedGeneration: 3,
		Released: []v1alpha1.ReleasedTarget{
			{Node: "n1", Pod: "p1", Container: "main", Stage: v1alpha1.StageBefore, Time: released},
			{Node: "n2", Pod: "p2", Container: "main", Stage: v1alpha1.StageAfter, Via: "wait", Time: released},
		},
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReleased, Status: metav1.ConditionTrue, Reason: "Released", Message: "2 released",
			ObservedGeneration: 3, LastTransitionTime: released,
		}},
	}
	conflict := apierrors.NewConflict(v1alpha1.Resource.GroupResource(), "r", errors.New("the object has been modified"))

	tests := map[string]struct {
		seed    bool
		reactor error // returned by a reactor on update resumes/status, nil for none
		wantErr func(error) bool
	}{
		"sends an update of the status subresource with apiVersion, kind and the status": {seed: true},
		"a missing object is an API NotFound":                                            {seed: false, wantErr: apierrors.IsNotFound},
		"a Conflict from the server is returned as a Conflict":                           {seed: true, reactor: conflict, wantErr: apierrors.IsConflict},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.seed {
				objs = append(objs, unstructuredResume("r", map[string]any{"Workflow-ID": "wf", "TemplateName": "t"}, map[string]any{"phase": "Pending"}))
			}
			client := newDynamic(objs...)
			if tc.reactor != nil {
				client.PrependReactor("update", "resumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
					return a.GetSubresource() == "status", nil, tc.reactor
				})
			}
			// What a caller holds: a typed Resume without TypeMeta.
			in := &v1alpha1.Resume{
				ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: testNS, UID: "uid-r", ResourceVersion: "41", Generation: 3},
				Spec:       v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "t"},
				Status:     status,
			}
			before := in.DeepCopy()
			got, err := (&Resumes{Client: client}).UpdateStatus(t.Context(), in)
			if !equality.Semantic.DeepEqual(in, before) {
				t.Errorf("UpdateStatus changed its argument: %+v", in)
			}

			var updates []k8stesting.UpdateAction
			for _, a := range client.Actions() {
				if u, ok := a.(k8stesting.UpdateAction); ok {
					updates = append(updates, u)
				}
			}
			if len(updates) != 1 {
				t.Fatalf("actions %v, want exactly one update", client.Actions())
			}
			a := updates[0]
			if a.GetVerb() != "update" || a.GetSubresource() != "status" || a.GetResource() != v1alpha1.Resource || a.GetNamespace() != testNS {
				t.Errorf("action %s %s/%s in %q, want update resumes/status in %q", a.GetVerb(), a.GetResource().Resource, a.GetSubresource(), a.GetNamespace(), testNS)
			}
			sent, ok := a.GetObject().(*unstructured.Unstructured)
			if !ok {
				t.Fatalf("sent %T, want *unstructured.Unstructured", a.GetObject())
			}
			if sent.GetAPIVersion() != "argocontroller.io/v1alpha1" || sent.GetKind() != "Resume" {
				t.Errorf("sent apiVersion %q kind %q, want argocontroller.io/v1alpha1 Resume", sent.GetAPIVersion(), sent.GetKind())
			}
			if sent.GetResourceVersion() != "41" || sent.GetName() != "r" {
				t.Errorf("sent %s resourceVersion %q, want r at 41 (optimistic concurrency)", sent.GetName(), sent.GetResourceVersion())
			}
			checkSentStatus(t, sent)
			if fm := a.(k8stesting.UpdateActionImpl).UpdateOptions.FieldManager; fm != v1alpha1.FieldManager {
				t.Errorf("field manager %q, want %q", fm, v1alpha1.FieldManager)
			}

			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("UpdateStatus error = %v, not the error wanted", err)
				}
				if got != nil {
					t.Errorf("UpdateStatus returned %+v with the error, want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("UpdateStatus: %v", err)
			}
			if !equality.Semantic.DeepEqual(got.Status, status) {
				t.Errorf("returned status = %+v, want %+v", got.Status, status)
			}
			stored, err := (&Resumes{Client: client}).Get(t.Context(), testNS, "r")
			if err != nil {
				t.Fatalf("Get after UpdateStatus: %v", err)
			}
			if !equality.Semantic.DeepEqual(stored.Status, status) {
				t.Errorf("stored status = %+v, want %+v", stored.Status, status)
			}
		})
	}
}

// checkSentStatus checks the status as it goes over the wire: field names and encodings.
func checkSentStatus(t *testing.T, sent *unstructured.Unstructured) {
	t.Helper()
	str := func(fields ...string) string {
		s, _, err := unstructured.NestedString(sent.Object, fields...)
		if err != nil {
			t.Errorf("%v: %v", fields, err)
		}
		return s
	}
	if p := str("status", "phase"); p != "Succeeded" {
		t.Errorf("status.phase = %q, want Succeeded", p)
	}
	if g, _, _ := unstructured.NestedInt64(sent.Object, "status", "observedGeneration"); g != 3 {
		t.Errorf("status.observedGeneration = %d, want 3", g)
	}
	if w := str("spec", "Workflow-ID"); w != "wf" {
		t.Errorf("spec.Workflow-ID = %q, want wf", w)
	}
	rel, _, _ := unstructured.NestedSlice(sent.Object, "status", "released")
	if len(rel) != 2 {
		t.Fatalf("status.released = %v, want 2 targets", rel)
	}
	second, _ := rel[1].(map[string]any)
	want := map[string]any{"node": "n2", "pod": "p2", "container": "main", "stage": "after", "via": "wait", "time": "2026-01-02T03:04:05Z"}
	for k, v := range want {
		if second[k] != v {
			t.Errorf("status.released[1].%s = %v, want %v", k, second[k], v)
		}
	}
	if first, _ := rel[0].(map[string]any); first["via"] != nil {
		t.Errorf("status.released[0].via = %v, want it omitted", first["via"])
	}
	conds, _, _ := unstructured.NestedSlice(sent.Object, "status", "conditions")
	if len(conds) != 1 {
		t.Fatalf("status.conditions = %v, want 1", conds)
	}
	c, _ := conds[0].(map[string]any)
	if c["type"] != "Released" || c["status"] != "True" || c["reason"] != "Released" || c["message"] != "2 released" || c["lastTransitionTime"] != "2026-01-02T03:04:05Z" {
		t.Errorf("status.conditions[0] = %v", c)
	}
}

// An update whose answer cannot be decoded is an error naming the object, not a half-filled Resume.
func TestResumesUpdateStatusUndecodableAnswer(t *testing.T) {
	tests := map[string]struct {
		answer  *unstructured.Unstructured
		errText string
	}{
		"a numeric phase in the answer": {
			answer:  unstructuredResume("r", map[string]any{"Workflow-ID": "wf"}, map[string]any{"phase": int64(1)}),
			errText: "decode resume argo/r",
		},
		"a string where released is a list": {
			answer:  unstructuredResume("r", map[string]any{"Workflow-ID": "wf"}, map[string]any{"released": "p1"}),
			errText: "decode resume argo/r",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := newDynamic()
			client.PrependReactor("update", "resumes", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, tc.answer, nil
			})
			res := &v1alpha1.Resume{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: testNS}}
			got, err := (&Resumes{Client: client}).UpdateStatus(context.Background(), res)
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("UpdateStatus error = %v, want one containing %q", err, tc.errText)
			}
			if got != nil {
				t.Errorf("UpdateStatus returned %+v with the error, want nil", got)
			}
		})
	}
}

func TestResumesList(t *testing.T) {
	var objs []runtime.Object
	for _, n := range []string{"a", "b", "c"} {
		objs = append(objs, unstructuredResume(n, map[string]any{"Workflow-ID": "wf", "TemplateName": "t"}, map[string]any{"phase": "Pending"}))
	}
	other := unstructuredResume("elsewhere", map[string]any{"Workflow-ID": "wf"}, nil)
	other.SetNamespace("other")
	objs = append(objs, other)
	tests := map[string]struct {
		namespace string
		want      []string
	}{
		"one namespace":  {namespace: testNS, want: []string{"argo/a", "argo/b", "argo/c"}},
		"all namespaces": {namespace: "", want: []string{"argo/a", "argo/b", "argo/c", "other/elsewhere"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &Resumes{Client: newDynamic(objs...)}
			var got []string
			err := r.List(t.Context(), tc.namespace, func(res *v1alpha1.Resume) {
				if res.Spec.WorkflowID != "wf" {
					t.Errorf("%s decoded without its spec", res.Name)
				}
				got = append(got, res.Namespace+"/"+res.Name)
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("an API error is returned", func(t *testing.T) {
		c := newDynamic()
		c.PrependReactor("list", "resumes", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(v1alpha1.Resource.GroupResource(), "", errors.New("no list"))
		})
		err := (&Resumes{Client: c}).List(t.Context(), testNS, func(*v1alpha1.Resume) { t.Error("visited") })
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "list resumes") {
			t.Errorf("error %v, want the Forbidden, said to be a list", err)
		}
	})
}

func TestResumesDeleteChecksTheUID(t *testing.T) {
	c := newDynamic(unstructuredResume("r", map[string]any{"Workflow-ID": "wf"}, nil))
	var preconditions []string
	c.PrependReactor("delete", "resumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.DeleteActionImpl).DeleteOptions
		if opts.Preconditions == nil || opts.Preconditions.UID == nil {
			preconditions = append(preconditions, "none")
		} else {
			preconditions = append(preconditions, string(*opts.Preconditions.UID))
		}
		return false, nil, nil
	})
	if err := (&Resumes{Client: c}).Delete(t.Context(), testNS, "r", "uid-r"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(preconditions, ",") != "uid-r" {
		t.Errorf("delete preconditions %v, want the uid uid-r", preconditions)
	}
	if _, err := c.Resource(v1alpha1.Resource).Namespace(testNS).Get(context.Background(), "r", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete: %v, want NotFound", err)
	}
}
