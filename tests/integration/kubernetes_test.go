package integration

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The Kubernetes releases the install and one release are run on: the rig's current one and the oldest
// k8s.io/kubernetes the Go module proxy serves here, the minimum the README states as tested.
var kubernetesReleases = []rig.Kubernetes{rig.Kubernetes137, rig.Kubernetes134}

// On each Kubernetes release, on an API server of its own (the chart's exec policy binds every namespace):
// both install paths are accepted (kustomize cluster-install by server-side dry run, the chart by helm
// install, which also checks the chart's kubeVersion against the server), and a step paused in a Workflow
// that Argo's workflow-controller v3.7.17 runs is released by a Resume, the server acting as the chart's
// ServiceAccount under the chart's exec policy, which the API server enforces.
func TestInstallAndReleaseOnEachKubernetes(t *testing.T) {
	for _, k := range kubernetesReleases {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			installAndRelease(t, k)
		})
	}
}

func installAndRelease(t *testing.T, k rig.Kubernetes) {
	ctx := rig.Context(t, 4*time.Minute)
	r, err := rig.Start(ctx, rig.Options{Kubernetes: k})
	if err != nil {
		t.Fatalf("rig with Kubernetes %s: %v", k, err)
	}
	t.Cleanup(r.Stop)
	// The binary is the release asked for: a prebuilt stand-in or a wrong pin would make this test say
	// nothing about the oldest release.
	v, err := r.Client().Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Major + "." + v.Minor; got != k.Minor {
		t.Fatalf("the API server reports %s (%s), want %s", got, v.GitVersion, k.Minor)
	}
	t.Logf("kube-apiserver %s", v.GitVersion)

	if err := installArgoEventsCRDs(ctx, r); err != nil {
		t.Fatal(err)
	}
	const install = "argo-resume"
	team := r.Namespace(t)
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}

	// The kustomize install, every object by server-side dry run: its ClusterRoleBinding and exec policy
	// are the chart's under the same names, which the helm install below must own.
	if _, err := r.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: install}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(r.AdminConfig())))
	for _, overlay := range []string{rig.ClusterInstallDir, execPolicyDir} {
		var objs []*unstructured.Unstructured
		if overlay == rig.ClusterInstallDir {
			objs, err = rig.RenderInstall(root, overlay, rig.InstallValues{Namespace: install, Namespaces: []string{"*"}})
		} else {
			objs, err = rig.Render(root, overlay)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if err := serverSideApply(ctx, r.Dynamic(), mapper, u, u.GetKind() != "Namespace"); err != nil {
				t.Fatalf("%s on Kubernetes %s: %v", overlay, k, err)
			}
		}
		t.Logf("%s: the API server accepted its %d objects (dry run)", overlay, len(objs))
	}

	// The chart, installed for real. The rig installs the Resume CRD unowned; the chart brings its own.
	if err := r.Dynamic().Resource(apiextensionsCRDs).Delete(ctx, "resumes.argocontroller.io", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rig.Eventually(ctx, func() error {
		_, err := r.Dynamic().Resource(apiextensionsCRDs).Get(ctx, "resumes.argocontroller.io", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("CRD still there (%v)", err)
	}); err != nil {
		t.Fatal(err)
	}
	chart, err := helmchart.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := r.KubeconfigFile(), install
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	if err := cfg.Init(flags, install, "secret"); err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = helmchart.ReleaseName, install
	// No controller runs here to make the Deployment ready: wait for nothing but hooks (there are none).
	in.WaitStrategy, in.Timeout = kube.HookOnlyStrategy, time.Minute
	if _, err := in.RunWithContext(ctx, chart, helmchart.Values{"namespaces": []any{team}}); err != nil {
		t.Fatalf("helm install on Kubernetes %s: %v", k, err)
	}
	if err := rig.Eventually(ctx, func() error {
		_, err := r.Dynamic().Resource(v1alpha1.Resource).Namespace(team).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	}); err != nil {
		t.Fatalf("the chart's Resume CRD is not served: %v", err)
	}

	// A Workflow of Argo's own controller pauses a step.
	wfc, err := wfclient.NewForConfig(r.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, r: r, ns: team, wfc: wfc}
	wc, err := r.StartWorkflowController(ctx, rig.ControllerOptions{Namespace: team, Argo: rig.ArgoV3})
	if err != nil {
		t.Fatalf("start Argo's workflow-controller: %v", err)
	}
	t.Cleanup(wc.Stop)
	e.wc = wc
	e.submit(`
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: oldest
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: pause
            template: pause` + pauseTemplate)
	paused := e.waitPaused("oldest", "main", 1)

	// The chart's exec policy is enforced: the chart's ServiceAccount may not run anything but the
	// marker's touch. The API server compiles a new policy a moment after it is created.
	saConfig := r.ServiceAccountConfig(install, serviceAccount)
	var probe error
	if err := rig.Eventually(ctx, func() error {
		probe = rig.Exec(ctx, saConfig, team, paused[0].Name, "main", "cat", "/etc/hostname")
		if probe != nil && strings.Contains(probe.Error(), policyDenial) {
			return nil
		}
		return fmt.Errorf("not refused by the exec policy: %v", probe)
	}); err != nil {
		t.Fatalf("the chart's exec policy on Kubernetes %s: %v", k, err)
	}

	// The server, as the chart's ServiceAccount, releases the step, and the controller ends the Workflow.
	e.srv = startServer(t, saConfig, []string{team})
	e.release("oldest", map[string]any{"Workflow-ID": "oldest", "TemplateName": "pause"}, "main", v1alpha1.StageAfter, paused...)
	e.waitSucceeded("oldest")
	if logs := e.srv.logs.String(); strings.Contains(logs, "forbidden") {
		t.Errorf("the server was refused something as the chart's ServiceAccount:\n%s", logs)
	}
}
