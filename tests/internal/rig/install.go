package rig

import (
	"context"
	"fmt"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// NamespaceInstallDir is the kustomization users apply to run the server in one namespace, relative to
// the repository root.
const NamespaceInstallDir = "manifests/namespace-install"

var (
	clusterRoleGVR    = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	roleBindingGVR    = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	roleGVR           = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	serviceAccountGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// notApplied are the kinds of manifests/namespace-install that a test does not apply: the rig installed
// the CRD, the test made its own namespace, and the server runs as a process of the test.
var notApplied = map[string]bool{
	"CustomResourceDefinition": true, "Namespace": true, "Deployment": true, "Service": true, "NetworkPolicy": true,
}

// RenderNamespaceInstall renders manifests/namespace-install with kustomize's Go API, as
// `kubectl apply -k` would.
func RenderNamespaceInstall(root string) ([]*unstructured.Unstructured, error) {
	return Render(root, NamespaceInstallDir)
}

// Render builds the kustomization in dir (relative to the repository root) as kustomize would.
func Render(root, dir string) ([]*unstructured.Unstructured, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, res := range resources.Resources() {
		m, err := res.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: rendered %s/%s: %w", dir, res.GetKind(), res.GetName(), err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

// ApplyNamespaceInstall renders manifests/namespace-install and applies the server's identity and RBAC
// for namespace ns: the ClusterRole as is (created, or updated when an earlier test of the same rig made
// it), the ServiceAccount and the RoleBinding moved from the overlay's namespace into ns (in code; the
// files are what users apply). It returns the applied objects. A kind it does not know is an error: the
// caller must decide whether the server needs it.
func (r *Rig) ApplyNamespaceInstall(ctx context.Context, ns string) ([]*unstructured.Unstructured, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	objs, err := RenderNamespaceInstall(root)
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
		case kind == "ServiceAccount":
			gvr = serviceAccountGVR
		case kind == "Role":
			// The leader-election Lease rights, in the install namespace.
			gvr = roleGVR
		case kind == "RoleBinding":
			gvr = roleBindingGVR
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, s := range subjects {
				if s := s.(map[string]any); s["kind"] == "ServiceAccount" {
					s["namespace"] = ns
				}
			}
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s renders a %s (%s) the rig does not know: decide whether the server needs it", NamespaceInstallDir, kind, u.GetName())
		}
		var client dynamic.ResourceInterface = r.dynamic.Resource(gvr)
		if u.GetNamespace() != "" {
			u.SetNamespace(ns)
			client = r.dynamic.Resource(gvr).Namespace(ns)
		}
		out, err := client.Create(ctx, u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The ClusterRole outlives a test's namespace (same rig, -count > 1).
			old, gerr := client.Get(ctx, u.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return nil, gerr
			}
			u.SetResourceVersion(old.GetResourceVersion())
			out, err = client.Update(ctx, u, metav1.UpdateOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("apply %s %s from %s: %w", u.GetKind(), u.GetName(), NamespaceInstallDir, err)
		}
		applied = append(applied, out)
	}
	return applied, nil
}
