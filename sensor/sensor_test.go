package sensor_test

import (
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/events"
	"github.com/argoproj/argo-events/pkg/reconciler/sensor"
	"github.com/argoproj/argo-events/pkg/sensors/triggers"
	sharedutil "github.com/argoproj/argo-events/pkg/shared/util"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	resumev1alpha1 "github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// namespace is a served namespace in the events below; installNamespace is where the server runs by default.
const (
	namespace        = "argo"
	installNamespace = "argo-resume"
)

// requestKeys are the keys of the server's Execute request; custom.spec must hold each of them.
var requestKeys = []string{"namespace", "resume", "resumeUID", "workflow", "template", "nodeID", "nodeName", "container", "stage"}

// cloudEventKeys are the payload keys that make the payload a structured-mode CloudEvent.
var cloudEventKeys = []string{"id", "source", "specversion", "type", "subject", "time", "datacontenttype", "data"}

func loadSensor(t *testing.T) *v1alpha1.Sensor {
	t.Helper()
	var s v1alpha1.Sensor
	fixture.DecodeFile(t, "sensor.yaml", &s)
	return &s
}

func trigger(t *testing.T, s *v1alpha1.Sensor, name string) v1alpha1.Trigger {
	t.Helper()
	for _, tr := range s.Spec.Triggers {
		if tr.Template != nil && tr.Template.Name == name {
			return tr
		}
	}
	t.Fatalf("sensor has no trigger %q", name)
	return v1alpha1.Trigger{}
}

func TestSensorPassesArgoEventsValidation(t *testing.T) {
	s := loadSensor(t)
	if s.APIVersion != "argoproj.io/v1alpha1" || s.Kind != "Sensor" || s.Name != "resume-trigger" {
		t.Errorf("got %s %s %q, want argoproj.io/v1alpha1 Sensor resume-trigger", s.APIVersion, s.Kind, s.Name)
	}
	var bus v1alpha1.EventBus
	fixture.DecodeFile(t, "../manifests/eventbus/eventbus.yaml", &bus)
	if bus.Spec.JetStream == nil {
		t.Fatal("the shipped EventBus is not JetStream: atLeastOnce (and so retries) needs JetStream")
	}
	if name := s.Spec.EventBusName; name != "" && name != bus.Name {
		t.Errorf("sensor uses EventBus %q, shipped is %q", name, bus.Name)
	}
	if err := sensor.ValidateSensor(s, &bus); err != nil {
		t.Fatalf("argo-events rejects the Sensor: %v", err)
	}
}

func TestDependenciesNameShippedEventSources(t *testing.T) {
	events := map[string][]string{} // EventSource name -> its event names
	for _, file := range []string{"../eventsource/resource.yaml", "../eventsource/webhook/webhook.yaml"} {
		var es v1alpha1.EventSource
		fixture.DecodeFile(t, file, &es)
		events[es.Name] = append(slices.Collect(maps.Keys(es.Spec.Resource)), slices.Collect(maps.Keys(es.Spec.Webhook))...)
	}
	want := map[string]struct{ source, event string }{
		"resume":  {"resume-resource", "resumes"},
		"webhook": {"resume-webhook", "release"},
	}
	s := loadSensor(t)
	if len(s.Spec.Dependencies) != len(want) {
		t.Errorf("got %d dependencies, want %d", len(s.Spec.Dependencies), len(want))
	}
	for _, dep := range s.Spec.Dependencies {
		w, ok := want[dep.Name]
		if !ok {
			t.Errorf("unexpected dependency %q", dep.Name)
			continue
		}
		if dep.EventSourceName != w.source || dep.EventName != w.event {
			t.Errorf("dependency %s reads %s/%s, want %s/%s", dep.Name, dep.EventSourceName, dep.EventName, w.source, w.event)
		}
		if !slices.Contains(events[dep.EventSourceName], dep.EventName) {
			t.Errorf("dependency %s: no shipped EventSource %q has event %q", dep.Name, dep.EventSourceName, dep.EventName)
		}
		if dep.Transform != nil {
			t.Errorf("dependency %s transforms events; the server expects them whole", dep.Name)
		}
		// Only the resume dependency filters, and only on the Resume's namespace (tests/integration: TestInstallSensorFilter, on the rendered overlays).
		if f := dep.Filters; f != nil && (dep.Name != "resume" || len(f.Exprs) != 1 || f.Data != nil || f.Context != nil ||
			f.Time != nil || f.Script != "" || len(f.Exprs[0].Fields) != 1 || f.Exprs[0].Fields[0].Path != "body.metadata.namespace") {
			t.Errorf("dependency %s filters events other than by the Resume's namespace: %+v", dep.Name, f)
		}
	}
}

// triggerDeps maps each trigger to the one dependency that fires it.
var triggerDeps = map[string]string{
	"release-resume":  "resume",
	"release-webhook": "webhook",
}

func TestTriggersKeepTheDeliveryContract(t *testing.T) {
	s := loadSensor(t)
	if len(s.Spec.Triggers) != len(triggerDeps) {
		t.Errorf("got %d triggers, want %d", len(s.Spec.Triggers), len(triggerDeps))
	}
	for name, dep := range triggerDeps {
		t.Run(name, func(t *testing.T) {
			tr := trigger(t, s, name)
			if !tr.AtLeastOnce {
				t.Error("atLeastOnce is false: failures would be logged, never retried, and the message acked at once")
			}
			if tr.Template.Conditions != dep {
				t.Errorf("conditions = %q, want %q (empty waits for every dependency)", tr.Template.Conditions, dep)
			}
			if len(tr.Parameters) > 0 {
				t.Errorf("template-level parameters %+v: keep parameters under custom", tr.Parameters)
			}
			if tr.RetryStrategy == nil {
				t.Fatal("retryStrategy missing: one attempt only")
			}
			if tr.RetryStrategy.Factor == nil {
				t.Error("retryStrategy.factor missing: retries would not back off")
			} else if f, err := tr.RetryStrategy.Factor.Float64(); err != nil || f < 1 {
				t.Errorf("retryStrategy.factor = %s (%v): must be an unquoted number >= 1, else the trigger never runs",
					string(tr.RetryStrategy.Factor.Value), err)
			}
			// The Sensor's own conversion: an error here is "invalid backoff configuration" at run time.
			b, err := sharedutil.Convert2WaitBackoff(tr.RetryStrategy)
			if err != nil {
				t.Fatalf("the Sensor cannot use retryStrategy: %v", err)
			}
			if tr.RetryStrategy.Steps < 2 || tr.RetryStrategy.Steps > 10 {
				t.Errorf("retryStrategy.steps = %d, want 2..10: retries, but bounded", tr.RetryStrategy.Steps)
			}
			if b.Duration <= 0 || b.Duration > time.Minute {
				t.Errorf("retryStrategy.duration = %v, want (0, 1m]", b.Duration)
			}
			if b.Jitter < 0 || b.Jitter > 1 {
				t.Errorf("retryStrategy.jitter = %v, want 0..1", b.Jitter)
			}
		})
	}
}

func TestCustomTriggersCallTheServer(t *testing.T) {
	var svc corev1.Service
	fixture.DecodeFile(t, "../manifests/base/service.yaml", &svc)
	var kust fixture.Kustomization
	fixture.DecodeFile(t, "kustomization.yaml", &kust)
	if kust.Namespace != "" || !slices.Equal(kust.Resources, []string{"sensor.yaml"}) {
		t.Errorf("kustomization: namespace %q resources %v, want none (the install overlay decides) and [sensor.yaml]", kust.Namespace, kust.Resources)
	}

	s := loadSensor(t)
	for name, dep := range triggerDeps {
		t.Run(name, func(t *testing.T) {
			c := trigger(t, s, name).Template.CustomTrigger
			if c == nil {
				t.Fatal("not a custom trigger")
			}
			host, port, err := net.SplitHostPort(c.ServerURL)
			if err != nil {
				t.Fatalf("serverURL %q: %v", c.ServerURL, err)
			}
			if want := svc.Name + "." + installNamespace + ".svc"; host != want {
				t.Errorf("serverURL host = %q, want the Service %q", host, want)
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				return strconv.Itoa(int(p.Port)) == port && p.Name == "grpc"
			}) {
				t.Errorf("serverURL port %s is not the Service's grpc port %+v", port, svc.Spec.Ports)
			}
			if c.Secure && c.CertSecret == nil {
				t.Error("secure without certSecret")
			}
			if got := slices.Sorted(maps.Keys(c.Spec)); !slices.Equal(got, slices.Sorted(slices.Values(requestKeys))) {
				t.Errorf("custom.spec keys = %v, want the request keys %v", got, requestKeys)
			}
			for k, v := range c.Spec {
				if v != "" {
					t.Errorf("custom.spec.%s = %q: the parameters set it, the default is empty", k, v)
				}
			}
			for i, p := range c.Parameters {
				if _, ok := c.Spec[p.Dest]; !ok {
					t.Errorf("parameter %d: dest %q is not a key of custom.spec", i, p.Dest)
				}
				if p.Src == nil || p.Src.DependencyName != dep {
					t.Errorf("parameter %d (%s) does not read dependency %q", i, p.Dest, dep)
				}
				if p.Src != nil && p.Src.UseRawData {
					t.Errorf("parameter %d (%s): useRawData would put non-strings into the string map", i, p.Dest)
				}
			}
			var dests []string
			for i, p := range c.Payload {
				dests = append(dests, p.Dest)
				if p.Src == nil || p.Src.DependencyName != dep {
					t.Errorf("payload %d (%s) does not read dependency %q", i, p.Dest, dep)
				}
			}
			if got := slices.Sorted(slices.Values(dests)); !slices.Equal(got, slices.Sorted(slices.Values(cloudEventKeys))) {
				t.Errorf("payload dests = %v, want the CloudEvent keys %v", got, cloudEventKeys)
			}
		})
	}
}

func TestNetworkPolicyAdmitsThisSensor(t *testing.T) {
	var np networkingv1.NetworkPolicy
	fixture.DecodeFile(t, "../manifests/base/networkpolicy.yaml", &np)
	s := loadSensor(t)
	// The labels the argo-events sensor controller puts on the Sensor's pods.
	podLabels := map[string]string{"controller": "sensor-controller", v1alpha1.LabelSensorName: s.Name, v1alpha1.LabelOwnerName: s.Name}
	admitted := false
	for _, rule := range np.Spec.Ingress {
		if !slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntValue() == 9000 }) {
			continue
		}
		for _, peer := range rule.From {
			// Pod labels alone can be copied by any workflow step: the peer must also pin the install
			// namespace by its immutable name label. The integration tests evaluate the rendered policy.
			if peer.PodSelector == nil || peer.NamespaceSelector == nil || peer.IPBlock != nil {
				t.Errorf("port 9000 is open to %+v, not only to Sensor pods of one namespace", peer)
				continue
			}
			nsSel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err != nil {
				t.Fatal(err)
			}
			if !nsSel.Matches(labels.Set{corev1.LabelMetadataName: installNamespace}) || nsSel.Matches(labels.Set{corev1.LabelMetadataName: namespace}) {
				t.Errorf("port 9000's namespaceSelector %v does not pin the install namespace %s", nsSel, installNamespace)
			}
			sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			if sel.Empty() || sel.Matches(labels.Set(map[string]string{"controller": "sensor-controller"})) {
				t.Errorf("port 9000 admits every Sensor pod (%v), not only %s's", sel, s.Name)
			}
			if sel.Matches(labels.Set(podLabels)) {
				admitted = true
			}
		}
	}
	if !admitted {
		t.Errorf("no ingress rule admits the pods of Sensor %s (%v) on port 9000", s.Name, podLabels)
	}
}

var eventTime = time.Date(2025, 11, 28, 15, 4, 5, 0, time.UTC)

// resumeEvent is what the resource EventSource emits when the Resume is created
// (pkg/eventsources/eventing.go sets the context, pkg/eventsources/sources/resource the data).
func resumeEvent(t *testing.T, r resumev1alpha1.Resume) *v1alpha1.Event {
	t.Helper()
	r.APIVersion = resumev1alpha1.GroupVersion.String()
	r.Kind = resumev1alpha1.Kind
	body := rawJSON(t, r)
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			ID: "5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f", Source: "resume-resource", SpecVersion: "1.0", Type: "resource",
			DataContentType: "application/json", Subject: "resumes", Time: metav1.NewTime(eventTime),
		},
		Data: rawJSON(t, events.ResourceEventData{
			EventType: "ADD", Body: &body, Group: resumev1alpha1.GroupVersion.Group,
			Version: resumev1alpha1.GroupVersion.Version, Resource: resumev1alpha1.Resource.Resource,
		}),
	}
}

// webhookEvent is what the webhook EventSource emits for a POST with this JSON body.
func webhookEvent(t *testing.T, body string) *v1alpha1.Event {
	t.Helper()
	raw := json.RawMessage(body)
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", Source: "resume-webhook", SpecVersion: "1.0", Type: "webhook",
			DataContentType: "application/json", Subject: "release", Time: metav1.NewTime(eventTime),
		},
		Data: rawJSON(t, events.WebhookEventData{
			Header: map[string][]string{"Content-Type": {"application/json"}, "Authorization": {"*** Masked Auth Secret ***"}},
			Body:   &raw,
		}),
	}
}

func rawJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request runs the Sensor's side of one firing: the spec as FetchResource receives it (YAML), echoed
// back as JSON the way the server does, then the trigger's parameters applied by argo-events.
func request(t *testing.T, c *v1alpha1.CustomTrigger, dep string, ev *v1alpha1.Event) (map[string]string, error) {
	t.Helper()
	specYAML, err := yaml.Marshal(c.Spec)
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := yaml.YAMLToJSON(specYAML)
	if err != nil {
		t.Fatal(err)
	}
	out, err := triggers.ApplyParams(fetched, c.Parameters, map[string]*v1alpha1.Event{dep: ev})
	if err != nil {
		return nil, err
	}
	var req map[string]string
	if err := json.Unmarshal(out, &req); err != nil {
		t.Fatalf("request %s is not a map of strings: %v", out, err)
	}
	return req, nil
}

func TestParametersBuildTheRequest(t *testing.T) {
	empty := map[string]string{}
	for _, k := range requestKeys {
		empty[k] = ""
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(empty)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	meta := metav1.ObjectMeta{Namespace: namespace, Name: "release-step", UID: types.UID("0b6f1f6e-3c1a-4a53-9d0e-6a1c0c6b7f11")}

	tests := map[string]struct {
		trigger string
		event   func(t *testing.T) *v1alpha1.Event
		exp     map[string]string
		expErr  bool
	}{
		"resume by template fills identity and leaves optional keys empty": {
			trigger: "release-resume",
			event: func(t *testing.T) *v1alpha1.Event {
				return resumeEvent(t, resumev1alpha1.Resume{ObjectMeta: meta, Spec: resumev1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "step"}})
			},
			exp: with("namespace", namespace, "resume", "release-step", "resumeUID", string(meta.UID), "workflow", "wf-1", "template", "step"),
		},
		"resume by node, container and stage passes every field": {
			trigger: "release-resume",
			event: func(t *testing.T) *v1alpha1.Event {
				return resumeEvent(t, resumev1alpha1.Resume{ObjectMeta: meta, Spec: resumev1alpha1.ResumeSpec{
					WorkflowID: "wf-1", NodeID: "wf-1-1234", NodeName: "wf-1[0].step", Container: "main", Stage: resumev1alpha1.StageAfter,
				}})
			},
			exp: with("namespace", namespace, "resume", "release-step", "resumeUID", string(meta.UID), "workflow", "wf-1",
				"nodeID", "wf-1-1234", "nodeName", "wf-1[0].step", "container", "main", "stage", "after"),
		},
		"resume without uid fails the firing instead of sending a blank identity": {
			trigger: "release-resume",
			event: func(t *testing.T) *v1alpha1.Event {
				m := meta
				m.UID = ""
				return resumeEvent(t, resumev1alpha1.Resume{ObjectMeta: m, Spec: resumev1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "step"}})
			},
			expErr: true,
		},
		"webhook body maps key by key and names no Resume": {
			trigger: "release-webhook",
			event: func(t *testing.T) *v1alpha1.Event {
				return webhookEvent(t, `{"namespace":"argo","workflow":"wf-1","template":"step","nodeID":"","nodeName":"","container":"","stage":""}`)
			},
			exp: with("namespace", namespace, "workflow", "wf-1", "template", "step"),
		},
		"webhook body with missing keys defaults them to empty": {
			trigger: "release-webhook",
			event: func(t *testing.T) *v1alpha1.Event {
				return webhookEvent(t, `{"workflow":"wf-2","nodeName":"wf-2[1].b"}`)
			},
			exp: with("workflow", "wf-2", "nodeName", "wf-2[1].b"),
		},
		"webhook body cannot smuggle a Resume name": {
			trigger: "release-webhook",
			event: func(t *testing.T) *v1alpha1.Event {
				return webhookEvent(t, `{"namespace":"argo","workflow":"wf-1","resume":"someone-elses","resumeUID":"x"}`)
			},
			exp: with("namespace", namespace, "workflow", "wf-1"),
		},
		"webhook non-string values arrive as strings": {
			trigger: "release-webhook",
			event: func(t *testing.T) *v1alpha1.Event {
				return webhookEvent(t, `{"workflow":"wf-3","nodeID":12,"stage":true}`)
			},
			exp: with("workflow", "wf-3", "nodeID", "12", "stage", "true"),
		},
	}
	s := loadSensor(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dep := triggerDeps[tc.trigger]
			got, err := request(t, trigger(t, s, tc.trigger).Template.CustomTrigger, dep, tc.event(t))
			if tc.expErr {
				if err == nil {
					t.Fatalf("want an error, got request %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("argo-events cannot apply the parameters: %v", err)
			}
			if !maps.Equal(got, tc.exp) {
				t.Errorf("request = %v\nwant      %v", got, tc.exp)
			}
		})
	}
}

func TestPayloadIsTheTriggeringCloudEvent(t *testing.T) {
	resume := resumev1alpha1.Resume{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "release-step", UID: "u-1"},
		Spec:       resumev1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "step"},
	}
	webhookBody := `{"namespace":"argo","workflow":"wf-1","template":"step"}`
	tests := map[string]struct {
		trigger string
		event   *v1alpha1.Event
		expData func(t *testing.T, data []byte)
	}{
		"resume event carries the Resume object": {
			trigger: "release-resume",
			event:   resumeEvent(t, resume),
			expData: func(t *testing.T, data []byte) {
				var got resumev1alpha1.Resume
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatalf("data is not a Resume: %v", err)
				}
				if got.Kind != resumev1alpha1.Kind || got.Name != resume.Name || got.UID != resume.UID || got.Spec != resume.Spec {
					t.Errorf("data = %+v, want the Resume %+v", got, resume)
				}
			},
		},
		"webhook event carries the request body": {
			trigger: "release-webhook",
			event:   webhookEvent(t, webhookBody),
			expData: func(t *testing.T, data []byte) {
				var got, want map[string]any
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatalf("data is not the JSON body: %v", err)
				}
				_ = json.Unmarshal([]byte(webhookBody), &want)
				if !maps.Equal(got, want) {
					t.Errorf("data = %v, want %v", got, want)
				}
			},
		},
	}
	s := loadSensor(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := trigger(t, s, tc.trigger).Template.CustomTrigger
			payload, err := triggers.ConstructPayload(map[string]*v1alpha1.Event{triggerDeps[tc.trigger]: tc.event}, c.Payload)
			if err != nil {
				t.Fatalf("argo-events cannot build the payload: %v", err)
			}
			ce := cloudevent.New()
			if err := json.Unmarshal(payload, &ce); err != nil {
				t.Fatalf("payload %s is not a CloudEvent: %v", payload, err)
			}
			if err := ce.Validate(); err != nil {
				t.Errorf("CloudEvent invalid: %v", err)
			}
			ctx := tc.event.Context
			checks := map[string]struct{ got, want string }{
				"id":              {ce.ID(), ctx.ID},
				"source":          {ce.Source(), ctx.Source},
				"subject":         {ce.Subject(), ctx.Subject},
				"type":            {ce.Type(), ctx.Type},
				"specversion":     {ce.SpecVersion(), ctx.SpecVersion},
				"datacontenttype": {ce.DataContentType(), ctx.DataContentType},
			}
			for attr, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", attr, c.got, c.want)
				}
			}
			if !ce.Time().Equal(eventTime) {
				t.Errorf("time = %v, want %v", ce.Time(), eventTime)
			}
			if strings.TrimSpace(string(ce.Data())) == "" {
				t.Fatal("CloudEvent has no data")
			}
			tc.expData(t, ce.Data())
		})
	}
}
