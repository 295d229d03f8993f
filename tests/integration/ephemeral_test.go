package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

const (
	ephemeralImage       = "busybox:1.37.0"
	ephemeralFallbackDir = "manifests/ephemeral-fallback"
	ephemeralRoleName    = "resume-trigger-ephemeral-fallback"
)

func withEphemeralImage(image string) serverOption {
	return func(o *app.Options) { o.Resume.EphemeralImage = image }
}

// ephemeralFallbackRule reads the rule manifests/ephemeral-fallback (a kustomize Component) adds to the
// resume-trigger ClusterRole.
func ephemeralFallbackRule(t *testing.T) rbacv1.PolicyRule {
	t.Helper()
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, ephemeralFallbackDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Kind    string `json:"kind"`
		Patches []struct {
			Target struct {
				Group, Kind, Name string
			} `json:"target"`
			Patch string `json:"patch"`
		} `json:"patches"`
	}
	if err := yaml.Unmarshal(data, &comp); err != nil {
		t.Fatalf("%s: %v", ephemeralFallbackDir, err)
	}
	if comp.Kind != "Component" {
		t.Fatalf("%s is a %q, want a kustomize Component", ephemeralFallbackDir, comp.Kind)
	}
	var rules []rbacv1.PolicyRule
	for _, p := range comp.Patches {
		if p.Target.Group != rbacv1.GroupName || p.Target.Kind != "ClusterRole" || p.Target.Name != "resume-trigger" {
			continue
		}
		var ops []struct {
			Op    string            `json:"op"`
			Path  string            `json:"path"`
			Value rbacv1.PolicyRule `json:"value"`
		}
		if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
			t.Fatalf("%s: ClusterRole patch: %v", ephemeralFallbackDir, err)
		}
		for _, op := range ops {
			if op.Op == "add" && op.Path == "/rules/-" {
				rules = append(rules, op.Value)
			}
		}
	}
	if len(rules) != 1 {
		t.Fatalf("%s adds %d rules to ClusterRole resume-trigger, want 1: %+v", ephemeralFallbackDir, len(rules), rules)
	}
	return rules[0]
}

// grantEphemeralFallback gives the ServiceAccount in ns what manifests/ephemeral-fallback adds to its
// ClusterRole, as a Role and RoleBinding in ns, and waits until the API server's authorizer sees it.
func grantEphemeralFallback(t *testing.T, e *env, sa kubernetes.Interface) {
	t.Helper()
	want := ephemeralFallbackRule(t)
	rule := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"update"}}
	if !slices.Equal(rule.APIGroups, want.APIGroups) || !slices.Equal(rule.Resources, want.Resources) || !slices.Equal(rule.Verbs, want.Verbs) ||
		len(want.ResourceNames) != 0 || len(want.NonResourceURLs) != 0 {
		t.Fatalf("the test's rule %+v differs from what %s adds: %+v", rule, ephemeralFallbackDir, want)
	}
	ctx := rig.Context(t, 30*time.Second)
	rbac := e.r.Client().RbacV1()
	if _, err := rbac.Roles(e.ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: ephemeralRoleName},
		Rules:      []rbacv1.PolicyRule{rule},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := rbac.RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ephemeralRoleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ephemeralRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding: %v", err)
	}
	if err := rig.Eventually(ctx, func() error {
		ok, err := mayUpdateEphemeral(ctx, sa, e.ns)
		if err == nil && !ok {
			err = errNotYet
		}
		return err
	}); err != nil {
		t.Fatalf("%s may still not update pods/ephemeralcontainers: %v", serviceAccount, err)
	}
}

var errNotYet = errors.New("not allowed yet")

func mayUpdateEphemeral(ctx context.Context, sa kubernetes.Interface, ns string) (bool, error) {
	return may(ctx, sa, authorizationv1.ResourceAttributes{Namespace: ns, Resource: "pods", Subresource: "ephemeralcontainers", Verb: "update"})
}

func may(ctx context.Context, sa kubernetes.Interface, attrs authorizationv1.ResourceAttributes) (bool, error) {
	review, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}

// ephemeralKubelet plays the kubelet's part for ephemeral containers of one pod: each one that appears in
// the spec is reported terminated with exit code 0, as if its touch ran.
type ephemeralKubelet struct {
	mu      sync.Mutex
	started []string
	errs    []string
}

func runEphemeralKubelet(t *testing.T, client kubernetes.Interface, ns, pod string) *ephemeralKubelet {
	t.Helper()
	k := &ephemeralKubelet{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		pods := client.CoreV1().Pods(ns)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p, err := pods.Get(ctx, pod, metav1.GetOptions{})
			if err != nil {
				continue
			}
			var added []string
			for _, ec := range p.Spec.EphemeralContainers {
				if slices.ContainsFunc(p.Status.EphemeralContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == ec.Name }) {
					continue
				}
				now := metav1.Now()
				id := "rig://" + pod + "/" + ec.Name
				p.Status.EphemeralContainerStatuses = append(p.Status.EphemeralContainerStatuses, corev1.ContainerStatus{
					Name: ec.Name, Image: ec.Image, ImageID: "rig://" + ec.Image, ContainerID: id, Started: new(bool),
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: id,
					}},
				})
				added = append(added, ec.Name)
			}
			if len(added) == 0 {
				continue
			}
			_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			k.mu.Lock()
			switch {
			case err == nil:
				k.started = append(k.started, added...)
			case !apierrors.IsConflict(err) && ctx.Err() == nil:
				k.errs = append(k.errs, err.Error())
			}
			k.mu.Unlock()
		}
	}()
	return k
}

func (k *ephemeralKubelet) report() (started, errs []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.started), slices.Clone(k.errs)
}

func ephemeralContainers(t *testing.T, e *env, pod string) []corev1.EphemeralContainer {
	t.Helper()
	p, err := e.r.Client().CoreV1().Pods(e.ns).Get(rig.Context(t, 10*time.Second), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", pod, err)
	}
	return p.Spec.EphemeralContainers
}

// No user container of the step's pod has touch and --ephemeral-image is set: the server, running as the
// ServiceAccount of manifests/namespace-install, adds one ephemeral container that touches the marker.
// Without the rule of manifests/ephemeral-fallback the API server refuses it and the Resume stays Pending.
func TestEphemeralFallbackOnRealAPIServer(t *testing.T) {
	e := newEnv(t)
	applyNamespaceInstall(t, e.r, e.ns)
	saConfig := e.r.ServiceAccountConfig(e.ns, serviceAccount)
	sa, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	e.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, []corev1.Container{fixture.Container("main", fixture.PauseAfter), fixture.Container("tools")})
	e.r.Kubelet().SetBehaviour(e.ns, fixture.HelloPodV2, "", rig.NoTouch)
	kubelet := runEphemeralKubelet(t, e.r.Client(), e.ns, fixture.HelloPodV2)
	e.srv = startServer(t, saConfig, []string{e.ns}, withEphemeralImage(ephemeralImage))
	name := release.EphemeralName("main", v1alpha1.StageAfter)
	noTouch := []rig.Call{
		{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 127"},
		{Pod: fixture.HelloPodV2, Container: "tools", Argv: touchMainAfter, Outcome: "exit 127"},
	}

	// The namespace-install binding is in effect before the server is asked anything.
	rbacCtx := rig.Context(t, 30*time.Second)
	if err := rig.Eventually(rbacCtx, func() error {
		for _, a := range []authorizationv1.ResourceAttributes{
			{Namespace: e.ns, Resource: "pods", Verb: "get"},
			{Namespace: e.ns, Resource: "pods", Subresource: "exec", Verb: "create"},
			{Namespace: e.ns, Group: "argoproj.io", Resource: "workflows", Verb: "get"},
			{Namespace: e.ns, Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Subresource: "status", Verb: "update"},
		} {
			if ok, err := may(rbacCtx, sa, a); err != nil || !ok {
				return errors.Join(errNotYet, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("the namespace-install RBAC is not in effect: %v", err)
	}

	// Without the component's rule.
	if ok, err := mayUpdateEphemeral(rig.Context(t, 10*time.Second), sa, e.ns); err != nil || ok {
		t.Fatalf("namespace-install alone may update pods/ephemeralcontainers: %v, %v", ok, err)
	}
	u := e.createResume("ephemeral", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	expectRefusal(e.ns, "pods/ephemeralcontainers", "update")
	f := e.srv.fireResume(t, u)
	expectCode(t, f, codes.Unavailable, "ephemeral-fallback overlay")
	if !strings.Contains(f.Err.Error(), "forbidden") {
		t.Errorf("Execute: %v, want the API server's Forbidden", f.Err)
	}
	e.expectCalls(noTouch...)
	res, _ := e.resume("ephemeral")
	if res.Status.Phase != v1alpha1.PhasePending || len(res.Status.Released) != 0 {
		t.Fatalf("resume phase %q, released %+v (message %q), want Pending with nothing released", res.Status.Phase, res.Status.Released, res.Status.Message)
	}
	if ecs := ephemeralContainers(t, e, fixture.HelloPodV2); len(ecs) != 0 {
		t.Fatalf("the refused server added ephemeral containers: %+v", ecs)
	}

	// With it, the same Resume's retry adds the ephemeral container.
	grantEphemeralFallback(t, e, sa)
	f = e.srv.fireResume(t, u)
	expectOK(t, f, 1)
	e.expectCalls(append(noTouch, noTouch...)...)
	want := v1alpha1.ReleasedTarget{Node: fixture.HelloNodeID, Pod: fixture.HelloPodV2, Container: "main", Stage: v1alpha1.StageAfter, Via: name}
	res, _ = e.resume("ephemeral")
	expectSucceeded(t, res, want)

	ecs := ephemeralContainers(t, e, fixture.HelloPodV2)
	if len(ecs) != 1 {
		t.Fatalf("pod has %d ephemeral containers, want 1: %+v", len(ecs), ecs)
	}
	ec := ecs[0]
	if ec.Name != name || ec.Image != ephemeralImage || !slices.Equal(ec.Command, touchMainAfter) || len(ec.Args) != 0 {
		t.Errorf("ephemeral container %s image %s command %q args %q, want %s image %s command %q", ec.Name, ec.Image, ec.Command, ec.Args, name, ephemeralImage, touchMainAfter)
	}
	if len(ec.VolumeMounts) != 1 || ec.VolumeMounts[0].Name != argo.VolumeVarRunArgo || ec.VolumeMounts[0].MountPath != rig.MarkerDir ||
		ec.VolumeMounts[0].SubPath != "" || ec.VolumeMounts[0].ReadOnly {
		t.Errorf("ephemeral container mounts %+v, want only %s at %s", ec.VolumeMounts, argo.VolumeVarRunArgo, rig.MarkerDir)
	}
	sc := ec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("ephemeral container security context %+v, want non-root without privilege escalation", sc)
	}
	if ec.TargetContainerName != "" || len(ec.Env) != 0 || len(ec.EnvFrom) != 0 || ec.Stdin || ec.TTY {
		t.Errorf("ephemeral container %+v has more than the touch", ec)
	}

	// A new Resume for the still paused step reuses the terminated ephemeral container.
	u2 := e.createResume("ephemeral-again", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	expectOK(t, e.srv.fireResume(t, u2), 1)
	res, _ = e.resume("ephemeral-again")
	expectSucceeded(t, res, want)
	if ecs := ephemeralContainers(t, e, fixture.HelloPodV2); len(ecs) != 1 {
		t.Fatalf("after the second release the pod has %d ephemeral containers, want 1: %+v", len(ecs), ecs)
	}
	e.expectCalls(append(append(noTouch, noTouch...), noTouch...)...)

	started, errs := kubelet.report()
	if len(errs) != 0 {
		t.Errorf("the emulated kubelet could not report ephemeral container status: %v", errs)
	}
	if !slices.Equal(started, []string{name}) {
		t.Errorf("the emulated kubelet started %v, want [%s]", started, name)
	}
}
