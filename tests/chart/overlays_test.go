package chart

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// userBuild renders a kustomization of a user's own (files, by name) in a folder beside a copy of the
// checkout's manifests/, sensor/ and eventsource/: what a user's GitOps repository does with remote
// references to a release (`https://github.com/...//manifests/install?ref=vX.Y.Z`), here relative paths,
// since kustomize treats both alike once fetched.
func userBuild(t *testing.T, files map[string]string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	root := repoRoot(t)
	fs := filesys.MakeFsInMemory()
	for _, d := range []string{"manifests", "sensor", "eventsource"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".yaml") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return fs.WriteFile(path, b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	user := filepath.Join(root, "gitops", "resume-trigger")
	for name, content := range files {
		if err := fs.WriteFile(filepath.Join(user, name), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, user)
	if err != nil {
		return nil, err
	}
	out, err := rig.Objects(res)
	if err != nil {
		t.Fatal(err)
	}
	return out, nil
}

const userInstallYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: resume-trigger-install
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  namespace: ops
  namespaces: team-a,team-b
  webhookNamespaces: team-b
`

// servedBindings are the namespaces of the RoleBindings granting the server's ClusterRole.
func servedBindings(objs []*unstructured.Unstructured) []string {
	var ns []string
	for _, u := range objs {
		if u.GetKind() == "RoleBinding" && u.GetName() == "resume-trigger" {
			ns = append(ns, u.GetNamespace())
		}
	}
	slices.Sort(ns)
	return ns
}

// A user's own kustomization configures the released install without forking it: their install.yaml and
// the shipped base and Components by reference. Every namespaced object lands in their install
// namespace, the RoleBindings in exactly the served namespaces, and the webhook EventSource with it.
func TestOverlayConfiguredFromAWrappingKustomization(t *testing.T) {
	objs, err := userBuild(t, map[string]string{
		"install.yaml": userInstallYAML,
		"kustomization.yaml": `resources:
  - install.yaml
  - ../../manifests/install
components:
  - ../../manifests/components/served/0
  - ../../manifests/components/served/1
  - ../../eventsource/webhook
  - ../../manifests/components/install
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedBindings(objs); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("served RoleBindings in %v, want team-a and team-b", got)
	}
	for _, u := range objs {
		if u.GetNamespace() != "" && u.GetNamespace() != "ops" && u.GetKind() != "RoleBinding" {
			t.Errorf("%s %s in %s, want ops", u.GetKind(), u.GetName(), u.GetNamespace())
		}
	}
	if es := find(objs, "EventSource", "resume-webhook"); es == nil || es.GetNamespace() != "ops" {
		t.Errorf("webhook EventSource %v, want it in ops", es)
	}
	env := serverArgs(t, objs)
	if !slices.Contains(env, "--namespaces=team-a,team-b") || !slices.Contains(env, "--webhook-namespaces=team-b") {
		t.Errorf("server args %q", env)
	}
}

// Served namespaces are written once: more served Components than names in install.yaml is a build
// error naming the index, and no RoleBinding ever names a namespace install.yaml does not list (the
// shipped one used to grant exec in argo whatever install.yaml said).
func TestOverlayServedBindingsFollowTheList(t *testing.T) {
	_, err := userBuild(t, map[string]string{
		"install.yaml": userInstallYAML,
		"kustomization.yaml": `resources: [install.yaml, ../../manifests/install]
components:
  - ../../manifests/components/served/0
  - ../../manifests/components/served/1
  - ../../manifests/components/served/2
  - ../../manifests/components/install
`,
	})
	if err == nil || !strings.Contains(err.Error(), "options.index 2 is out of bounds for value team-a,team-b") {
		t.Errorf("three served Components for two namespaces: err %v, want the index out of bounds", err)
	}
	root := repoRoot(t)
	objs, err := rig.RenderInstall(root, rig.NamespaceInstallDir, rig.InstallValues{Namespace: "ops", Namespaces: []string{"team-a", "team-b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedBindings(objs); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("namespace-install edited to serve team-a,team-b binds in %v", got)
	}
	for _, u := range objs {
		if strings.HasPrefix(u.GetNamespace(), "resume-trigger-served-") {
			t.Errorf("%s %s keeps its placeholder namespace", u.GetKind(), u.GetName())
		}
	}
}

// The TLS Components added by a kustomization wrapping a built overlay (as for the ephemeral fallback)
// put the Certificates and Issuers into the install namespace, where the server's Secret must appear.
func TestTLSComponentsFromAWrappingKustomization(t *testing.T) {
	objs, err := userBuild(t, map[string]string{
		"namespace-install/install.yaml": userInstallYAML,
		"namespace-install/kustomization.yaml": `resources: [install.yaml, ../../../manifests/install]
components:
  - ../../../manifests/components/served/0
  - ../../../manifests/components/served/1
  - ../../../manifests/components/install
`,
		"kustomization.yaml": `resources: [namespace-install]
components:
  - ../../manifests/tls
  - ../../manifests/tls/cert-manager
  - ../../manifests/tls/self-signed-ca
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range objs {
		if u.GetKind() == "Certificate" || u.GetKind() == "Issuer" {
			n++
			if u.GetNamespace() != "ops" {
				t.Errorf("%s %s in namespace %q, want the install namespace ops", u.GetKind(), u.GetName(), u.GetNamespace())
			}
		}
	}
	if n != 4 {
		t.Errorf("%d Certificates and Issuers, want 4", n)
	}
}

// The overlays as shipped (no webhook namespaces) deploy no webhook EventSource, whose pod would wait
// for a token Secret no one made.
func TestOverlaysShipNoWebhookByDefault(t *testing.T) {
	root := repoRoot(t)
	for _, overlay := range []string{rig.NamespaceInstallDir, rig.ClusterInstallDir} {
		objs, err := rig.Render(root, overlay)
		if err != nil {
			t.Fatal(err)
		}
		if es := find(objs, "EventSource", "resume-webhook"); es != nil {
			t.Errorf("%s deploys the webhook EventSource with no webhook namespace", overlay)
		}
		if find(objs, "EventSource", "resume-resource") == nil {
			t.Errorf("%s deploys no resource EventSource", overlay)
		}
	}
}

// namespace-install's cluster-scoped objects are the ones of manifests/cluster-scoped (no namespace in
// them, one set per cluster) and the three its kustomization lists as naming the install namespace;
// anything else cluster-scoped must be added there, with its reason, before this test passes.
func TestNamespaceInstallClusterScopedObjectsAreKnown(t *testing.T) {
	root := repoRoot(t)
	shared, err := rig.Render(root, "manifests/cluster-scoped")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{
		"Namespace/argo-resume": true, "FlowSchema/resume-trigger-leader-election": true,
		"ClusterRole/resume-eventsource": true, "ClusterRoleBinding/resume-eventsource": true,
	}
	for _, u := range shared {
		if u.GetNamespace() != "" {
			t.Errorf("manifests/cluster-scoped renders namespaced %s %s", u.GetKind(), u.GetName())
		}
		known[u.GetKind()+"/"+u.GetName()] = true
	}
	objs, err := rig.Render(root, rig.NamespaceInstallDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetNamespace() == "" && !known[u.GetKind()+"/"+u.GetName()] {
			t.Errorf("namespace-install renders cluster-scoped %s %s, neither in manifests/cluster-scoped nor listed in its kustomization", u.GetKind(), u.GetName())
		}
	}
}
