package chart

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// execPolicyDir is applied beside an overlay; the chart renders it with execPolicy.enabled (its default).
const execPolicyDir = "manifests/exec-policy"

// compared are the fields of each kind that must be equal between the two renderings: everything that
// acts (labels and annotations may differ: Helm adds its own).
var compared = map[string][]string{
	"ClusterRole":                      {"rules"},
	"Role":                             {"rules"},
	"ClusterRoleBinding":               {"roleRef", "subjects"},
	"RoleBinding":                      {"roleRef", "subjects"},
	"ServiceAccount":                   {},
	"Deployment":                       {"spec"},
	"Service":                          {"spec"},
	"NetworkPolicy":                    {"spec"},
	"FlowSchema":                       {"spec"},
	"EventBus":                         {"spec"},
	"EventSource":                      {"spec"},
	"Sensor":                           {"spec"},
	"CustomResourceDefinition":         {"spec"},
	"ValidatingAdmissionPolicy":        {"spec"},
	"ValidatingAdmissionPolicyBinding": {"spec"},
	"Certificate":                      {"spec"},
	"Issuer":                           {"spec"},
}

// The chart and the kustomize overlays, rendered with the same settings, make the same objects (kind,
// namespace, name) with the same RBAC rules and bindings, the same server command line (after the
// kubelet's $(VAR) expansion) and the same Deployment, Sensor, EventSources, policies and CRD: two install
// paths, one truth. The one difference allowed: the overlays create the install Namespace, which Helm
// does with --create-namespace.
func TestChartAndKustomizeAgree(t *testing.T) {
	root := repoRoot(t)
	for name, tc := range map[string]struct {
		overlay string
		// values edit install.yaml; nil renders the overlay as shipped.
		values *rig.InstallValues
		chart  helmchart.Values
	}{
		"namespace-install as shipped, chart defaults serving argo": {
			overlay: rig.NamespaceInstallDir,
			chart:   helmchart.Values{"namespaces": []any{"argo"}},
		},
		"cluster-install as shipped, chart defaults serving *": {
			overlay: rig.ClusterInstallDir,
			chart:   helmchart.Values{"namespaces": []any{"*"}},
		},
		"namespace-install with two namespaces and the webhook": {
			overlay: rig.NamespaceInstallDir,
			values:  &rig.InstallValues{Namespace: installNamespace, Namespaces: []string{"team-a", "team-b"}, WebhookNamespaces: []string{"team-b"}},
		},
		"cluster-install with the webhook for every namespace": {
			overlay: rig.ClusterInstallDir,
			values:  &rig.InstallValues{Namespace: installNamespace, Namespaces: []string{"*"}, WebhookNamespaces: []string{"*"}},
		},
		"namespace-install with the web page over TLS": {
			overlay: rig.NamespaceInstallDir,
			values: &rig.InstallValues{Namespace: installNamespace, Namespaces: []string{"team-a"},
				Components: []string{"manifests/tls", "manifests/ui"}},
		},
		"cluster-install with the web page, no TLS": {
			overlay: rig.ClusterInstallDir,
			values:  &rig.InstallValues{Namespace: installNamespace, Namespaces: []string{"*"}, Components: []string{"manifests/ui"}},
		},
		"namespace-install with TLS from cert-manager and its own CA": {
			overlay: rig.NamespaceInstallDir,
			values: &rig.InstallValues{Namespace: installNamespace, Namespaces: []string{"team-a"},
				Components: []string{"manifests/tls", "manifests/tls/cert-manager", "manifests/tls/self-signed-ca"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var kust []*unstructured.Unstructured
			var err error
			chartValues := tc.chart
			if tc.values == nil {
				kust, err = rig.Render(root, tc.overlay)
			} else {
				kust, err = rig.RenderInstall(root, tc.overlay, *tc.values)
				if err == nil {
					chartValues, err = helmchart.ValuesFor(*tc.values)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			policy, err := rig.Render(root, execPolicyDir)
			if err != nil {
				t.Fatal(err)
			}
			kust = append(kust, policy...)
			chart, err := helmchart.Render(root, installNamespace, chartValues)
			if err != nil {
				t.Fatal(err)
			}
			diffs := compareInstalls(kust, chart)
			for _, d := range diffs {
				t.Error(d)
			}
			if len(diffs) == 0 {
				t.Logf("%d objects agree (%s)", len(chart), kinds(chart))
			}
		})
	}
}

func kinds(objs []*unstructured.Unstructured) string {
	var k []string
	for _, u := range objs {
		k = append(k, u.GetKind())
	}
	slices.Sort(k)
	return strings.Join(slices.Compact(k), ", ")
}

func id(u *unstructured.Unstructured) string {
	return strings.TrimSuffix(u.GetKind()+" "+u.GetNamespace(), " ") + "/" + u.GetName()
}

// compareInstalls lists every difference between the kustomize rendering kust and the chart's.
func compareInstalls(kust, chart []*unstructured.Unstructured) []string {
	byID := func(objs []*unstructured.Unstructured) (map[string]*unstructured.Unstructured, []string) {
		m := map[string]*unstructured.Unstructured{}
		var dup []string
		for _, u := range objs {
			if _, ok := m[id(u)]; ok {
				dup = append(dup, "rendered twice: "+id(u))
			}
			m[id(u)] = u
		}
		return m, dup
	}
	k, diffs := byID(kust)
	c, dup := byID(chart)
	diffs = append(diffs, dup...)
	for i, u := range k {
		if u.GetKind() == "Namespace" {
			continue // helm install --create-namespace
		}
		if c[i] == nil {
			diffs = append(diffs, "only kustomize renders "+i)
		}
	}
	for i, u := range c {
		if k[i] == nil {
			diffs = append(diffs, "only the chart renders "+i)
			continue
		}
		fields, ok := compared[u.GetKind()]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: kind %s is not compared; add it to compared", i, u.GetKind()))
			continue
		}
		for _, f := range fields {
			kv, cv := k[i].Object[f], u.Object[f]
			if u.GetKind() == "Deployment" {
				kv, cv = normalDeploymentSpec(k[i]), normalDeploymentSpec(u)
			}
			if !reflect.DeepEqual(kv, cv) {
				diffs = append(diffs, fmt.Sprintf("%s .%s differs:\n  kustomize %s\n  chart     %s", i, f, js(kv), js(cv)))
			}
		}
	}
	slices.Sort(diffs)
	return diffs
}

// normalDeploymentSpec is the Deployment's spec as the pod sees it: container args with $(VAR) expanded
// from the literal env (the overlays pass the served namespaces that way, the chart writes them into the
// args), the literal env vars that only served the expansion dropped, and the pod template's labels and
// annotations left out (Helm adds its own).
func normalDeploymentSpec(u *unstructured.Unstructured) any {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	unstructured.RemoveNestedField(spec, "template", "metadata")
	containers, _, _ := unstructured.NestedSlice(spec, "template", "spec", "containers")
	for _, ci := range containers {
		c := ci.(map[string]any)
		literal := map[string]string{}
		var env []any
		envList, _ := c["env"].([]any)
		for _, e := range envList {
			m := e.(map[string]any)
			if v, ok := m["value"].(string); ok {
				literal[m["name"].(string)] = v
				continue
			}
			env = append(env, e)
		}
		c["env"] = env
		args, _ := c["args"].([]any)
		for i, a := range args {
			s := a.(string)
			for n, v := range literal {
				s = strings.ReplaceAll(s, "$("+n+")", v)
			}
			args[i] = s
		}
	}
	_ = unstructured.SetNestedSlice(spec, containers, "template", "spec", "containers")
	return spec
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
