package resume

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
)

// apiServer answers the typed client as an API server would, from canned JSON bodies by method and path,
// and records what it was sent.
type apiServer struct {
	mu       sync.Mutex
	answers  map[string]string // "METHOD path?query" → JSON body; absent: 404
	requests []string
	bodies   []map[string]any
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		key += "?" + r.URL.RawQuery
	}
	s.requests = append(s.requests, key)
	body, _ := io.ReadAll(r.Body)
	var sent map[string]any
	if len(body) > 0 {
		_ = json.Unmarshal(body, &sent)
	}
	s.bodies = append(s.bodies, sent)
	w.Header().Set("Content-Type", "application/json")
	answer, ok := s.answers[key]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(apierrors.NewNotFound(v1alpha1.Resource.GroupResource(), key).Status())
		return
	}
	_, _ = io.WriteString(w, answer)
}

func newAPIResumes(t *testing.T, answers map[string]string) (APIResumes, *apiServer) {
	t.Helper()
	s := &apiServer{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := versioned.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return APIResumes{Client: c}, s
}

const resumesPath = "/apis/argocontroller.io/v1alpha1/namespaces/argo/resumes"

func resumeJSON(name, status string) string {
	return fmt.Sprintf(`{"apiVersion":"argocontroller.io/v1alpha1","kind":"Resume",
		"metadata":{"name":%q,"namespace":"argo","uid":"uid-%s","generation":3,"resourceVersion":"41"},
		"spec":{"Workflow-ID":"wf-1","TemplateName":"build","nodeID":"wf-1-123","nodeName":"wf-1[0].build","container":"main","stage":"after"},
		"status":%s}`, name, name, status)
}

// The Resume API as the server reads it: every spec field by its JSON name, the status, the metadata.
func TestAPIResumesGetDecodes(t *testing.T) {
	r, _ := newAPIResumes(t, map[string]string{
		"GET " + resumesPath + "/full": resumeJSON("full", `{"phase":"Succeeded","message":"done","observedGeneration":3,
			"released":[{"node":"wf-1-123","pod":"p","container":"main","stage":"after","via":"wait","time":"2026-01-02T03:04:05Z"}]}`),
		"GET " + resumesPath + "/bad": resumeJSON("bad", `{"phase":7}`),
	})
	got, err := r.Get(t.Context(), "argo", "full")
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := v1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "build", NodeID: "wf-1-123", NodeName: "wf-1[0].build", Container: "main", Stage: v1alpha1.StageAfter}
	if got.Spec != wantSpec || got.UID != "uid-full" || got.Generation != 3 || got.ResourceVersion != "41" {
		t.Errorf("got %+v %+v, want spec %+v uid-full generation 3 resourceVersion 41", got.ObjectMeta, got.Spec, wantSpec)
	}
	when := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	want := v1alpha1.ReleasedTarget{Node: "wf-1-123", Pod: "p", Container: "main", Stage: v1alpha1.StageAfter, Via: "wait", Time: when}
	if got.Status.Phase != v1alpha1.PhaseSucceeded || len(got.Status.Released) != 1 || !got.Status.Released[0].Time.Equal(&when) || got.Status.Released[0].Via != want.Via {
		t.Errorf("status %+v, want Succeeded with %+v", got.Status, want)
	}
	if _, err := r.Get(t.Context(), "argo", "absent"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a missing Resume: %v, want NotFound", err)
	}
	if got, err := r.Get(t.Context(), "argo", "bad"); err == nil {
		t.Errorf("Get of a Resume with a numeric phase: %+v, want a decode error", got)
	}
}

// A status write is an update of the status subresource, under the server's field manager, carrying the
// resourceVersion read (optimistic concurrency) and the status under its JSON names.
func TestAPIResumesUpdateStatus(t *testing.T) {
	r, s := newAPIResumes(t, map[string]string{
		"PUT " + resumesPath + "/r/status?fieldManager=resume-trigger": resumeJSON("r", `{"phase":"Succeeded"}`),
	})
	in := &v1alpha1.Resume{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "argo", ResourceVersion: "41"},
		Spec:       v1alpha1.ResumeSpec{WorkflowID: "wf"},
		Status: v1alpha1.ResumeStatus{Phase: v1alpha1.PhaseSucceeded, ObservedGeneration: 3, Released: []v1alpha1.ReleasedTarget{
			{Node: "n", Pod: "p", Container: "main", Stage: v1alpha1.StageBefore},
		}},
	}
	got, err := r.UpdateStatus(t.Context(), in)
	if err != nil {
		t.Fatalf("UpdateStatus: %v (requests %v)", err, s.requests)
	}
	if got.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("answer decoded as %+v", got.Status)
	}
	sent := s.bodies[0]
	meta, _ := sent["metadata"].(map[string]any)
	status, _ := sent["status"].(map[string]any)
	released, _ := status["released"].([]any)
	if sent["apiVersion"] != "argocontroller.io/v1alpha1" || sent["kind"] != "Resume" || meta["resourceVersion"] != "41" ||
		status["phase"] != "Succeeded" || status["observedGeneration"] != 3.0 || len(released) != 1 {
		t.Errorf("sent %v", sent)
	}
	if first, _ := released[0].(map[string]any); first["stage"] != "before" || first["via"] != nil {
		t.Errorf("sent released[0] %v, want stage before and no via", first)
	}
}

func TestAPIResumesDeleteChecksTheUID(t *testing.T) {
	r, s := newAPIResumes(t, map[string]string{"DELETE " + resumesPath + "/r": `{"kind":"Status","apiVersion":"v1","status":"Success"}`})
	if err := r.Delete(t.Context(), "argo", "r", "uid-r"); err != nil {
		t.Fatal(err)
	}
	pre, _ := s.bodies[0]["preconditions"].(map[string]any)
	if pre["uid"] != "uid-r" {
		t.Errorf("delete options %v, want the precondition uid uid-r", s.bodies[0])
	}
}

// List reads a page at a time, following the continue token, and visits every Resume of every page.
func TestAPIResumesListPages(t *testing.T) {
	list := func(cont string, names ...string) string {
		var items []string
		for _, n := range names {
			items = append(items, resumeJSON(n, `{}`))
		}
		return fmt.Sprintf(`{"apiVersion":"argocontroller.io/v1alpha1","kind":"ResumeList","metadata":{"continue":%q},"items":[%s]}`, cont, strings.Join(items, ","))
	}
	r, s := newAPIResumes(t, map[string]string{
		"GET " + resumesPath + "?limit=250":               list("next", "a", "b"),
		"GET " + resumesPath + "?continue=next&limit=250": list("", "c"),
	})
	var got []string
	if err := r.List(t.Context(), "argo", func(res *v1alpha1.Resume) { got = append(got, res.Name+":"+res.Spec.WorkflowID) }); err != nil {
		t.Fatalf("List: %v (requests %v)", err, s.requests)
	}
	if strings.Join(got, ",") != "a:wf-1,b:wf-1,c:wf-1" {
		t.Errorf("visited %v, want a, b, c with their spec", got)
	}
	err := r.List(t.Context(), "elsewhere", func(*v1alpha1.Resume) { t.Error("visited") })
	if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `list resumes in namespace "elsewhere"`) {
		t.Errorf("List error %v, want the API's NotFound, said to be a list", err)
	}
}
