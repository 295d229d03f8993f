package chart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

var (
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	sensorGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "sensors"}
	esGVR     = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "eventsources"}
	vapGVR    = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
)

const resumeCRD = "resumes.argocontroller.io"

// helm install, upgrade and uninstall of the chart on a real API server of its own (the install creates
// cluster-scoped objects other tests must not see): every object is accepted, the server's
// ServiceAccount may exec in the served namespaces and nowhere else, an upgrade that drops a namespace
// takes its grant away, and uninstall removes everything but the CRD (and so every Resume).
func TestChartInstallsOnTheAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := rig.Start(ctx, rig.Options{})
	if err != nil {
		t.Fatalf("rig: %v", err)
	}
	defer r.Stop()
	if err := installArgoEventsCRDs(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The rig installs our CRD unowned; the chart brings its own.
	if err := r.Dynamic().Resource(crdGVR).Delete(ctx, resumeCRD, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rig.Eventually(ctx, func() error {
		_, err := r.Dynamic().Resource(crdGVR).Get(ctx, resumeCRD, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("CRD %s still there (%v)", resumeCRD, err)
	}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		if _, err := r.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	root := repoRoot(t)
	c, err := helmchart.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "argo-resume"
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := r.KubeconfigFile(), ns
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}

	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = helmchart.ReleaseName, ns, true
	// No controller runs here to make the Deployment ready: wait for nothing but hooks (there are none).
	in.WaitStrategy, in.Timeout = kube.HookOnlyStrategy, time.Minute
	values := helmchart.Values{
		"namespaces":    []any{"team-a", "team-b"},
		"webhook":       helmchart.Values{"enabled": true, "namespaces": []any{"team-b"}},
		"replicas":      2,
		"pausedMetrics": true,
	}
	if _, err := in.RunWithContext(ctx, c, values); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	canExec := func(inNS string) bool {
		t.Helper()
		sar, err := r.Client().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":resume-trigger",
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: inNS, Resource: "pods", Subresource: "exec", Verb: "create"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	for inNS, want := range map[string]bool{"team-a": true, "team-b": true, "team-c": false, ns: false} {
		if got := canExec(inNS); got != want {
			t.Errorf("after install the server may exec in %s: %v, want %v", inNS, got, want)
		}
	}
	for _, check := range []struct {
		what string
		err  error
	}{
		{"Sensor", get(ctx, r, sensorGVR, ns, "resume-trigger")},
		{"webhook EventSource", get(ctx, r, esGVR, ns, "resume-webhook")},
		{"exec policy", get(ctx, r, vapGVR, "", "resume-trigger-exec")},
		{"CRD", get(ctx, r, crdGVR, "", resumeCRD)},
	} {
		if check.err != nil {
			t.Errorf("%s: %v", check.what, check.err)
		}
	}
	if _, err := r.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "resume-trigger", metav1.GetOptions{}); err != nil {
		t.Errorf("PodDisruptionBudget with two replicas: %v", err)
	}
	d, err := r.Client().AppsV1().Deployments(ns).Get(ctx, "resume-trigger", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--namespaces=team-a,team-b") || !strings.Contains(args, "--leader-elect") {
		t.Errorf("stored Deployment args %s", args)
	}

	up := action.NewUpgrade(cfg)
	up.Namespace, up.WaitStrategy, up.Timeout = ns, kube.HookOnlyStrategy, time.Minute
	values["namespaces"] = []any{"team-b"}
	if _, err := up.RunWithContext(ctx, helmchart.ReleaseName, c, values); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	for inNS, want := range map[string]bool{"team-a": false, "team-b": true} {
		if got := canExec(inNS); got != want {
			t.Errorf("after the upgrade to team-b only the server may exec in %s: %v, want %v", inNS, got, want)
		}
	}

	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.HookOnlyStrategy, time.Minute
	if _, err := un.Run(helmchart.ReleaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if canExec("team-b") {
		t.Error("after uninstall the server may still exec in team-b")
	}
	if err := get(ctx, r, sensorGVR, ns, "resume-trigger"); !apierrors.IsNotFound(err) {
		t.Errorf("Sensor after uninstall: %v, want NotFound", err)
	}
	if err := get(ctx, r, crdGVR, "", resumeCRD); err != nil {
		t.Errorf("the CRD is gone after uninstall (crds.keep): %v", err)
	}
}

func get(ctx context.Context, r *rig.Rig, gvr schema.GroupVersionResource, ns, name string) error {
	var err error
	if ns == "" {
		_, err = r.Dynamic().Resource(gvr).Get(ctx, name, metav1.GetOptions{})
	} else {
		_, err = r.Dynamic().Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	}
	return err
}

// installArgoEventsCRDs creates argo-events' EventBus, EventSource and Sensor CRDs from the pinned module
// and waits until the API server serves them.
func installArgoEventsCRDs(ctx context.Context, r *rig.Rig) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-events").Output()
	if err != nil {
		return fmt.Errorf("locate the argo-events module: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "manifests", "base", "crds", "argoproj.io_*.yaml"))
	if err != nil || len(files) != 3 {
		return fmt.Errorf("argo-events CRDs: %v (%v)", files, err)
	}
	for _, f := range files {
		objs, err := rig.ReadObjects(f)
		if err != nil {
			return err
		}
		for _, u := range objs {
			if _, err := r.Dynamic().Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return rig.Eventually(ctx, func() error {
		_, err := r.Dynamic().Resource(sensorGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
}
