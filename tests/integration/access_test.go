package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func withMetrics() serverOption {
	return func(o *app.Options) { o.Metrics.Address = "127.0.0.1:0" }
}

func withResync(d time.Duration) serverOption {
	return func(o *app.Options) { o.Revisits.Resync = d }
}

// namespaceReady scrapes resume_trigger_namespace_ready from the server's /metrics, by served_namespace.
func (s *server) namespaceReady(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.app.MetricsAddr()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `resume_trigger_namespace_ready{served_namespace="`)
		if !ok {
			continue
		}
		ns, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return nil, fmt.Errorf("unreadable line %q", sc.Text())
		}
		if out[ns], err = strconv.ParseFloat(value, 64); err != nil {
			return nil, err
		}
	}
	return out, sc.Err()
}

// bindServer binds the server's ServiceAccount (in namespace saNS) to a role in ns, as the install's
// RoleBinding does.
func bindServer(t *testing.T, r *rig.Rig, ns, saNS string, role rbacv1.RoleRef) {
	t.Helper()
	_, err := r.Client().RbacV1().RoleBindings(ns).Create(rig.Context(t, 10*time.Second), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccount},
		RoleRef:    role,
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: saNS}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// The server, as the shipped ServiceAccount, serves three namespaces: its RoleBinding exists in one, is
// missing in another, and in the third it is bound to a role without pods/exec. The gauge says which are
// ready from the start; a Resume where a right is missing ends Failed NotPermitted naming the binding
// (or, where the server may not even write its status, the request is refused with that text), with no
// exec and no request the API server refuses; the missing binding, once created, turns the namespace
// ready at the next resync and its next Resume is released.
func TestServerReviewsItsOwnRights(t *testing.T) {
	home := newEnv(t)
	missing := newEnv(t)
	partial := newEnv(t)
	applyNamespaceInstall(t, home.r, home.ns)
	saConfig := home.r.ServiceAccountConfig(home.ns, serviceAccount)
	sa, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}

	// partial: everything the ClusterRole grants but exec.
	ctx := rig.Context(t, 30*time.Second)
	noExec := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "resume-trigger-no-exec"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"get"}},
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"resumes"}, Verbs: []string{"get", "list", "delete"}},
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"resumes/status"}, Verbs: []string{"update"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	if _, err := home.r.Client().RbacV1().Roles(partial.ns).Create(ctx, noExec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bindServer(t, home.r, partial.ns, home.ns, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: noExec.Name})
	// Both bindings are in effect before the server's first review, so its first verdict is the one tested.
	if err := rig.Eventually(ctx, func() error {
		for _, ns := range []string{home.ns, partial.ns} {
			if ok, err := may(ctx, sa, authorizationv1.ResourceAttributes{Namespace: ns, Group: v1alpha1.GroupVersion.Group, Resource: "resumes", Subresource: "status", Verb: "update"}); err != nil || !ok {
				return fmt.Errorf("binding in %s not in effect yet: %v", ns, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*env{home, missing, partial} {
		e.pausedHelloWorld()
	}

	resync := 2 * time.Second
	srv := startServer(t, saConfig, []string{home.ns, missing.ns, partial.ns}, withMetrics(), withResync(resync))
	var ready map[string]float64
	scrape := rig.Context(t, 20*time.Second)
	if err := rig.Eventually(scrape, func() (err error) {
		ready, err = srv.namespaceReady(scrape)
		if err == nil && len(ready) != 3 {
			err = fmt.Errorf("resume_trigger_namespace_ready has %d series: %v", len(ready), ready)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{home.ns: 1, missing.ns: 0, partial.ns: 0}
	for ns, v := range want {
		if ready[ns] != v {
			t.Errorf("resume_trigger_namespace_ready{served_namespace=%q} = %v, want %v (all: %v)", ns, ready[ns], v, ready)
		}
	}
	advice := fmt.Sprintf("create RoleBinding %s in namespace %s (roleRef ClusterRole %s, subject ServiceAccount %s/%s)", serviceAccount, missing.ns, serviceAccount, home.ns, serviceAccount)
	if !strings.Contains(srv.logs.String(), advice) {
		t.Errorf("the log does not say %q:\n%s", advice, srv.logs)
	}

	t.Run("a Resume where exec is not granted ends NotPermitted", func(t *testing.T) {
		e := &env{t: t, r: partial.r, ns: partial.ns, wfc: partial.wfc}
		u := e.createResume("no-exec", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		f := srv.fireResume(t, u)
		expectCode(t, f, codes.PermissionDenied, "may not create pods/exec, get pods/exec in namespace "+e.ns)
		res, _ := e.resume("no-exec")
		expectFailed(t, res, resume.ReasonNotPermitted, "create RoleBinding "+serviceAccount+" in namespace "+e.ns)
		e.expectEvent("no-exec", corev1.EventTypeWarning, resume.ReasonNotPermitted)
		e.expectNoCalls()
	})

	t.Run("a Resume where nothing is granted is refused without a request", func(t *testing.T) {
		e := &env{t: t, r: missing.r, ns: missing.ns, wfc: missing.wfc}
		u := e.createResume("no-binding", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		f := srv.fireResume(t, u)
		expectCode(t, f, codes.PermissionDenied, advice)
		if res, _ := e.resume("no-binding"); res.Status.Phase != "" {
			t.Errorf("the server wrote status %+v where it may not", res.Status)
		}
		e.expectNoCalls()
		events, err := e.r.AuditEvents()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Identity() == "system:serviceaccount:"+home.ns+":"+serviceAccount && ev.ObjectRef != nil && ev.ObjectRef.Namespace == e.ns {
				t.Errorf("the server sent %s %s in %s (code %d), where it knows it may not", ev.Verb, ev.Resource(), e.ns, ev.Code())
			}
		}
	})

	t.Run("served and granted, a Resume is released", func(t *testing.T) {
		e := &env{t: t, r: home.r, ns: home.ns, wfc: home.wfc}
		u := e.createResume("granted", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		expectOK(t, srv.fireResume(t, u), 1)
		e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	})

	t.Run("the missing RoleBinding, once created, turns the namespace ready at the next resync", func(t *testing.T) {
		e := &env{t: t, r: missing.r, ns: missing.ns, wfc: missing.wfc}
		granted := time.Now()
		bindServer(t, e.r, e.ns, home.ns, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: serviceAccount})
		scrape := rig.Context(t, 10*resync)
		if err := rig.Eventually(scrape, func() error {
			ready, err := srv.namespaceReady(scrape)
			if err == nil && ready[e.ns] != 1 {
				err = fmt.Errorf("resume_trigger_namespace_ready{served_namespace=%q} = %v", e.ns, ready[e.ns])
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("ready %v after the RoleBinding was created (resync %v)", time.Since(granted).Round(time.Millisecond), resync)
		if !strings.Contains(srv.logs.String(), "now holds every right") {
			t.Errorf("no line says %s turned ready:\n%s", e.ns, srv.logs)
		}
		u := e.createResume("after-grant", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
		expectOK(t, srv.fireResume(t, u), 1)
		e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	})
}
