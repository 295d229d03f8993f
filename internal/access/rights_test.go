package access

import (
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// Needed is exactly what the shipped ClusterRole grants, in both directions: a right granted and never
// reviewed would leave a namespace "ready" without it, a right reviewed and never granted would mark
// every namespace not ready. The integration tier proves the ClusterRole is what the code calls.
func TestNeededIsTheShippedClusterRole(t *testing.T) {
	var role rbacv1.ClusterRole
	b, err := os.ReadFile("../../manifests/cluster-scoped/clusterrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &role); err != nil {
		t.Fatal(err)
	}
	var granted []Right
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					resource, sub, _ := strings.Cut(res, "/")
					granted = append(granted, Right{Group: g, Resource: resource, Subresource: sub, Verb: v})
				}
			}
		}
	}
	for _, r := range granted {
		if !slices.Contains(Needed, r) {
			t.Errorf("the ClusterRole grants %s, which Needed does not review", r)
		}
	}
	for _, r := range Needed {
		if !slices.Contains(granted, r) {
			t.Errorf("Needed reviews %s, which the ClusterRole does not grant", r)
		}
	}
	for _, r := range recording {
		if !slices.Contains(Needed, r) {
			t.Errorf("recording right %s is not in Needed", r)
		}
	}
}

// EphemeralFallback is the rule manifests/ephemeral-fallback adds.
func TestEphemeralFallbackIsTheComponentsRule(t *testing.T) {
	b, err := os.ReadFile("../../manifests/ephemeral-fallback/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Patches []struct {
			Target struct{ Kind string }
			Patch  string
		}
	}
	if err := yaml.Unmarshal(b, &comp); err != nil {
		t.Fatal(err)
	}
	for _, p := range comp.Patches {
		if p.Target.Kind != "ClusterRole" {
			continue
		}
		var ops []struct {
			Value rbacv1.PolicyRule
		}
		if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
			t.Fatal(err)
		}
		if len(ops) != 1 || !slices.Equal(ops[0].Value.APIGroups, []string{EphemeralFallback.Group}) ||
			!slices.Equal(ops[0].Value.Resources, []string{EphemeralFallback.Resource + "/" + EphemeralFallback.Subresource}) ||
			!slices.Equal(ops[0].Value.Verbs, []string{EphemeralFallback.Verb}) {
			t.Errorf("manifests/ephemeral-fallback adds %+v, want %s", ops, EphemeralFallback)
		}
		return
	}
	t.Fatal("manifests/ephemeral-fallback patches no ClusterRole")
}
