package integration

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func TestMain(m *testing.M) {
	os.Exit(rig.MainWithOptions(m, rig.Options{AfterTests: checkShippedRBACUse, AlsoCRDs: []rig.ArgoCRDs{rig.FullCRDsV4}}))
}

// serverAgent is the user agent of every request resume-trigger makes (its leader election adds a suffix).
const serverAgent = "resume-trigger"

var (
	refusalsMu sync.Mutex
	// refusals are the (namespace, resource, verb) a test makes the server be refused on purpose.
	refusals = map[string]bool{}
)

// expectRefusal declares that the server, run as the shipped ServiceAccount, is refused verb on resource
// in ns on purpose (a test of what happens without an opt-in rule).
func expectRefusal(ns, resource, verb string) {
	refusalsMu.Lock()
	defer refusalsMu.Unlock()
	refusals[ns+" "+resource+" "+verb] = true
}

// checkShippedRBACUse runs after the whole package passed. From the API server's audit log of the
// requests resume-trigger made as the shipped ServiceAccount (TestShippedRBACIsEnoughAndNoMore,
// TestEphemeralFallbackOnRealAPIServer, TestTwoReplicasOneLeads), it proves RBAC is exactly what the code
// calls: every verb the namespace-install roles grant was used by the server at least once, and no request
// of the server was refused except the ones a test declared on purpose.
func checkShippedRBACUse(r *rig.Rig) error {
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		fmt.Fprintln(os.Stderr, "rbac: -run selects some tests only, so the use of the shipped RBAC is not judged")
		return nil
	}
	granted, err := shippedGrants()
	if err != nil {
		return err
	}
	events, err := r.AuditEvents()
	if err != nil {
		return err
	}
	unused, refused := rig.JudgeRBAC(granted, events, ":"+serviceAccount, serverAgent, func(ns, resource, verb string) bool {
		refusalsMu.Lock()
		defer refusalsMu.Unlock()
		return refusals[ns+" "+resource+" "+verb]
	})
	var errs []error
	if beyond := usedBeyond(granted, events); len(beyond) > 0 {
		errs = append(errs, fmt.Errorf("resume-trigger called, as the shipped ServiceAccount, what neither the shipped roles nor system:basic-user grant: %s (add the verb to the role with the code that calls it)", strings.Join(beyond, ", ")))
	}
	if len(unused) > 0 {
		errs = append(errs, fmt.Errorf("the shipped RBAC grants what resume-trigger never called in the tests: %s (drop the verbs, or test the code that needs them)", strings.Join(unused, ", ")))
	}
	if len(refused) > 0 {
		errs = append(errs, fmt.Errorf("resume-trigger was refused as the shipped ServiceAccount: %s", strings.Join(refused, ", ")))
	}
	if len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "rbac: resume-trigger used every one of the %d verbs the shipped roles grant, and was refused nothing unexpected (%d audited requests)\n", len(granted), len(events))
	}
	return errors.Join(errs...)
}

// basicUser is what ClusterRole system:basic-user grants every authenticated user, the server included:
// it reviews its own rights with these (internal/access), so they need no rule in the shipped roles.
var basicUser = map[string]bool{
	rig.GrantKey("authorization.k8s.io", "selfsubjectaccessreviews", "create"): true,
	rig.GrantKey("authentication.k8s.io", "selfsubjectreviews", "create"):      true,
}

// optIn are the rules of opt-in overlays that a test grants the shipped ServiceAccount on purpose
// (TestEphemeralFallbackOnRealAPIServer: manifests/ephemeral-fallback).
var optIn = map[string]bool{
	rig.GrantKey("", "pods/ephemeralcontainers", "update"): true,
}

// usedBeyond are the requests the server made as the shipped ServiceAccount, and that the API server let
// through, which no shipped role grants: the other direction of "exactly what the code calls" than the
// refusals (a right granted to every user, or by a binding a test made, is not refused).
func usedBeyond(granted map[string]bool, events []rig.AuditEvent) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range events {
		who := e.Identity()
		if !strings.HasPrefix(who, "system:serviceaccount:") || !strings.HasSuffix(who, ":"+serviceAccount) || !strings.HasPrefix(e.UserAgent, serverAgent) || e.ObjectRef == nil {
			continue
		}
		if code := e.Code(); code == 0 || code == 403 || code >= 500 {
			continue
		}
		key := rig.GrantKey(e.ObjectRef.APIGroup, e.Resource(), e.Verb)
		if granted[key] || basicUser[key] || optIn[key] || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, key)
	}
	return out
}

// shippedGrants are the rules of every Role and ClusterRole manifests/namespace-install binds to the
// server's ServiceAccount (not the roles for people, nor the EventSource's).
func shippedGrants() (map[string]bool, error) {
	root, err := rig.RepoRoot()
	if err != nil {
		return nil, err
	}
	objs, err := rig.RenderNamespaceInstall(root)
	if err != nil {
		return nil, err
	}
	bound := map[string]bool{} // kind/name of the roles bound to the server's ServiceAccount
	for _, u := range objs {
		if u.GetKind() != "RoleBinding" && u.GetKind() != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.RoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == serviceAccount {
				bound[b.RoleRef.Kind+"/"+b.RoleRef.Name] = true
			}
		}
	}
	out := map[string]bool{}
	for _, u := range objs {
		if (u.GetKind() != "ClusterRole" && u.GetKind() != "Role") || !bound[u.GetKind()+"/"+u.GetName()] {
			continue
		}
		var role rbacv1.Role
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		for _, rule := range role.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						out[rig.GrantKey(g, res, v)] = true
					}
				}
			}
		}
	}
	return out, nil
}
