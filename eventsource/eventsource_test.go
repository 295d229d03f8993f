package eventsource_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/sources/resource"
	"github.com/argoproj/argo-events/pkg/eventsources/sources/webhook"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	resumev1alpha1 "github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// validator is what every argo-events event source listener implements.
type validator interface {
	ValidateEventSource(ctx context.Context) error
}

func TestEventSourcesPassArgoEventsValidation(t *testing.T) {
	tests := map[string]struct {
		file      string
		name      string
		listeners func(es *v1alpha1.EventSource) []validator
	}{
		"resource watch on Resumes": {
			file: "resource.yaml",
			name: "resume-resource",
			listeners: func(es *v1alpha1.EventSource) []validator {
				var out []validator
				for event, src := range es.Spec.Resource {
					out = append(out, &resource.EventListener{EventSourceName: es.Name, EventName: event, ResourceEventSource: src})
				}
				return out
			},
		},
		"bearer token webhook": {
			file: "webhook/webhook.yaml",
			name: "resume-webhook",
			listeners: func(es *v1alpha1.EventSource) []validator {
				var out []validator
				for event, src := range es.Spec.Webhook {
					out = append(out, &webhook.EventListener{EventSourceName: es.Name, EventName: event, Webhook: src})
				}
				return out
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var es v1alpha1.EventSource
			fixture.DecodeFile(t, tc.file, &es)
			if es.APIVersion != "argoproj.io/v1alpha1" || es.Kind != "EventSource" {
				t.Errorf("apiVersion/kind = %s/%s, want argoproj.io/v1alpha1/EventSource", es.APIVersion, es.Kind)
			}
			if es.Name != tc.name {
				t.Errorf("name = %q, want %q", es.Name, tc.name)
			}
			if got := sourceKinds(t, &es); len(got) != 1 {
				t.Errorf("event source kinds = %v, want exactly one (resource and webhook roll out differently)", got)
			}
			listeners := tc.listeners(&es)
			if len(listeners) != 1 {
				t.Fatalf("want exactly one event, got %d", len(listeners))
			}
			for _, l := range listeners {
				if err := l.ValidateEventSource(t.Context()); err != nil {
					t.Errorf("argo-events rejects %s: %v", tc.file, err)
				}
			}
		})
	}
}

// sourceKinds lists the event source kinds the spec configures (every spec field except the common ones).
func sourceKinds(t *testing.T, es *v1alpha1.EventSource) []string {
	t.Helper()
	raw, err := yaml.Marshal(es.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := yaml.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for k := range fields {
		switch k {
		case "template", "service", "eventBusName", "replicas":
		default:
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return kinds
}

func TestResourceEventSourceWatchesResumeCreation(t *testing.T) {
	var es v1alpha1.EventSource
	fixture.DecodeFile(t, "resource.yaml", &es)
	src, ok := es.Spec.Resource["resumes"]
	if !ok {
		t.Fatalf("no event named resumes (the Sensor depends on it); events: %v", es.Spec.Resource)
	}
	got := src.GroupVersionResource
	want := metav1.GroupVersionResource{
		Group:    resumev1alpha1.Resource.Group,
		Version:  resumev1alpha1.Resource.Version,
		Resource: resumev1alpha1.Resource.Resource,
	}
	if got != want {
		t.Errorf("watches %v, want the Resume API %v", got, want)
	}
	// Every namespace: one EventSource serves any list of namespaces; the Sensor passes on only the
	// served ones (sensor/ tests, and the rendered overlays in the integration tests).
	if src.Namespace != "" {
		t.Errorf("namespace = %q, want \"\" (every namespace, as rbac.yaml grants)", src.Namespace)
	}
	if !slices.Equal(src.EventTypes, []v1alpha1.ResourceEventType{v1alpha1.ADD}) {
		t.Errorf("eventTypes = %v, want [ADD]: the spec is immutable and status writes are the server's own", src.EventTypes)
	}
	if src.Filter == nil {
		t.Fatal("filter missing: afterStart must be stated")
	}
	if src.Filter.AfterStart {
		t.Error("afterStart is true: Resumes created while the EventSource was down would be dropped")
	}
	if len(src.Filter.Labels) > 0 || len(src.Filter.Fields) > 0 || src.Filter.Prefix != "" {
		t.Errorf("filter narrows the Resumes seen: %+v", src.Filter)
	}
	if es.Spec.Template == nil || es.Spec.Template.ServiceAccountName != "resume-eventsource" {
		t.Errorf("template.serviceAccountName is not resume-eventsource: %+v", es.Spec.Template)
	}
}

func TestWebhookEventSourceRequiresBearerToken(t *testing.T) {
	var es v1alpha1.EventSource
	fixture.DecodeFile(t, "webhook/webhook.yaml", &es)
	src, ok := es.Spec.Webhook["release"]
	if !ok {
		t.Fatalf("no event named release (the Sensor depends on it); events: %v", es.Spec.Webhook)
	}
	checks := map[string]struct{ got, want string }{
		"port":     {src.Port, "12000"},
		"endpoint": {src.Endpoint, "/resume"},
		"method":   {src.Method, "POST"},
	}
	for field, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", field, c.got, c.want)
		}
	}
	wantSecret := corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "resume-webhook-token"}, Key: "token"}
	if src.AuthSecret == nil || src.AuthSecret.Name != wantSecret.Name || src.AuthSecret.Key != wantSecret.Key {
		t.Errorf("authSecret = %+v, want %s/%s: without it anyone reaching the port can release steps",
			src.AuthSecret, wantSecret.Name, wantSecret.Key)
	}
	// The controller only creates resume-webhook-eventsource-svc when spec.service has ports.
	if es.Spec.Service == nil {
		t.Fatal("spec.service missing: no Service would be created for the webhook")
	}
	found := false
	for _, p := range es.Spec.Service.Ports {
		if p.Port == 12000 && p.TargetPort.IntValue() == 12000 {
			found = true
		}
	}
	if !found {
		t.Errorf("spec.service.ports %+v does not expose port 12000 on 12000", es.Spec.Service.Ports)
	}
}

func TestEventSourceRBACGrantsOnlyResumeReads(t *testing.T) {
	var es v1alpha1.EventSource
	fixture.DecodeFile(t, "resource.yaml", &es)
	account := es.Spec.Template.ServiceAccountName

	var (
		accounts []corev1.ServiceAccount
		roles    = map[string]rbacv1.ClusterRole{}
		bindings []rbacv1.ClusterRoleBinding
	)
	for i, doc := range fixture.YAMLDocuments(t, "rbac.yaml") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			fixture.DecodeStrict(t, "rbac.yaml", doc, &sa)
			accounts = append(accounts, sa)
		case "ClusterRole":
			var role rbacv1.ClusterRole
			fixture.DecodeStrict(t, "rbac.yaml", doc, &role)
			roles[role.Name] = role
		case "ClusterRoleBinding":
			// Reads of Resumes in every namespace, and nothing else (the rules checked below).
			var binding rbacv1.ClusterRoleBinding
			fixture.DecodeStrict(t, "rbac.yaml", doc, &binding)
			bindings = append(bindings, binding)
		default:
			t.Errorf("rbac.yaml document %d: unexpected kind %q", i, meta.Kind)
		}
	}
	if len(accounts) != 1 || accounts[0].Name != account {
		t.Fatalf("want one ServiceAccount %q, got %+v", account, accounts)
	}
	if len(bindings) != 1 {
		t.Fatalf("want one ClusterRoleBinding, got %d", len(bindings))
	}
	binding := bindings[0]
	// No namespace here: the overlay sets the install namespace (manifests/components/install).
	wantSubject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: account}
	if !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
		t.Errorf("binding subjects = %+v, want %+v", binding.Subjects, wantSubject)
	}
	role, ok := roles[binding.RoleRef.Name]
	if binding.RoleRef.Kind != "ClusterRole" || !ok {
		t.Fatalf("roleRef %+v names no ClusterRole of rbac.yaml", binding.RoleRef)
	}
	want := []rbacv1.PolicyRule{{
		APIGroups: []string{resumev1alpha1.GroupVersion.Group},
		Resources: []string{resumev1alpha1.Resource.Resource},
		Verbs:     []string{"get", "list", "watch"},
	}}
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].APIGroups, want[0].APIGroups) ||
		!slices.Equal(role.Rules[0].Resources, want[0].Resources) || !slices.Equal(role.Rules[0].Verbs, want[0].Verbs) ||
		len(role.Rules[0].ResourceNames) > 0 || len(role.Rules[0].NonResourceURLs) > 0 {
		t.Errorf("rules = %+v, want exactly %+v", role.Rules, want)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k fixture.Kustomization
	fixture.DecodeFile(t, "kustomization.yaml", &k)
	if k.Namespace != "" {
		t.Errorf("namespace = %q, want none: the install overlay decides (manifests/components/install)", k.Namespace)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, files) {
		t.Errorf("resources = %v, want every manifest of the folder %v", got, files)
	}
}
