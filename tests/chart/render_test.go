package chart

import (
	"encoding/json"
	"flag"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// installNamespace is the release namespace the tests render into, the kustomize overlays' default.
const installNamespace = "argo-resume"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func render(t *testing.T, values helmchart.Values) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmchart.Render(repoRoot(t), installNamespace, values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			return u
		}
	}
	return nil
}

func count(objs []*unstructured.Unstructured, kind string) int {
	n := 0
	for _, u := range objs {
		if u.GetKind() == kind {
			n++
		}
	}
	return n
}

func decode[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatal("no such object")
	}
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return &v
}

// serverArgs are the server container's args with $(VAR) expanded from its literal env, as the kubelet
// does: what the process sees.
func serverArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	d := decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger"))
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	var args []string
	for _, a := range c.Args {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				a = strings.ReplaceAll(a, "$("+e.Name+")", e.Value)
			}
		}
		if strings.Contains(a, "$(") {
			t.Errorf("arg %q names an env var the container does not set", a)
		}
		args = append(args, a)
	}
	return args
}

// acceptArgs has the server's own flag parsing and checks complete args, in install namespace ns.
func acceptArgs(t *testing.T, args []string) {
	t.Helper()
	o := app.NewOptions()
	fs := flag.NewFlagSet("resume-trigger", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the server rejects its rendered args %q: %v", args, err)
	}
	t.Setenv("POD_NAMESPACE", installNamespace)
	if _, err := o.Complete(); err != nil {
		t.Errorf("the server rejects its rendered args %q: %v", args, err)
	}
}

// Helm's own lint, strict (warnings fail), over the defaults with served namespaces and over every option
// turned on at once.
func TestChartLints(t *testing.T) {
	root := repoRoot(t)
	for name, values := range map[string]helmchart.Values{
		"served namespaces only": {"namespaces": []any{"argo"}},
		"every option on": {
			"namespaces":        []any{"team-a", "team-b"},
			"webhook":           helmchart.Values{"enabled": true, "namespaces": []any{"team-a"}},
			"tls":               helmchart.Values{"mode": "cert-manager"},
			"pausedMetrics":     true,
			"serviceMonitor":    helmchart.Values{"enabled": true},
			"prometheusRule":    helmchart.Values{"enabled": true},
			"replicas":          2,
			"ephemeralFallback": helmchart.Values{"enabled": true},
			"eventBus":          helmchart.Values{"create": false, "name": "shared"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := helmchart.Lint(root, installNamespace, values); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Each value does what values.yaml says, and the server accepts the command line every rendering gives it.
func TestChartRendersEachOption(t *testing.T) {
	for name, tc := range map[string]struct {
		values helmchart.Values
		check  func(t *testing.T, objs []*unstructured.Unstructured, args []string)
	}{
		"served namespaces: one RoleBinding each, the flag and the Sensor's filter list them": {
			values: helmchart.Values{"namespaces": []any{"team-a", "team-b"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				var bound []string
				for _, u := range objs {
					if u.GetKind() == "RoleBinding" && u.GetName() == "resume-trigger" {
						b := decode[rbacv1.RoleBinding](t, u)
						if b.RoleRef.Name != "resume-trigger" || b.RoleRef.Kind != "ClusterRole" || len(b.Subjects) != 1 || b.Subjects[0].Namespace != installNamespace {
							t.Errorf("RoleBinding in %s: %+v %+v", b.Namespace, b.RoleRef, b.Subjects)
						}
						bound = append(bound, u.GetNamespace())
					}
				}
				if !slices.Equal(bound, []string{"team-a", "team-b"}) || find(objs, "ClusterRoleBinding", "resume-trigger") != nil {
					t.Errorf("RoleBindings in %v (ClusterRoleBinding %v), want team-a and team-b only", bound, find(objs, "ClusterRoleBinding", "resume-trigger") != nil)
				}
				if !slices.Contains(args, "--namespaces=team-a,team-b") {
					t.Errorf("args %q lack --namespaces=team-a,team-b", args)
				}
				expr, _, _ := unstructured.NestedSlice(find(objs, "Sensor", "").Object, "spec", "dependencies")
				if !strings.Contains(toJSON(t, expr), "'team-a,team-b' == '*'") {
					t.Errorf("the Sensor's filter does not name the served list: %s", toJSON(t, expr))
				}
			},
		},
		"every namespace: one ClusterRoleBinding, no RoleBinding": {
			values: helmchart.Values{"namespaces": []any{"*"}, "webhook": helmchart.Values{"enabled": true, "namespaces": []any{"*"}}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				crb := decode[rbacv1.ClusterRoleBinding](t, find(objs, "ClusterRoleBinding", "resume-trigger"))
				if crb.RoleRef.Name != "resume-trigger" || crb.Subjects[0].Namespace != installNamespace {
					t.Errorf("ClusterRoleBinding %+v %+v", crb.RoleRef, crb.Subjects)
				}
				if find(objs, "RoleBinding", "resume-trigger") != nil {
					t.Error("a served RoleBinding beside the ClusterRoleBinding")
				}
				if !slices.Contains(args, "--namespaces=*") || !slices.Contains(args, "--webhook-namespaces=*") {
					t.Errorf("args %q", args)
				}
			},
		},
		"webhook off: no webhook EventSource, the server refuses every webhook call": {
			values: helmchart.Values{"namespaces": []any{"argo"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if find(objs, "EventSource", "resume-webhook") != nil {
					t.Error("webhook EventSource deployed with the webhook off")
				}
				if find(objs, "EventSource", "resume-resource") == nil {
					t.Error("no resource EventSource")
				}
				if !slices.Contains(args, "--webhook-namespaces=") {
					t.Errorf("args %q: want an empty --webhook-namespaces", args)
				}
			},
		},
		"webhook on: its EventSource reads the token Secret, the server takes its namespaces": {
			values: helmchart.Values{"namespaces": []any{"team-a", "team-b"}, "webhook": helmchart.Values{"enabled": true, "namespaces": []any{"team-b"}}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				es := find(objs, "EventSource", "resume-webhook")
				if es == nil || es.GetNamespace() != installNamespace {
					t.Fatalf("webhook EventSource %v", es)
				}
				name, _, _ := unstructured.NestedString(es.Object, "spec", "webhook", "release", "authSecret", "name")
				if name != "resume-webhook-token" {
					t.Errorf("authSecret %q", name)
				}
				if !slices.Contains(args, "--webhook-namespaces=team-b") {
					t.Errorf("args %q", args)
				}
			},
		},
		"TLS by cert-manager with the chart's own CA: Certificate and Issuers in the install namespace, probes over HTTP": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "tls": helmchart.Values{"mode": "cert-manager"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				for _, id := range [][2]string{{"Certificate", "resume-trigger"}, {"Certificate", "resume-trigger-ca"}, {"Issuer", "resume-trigger-ca"}, {"Issuer", "resume-trigger-selfsigned"}} {
					if u := find(objs, id[0], id[1]); u == nil || u.GetNamespace() != installNamespace {
						t.Errorf("%s %s: %v, want it in %s", id[0], id[1], u, installNamespace)
					}
				}
				checkTLS(t, objs, args, "resume-trigger-tls")
			},
		},
		"TLS by cert-manager from your ClusterIssuer: no CA of the chart's": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "tls": helmchart.Values{"mode": "cert-manager", "certManager": helmchart.Values{"issuerRef": helmchart.Values{"name": "corp-ca", "kind": "ClusterIssuer"}}}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if count(objs, "Issuer") != 0 || count(objs, "Certificate") != 1 {
					t.Errorf("%d Issuers, %d Certificates; want only the server's Certificate", count(objs, "Issuer"), count(objs, "Certificate"))
				}
				ref, _, _ := unstructured.NestedStringMap(find(objs, "Certificate", "resume-trigger").Object, "spec", "issuerRef")
				if ref["name"] != "corp-ca" || ref["kind"] != "ClusterIssuer" {
					t.Errorf("issuerRef %v", ref)
				}
				checkTLS(t, objs, args, "resume-trigger-tls")
			},
		},
		"TLS from an existing Secret: no cert-manager object": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "tls": helmchart.Values{"mode": "secret", "secretName": "my-tls", "caSecretName": "my-ca"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if count(objs, "Issuer")+count(objs, "Certificate") != 0 {
					t.Error("cert-manager objects with tls.mode secret")
				}
				checkTLS(t, objs, args, "my-tls")
				if !strings.Contains(toJSON(t, find(objs, "Sensor", "").Object), `"certSecret":{"key":"ca.crt","name":"my-ca"}`) {
					t.Error("the Sensor does not read ca.crt from tls.caSecretName")
				}
			},
		},
		"pausedMetrics, ServiceMonitor and PrometheusRule grouping by exported_namespace": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "pausedMetrics": true, "serviceMonitor": helmchart.Values{"enabled": true}, "prometheusRule": helmchart.Values{"enabled": true}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if !slices.Contains(args, "--paused-metrics") {
					t.Errorf("args %q lack --paused-metrics", args)
				}
				sm := find(objs, "ServiceMonitor", "resume-trigger")
				if sm == nil {
					t.Fatal("no ServiceMonitor")
				}
				eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["honorLabels"] != false {
					t.Errorf("ServiceMonitor endpoints %v: want the metrics port with honorLabels false", eps)
				}
				rule := toJSON(t, find(objs, "PrometheusRule", "resume-trigger").Object)
				if !strings.Contains(rule, `max by (exported_namespace) (resume_trigger_oldest_pause_seconds) \u003e 14400`) {
					t.Errorf("the pause alert does not group by exported_namespace: %s", rule)
				}
			},
		},
		"two replicas: leader election and a PodDisruptionBudget": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "replicas": 2},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if d := decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger")); *d.Spec.Replicas != 2 {
					t.Errorf("replicas %d", *d.Spec.Replicas)
				}
				if !slices.Contains(args, "--leader-elect") || find(objs, "PodDisruptionBudget", "resume-trigger") == nil {
					t.Errorf("args %q, PodDisruptionBudget %v", args, find(objs, "PodDisruptionBudget", "resume-trigger") != nil)
				}
			},
		},
		"one replica without leader election: no PodDisruptionBudget, no --leader-elect": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "leaderElection": false},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if slices.Contains(args, "--leader-elect") || find(objs, "PodDisruptionBudget", "") != nil {
					t.Errorf("args %q, PodDisruptionBudget %v", args, find(objs, "PodDisruptionBudget", "") != nil)
				}
			},
		},
		"image, resources, log level, deadline": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "image": helmchart.Values{"repository": "registry.example/rt", "tag": "v9.9.9"},
				"resources": helmchart.Values{"requests": helmchart.Values{"cpu": "10m"}, "limits": helmchart.Values{"memory": "128Mi"}},
				"logLevel":  "debug", "resumeDeadline": "1h"},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				c := decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger")).Spec.Template.Spec.Containers[0]
				if c.Image != "registry.example/rt:v9.9.9" || c.Resources.Limits.Memory().String() != "128Mi" || c.Resources.Requests.Cpu().String() != "10m" {
					t.Errorf("image %s, resources %v", c.Image, c.Resources)
				}
				if !slices.Contains(args, "--log-level=debug") || !slices.Contains(args, "--resume-deadline=1h") {
					t.Errorf("args %q", args)
				}
			},
		},
		"exec policy off, an existing EventBus": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "execPolicy": helmchart.Values{"enabled": false}, "eventBus": helmchart.Values{"create": false, "name": "shared"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				if count(objs, "ValidatingAdmissionPolicy")+count(objs, "ValidatingAdmissionPolicyBinding")+count(objs, "EventBus") != 0 {
					t.Error("exec policy or EventBus rendered")
				}
				for _, u := range objs {
					if u.GetKind() == "Sensor" || u.GetKind() == "EventSource" {
						if bus, _, _ := unstructured.NestedString(u.Object, "spec", "eventBusName"); bus != "shared" {
							t.Errorf("%s %s uses EventBus %q, want shared", u.GetKind(), u.GetName(), bus)
						}
					}
				}
			},
		},
		"ephemeral fallback: the right and the flag together": {
			values: helmchart.Values{"namespaces": []any{"argo"}, "ephemeralFallback": helmchart.Values{"enabled": true}},
			check: func(t *testing.T, objs []*unstructured.Unstructured, args []string) {
				role := decode[rbacv1.ClusterRole](t, find(objs, "ClusterRole", "resume-trigger"))
				if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "pods/ephemeralcontainers") }) ||
					!slices.Contains(args, "--ephemeral-image=busybox:1.37.0") {
					t.Errorf("rules %v, args %q", role.Rules, args)
				}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, tc.values)
			for _, u := range objs {
				if u.GetNamespace() != "" && u.GetNamespace() != installNamespace && u.GetKind() != "RoleBinding" {
					t.Errorf("%s %s in %s, not the install namespace", u.GetKind(), u.GetName(), u.GetNamespace())
				}
			}
			args := serverArgs(t, objs)
			acceptArgs(t, args)
			tc.check(t, objs, args)
		})
	}
}

// checkTLS: the server serves the Secret's certificate, the kubelet probes over HTTP, and both Sensor
// triggers verify the server.
func checkTLS(t *testing.T, objs []*unstructured.Unstructured, args []string, secret string) {
	t.Helper()
	if !slices.Contains(args, "--tls-cert-file=/etc/resume-trigger/tls/tls.crt") || !slices.Contains(args, "--tls-key-file=/etc/resume-trigger/tls/tls.key") {
		t.Errorf("args %q lack the TLS files", args)
	}
	spec := decode[appsv1.Deployment](t, find(objs, "Deployment", "resume-trigger")).Spec.Template.Spec
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == secret }) {
		t.Errorf("no volume of Secret %s", secret)
	}
	c := spec.Containers[0]
	if c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet == nil {
		t.Error("gRPC probes with TLS: the kubelet's gRPC probe speaks plaintext")
	}
	triggers, _, _ := unstructured.NestedSlice(find(objs, "Sensor", "").Object, "spec", "triggers")
	for _, tr := range triggers {
		custom, _, _ := unstructured.NestedMap(tr.(map[string]any), "template", "custom")
		if custom["secure"] != true || custom["serverNameOverride"] != "resume-trigger" || custom["certSecret"] == nil {
			t.Errorf("trigger %v does not verify the server", custom)
		}
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
