package report

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

func resumeObject() Object {
	return Object{APIVersion: "argocontroller.io/v1alpha1", Kind: "Resume", Namespace: "team-a", Name: "rsm-1", UID: "0b5c-uid"}
}

func workflowObject() Object {
	return Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Namespace: "team-b", Name: "wf-xyz", UID: "wf-uid"}
}

func newEvents(t *testing.T, c EventsConfig) *Events {
	t.Helper()
	if c.Log == nil {
		c.Log, _ = logtest.NewNullLogger()
	}
	e, err := NewEvents(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e.Shutdown(ctx)
	})
	return e
}

// writes returns the Events written through client: each create, and each patch of a series.
func writes(t *testing.T, client *fake.Clientset) (created []*eventsv1.Event, patched []string) {
	t.Helper()
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "events" || a.GetResource().Group != "events.k8s.io" {
			t.Fatalf("action %s %s (group %q), want only events.k8s.io events", a.GetVerb(), a.GetResource().Resource, a.GetResource().Group)
		}
		switch a := a.(type) {
		case k8stesting.CreateActionImpl:
			ev, ok := a.GetObject().(*eventsv1.Event)
			if !ok {
				t.Fatalf("created %T, want *eventsv1.Event", a.GetObject())
			}
			if a.CreateOptions.FieldManager != v1alpha1.FieldManager {
				t.Errorf("field manager %q, want %q", a.CreateOptions.FieldManager, v1alpha1.FieldManager)
			}
			if a.GetNamespace() != ev.Namespace {
				t.Errorf("created in namespace %q, event says %q", a.GetNamespace(), ev.Namespace)
			}
			created = append(created, ev)
		case k8stesting.PatchActionImpl:
			patched = append(patched, string(a.GetPatch()))
		default:
			t.Fatalf("action %s on events, want create or patch", a.GetVerb())
		}
	}
	return created, patched
}

// An Event reaches the API server as an events.k8s.io/v1 Event about the object, written by the
// recorder; Shutdown returns once it is written.
func TestEventsRecord(t *testing.T) {
	long := strings.Repeat("x", 2000)
	exact := strings.Repeat("y", maxEventMessage)
	// The 1002 bytes kept would end in the middle of the 501st "é" (2 bytes, starting at 1001).
	accents := "a" + strings.Repeat("é", 600)

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
		"a message with a verb is not formatted": {
			obj: resumeObject(), reason: "Released", message: "100% of %s",
			wantType: corev1.EventTypeNormal, wantMessage: "100% of %s",
		},
		"a message of exactly 1024 bytes is kept whole": {
			obj: resumeObject(), reason: "Released", message: exact,
			wantType: corev1.EventTypeNormal, wantMessage: exact,
		},
		"a longer message is cut within 1024 bytes, saying how much is left out": {
			warning: true, obj: resumeObject(), reason: "ReleaseFailed", message: long,
			wantType: corev1.EventTypeWarning, wantMessage: long[:1002] + " … (998 more bytes)",
		},
		"a longer message is cut on a character boundary": {
			warning: true, obj: resumeObject(), reason: "ReleaseFailed", message: accents,
			wantType: corev1.EventTypeWarning, wantMessage: "a" + strings.Repeat("é", 500) + " … (200 more bytes)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset()
			e := newEvents(t, EventsConfig{Client: client})
			record := e.Normal
			if tc.warning {
				record = e.Warning
			}
			record(tc.obj, tc.reason, tc.message)
			e.Shutdown(t.Context())
			evs, _ := writes(t, client)
			if len(evs) != 1 {
				t.Fatalf("%d events created, want 1", len(evs))
			}
			ev := evs[0]
			wantRef := corev1.ObjectReference{
				APIVersion: tc.obj.APIVersion, Kind: tc.obj.Kind, Namespace: tc.obj.Namespace, Name: tc.obj.Name, UID: tc.obj.UID,
			}
			if ev.Regarding != wantRef || ev.Related != nil {
				t.Errorf("regarding = %+v related %v, want %+v and none", ev.Regarding, ev.Related, wantRef)
			}
			if ev.Namespace != tc.obj.Namespace || !strings.HasPrefix(ev.Name, tc.obj.Name+".") || len(validation.IsDNS1123Subdomain(ev.Name)) > 0 {
				t.Errorf("event %s/%s, want a valid name after the object's in its namespace %s", ev.Namespace, ev.Name, tc.obj.Namespace)
			}
			if ev.Type != tc.wantType || ev.Reason != tc.reason || ev.Action != Action {
				t.Errorf("type %q reason %q action %q, want %q %q %q", ev.Type, ev.Reason, ev.Action, tc.wantType, tc.reason, Action)
			}
			if ev.Note != tc.wantMessage {
				t.Errorf("note (%d bytes) = %.40q…, want (%d bytes) %.40q…", len(ev.Note), ev.Note, len(tc.wantMessage), tc.wantMessage)
			}
			if len(ev.Note) > maxEventMessage || !utf8.ValidString(ev.Note) {
				t.Errorf("note is %d bytes, valid UTF-8 %v: want at most %d valid bytes", len(ev.Note), utf8.ValidString(ev.Note), maxEventMessage)
			}
			if ev.ReportingController != ReportingController || !strings.HasPrefix(ev.ReportingInstance, ReportingController+"-") || ev.EventTime.IsZero() {
				t.Errorf("reporting %q/%q at %v, want %s and an instance and a time", ev.ReportingController, ev.ReportingInstance, ev.EventTime, ReportingController)
			}
		})
	}
}

// Recording does not wait for the API server: the caller goes on while the write is held, and
// Shutdown waits for it.
func TestEventsRecordIsOffTheCallersPath(t *testing.T) {
	client := fake.NewClientset()
	release := make(chan struct{})
	client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil
	})
	e := newEvents(t, EventsConfig{Client: client})
	e.Normal(resumeObject(), "Released", "m")
	e.Warning(workflowObject(), "DebugPauseNotReleased", "m")
	shut := make(chan struct{})
	go func() { e.Shutdown(t.Context()); close(shut) }()
	select {
	case <-shut:
		t.Fatal("Shutdown returned while the writes were held")
	default:
	}
	close(release)
	<-shut
	if evs, _ := writes(t, client); len(evs) != 2 {
		t.Errorf("%d events written by the time Shutdown returned, want 2", len(evs))
	}
}

// The same Event again (same object, type and reason) becomes a series on the first: one object,
// patched with the count, not a second Event.
func TestEventsRepeatIsASeries(t *testing.T) {
	client := fake.NewClientset()
	patched := make(chan struct{})
	var once sync.Once
	client.PrependReactor("patch", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { close(patched) })
		return false, nil, nil
	})
	e := newEvents(t, EventsConfig{Client: client})
	e.Warning(workflowObject(), "DebugPauseNotReleased", "first")
	e.Warning(workflowObject(), "DebugPauseNotReleased", "second")
	select {
	case <-patched:
	case <-t.Context().Done():
		t.Fatal("no series patch")
	}
	e.Shutdown(t.Context())
	created, patches := writes(t, client)
	if len(created) != 1 || len(patches) != 1 || !strings.Contains(patches[0], `"count":2`) {
		t.Errorf("created %d, patches %v: want one Event and one patch to a series of 2", len(created), patches)
	}
}

// A write the API server refuses for good (RBAC) is not waited for; one it cannot take now (a transport
// error, retried every few seconds) is waited for until Shutdown's context ends, then given up.
func TestEventsShutdownIsBounded(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		client := fake.NewClientset()
		client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(eventsv1.Resource("events"), "", errors.New("RBAC"))
		})
		e := newEvents(t, EventsConfig{Client: client})
		e.Normal(resumeObject(), "Released", "m")
		e.Shutdown(t.Context()) // the test's deadline is the bound: it must not be reached
		if n := len(client.Actions()); n != 1 {
			t.Errorf("%d writes, want the one refused create (no retry)", n)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		client := fake.NewClientset()
		tried := make(chan struct{}, 100)
		client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			tried <- struct{}{}
			return true, nil, errors.New("connection reset by peer")
		})
		log, hook := logtest.NewNullLogger()
		e := newEvents(t, EventsConfig{Client: client, Log: log})
		e.Normal(resumeObject(), "Released", "m")
		<-tried
		// The write failed and is retried only seconds later: a Shutdown whose time is up gives it up.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		e.Shutdown(ctx)
		if last := hook.LastEntry(); last == nil || last.Level != logrus.WarnLevel || !strings.Contains(last.Message, "not written") {
			t.Errorf("log %v, want a warning that Events were not written", hook.AllEntries())
		}
	})
}

// After Shutdown nothing is taken, and nothing fails.
func TestEventsAfterShutdown(t *testing.T) {
	client := fake.NewClientset()
	e := newEvents(t, EventsConfig{Client: client})
	e.Shutdown(t.Context())
	e.Normal(resumeObject(), "Released", "m")
	if n := len(client.Actions()); n != 0 {
		t.Errorf("%d writes after Shutdown, want none", n)
	}
}

func TestNewEventsNeedsAClient(t *testing.T) {
	if _, err := NewEvents(EventsConfig{}); err == nil || !strings.Contains(err.Error(), "Client is required") {
		t.Errorf("NewEvents without a client: %v", err)
	}
}
