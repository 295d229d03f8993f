package rig

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// NamespaceInstallDir and ClusterInstallDir are the overlays users apply, relative to the repository root.
const (
	NamespaceInstallDir = "manifests/namespace-install"
	ClusterInstallDir   = "manifests/cluster-install"
)

// InstallFile is the one file of an overlay a user edits: the ConfigMap resume-trigger-install (install
// namespace, served namespaces, webhook namespaces).
const InstallFile = "install.yaml"

// ServedComponentsDir holds one Component per served namespace of namespace-install (N: the N-th name of
// install.yaml's namespaces, from 0), and WebhookComponentDir the optional webhook EventSource; relative to
// the repository root.
const (
	ServedComponentsDir = "manifests/components/served"
	WebhookComponentDir = "eventsource/webhook"
)

// InstallValues are what a user writes into an overlay's install.yaml.
type InstallValues struct {
	// Namespace is the install namespace (data.namespace).
	Namespace string
	// Namespaces are the served namespaces (data.namespaces); in an overlay that lists
	// ServedComponentsDir/0 (namespace-install) the list of those Components is made one per namespace,
	// as the overlay's comments tell a user to.
	Namespaces []string
	// WebhookNamespaces are data.webhookNamespaces; when set, WebhookComponentDir is added as the
	// comment beside the value says.
	WebhookNamespaces []string
	// Components are more kustomize Components (folders relative to the checkout, e.g. manifests/tls),
	// listed in the overlay's kustomization before the shipped ones, as a user adds them.
	Components []string
}

var (
	clusterRoleGVR    = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	flowSchemaGVR     = schema.GroupVersionResource{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Resource: "flowschemas"}
	roleBindingGVR    = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	roleGVR           = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	serviceAccountGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// notApplied are the kinds of manifests/namespace-install that ApplyNamespaceInstall does not apply: the
// rig installed the CRD, the test made its own namespace, the server runs as a process of the test, and the
// argo-events objects and the EventSource's ClusterRoleBinding are the chain's (tests/internal/chain).
var notApplied = map[string]bool{
	"CustomResourceDefinition": true, "Namespace": true, "Deployment": true, "Service": true, "NetworkPolicy": true,
	"EventBus": true, "EventSource": true, "Sensor": true, "ClusterRoleBinding": true,
}

// shippedDirs are the folders an overlay reaches with ../ paths; RenderInstall copies them.
var shippedDirs = []string{"manifests", "sensor", "eventsource"}

// RenderNamespaceInstall renders manifests/namespace-install with kustomize's Go API, as
// `kubectl apply -k` would.
func RenderNamespaceInstall(root string) ([]*unstructured.Unstructured, error) {
	return Render(root, NamespaceInstallDir)
}

// Render builds the kustomization in dir (relative to the repository root) as kustomize would.
func Render(root, dir string) ([]*unstructured.Unstructured, error) {
	return render(filesys.MakeFsOnDisk(), root, dir)
}

func render(fs filesys.FileSystem, root, dir string) ([]*unstructured.Unstructured, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, filepath.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := Objects(resources)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return out, nil
}

// Objects are the objects kustomize rendered, in its order.
func Objects(resources resmap.ResMap) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, res := range resources.Resources() {
		// Through JSON, so numbers are int64 as everywhere in unstructured (res.Map gives int).
		b, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("rendered %s/%s: %w", res.GetKind(), res.GetName(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("rendered %s/%s: %w", res.GetKind(), res.GetName(), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// RenderImage renders the overlay dir with every image named name set to newName:newTag, as
// `kustomize edit set image` in a kustomization on top of it would. The checkout is untouched.
func RenderImage(root, dir, name, newName, newTag string) ([]*unstructured.Unstructured, error) {
	fs, err := shippedFS(root)
	if err != nil {
		return nil, err
	}
	top := filepath.Join(root, ".release", filepath.Base(dir)) // in memory only
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../%s\nimages:\n  - name: %s\n    newName: %s\n    newTag: %q\n",
		dir, name, newName, newTag)
	if err := fs.WriteFile(filepath.Join(top, "kustomization.yaml"), []byte(k)); err != nil {
		return nil, err
	}
	return render(fs, top, ".")
}

// shippedFS is an in-memory copy of the shipped YAML at the same paths.
func shippedFS(root string) (filesys.FileSystem, error) {
	fs := filesys.MakeFsInMemory()
	for _, d := range shippedDirs {
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
			return nil, err
		}
	}
	return fs, nil
}

// RenderInstall renders the overlay dir (relative to root) after editing its install.yaml the way its
// comments tell a user to: the three values set from v, one served Component per served namespace where
// the overlay lists them, the webhook Component with webhook namespaces. The edit happens in memory; the
// checkout is untouched.
func RenderInstall(root, dir string, v InstallValues) ([]*unstructured.Unstructured, error) {
	fs, err := shippedFS(root)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(root, dir, InstallFile)
	docs, err := ReadObjects(file)
	if err != nil {
		return nil, err
	}
	values := false
	for _, u := range docs {
		if u.GetKind() != "ConfigMap" || u.GetName() != "resume-trigger-install" {
			continue
		}
		values = true
		for k, val := range map[string]string{
			"namespace":         v.Namespace,
			"namespaces":        strings.Join(v.Namespaces, ","),
			"webhookNamespaces": strings.Join(v.WebhookNamespaces, ","),
		} {
			if err := unstructured.SetNestedField(u.Object, val, "data", k); err != nil {
				return nil, err
			}
		}
	}
	if !values {
		return nil, fmt.Errorf("%s has no ConfigMap resume-trigger-install", file)
	}
	var b strings.Builder
	for _, u := range docs {
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	if err := fs.WriteFile(file, []byte(b.String())); err != nil {
		return nil, err
	}
	components := append([]string{}, v.Components...)
	if len(v.WebhookNamespaces) > 0 {
		components = append(components, WebhookComponentDir)
	}
	if err := editComponents(fs, root, dir, components, len(v.Namespaces)); err != nil {
		return nil, err
	}
	return render(fs, root, dir)
}

// ApplyNamespaceInstall renders manifests/namespace-install for install namespace ns serving ns alone
// (RenderInstall: the overlay itself puts every object and subject there) and applies the server's
// identity and RBAC: the ClusterRoles and the leader Lease's FlowSchema as they are (created, or updated
// when an earlier test of the same rig made them: they are cluster-scoped, so the last install's namespace
// wins), the ServiceAccounts, Roles and RoleBindings. It returns the applied objects, the FlowSchema checked
// to name the ServiceAccount and Leases of ns. A kind it does not know is an error: the caller must decide
// whether the server needs it.
func (r *Rig) ApplyNamespaceInstall(ctx context.Context, ns string) ([]*unstructured.Unstructured, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	objs, err := RenderInstall(root, NamespaceInstallDir, InstallValues{Namespace: ns, Namespaces: []string{ns}})
	if err != nil {
		return nil, err
	}
	var applied []*unstructured.Unstructured
	for _, u := range objs {
		var gvr schema.GroupVersionResource
		switch kind := u.GetKind(); {
		case notApplied[kind]:
			continue
		case kind == "ClusterRole":
			gvr = clusterRoleGVR
		case kind == "FlowSchema":
			// The leader's Lease calls in priority level leader-election (API Priority and Fairness).
			gvr = flowSchemaGVR
		case kind == "ServiceAccount":
			gvr = serviceAccountGVR
		case kind == "Role":
			// The leader-election Lease rights, in the install namespace.
			gvr = roleGVR
		case kind == "RoleBinding":
			gvr = roleBindingGVR
		default:
			return nil, fmt.Errorf("%s renders a %s (%s) the rig does not know: decide whether the server needs it", NamespaceInstallDir, kind, u.GetName())
		}
		var client dynamic.ResourceInterface = r.dynamic.Resource(gvr)
		if u.GetNamespace() != "" {
			if u.GetNamespace() != ns {
				return nil, fmt.Errorf("%s rendered for namespace %s puts %s %s into %s", NamespaceInstallDir, ns, u.GetKind(), u.GetName(), u.GetNamespace())
			}
			client = r.dynamic.Resource(gvr).Namespace(ns)
		}
		out, err := client.Create(ctx, u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The ClusterRoles and the FlowSchema outlive a test's namespace (same rig, -count > 1), and
			// tests running in parallel may update them at once.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				old, gerr := client.Get(ctx, u.GetName(), metav1.GetOptions{})
				if gerr != nil {
					return gerr
				}
				u.SetResourceVersion(old.GetResourceVersion())
				var uerr error
				out, uerr = client.Update(ctx, u, metav1.UpdateOptions{})
				return uerr
			})
		}
		if err != nil {
			return nil, fmt.Errorf("apply %s %s from %s: %w", u.GetKind(), u.GetName(), NamespaceInstallDir, err)
		}
		if out.GetKind() == "FlowSchema" {
			if err := flowSchemaNamesOnly(out, ns); err != nil {
				return nil, fmt.Errorf("%s rendered for namespace %s: %w", NamespaceInstallDir, ns, err)
			}
		}
		applied = append(applied, out)
	}
	return applied, nil
}

// editComponents puts components (folders relative to root) at the head of the components list of the
// kustomization in dir, in fs, and, when the overlay lists ServedComponentsDir/0, lists one served
// Component per served namespace in place of the shipped ones.
func editComponents(fs filesys.FileSystem, root, dir string, components []string, served int) error {
	file := filepath.Join(root, dir, "kustomization.yaml")
	b, err := fs.ReadFile(file)
	if err != nil {
		return err
	}
	k := map[string]any{}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	rel := func(c string) (string, error) {
		return filepath.Rel(filepath.Join(root, dir), filepath.Join(root, c))
	}
	servedDir, err := rel(ServedComponentsDir)
	if err != nil {
		return err
	}
	var list []any
	for _, c := range components {
		r, err := rel(c)
		if err != nil {
			return err
		}
		list = append(list, r)
	}
	old, _ := k["components"].([]any)
	listsServed := false
	for _, c := range old {
		if s, _ := c.(string); strings.HasPrefix(s, servedDir+"/") {
			listsServed = true
		}
	}
	if listsServed {
		for i := range served {
			list = append(list, fmt.Sprintf("%s/%d", servedDir, i))
		}
	}
	for _, c := range old {
		if s, _ := c.(string); !strings.HasPrefix(s, servedDir+"/") {
			list = append(list, c)
		}
	}
	k["components"] = list
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	return fs.WriteFile(file, out)
}

// flowSchemaNamesOnly checks that FlowSchema u (as the API server stored it) matches the ServiceAccounts
// and the namespaced resources of namespace ns and no other: a FlowSchema left naming the overlay's default
// namespace would leave the real install's Lease renewals in the priority level of its releases.
func flowSchemaNamesOnly(u *unstructured.Unstructured, ns string) error {
	rules, _, err := unstructured.NestedSlice(u.Object, "spec", "rules")
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return fmt.Errorf("FlowSchema %s has no rules", u.GetName())
	}
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		subjects, _, _ := unstructured.NestedSlice(rule, "subjects")
		if len(subjects) == 0 {
			return fmt.Errorf("FlowSchema %s has a rule without subjects", u.GetName())
		}
		for _, sub := range subjects {
			m, _ := sub.(map[string]any)
			kind, _, _ := unstructured.NestedString(m, "kind")
			saNS, _, _ := unstructured.NestedString(m, "serviceAccount", "namespace")
			if kind != "ServiceAccount" || saNS != ns {
				return fmt.Errorf("FlowSchema %s matches subject %s in namespace %q, want ServiceAccounts of %s", u.GetName(), kind, saNS, ns)
			}
		}
		resourceRules, _, _ := unstructured.NestedSlice(rule, "resourceRules")
		for _, rr := range resourceRules {
			m, _ := rr.(map[string]any)
			namespaces, _, _ := unstructured.NestedStringSlice(m, "namespaces")
			if len(namespaces) != 1 || namespaces[0] != ns {
				return fmt.Errorf("FlowSchema %s matches resources in namespaces %v, want [%s]", u.GetName(), namespaces, ns)
			}
		}
	}
	return nil
}
