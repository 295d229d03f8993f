package integration

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func TestMain(m *testing.M) {
	os.Exit(rig.MainWithOptions(m, rig.Options{AfterTests: checkShippedRBACUse}))
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
	used := map[string]bool{}
	var refused []string
	for _, e := range events {
		if who := e.Identity(); !strings.HasPrefix(who, "system:serviceaccount:") || !strings.HasSuffix(who, ":"+serviceAccount) ||
			!strings.HasPrefix(e.UserAgent, serverAgent) || e.ObjectRef == nil {
			continue
		}
		key := grantKey(e.ObjectRef.APIGroup, e.Resource(), e.Verb)
		switch code := e.Code(); {
		case code == 403:
			refusalsMu.Lock()
			expected := refusals[e.ObjectRef.Namespace+" "+e.Resource()+" "+e.Verb]
			refusalsMu.Unlock()
			if !expected {
				refused = append(refused, fmt.Sprintf("%s in namespace %s", key, e.ObjectRef.Namespace))
			}
		case code > 0 && code < 400, code == 404, code == 409:
			// Allowed by RBAC: a NotFound or a Conflict is the object's answer, not the authorizer's.
			used[key] = true
		}
	}
	var unused []string
	for k := range granted {
		if !used[k] && !wsExecCovers(k, used) {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	slices.Sort(refused)
	var errs []error
	if len(unused) > 0 {
		var seen []string
		for _, e := range events {
			seen = append(seen, fmt.Sprintf("%s %q %s %s %d", e.Identity(), e.UserAgent, e.Verb, e.Resource(), e.Code()))
		}
		if len(seen) > 20 {
			seen = seen[:20]
		}
		fmt.Fprintf(os.Stderr, "rbac: %d audited requests, the first: \n  %s\n", len(events), strings.Join(seen, "\n  "))
		errs = append(errs, fmt.Errorf("the shipped RBAC grants what resume-trigger never called in the tests: %s (drop the verbs, or test the code that needs them)", strings.Join(unused, ", ")))
	}
	if len(refused) > 0 {
		errs = append(errs, fmt.Errorf("resume-trigger was refused as the shipped ServiceAccount: %s", strings.Join(slices.Compact(refused), ", ")))
	}
	if len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "rbac: resume-trigger used every one of the %d verbs the shipped roles grant, and was refused nothing unexpected (%d audited requests)\n", len(granted), len(events))
	}
	return errors.Join(errs...)
}

// wsExecCovers: client-go execs over WebSocket, a GET, which the API server authorizes as get and, since
// Kubernetes 1.35, also as create on pods/exec; the audit log records the GET only. A granted create on
// pods/exec is therefore used whenever an exec over WebSocket succeeded.
func wsExecCovers(k string, used map[string]bool) bool {
	return k == grantKey("", "pods/exec", "create") && used[grantKey("", "pods/exec", "get")]
}

func grantKey(group, resource, verb string) string {
	if group == "" {
		group = "core"
	}
	return group + "/" + resource + ":" + verb
}

// shippedGrants are the rules of every Role and ClusterRole manifests/namespace-install renders.
func shippedGrants() (map[string]bool, error) {
	root, err := rig.RepoRoot()
	if err != nil {
		return nil, err
	}
	objs, err := rig.RenderNamespaceInstall(root)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != "ClusterRole" && u.GetKind() != "Role" {
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
						out[grantKey(g, res, v)] = true
					}
				}
			}
		}
	}
	return out, nil
}
