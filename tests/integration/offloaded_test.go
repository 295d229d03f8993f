package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

const (
	offloadVersion  = "fnv:123"
	argoServerToken = "argo-server-test-token"
)

func withArgoServer(url, tokenFile string) serverOption {
	return func(o *app.Options) { o.Resume.ArgoServerURL, o.Resume.ArgoServerToken = url, tokenFile }
}

// offloadedHelloWorld creates hello-world as the API server holds a workflow whose node status Argo
// offloaded to its database: no status.nodes, no compressedNodes, only offloadNodeStatusVersion. It runs
// the paused step's pod and returns the full workflow (nodes included) with the API server's UID, which is
// what argo-server returns.
func (e *env) offloadedHelloWorld() *wfv1.Workflow {
	e.t.Helper()
	full := fixture.HelloWorld(e.ns)
	offloaded := full.DeepCopy()
	offloaded.Status.Nodes = nil
	offloaded.Status.CompressedNodes = ""
	offloaded.Status.OffloadNodeStatusVersion = offloadVersion
	created := e.createWorkflow(offloaded)
	stored, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Get(rig.Context(e.t, 10*time.Second), fixture.HelloWorkflow, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(stored.Status.Nodes) != 0 || stored.Status.CompressedNodes != "" || stored.Status.OffloadNodeStatusVersion != offloadVersion {
		e.t.Fatalf("stored workflow status: %d nodes, compressedNodes %q, offloadNodeStatusVersion %q; want only the offload version",
			len(stored.Status.Nodes), stored.Status.CompressedNodes, stored.Status.OffloadNodeStatusVersion)
	}
	full.ObjectMeta = *created.ObjectMeta.DeepCopy()
	full.Status.OffloadNodeStatusVersion = offloadVersion
	e.runPod(full, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	return full
}

// fakeArgoServer plays argo-server's GET /api/v1/workflows/{namespace}/{name} for one workflow.
type fakeArgoServer struct {
	*httptest.Server
	tokenFile string

	mu       sync.Mutex
	requests []string // "METHOD path authorized"
}

func startFakeArgoServer(t *testing.T, wf *wfv1.Workflow) *fakeArgoServer {
	t.Helper()
	body, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeArgoServer{tokenFile: filepath.Join(t.TempDir(), "token")}
	// A mounted token usually ends with a newline; the server must trim it.
	if err := os.WriteFile(a.tokenFile, []byte(argoServerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/workflows/" + wf.Namespace + "/" + wf.Name
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		authorized := req.Header.Get("Authorization") == "Bearer "+argoServerToken
		a.mu.Lock()
		a.requests = append(a.requests, req.Method+" "+req.URL.Path+" "+map[bool]string{true: "authorized", false: "unauthorized"}[authorized])
		a.mu.Unlock()
		switch {
		case !authorized:
			http.Error(w, `{"code":16,"message":"token not valid"}`, http.StatusUnauthorized)
		case req.Method != http.MethodGet || req.URL.Path != path:
			http.Error(w, `{"code":5,"message":"not found"}`, http.StatusNotFound)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *fakeArgoServer) expectRequests(t *testing.T, wf *wfv1.Workflow) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	want := "GET /api/v1/workflows/" + wf.Namespace + "/" + wf.Name + " authorized"
	if len(a.requests) == 0 {
		t.Fatalf("argo-server was never asked")
	}
	for _, r := range a.requests {
		if r != want {
			t.Errorf("argo-server got %q, want only %q", r, want)
		}
	}
}

// The Workflow in the API server carries no nodes, Argo offloaded them: the server reads them from
// argo-server, with its bearer token, and only if argo-server's workflow is the API server's (same UID).
func TestOffloadedNodesFromArgoServer(t *testing.T) {
	t.Run("from argo-server", func(t *testing.T) {
		e := newEnv(t)
		full := e.offloadedHelloWorld()
		argo := startFakeArgoServer(t, full)
		e.srv = startServer(t, e.r.AdminConfig(), []string{e.ns}, withArgoServer(argo.URL, argo.tokenFile))
		u := e.createResume("offloaded", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

		expectOK(t, e.srv.fireResume(t, u), 1)
		e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
		res, _ := e.resume("offloaded")
		expectSucceeded(t, res, helloReleased)
		argo.expectRequests(t, full)
		e.waitPodSucceeded(fixture.HelloPodV2)
	})

	t.Run("without argo-server", func(t *testing.T) {
		e := setup(t)
		e.offloadedHelloWorld()
		u := e.createResume("offloaded", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

		expectCode(t, e.srv.fireResume(t, u), codes.FailedPrecondition, "--argo-server-url")
		res, _ := e.resume("offloaded")
		expectFailed(t, res, resume.ReasonNotReleasable, "--argo-server-url")
		e.expectEvent("offloaded", corev1.EventTypeWarning, resume.ReasonNotReleasable)
		e.expectNoCalls()
	})

	t.Run("another workflow of that name", func(t *testing.T) {
		e := newEnv(t)
		full := e.offloadedHelloWorld()
		namesake := full.DeepCopy()
		namesake.UID = types.UID("11111111-2222-3333-4444-555555555555")
		argo := startFakeArgoServer(t, namesake)
		e.srv = startServer(t, e.r.AdminConfig(), []string{e.ns}, withArgoServer(argo.URL, argo.tokenFile))
		u := e.createResume("offloaded", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

		expectCode(t, e.srv.fireResume(t, u), codes.FailedPrecondition, string(namesake.UID))
		res, _ := e.resume("offloaded")
		expectFailed(t, res, resume.ReasonNotReleasable, "another workflow of that name")
		argo.expectRequests(t, full)
		e.expectNoCalls()
	})
}
