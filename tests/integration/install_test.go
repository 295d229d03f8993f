package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1alpha1 "github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/sensors/dependencies"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// installCase is one rendering of a shipped overlay and what every namespace-dependent value must be.
type installCase struct {
	overlay string
	// values edits install.yaml (rig.RenderInstall); nil renders the overlay as shipped.
	values *rig.InstallValues
	// install, served, webhook are what the rendering must say.
	install string
	served  []string
	webhook []string
}

func installCases() map[string]installCase {
	return map[string]installCase{
		"namespace-install as shipped": {overlay: rig.NamespaceInstallDir, install: "argo-resume", served: []string{"argo"}},
		"namespace-install edited": {
			overlay: rig.NamespaceInstallDir,
			values:  &rig.InstallValues{Namespace: "ops", Namespaces: []string{"team-a", "team-b"}, WebhookNamespaces: []string{"team-a"}},
			install: "ops", served: []string{"team-a", "team-b"}, webhook: []string{"team-a"},
		},
		"cluster-install as shipped": {overlay: rig.ClusterInstallDir, install: "argo-resume", served: []string{"*"}},
		"cluster-install edited": {
			overlay: rig.ClusterInstallDir,
			values:  &rig.InstallValues{Namespace: "ops", Namespaces: []string{"*"}, WebhookNamespaces: []string{"team-b"}},
			install: "ops", served: []string{"*"}, webhook: []string{"team-b"},
		},
	}
}

func (tc installCase) render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	if tc.values == nil {
		objs, err = rig.Render(root, tc.overlay)
	} else {
		objs, err = rig.RenderInstall(root, tc.overlay, *tc.values)
	}
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decode[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return &v
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			return u
		}
	}
	return nil
}

// Every shipped overlay, as shipped and with install.yaml edited: each namespace-dependent value names the
// install namespace or the served ones, as install.yaml says, and the server accepts the command line.
func TestShippedOverlaysFollowInstallYAML(t *testing.T) {
	for name, tc := range installCases() {
		t.Run(name, func(t *testing.T) {
			objs := tc.render(t)
			if ns := find(objs, "Namespace", ""); ns == nil || ns.GetName() != tc.install {
				t.Errorf("Namespace object %v, want %s", ns, tc.install)
			}
			if cm := find(objs, "ConfigMap", "resume-trigger-install"); cm != nil {
				t.Error("install.yaml's ConfigMap is rendered: it is local-config, read by the replacements only")
			}
			servedGrants := map[string]bool{}
			for _, u := range objs {
				kind, ns := u.GetKind(), u.GetNamespace()
				switch {
				case kind == "RoleBinding" && u.GetName() == "resume-trigger":
					servedGrants[ns] = true
				case ns != "" && ns != tc.install:
					t.Errorf("%s %s is in %s, not the install namespace %s", kind, u.GetName(), ns, tc.install)
				}
				if kind == "RoleBinding" || kind == "ClusterRoleBinding" {
					b := decode[rbacv1.RoleBinding](t, u)
					for _, s := range b.Subjects {
						if s.Kind == rbacv1.ServiceAccountKind && s.Namespace != tc.install {
							t.Errorf("%s %s/%s names ServiceAccount %s/%s, not one of the install namespace %s", kind, ns, b.Name, s.Namespace, s.Name, tc.install)
						}
					}
				}
			}
			// The server's exec rights: a RoleBinding in each served namespace, or one ClusterRoleBinding.
			crb := find(objs, "ClusterRoleBinding", "resume-trigger")
			if slices.Equal(tc.served, []string{"*"}) {
				if crb == nil || len(servedGrants) > 0 {
					t.Errorf("cluster-wide install: ClusterRoleBinding %v, RoleBindings in %v; want only the ClusterRoleBinding", crb != nil, servedGrants)
				}
			} else if crb != nil || !mapKeysEqual(servedGrants, tc.served) {
				t.Errorf("RoleBindings resume-trigger in %v (ClusterRoleBinding %v), want one in each of %v and none cluster-wide", servedGrants, crb != nil, tc.served)
			}

			s := decode[eventsv1alpha1.Sensor](t, find(objs, "Sensor", ""))
			for _, tr := range s.Spec.Triggers {
				if want := "resume-trigger." + tc.install + ".svc:9000"; tr.Template.CustomTrigger.ServerURL != want {
					t.Errorf("trigger %s calls %s, want %s", tr.Template.Name, tr.Template.CustomTrigger.ServerURL, want)
				}
			}
			for _, u := range objs {
				if u.GetKind() != "EventSource" {
					continue
				}
				for event, src := range decode[eventsv1alpha1.EventSource](t, u).Spec.Resource {
					if src.Namespace != "" {
						t.Errorf("EventSource %s event %s watches %q, want every namespace (the Sensor filters)", u.GetName(), event, src.Namespace)
					}
				}
			}
			checkServerCommandLine(t, decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger")), tc)
			checkSensorFilter(t, s, tc.served)
			checkLeaderFlowSchema(t, objs, tc.install)
		})
	}
}

// checkLeaderFlowSchema: the FlowSchema sends the server's own Lease calls, in the install namespace, to
// priority level leader-election, ahead of the built-in service-accounts (9000) that would put them into
// workload-low behind the releases.
func checkLeaderFlowSchema(t *testing.T, objs []*unstructured.Unstructured, install string) {
	t.Helper()
	u := find(objs, "FlowSchema", "resume-trigger-leader-election")
	if u == nil {
		t.Error("no FlowSchema resume-trigger-leader-election: the leader's Lease renewals would queue behind its releases")
		return
	}
	if u.GetNamespace() != "" {
		t.Errorf("FlowSchema %s has namespace %s: it is cluster-scoped", u.GetName(), u.GetNamespace())
	}
	fs := decode[flowcontrolv1.FlowSchema](t, u)
	if fs.Spec.PriorityLevelConfiguration.Name != "leader-election" || fs.Spec.MatchingPrecedence >= 9000 {
		t.Errorf("FlowSchema %s: priority level %s, precedence %d; want leader-election below 9000", fs.Name, fs.Spec.PriorityLevelConfiguration.Name, fs.Spec.MatchingPrecedence)
	}
	if len(fs.Spec.Rules) != 1 {
		t.Fatalf("FlowSchema %s has %d rules, want 1", fs.Name, len(fs.Spec.Rules))
	}
	rule := fs.Spec.Rules[0]
	want := flowcontrolv1.ServiceAccountSubject{Namespace: install, Name: serviceAccount}
	if len(rule.Subjects) != 1 || rule.Subjects[0].Kind != flowcontrolv1.SubjectKindServiceAccount || rule.Subjects[0].ServiceAccount == nil || *rule.Subjects[0].ServiceAccount != want {
		t.Errorf("FlowSchema %s subjects %+v, want only ServiceAccount %s/%s", fs.Name, rule.Subjects, install, serviceAccount)
	}
	if len(rule.NonResourceRules) != 0 || len(rule.ResourceRules) != 1 {
		t.Fatalf("FlowSchema %s: %d resource rules, %d non-resource rules; want one resource rule", fs.Name, len(rule.ResourceRules), len(rule.NonResourceRules))
	}
	rr := rule.ResourceRules[0]
	if !slices.Equal(rr.APIGroups, []string{"coordination.k8s.io"}) || !slices.Equal(rr.Resources, []string{"leases"}) ||
		!slices.Equal(rr.Namespaces, []string{install}) || rr.ClusterScope || !slices.Equal(rr.Verbs, []string{"get", "create", "update"}) {
		t.Errorf("FlowSchema %s matches %+v, want get/create/update of coordination.k8s.io leases in %s only", fs.Name, rr, install)
	}
}

func mapKeysEqual(m map[string]bool, keys []string) bool {
	if len(m) != len(keys) {
		return false
	}
	for _, k := range keys {
		if !m[k] {
			return false
		}
	}
	return true
}

// checkServerCommandLine expands the container's args as the kubelet does and has the server's own flag
// parsing complete them.
func checkServerCommandLine(t *testing.T, d *appsv1.Deployment, tc installCase) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if ref := c.Image; strings.HasSuffix(ref, ":latest") || !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		t.Errorf("image %s: want a versioned tag", ref)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if got := env["RESUME_TRIGGER_NAMESPACES"]; got != strings.Join(tc.served, ",") {
		t.Errorf("RESUME_TRIGGER_NAMESPACES = %q, want %q", got, strings.Join(tc.served, ","))
	}
	if got := env["RESUME_TRIGGER_WEBHOOK_NAMESPACES"]; got != strings.Join(tc.webhook, ",") {
		t.Errorf("RESUME_TRIGGER_WEBHOOK_NAMESPACES = %q, want %q", got, strings.Join(tc.webhook, ","))
	}
	var args []string
	for _, a := range c.Args {
		for name, v := range env {
			a = strings.ReplaceAll(a, "$("+name+")", v)
		}
		if strings.Contains(a, "$(") {
			t.Errorf("arg %q names an env var the container does not set", a)
		}
		args = append(args, a)
	}
	if !slices.Contains(args, "--namespaces="+strings.Join(tc.served, ",")) || !slices.Contains(args, "--webhook-namespaces="+strings.Join(tc.webhook, ",")) {
		t.Errorf("args %q lack --namespaces=%s and --webhook-namespaces=%s", args, strings.Join(tc.served, ","), strings.Join(tc.webhook, ","))
	}
	o := app.NewOptions()
	fs := flag.NewFlagSet("resume-trigger", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the server rejects its rendered args %q: %v", args, err)
	}
	t.Setenv("POD_NAMESPACE", tc.install)
	if _, err := o.Complete(); err != nil {
		t.Errorf("the server rejects its rendered args %q: %v", args, err)
	}
}

// checkSensorFilter runs the rendered Sensor's resume dependency filter with argo-events' own code on
// Resume events of the served namespaces, of the install namespace and of one no one serves.
func checkSensorFilter(t *testing.T, s *eventsv1alpha1.Sensor, served []string) {
	t.Helper()
	var filter *eventsv1alpha1.EventDependencyFilter
	for _, dep := range s.Spec.Dependencies {
		if dep.Name == "resume" {
			filter = dep.Filters
		}
	}
	all := slices.Equal(served, []string{"*"})
	if filter == nil {
		t.Fatal("the resume dependency has no filter: every Resume of the cluster would reach the server")
	}
	probe := []string{"elsewhere", "team", "team-a-2", "argo-resume"}
	if !all {
		probe = append(probe, served...)
	}
	for _, ns := range probe {
		ev := resourceEvent(t, ns)
		got, err := dependencies.Filter(ev, filter, "")
		if err != nil {
			t.Fatalf("argo-events cannot evaluate %q: %v", filter.Exprs[0].Expr, err)
		}
		if want := all || slices.Contains(served, ns); got != want {
			t.Errorf("a Resume in %s passes the Sensor's filter %q: %v, want %v", ns, filter.Exprs[0].Expr, got, want)
		}
	}
}

// resourceEvent is the event the resource EventSource emits for a Resume created in ns.
func resourceEvent(t *testing.T, ns string) *eventsv1alpha1.Event {
	t.Helper()
	body, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&v1alpha1.Resume{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r", UID: types.UID("u-1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := (&unstructured.Unstructured{Object: map[string]any{"type": "ADD", "body": body}}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return &eventsv1alpha1.Event{
		Context: &eventsv1alpha1.EventContext{ID: "1", Source: "resume-resource", SpecVersion: "1.0", Type: "resource", Subject: "resumes", DataContentType: "application/json"},
		Data:    data,
	}
}

// No CNI runs in the rig, so no NetworkPolicy is enforced here: this test EVALUATES the rendered policy
// with the semantics of the NetworkPolicy API (networking/v1 docs: peers are ORed, a namespaceSelector and
// a podSelector in one peer must both match, a bare podSelector means the policy's own namespace) over
// pods and namespaces labelled as a cluster labels them: namespaces by the API server
// (kubernetes.io/metadata.name, read back from the real API server), the Sensor's pods as the argo-events
// sensor controller labels them. A workflow pod in a served namespace that copies the Sensor's labels is
// not admitted to the gRPC port; the Sensor's own pod in the install namespace is.
func TestNetworkPolicyAdmitsOnlyTheInstallNamespacesSensor(t *testing.T) {
	r := rig.Get(t)
	install, teamA := r.Namespace(t), r.Namespace(t)
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rig.RenderInstall(root, rig.NamespaceInstallDir, rig.InstallValues{Namespace: install, Namespaces: []string{teamA}})
	if err != nil {
		t.Fatal(err)
	}
	np := decode[networkingv1.NetworkPolicy](t, find(objs, "NetworkPolicy", "resume-trigger"))
	server := decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger"))
	sensor := find(objs, "Sensor", "")
	nsLabels := map[string]labels.Set{}
	for _, ns := range []string{install, teamA} {
		got, err := r.Client().CoreV1().Namespaces().Get(rig.Context(t, 10*time.Second), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nsLabels[ns] = got.Labels
	}
	// What the argo-events sensor controller puts on the Sensor's pods (pkg/reconciler/sensor/controller.go).
	sensorPod := labels.Set{"controller": "sensor-controller", eventsv1alpha1.LabelSensorName: sensor.GetName(), eventsv1alpha1.LabelOwnerName: sensor.GetName()}
	serverPod := labels.Set(server.Spec.Template.Labels)

	if np.Namespace != install {
		t.Fatalf("NetworkPolicy in %s, want the install namespace %s", np.Namespace, install)
	}
	for _, tc := range []struct {
		name   string
		from   labels.Set
		fromNS string
		port   int32
		admit  bool
	}{
		{"the Sensor's pod in the install namespace, gRPC", sensorPod, install, 9000, true},
		{"a workflow pod in team-a with the Sensor's labels, gRPC", sensorPod, teamA, 9000, false},
		{"another pod of the install namespace, gRPC", labels.Set{"app": "other"}, install, 9000, false},
		{"a pod in team-a, metrics", labels.Set{}, teamA, 8080, true},
		{"the Sensor's pod, a port the policy does not open", sensorPod, install, 9001, false},
	} {
		got, err := admits(np, nsLabels[np.Namespace], serverPod, nsLabels[tc.fromNS], tc.from, tc.fromNS == np.Namespace, tc.port)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.admit {
			t.Errorf("%s: admitted %v, want %v", tc.name, got, tc.admit)
		}
	}
}

// admits evaluates NetworkPolicy np for a TCP connection to port of a pod labelled to (in np's namespace),
// from a pod labelled from in a namespace labelled fromNS (sameNS: the policy's own). It covers what a
// policy can say about pod sources: podSelector, namespaceSelector, both in one peer, empty from (all),
// empty ports (all), numeric ports; an ipBlock never matches a pod's in-cluster address here, and a named
// port is an error (the shipped policy uses numbers).
func admits(np *networkingv1.NetworkPolicy, _ labels.Set, to labels.Set, fromNS labels.Set, from labels.Set, sameNS bool, port int32) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return false, err
	}
	if !sel.Matches(to) {
		return true, errors.New("the policy does not select the server's pods: it protects nothing")
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && len(np.Spec.PolicyTypes) > 0 {
		return true, nil
	}
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if p.Port == nil {
				portOK = true
				continue
			}
			if p.Port.StrVal != "" {
				return false, fmt.Errorf("named port %s: the evaluator resolves numbers only", p.Port.StrVal)
			}
			end := p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			portOK = portOK || (port >= p.Port.IntVal && port <= end)
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true, nil
		}
		for _, peer := range rule.From {
			ok, err := peerMatches(peer, fromNS, from, sameNS)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

func peerMatches(peer networkingv1.NetworkPolicyPeer, fromNS, from labels.Set, sameNS bool) (bool, error) {
	if peer.IPBlock != nil {
		return false, nil
	}
	nsOK := sameNS // no namespaceSelector: the policy's own namespace only
	if peer.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return false, err
		}
		nsOK = s.Matches(fromNS)
	}
	podOK := true // no podSelector: every pod of the selected namespaces
	if peer.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil {
			return false, err
		}
		podOK = s.Matches(from)
	}
	return nsOK && podOK, nil
}

// Every object of each shipped overlay, rendered for fresh namespaces, is accepted by the real API server:
// namespace-install created for real (its install namespace, RBAC, Deployment, Service, NetworkPolicy,
// EventBus, EventSources, Sensor; argo-events' CRDs installed first), cluster-install by server-side dry
// run (its ClusterRoleBinding would give exec everywhere on a rig other tests share).
func TestShippedOverlaysApplyToTheAPIServer(t *testing.T) {
	r := rig.Get(t)
	ctx := rig.Context(t, 90*time.Second)
	if err := installArgoEventsCRDs(ctx, r); err != nil {
		t.Fatal(err)
	}
	teamA, teamB := r.Namespace(t), r.Namespace(t)
	install := "install-" + teamA // fresh: the overlay creates it
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(r.AdminConfig())))
	for _, tc := range []struct {
		overlay string
		served  []string
		dryRun  bool
	}{
		{rig.NamespaceInstallDir, []string{teamA, teamB}, false},
		{rig.ClusterInstallDir, []string{"*"}, true},
	} {
		objs, err := rig.RenderInstall(root, tc.overlay, rig.InstallValues{Namespace: install, Namespaces: tc.served, WebhookNamespaces: tc.served[:1]})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, u := range objs {
			// Cluster-scoped objects other tests of this rig also make (the CRD, the ClusterRoles) and
			// the cluster-install ClusterRoleBindings go through a dry run only; the Namespace is made.
			dry := tc.dryRun && u.GetKind() != "Namespace"
			if u.GetNamespace() == "" && u.GetKind() != "Namespace" {
				dry = true
			}
			if err := serverSideApply(ctx, r.Dynamic(), mapper, u, dry); err != nil {
				t.Fatalf("%s: %v", tc.overlay, err)
			}
			kinds = append(kinds, u.GetKind())
		}
		t.Logf("%s: the API server accepted %d objects (dry run %v): %s", tc.overlay, len(objs), tc.dryRun, strings.Join(kinds, ", "))
	}
	// namespace-install was created for real: the objects are there, where install.yaml put them.
	if _, err := r.Client().RbacV1().RoleBindings(teamB).Get(ctx, "resume-trigger", metav1.GetOptions{}); err != nil {
		t.Errorf("the served RoleBinding in %s: %v", teamB, err)
	}
	sensors := r.Dynamic().Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "sensors"}).Namespace(install)
	if _, err := sensors.Get(ctx, "resume-trigger", metav1.GetOptions{}); err != nil {
		t.Errorf("the Sensor in %s: %v", install, err)
	}
}

func serverSideApply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	var client dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		client = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	opts := metav1.ApplyOptions{FieldManager: "install-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := client.Apply(ctx, u.GetName(), u, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// installArgoEventsCRDs creates argo-events' EventBus, EventSource and Sensor CRDs (from the pinned module)
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
	crds := r.Dynamic().Resource(apiextensionsCRDs)
	for _, f := range files {
		objs, err := rig.ReadObjects(f)
		if err != nil {
			return err
		}
		for _, u := range objs {
			if _, err := crds.Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	sensors := r.Dynamic().Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "sensors"})
	return rig.Eventually(ctx, func() error {
		_, err := sensors.List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
}

var apiextensionsCRDs = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// The roles for people, aggregated by Kubernetes' own ClusterRole aggregation controller (the rig runs no
// controller-manager; rig.StartClusterRoleAggregation runs that one controller): whoever is bound to edit
// in a namespace may create and delete Resumes there, whoever is bound to view may only read them, and
// resume-trigger-edit alone gives nothing beyond Resumes (no exec, no pods, no status).
func TestUserRolesAggregateIntoEditAndView(t *testing.T) {
	r := rig.Get(t)
	ctx := rig.Context(t, 60*time.Second)
	stop, err := r.StartClusterRoleAggregation()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rig.RenderNamespaceInstall(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"resume-trigger-edit", "resume-trigger-view"} {
		u := find(objs, "ClusterRole", name)
		if u == nil {
			t.Fatalf("manifests/namespace-install renders no ClusterRole %s", name)
		}
		role := decode[rbacv1.ClusterRole](t, u)
		role.ResourceVersion = ""
		if old, err := r.Client().RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err == nil {
			role.ResourceVersion = old.ResourceVersion
			_, err = r.Client().RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		} else if _, err := r.Client().RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The controller folds the rules in: wait until it has, for each default role.
	resumes := func(verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{v1alpha1.Resource.Resource}, Verbs: verbs}
	}
	for role, want := range map[string]rbacv1.PolicyRule{
		"edit":  resumes("create", "delete", "get", "list", "watch"),
		"admin": resumes("create", "delete", "get", "list", "watch"),
		"view":  resumes("get", "list", "watch"),
	} {
		if err := rig.Eventually(ctx, func() error {
			cr, err := r.Client().RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(cr.Rules, func(p rbacv1.PolicyRule) bool { return equalRule(p, want) }) {
				return fmt.Errorf("ClusterRole %s has no rule %v yet (aggregation)", role, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	ns, other := r.Namespace(t), r.Namespace(t)
	bind := func(user, role string) {
		t.Helper()
		_, err := r.Client().RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	bind("alice", "edit")
	bind("bob", "view")
	bind("carol", "resume-trigger-edit")

	// alice, bound to edit, creates a Resume as herself (impersonation); bob, bound to view, cannot.
	for user, allowed := range map[string]bool{"alice": true, "bob": false, "carol": true} {
		cfg := rest.CopyConfig(r.AdminConfig())
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": v1alpha1.Kind,
			"metadata": map[string]any{"name": "by-" + user},
			"spec":     map[string]any{"Workflow-ID": "wf-1", "TemplateName": "step"},
		}}
		_, err = dyn.Resource(v1alpha1.Resource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		if allowed && err != nil {
			t.Errorf("%s cannot create a Resume in %s: %v", user, ns, err)
		}
		if !allowed && !apierrors.IsForbidden(err) {
			t.Errorf("%s created a Resume in %s (err %v), want Forbidden", user, ns, err)
		}
	}
	for _, tc := range []struct {
		user, ns, resource, sub, verb string
		allowed                       bool
	}{
		{"alice", ns, "resumes", "", "delete", true},
		{"alice", other, "resumes", "", "create", false},
		{"bob", ns, "resumes", "", "list", true},
		{"bob", ns, "resumes", "", "watch", true},
		{"bob", ns, "resumes", "", "delete", false},
		{"carol", ns, "resumes", "", "delete", true},
		{"carol", ns, "resumes", "", "update", false},
		{"carol", ns, "resumes", "status", "update", false},
		{"carol", ns, "pods", "exec", "create", false},
		{"carol", ns, "pods", "", "get", false},
		{"carol", other, "resumes", "", "create", false},
	} {
		sar, err := r.Client().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: tc.user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Group: groupOf(tc.resource), Resource: tc.resource, Subresource: tc.sub, Verb: tc.verb,
			},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s may %s %s/%s in %s: %v, want %v", tc.user, tc.verb, tc.resource, tc.sub, tc.ns, sar.Status.Allowed, tc.allowed)
		}
	}
}

func groupOf(resource string) string {
	if resource == "resumes" {
		return v1alpha1.GroupVersion.Group
	}
	return ""
}

func equalRule(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs) &&
		len(a.ResourceNames) == 0 && len(a.NonResourceURLs) == 0
}
