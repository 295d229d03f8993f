package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/text"
)

// Component is the name Events are reported under.
const Component = "resume-trigger"

// Object names what an Event is about.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
}

// Events creates core/v1 Events. It only ever creates (no aggregation, no patch), so the server needs
// no more than events: create.
type Events struct {
	cfg EventsConfig
}

// EventsConfig is what Events works with.
type EventsConfig struct {
	// Client creates the Events (required).
	Client kubernetes.Interface
	// Host is reported as the Event's source host and reporting instance (the pod name).
	Host string
	// Clock stamps the Events; the real clock by default.
	Clock clock.PassiveClock
}

// NewEvents returns Events for c.
func NewEvents(c EventsConfig) (*Events, error) {
	if c.Client == nil {
		return nil, errors.New("report: EventsConfig.Client is required")
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return &Events{cfg: c}, nil
}

// Normal records a Normal Event.
func (e *Events) Normal(ctx context.Context, obj Object, reason, message string) error {
	return e.record(ctx, obj, corev1.EventTypeNormal, reason, message)
}

// Warning records a Warning Event.
func (e *Events) Warning(ctx context.Context, obj Object, reason, message string) error {
	return e.record(ctx, obj, corev1.EventTypeWarning, reason, message)
}

// eventName is the object's name and the time in hex, like client-go's recorder; the object's name is cut
// so the whole stays a valid name however long the object's is.
func eventName(object string, t time.Time) string {
	const maxObject = 253 - 1 - 16
	if len(object) > maxObject {
		object = object[:maxObject]
	}
	return fmt.Sprintf("%s.%x", object, t.UnixNano())
}

// maxEventMessage is the API server's limit on an Event's message.
const maxEventMessage = 1024

func (e *Events) record(ctx context.Context, obj Object, typ, reason, message string) error {
	t := e.cfg.Clock.Now()
	if len(message) > maxEventMessage {
		message = text.Prefix(message, maxEventMessage-len("...")) + "..."
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      eventName(obj.Name, t),
			Namespace: obj.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: obj.APIVersion,
			Kind:       obj.Kind,
			Namespace:  obj.Namespace,
			Name:       obj.Name,
			UID:        obj.UID,
		},
		Reason:              reason,
		Message:             message,
		Type:                typ,
		Source:              corev1.EventSource{Component: Component, Host: e.cfg.Host},
		FirstTimestamp:      metav1.NewTime(t),
		LastTimestamp:       metav1.NewTime(t),
		Count:               1,
		ReportingController: "argocontroller.io/" + Component,
		ReportingInstance:   e.cfg.Host,
	}
	if _, err := e.cfg.Client.CoreV1().Events(obj.Namespace).Create(ctx, ev, metav1.CreateOptions{FieldManager: v1alpha1.FieldManager}); err != nil {
		return fmt.Errorf("record event %s on %s %s/%s: %w", reason, obj.Kind, obj.Namespace, obj.Name, err)
	}
	return nil
}
