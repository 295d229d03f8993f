package rig_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func TestMain(m *testing.M) { os.Exit(rig.Main(m)) }

const afterMarker = "/var/run/argo/ctr/main/after"

func pauseAfter(value string) corev1.EnvVar {
	return corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_AFTER", Value: value}
}

func runArgoPod(t testing.TB, r *rig.Rig, ns, name string, env ...corev1.EnvVar) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.RunPod(ctx, rig.ArgoPod(ns, name, "wf-1", "wf-1-123", env...)); err != nil {
		t.Fatal(err)
	}
}

func TestTouchReleasesPausedArgoStep(t *testing.T) {
	r := rig.Get(t)
	ns := r.Namespace(t)
	runArgoPod(t, r, ns, "wf-1-step-123", pauseAfter("true"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := rig.Exec(ctx, r.AdminConfig(), ns, "wf-1-step-123", "main", "touch", afterMarker); err != nil {
		t.Fatalf("exec touch: %v", err)
	}

	calls := r.Kubelet().CallsFor(ns)
	if len(calls) != 1 {
		t.Fatalf("kubelet got %d calls, want 1: %+v", len(calls), calls)
	}
	c := calls[0]
	if c.Pod != "wf-1-step-123" || c.Container != "main" || !slices.Equal(c.Argv, []string{"touch", afterMarker}) || c.Outcome != "exit 0" {
		t.Errorf("call = %+v, want touch %s into wf-1-step-123/main with exit 0", c, afterMarker)
	}
	for _, container := range []string{"main", "wait"} {
		if !r.Kubelet().HasFile(ns, "wf-1-step-123", container, afterMarker) {
			t.Errorf("container %s does not see %s; files %v", container, afterMarker, r.Kubelet().Files(ns, "wf-1-step-123"))
		}
	}
	pod, err := r.WaitPodPhase(ctx, ns, "wf-1-step-123", corev1.PodSucceeded)
	if err != nil {
		t.Fatal(err)
	}
	want := rig.EmissaryEvent{Namespace: ns, Pod: "wf-1-step-123", Container: "main", Stage: "after", Outcome: rig.EmissaryReleased}
	if events := waitEmissaryEvents(t, ctx, r, ns, 1); len(events) != 1 || events[0] != want {
		t.Errorf("emissary emulation: %+v, want only %+v", events, want)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("container %s state %+v, want terminated Completed exit 0", cs.Name, cs.State)
		}
	}
	// A finished container refuses execs, as a kubelet does.
	if err := rig.Exec(ctx, r.AdminConfig(), ns, "wf-1-step-123", "main", "touch", afterMarker); err == nil {
		t.Error("exec into a terminated container succeeded")
	}
}

func TestKubeconfigFileReachesTheNode(t *testing.T) {
	r := rig.Get(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", r.KubeconfigFile())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(context.Background(), rig.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := node.Status.Addresses; len(a) != 1 || a[0].Type != corev1.NodeInternalIP || a[0].Address != "127.0.0.1" {
		t.Errorf("node addresses %v, want only InternalIP 127.0.0.1", a)
	}
	if p := node.Status.DaemonEndpoints.KubeletEndpoint.Port; int(p) != r.Kubelet().Port() {
		t.Errorf("kubelet port %d, want %d", p, r.Kubelet().Port())
	}
	for _, crd := range []string{"workflows.argoproj.io", "resumes.argocontroller.io"} {
		if _, err := r.Dynamic().Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(context.Background(), crd, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s: %v", crd, err)
		}
	}
	if _, err := r.Dynamic().Resource(rig.WorkflowGVR).Namespace("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Errorf("list workflows: %v", err)
	}
}

func TestEmissaryNeedsExactlyTrue(t *testing.T) {
	r := rig.Get(t)
	ns := r.Namespace(t)
	runArgoPod(t, r, ns, "p", pauseAfter("True"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rig.Exec(ctx, r.AdminConfig(), ns, "p", "main", "touch", afterMarker); err != nil {
		t.Fatal(err)
	}
	// The emulation decides after the exec returned: wait for its decision, after which it changes nothing.
	events := waitEmissaryEvents(t, ctx, r, ns, 1)
	want := rig.EmissaryEvent{Namespace: ns, Pod: "p", Container: "main", Stage: "after", Outcome: rig.EmissaryNotPaused}
	if len(events) != 1 || events[0] != want {
		t.Fatalf("emissary emulation: %+v, want only %+v: ARGO_DEBUG_PAUSE_AFTER=True does not pause Argo", events, want)
	}
	pod, err := r.Client().CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running: ARGO_DEBUG_PAUSE_AFTER=True does not pause Argo", pod.Status.Phase)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running == nil {
			t.Errorf("container %s state %+v, want running", cs.Name, cs.State)
		}
	}
}

// waitEmissaryEvents waits until the emissary emulation has decided about n markers in ns and returns its
// decisions.
func waitEmissaryEvents(t *testing.T, ctx context.Context, r *rig.Rig, ns string, n int) []rig.EmissaryEvent {
	t.Helper()
	var events []rig.EmissaryEvent
	if err := rig.Eventually(ctx, func() error {
		if events = r.Kubelet().EmissaryEvents(ns); len(events) < n {
			return fmt.Errorf("the emissary emulation decided about %d markers, want %d: %+v", len(events), n, events)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return events
}

func TestExecFailures(t *testing.T) {
	r := rig.Get(t)
	for name, tc := range map[string]struct {
		behaviour rig.Behaviour
		argv      []string
		exitCode  int    // 0: no exit code expected
		errText   string // in the error (which holds the command's output)
	}{
		"image without touch exits 127":             {rig.NoTouch, []string{"touch", afterMarker}, 127, "executable file not found"},
		"runtime reports missing touch as an error": {rig.NoTouchRuntimeError, []string{"touch", afterMarker}, 0, "executable file not found in $PATH"},
		"exit code is passed through":               {rig.Exit(3), []string{"touch", afterMarker}, 3, ""},
		"default image has only touch":              {rig.HasTouch, []string{"sh", "-c", "true"}, 127, "executable file not found"},
	} {
		t.Run(name, func(t *testing.T) {
			ns := r.Namespace(t)
			runArgoPod(t, r, ns, "p", pauseAfter("true"))
			r.Kubelet().SetBehaviour(ns, "p", "main", tc.behaviour)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			err := rig.Exec(ctx, r.AdminConfig(), ns, "p", "main", tc.argv...)
			if err == nil {
				t.Fatal("exec succeeded")
			}
			var exitErr *release.ExitError
			gotExit := errors.As(err, &exitErr)
			switch {
			case tc.exitCode != 0 && (!gotExit || exitErr.Code != tc.exitCode):
				t.Errorf("err = %v (%T), want exit code %d", err, err, tc.exitCode)
			case tc.exitCode == 0 && gotExit:
				t.Errorf("err = %v, want an error status without exit code", err)
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("err %q: want %q", err, tc.errText)
			}
			if files := r.Kubelet().Files(ns, "p"); len(files) != 0 {
				t.Errorf("files created: %v", files)
			}
			if calls := r.Kubelet().CallsFor(ns); len(calls) != 1 || !slices.Equal(calls[0].Argv, tc.argv) {
				t.Errorf("calls = %+v, want one with argv %q", calls, tc.argv)
			}
		})
	}
}

func TestHungExecEndsAtDeadline(t *testing.T) {
	r := rig.Get(t)
	ns := r.Namespace(t)
	runArgoPod(t, r, ns, "p")
	r.Kubelet().SetBehaviour(ns, "p", "", rig.Hang)

	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := rig.Exec(ctx, r.AdminConfig(), ns, "p", "main", "touch", afterMarker)
	took := time.Since(start)
	t.Logf("hung exec returned after %v (deadline %v): %v", took.Round(time.Millisecond), deadline, err)
	if err == nil {
		t.Fatal("hung exec succeeded")
	}
	// The upper bound leaves room for a loaded 2-core CI machine; a client that ignored the deadline would
	// hang until the kubelet's hour-long stream timeout.
	if took < deadline-100*time.Millisecond || took > deadline+8*time.Second {
		t.Errorf("exec returned after %v (err %v), want at the %v deadline", took, err, deadline)
	}
	// The kubelet side must be released too, not leak a blocked exec.
	wait, cancelWait := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelWait()
	if err := rig.Eventually(wait, func() error {
		calls := r.Kubelet().CallsFor(ns)
		if len(calls) != 1 || !strings.HasPrefix(calls[0].Outcome, "hung until") {
			return errors.New("kubelet still running the exec: " + calls[0].Outcome)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

func TestExecNeedsRBAC(t *testing.T) {
	r := rig.Get(t)
	ns := r.Namespace(t)
	runArgoPod(t, r, ns, "p")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rbac := r.Client().RbacV1()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "exec"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		},
	}
	if _, err := rbac.Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client().CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "trigger"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "exec"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "exec"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"},
			{Kind: rbacv1.ServiceAccountKind, Name: "trigger", Namespace: ns},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := r.ServiceAccountTokenConfig(ctx, ns, "trigger")
	if err != nil {
		t.Fatal(err)
	}

	for who, tc := range map[string]struct {
		cfg     *rest.Config
		allowed bool
	}{
		"user bound to the role":           {r.ConfigAs("alice"), true},
		"user without pods/exec":           {r.ConfigAs("bob", "developers"), false},
		"serviceaccount (impersonated)":    {r.ServiceAccountConfig(ns, "trigger"), true},
		"serviceaccount (real token)":      {token, true},
		"default serviceaccount (no role)": {r.ServiceAccountConfig(ns, "default"), false},
	} {
		t.Run(who, func(t *testing.T) {
			before := len(r.Kubelet().CallsFor(ns))
			err := rig.Exec(ctx, tc.cfg, ns, "p", "main", "touch", "/tmp/x")
			reached := len(r.Kubelet().CallsFor(ns)) - before
			if tc.allowed {
				if err != nil || reached != 1 {
					t.Errorf("exec: err %v, %d calls reached the kubelet; want success", err, reached)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "pods/exec") {
				t.Errorf("exec: err %v, want forbidden on pods/exec", err)
			}
			if reached != 0 {
				t.Errorf("%d forbidden calls reached the kubelet", reached)
			}
		})
	}
}

func BenchmarkExecRoundTrip(b *testing.B) {
	r := rig.Get(b)
	ns := r.Namespace(b)
	runArgoPod(b, r, ns, "p")
	ex, err := rig.Executor(r.AdminConfig()) // the server's own exec client
	if err != nil {
		b.Fatal(err)
	}
	argv := []string{"touch", afterMarker}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ex.Exec(ctx, ns, "p", "main", argv); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := len(r.Kubelet().CallsFor(ns)); n != b.N {
		b.Fatalf("kubelet got %d calls, want %d", n, b.N)
	}
}

// A second rig on another address proves BindAddress reaches the API server, its certificate, the
// kubelet and the Node address (an end-to-end test binds a test network namespace's address).
func TestBindAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := rig.Start(ctx, rig.Options{BindAddress: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop) // after the namespace cleanup Namespace registers below
	if !strings.HasPrefix(r.Host(), "https://127.0.0.2:") {
		t.Errorf("host %s, want 127.0.0.2", r.Host())
	}
	ns := r.Namespace(t)
	runArgoPod(t, r, ns, "p")
	if err := rig.Exec(ctx, r.AdminConfig(), ns, "p", "main", "touch", afterMarker); err != nil {
		t.Fatal(err)
	}
	if !r.Kubelet().HasFile(ns, "p", "main", afterMarker) {
		t.Error("marker not created")
	}
}
