package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

var eventTime = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

func resumeObject() Object {
	return Object{APIVersion: "argocontroller.io/v1alpha1", Kind: "Resume", Namespace: "team-a", Name: "rsm-1", UID: "0b5c-uid"}
}

func workflowObject() Object {
	return Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Namespace: "team-b", Name: "wf-xyz", UID: "wf-uid"}
}

// createdEvents returns the Events created through client, failing unless every action is a create of
// events.
func createdEvents(t *testing.T, client *fake.Clientset) []*corev1.Event {
	t.Helper()
	var evs []*corev1.Event
	for _, a := range client.Actions() {
		c, ok := a.(k8stesting.CreateAction)
		if !ok || a.GetVerb() != "create" || a.GetResource().Resource != "events" || a.GetSubresource() != "" {
			t.Fatalf("action %s %s/%s, want only create events", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
		}
		ev, ok := c.GetObject().(*corev1.Event)
		if !ok {
			t.Fatalf("created %T, want *corev1.Event", c.GetObject())
		}
		if fm := c.(k8stesting.CreateActionImpl).CreateOptions.FieldManager; fm != v1alpha1.FieldManager {
			t.Errorf("field manager %q, want %q", fm, v1alpha1.FieldManager)
		}
		if a.GetNamespace() != ev.Namespace {
			t.Errorf("created in namespace %q, event says %q", a.GetNamespace(), ev.Namespace)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEventsRecord(t *testing.T) {
	long := strings.Repeat("x", 2000)
	exact := strings.Repeat("y", maxEventMessage)
	// 1021 bytes cut the 511th "é" (2 bytes, starting at 1020) in half.
	accents := strings.Repeat("é", 600)

	tests := map[string]struct {
		warning     bool
		obj         Object
		reason      string
		message     string
		wantType    string
		wantMessage string
	}{
		"Normal records a Normal event on the Resume": {
			obj: resumeObject(), reason: "Released", message: "released 1 container",
			wantType: corev1.EventTypeNormal, wantMessage: "released 1 container",
		},
		"Warning records a Warning event on the Workflow in its namespace": {
			warning: true, obj: workflowObject(), reason: "ReleaseFailed", message: "pod gone",
			wantType: corev1.EventTypeWarning, wantMessage: "pod gone",
		},
		"a message of exactly 1024 bytes is kept whole": {
			obj: resumeObject(), reason: "Released", message: exact,
			wantType: corev1.EventTypeNormal, wantMessage: exact,
		},
		"a longer message is cut to 1024 bytes ending in ...": {
			warning: true, obj: resumeObject(), reason: "ReleaseFailed", message: long,
			wantType: corev1.EventTypeWarning, wantMessage: long[:1021] + "...",
		},
		"a longer message is cut on a character boundary": {
			warning: true, obj: resumeObject(), reason: "ReleaseFailed", message: accents,
			wantType: corev1.EventTypeWarning, wantMessage: strings.Repeat("é", 510) + "...",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset()
			e := newEvents(t, EventsConfig{Client: client, Host: "resume-trigger-7d9f-abc", Clock: clocktesting.NewFakePassiveClock(eventTime)})
			record := e.Normal
			if tc.warning {
				record = e.Warning
			}
			if err := record(t.Context(), tc.obj, tc.reason, tc.message); err != nil {
				t.Fatalf("record: %v", err)
			}
			evs := createdEvents(t, client)
			if len(evs) != 1 {
				t.Fatalf("%d events created, want 1", len(evs))
			}
			ev := evs[0]
			wantRef := corev1.ObjectReference{
				APIVersion: tc.obj.APIVersion, Kind: tc.obj.Kind, Namespace: tc.obj.Namespace, Name: tc.obj.Name, UID: tc.obj.UID,
			}
			if ev.InvolvedObject != wantRef {
				t.Errorf("involvedObject = %+v, want %+v", ev.InvolvedObject, wantRef)
			}
			if ev.Namespace != tc.obj.Namespace {
				t.Errorf("namespace = %q, want the object's %q", ev.Namespace, tc.obj.Namespace)
			}
			if want := fmt.Sprintf("%s.%x", tc.obj.Name, eventTime.UnixNano()); ev.Name != want {
				t.Errorf("name = %q, want %q", ev.Name, want)
			}
			if ev.Type != tc.wantType || ev.Reason != tc.reason {
				t.Errorf("type %q reason %q, want %q %q", ev.Type, ev.Reason, tc.wantType, tc.reason)
			}
			if ev.Message != tc.wantMessage {
				t.Errorf("message (%d bytes) = %.40q…, want (%d bytes) %.40q…", len(ev.Message), ev.Message, len(tc.wantMessage), tc.wantMessage)
			}
			if len(ev.Message) > maxEventMessage || !utf8.ValidString(ev.Message) {
				t.Errorf("message is %d bytes, valid UTF-8 %v: want at most %d valid bytes", len(ev.Message), utf8.ValidString(ev.Message), maxEventMessage)
			}
			if want := (corev1.EventSource{Component: "resume-trigger", Host: "resume-trigger-7d9f-abc"}); ev.Source != want {
				t.Errorf("source = %+v, want %+v", ev.Source, want)
			}
			if ev.Count != 1 {
				t.Errorf("count = %d, want 1", ev.Count)
			}
			if !ev.FirstTimestamp.Equal(&ev.LastTimestamp) || !ev.FirstTimestamp.Time.Equal(eventTime) {
				t.Errorf("first %v last %v, want both %v", ev.FirstTimestamp, ev.LastTimestamp, eventTime)
			}
			if ev.ReportingController != "argocontroller.io/resume-trigger" || ev.ReportingInstance != "resume-trigger-7d9f-abc" {
				t.Errorf("reporting %q/%q, want argocontroller.io/resume-trigger/resume-trigger-7d9f-abc", ev.ReportingController, ev.ReportingInstance)
			}
			// Stored where a reader of the object's events finds it.
			if _, err := client.CoreV1().Events(tc.obj.Namespace).Get(t.Context(), ev.Name, metav1.GetOptions{}); err != nil {
				t.Errorf("event not stored in %s: %v", tc.obj.Namespace, err)
			}
		})
	}
}

// Events of one object at different instants get different names, so neither create fails AlreadyExists.
func TestEventsNamesDifferByTime(t *testing.T) {
	tests := map[string]struct {
		step time.Duration
	}{
		"one nanosecond apart": {step: time.Nanosecond},
		"one second apart":     {step: time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset()
			clock := clocktesting.NewFakePassiveClock(eventTime)
			e := newEvents(t, EventsConfig{Client: client, Host: "h", Clock: clock})
			if err := e.Normal(t.Context(), resumeObject(), "Released", "first"); err != nil {
				t.Fatalf("first: %v", err)
			}
			clock.SetTime(eventTime.Add(tc.step))
			if err := e.Warning(t.Context(), resumeObject(), "ReleaseFailed", "second"); err != nil {
				t.Fatalf("second: %v", err)
			}
			evs := createdEvents(t, client)
			if len(evs) != 2 {
				t.Fatalf("%d events created, want 2", len(evs))
			}
			if evs[0].Name == evs[1].Name {
				t.Errorf("both events are named %q", evs[0].Name)
			}
			if !evs[1].FirstTimestamp.Time.Equal(eventTime.Add(tc.step)) {
				t.Errorf("second event at %v, want %v", evs[1].FirstTimestamp, eventTime.Add(tc.step))
			}
		})
	}
}

func TestEventsDefaultClock(t *testing.T) {
	client := fake.NewClientset()
	before := time.Now()
	if err := newEvents(t, EventsConfig{Client: client, Host: "h"}).Normal(t.Context(), resumeObject(), "Released", "m"); err != nil {
		t.Fatal(err)
	}
	evs := createdEvents(t, client)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	// metav1.Time keeps the instant to the nanosecond in memory; serialised it is cut to seconds.
	if ts := evs[0].FirstTimestamp.Time; ts.Before(before) || ts.After(time.Now()) {
		t.Errorf("timestamp %v is not now (%v)", ts, before)
	}
}

func TestEventsAPIError(t *testing.T) {
	tests := map[string]struct {
		warning bool
		reason  string
		apiErr  error
		is      func(error) bool
		want    string
	}{
		"a Forbidden create is returned wrapped with reason and object": {
			reason: "Released",
			apiErr: apierrors.NewForbidden(corev1.Resource("events"), "", errors.New("RBAC")),
			is:     apierrors.IsForbidden,
			want:   "record event Released on Resume team-a/rsm-1: ",
		},
		"an unavailable server on a Warning is returned wrapped with its reason": {
			warning: true,
			reason:  "ReleaseFailed",
			apiErr:  apierrors.NewServiceUnavailable("etcd"),
			is:      apierrors.IsServiceUnavailable,
			want:    "record event ReleaseFailed on Resume team-a/rsm-1: ",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.apiErr
			})
			e := newEvents(t, EventsConfig{Client: client, Host: "h", Clock: clocktesting.NewFakePassiveClock(eventTime)})
			record := e.Normal
			if tc.warning {
				record = e.Warning
			}
			err := record(t.Context(), resumeObject(), tc.reason, "m")
			if err == nil {
				t.Fatal("no error, want the API error")
			}
			if !tc.is(err) || !errors.Is(err, tc.apiErr) {
				t.Errorf("error %v does not wrap %v", err, tc.apiErr)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start %q", err, tc.want)
			}
			if n := len(client.Actions()); n != 1 {
				t.Errorf("%d actions, want the one create (no retry, no patch)", n)
			}
		})
	}
}

func TestEventNameStaysValidForLongObjectNames(t *testing.T) {
	at := time.Unix(1, 5)
	for _, object := range []string{"r", strings.Repeat("a", 236), strings.Repeat("b", 253)} {
		got := eventName(object, at)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("eventName(%d-character name) = %q (%d characters): %v", len(object), got, len(got), errs)
		}
		if !strings.HasSuffix(got, ".3b9aca05") {
			t.Errorf("eventName = %q, want the time in hex at the end", got)
		}
	}
}

func newEvents(t *testing.T, c EventsConfig) *Events {
	t.Helper()
	e, err := NewEvents(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestNewEventsNeedsAClient(t *testing.T) {
	if _, err := NewEvents(EventsConfig{}); err == nil || !strings.Contains(err.Error(), "Client is required") {
		t.Errorf("NewEvents without a client: %v", err)
	}
}
