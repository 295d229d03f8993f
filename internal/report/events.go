package report

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/text"
)

// Component is the name Events are reported under.
const Component = "resume-trigger"

// ReportingController is the reportingController of every Event the server records.
const ReportingController = "argocontroller.io/" + Component

// Action is the action of every Event: what the server did, or failed to do, about the object.
const Action = "Release"

// Object names what an Event is about.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
}

// Events records events.k8s.io/v1 Events through client-go's recorder, off the caller's path: a call
// only queues the Event; the recorder writes it, retrying while the API server is away, and turns a
// repeat (same object, type and reason, within minutes) into a series on the first Event instead of a
// new object. Shutdown writes what is queued, within a bound. The server needs create (first Events)
// and patch (series) on events.events.k8s.io.
type Events struct {
	broadcaster events.EventBroadcaster
	recorder    events.EventRecorder
	stopSink    context.CancelFunc
	clock       clock.PassiveClock
	log         logrus.FieldLogger

	mu     sync.Mutex
	closed bool
	// recent are the keys recorded within remembered: the recorder aggregates a repeat of those into a
	// series, which Shutdown does not wait for.
	recent map[eventKey]time.Time
	// unwritten counts, per key, the first Events queued and not written yet (nor refused for good):
	// what Shutdown waits for.
	unwritten map[eventKey]*queued
	// written is closed, and replaced, whenever an Event was written.
	written chan struct{}
	// swept is when forget last ran.
	swept time.Time
}

// eventKey is what makes two Events one series for the recorder (its controller and instance are ours
// alone).
type eventKey struct {
	typ, reason string
	regarding   corev1.ObjectReference
}

type queued struct {
	n     int
	since time.Time
}

// remembered is how long a key is taken to stay in the recorder's cache after its last Event: the
// recorder forgets a key at its first sweep (every 6 minutes) after 6 quiet minutes, so by 12 minutes at
// the latest; remembering it longer only means Shutdown may not wait for a first Event the recorder
// writes anew.
const remembered = 13 * time.Minute

// maxEventMessage is the API server's limit on an Event's note.
const maxEventMessage = 1024

// EventsConfig is what Events works with.
type EventsConfig struct {
	// Client writes the Events (required).
	Client kubernetes.Interface
	// Clock times how long a key is remembered; the real clock by default.
	Clock clock.PassiveClock
	// Log is the standard logger by default.
	Log logrus.FieldLogger
}

// NewEvents returns Events writing through c.Client, until Shutdown.
func NewEvents(c EventsConfig) (*Events, error) {
	if c.Client == nil {
		return nil, errors.New("report: EventsConfig.Client is required")
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	e := &Events{clock: c.Clock, log: c.Log, recent: map[eventKey]time.Time{}, unwritten: map[eventKey]*queued{}, written: make(chan struct{})}
	e.broadcaster = events.NewBroadcaster(&sink{client: c.Client, done: e.done})
	ctx, stop := context.WithCancel(context.Background())
	if err := e.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		stop()
		return nil, err
	}
	e.stopSink = stop
	e.recorder = e.broadcaster.NewRecorder(scheme.Scheme, ReportingController)
	return e, nil
}

// Normal records a Normal Event.
func (e *Events) Normal(obj Object, reason, message string) {
	e.record(obj, corev1.EventTypeNormal, reason, message)
}

// Warning records a Warning Event.
func (e *Events) Warning(obj Object, reason, message string) {
	e.record(obj, corev1.EventTypeWarning, reason, message)
}

func (e *Events) record(obj Object, typ, reason, message string) {
	message = text.Cut(message, maxEventMessage)
	ref := corev1.ObjectReference{APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
	key := eventKey{typ: typ, reason: reason, regarding: ref}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.log.WithFields(logrus.Fields{"reason": reason, "object": obj.Namespace + "/" + obj.Name}).Warn("event not recorded: shutting down")
		return
	}
	now := e.clock.Now()
	e.forget(now)
	if _, ok := e.recent[key]; !ok {
		q := e.unwritten[key]
		if q == nil {
			q = &queued{since: now}
			e.unwritten[key] = q
		}
		q.n++
	}
	e.recent[key] = now
	e.mu.Unlock()
	// The recorder takes the reference from the object's own type; without a resourceVersion, every
	// Event about one object shares one key.
	regarding := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: obj.APIVersion, Kind: obj.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID},
	}
	e.recorder.Eventf(regarding, nil, typ, reason, Action, "%s", message)
}

// forget drops the keys not recorded within remembered, and what was never written within it (the
// recorder gave up, or dropped the Event when its queue was full). It sweeps once a minute at most, so
// recording stays O(1) however many objects had Events lately.
func (e *Events) forget(now time.Time) {
	if now.Sub(e.swept) < time.Minute {
		return
	}
	e.swept = now
	for k, t := range e.recent {
		if now.Sub(t) > remembered {
			delete(e.recent, k)
		}
	}
	for k, q := range e.unwritten {
		if now.Sub(q.since) > remembered {
			delete(e.unwritten, k)
		}
	}
}

// done is told of every write the recorder made, and counts the first Events written for good.
func (e *Events) done(ev *eventsv1.Event, err error) {
	var status apierrors.APIStatus
	var construction *rest.RequestConstructionError
	if ev.Series != nil || (err != nil && !errors.As(err, &status) && !errors.As(err, &construction)) {
		// A series, or an error the recorder tries again after.
		return
	}
	key := eventKey{typ: ev.Type, reason: ev.Reason, regarding: ev.Regarding}
	e.mu.Lock()
	defer e.mu.Unlock()
	if q := e.unwritten[key]; q != nil {
		if q.n--; q.n <= 0 {
			delete(e.unwritten, key)
		}
		close(e.written)
		e.written = make(chan struct{})
	}
}

// Flush waits until the Events recorded so far are written (or refused for good), or ctx ends; it
// returns how many were not written then.
func (e *Events) Flush(ctx context.Context) int {
	for {
		e.mu.Lock()
		n, written := 0, e.written
		for _, q := range e.unwritten {
			n += q.n
		}
		e.mu.Unlock()
		if n == 0 {
			return 0
		}
		select {
		case <-written:
		case <-ctx.Done():
			return n
		}
	}
}

// Shutdown stops taking Events and flushes the ones recorded, until ctx ends; then it stops the
// recorder.
func (e *Events) Shutdown(ctx context.Context) {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	if n := e.Flush(ctx); n > 0 {
		e.log.WithField("events", n).Warn("Events not written before the shutdown deadline")
	}
	e.broadcaster.Shutdown()
	e.stopSink()
}

// sink writes the recorder's Events with the server's field manager, and tells done of each write.
type sink struct {
	client kubernetes.Interface
	done   func(*eventsv1.Event, error)
}

func (s *sink) Create(ctx context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	out, err := s.client.EventsV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{FieldManager: v1alpha1.FieldManager})
	s.done(ev, err)
	return out, err
}

func (s *sink) Update(ctx context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return s.client.EventsV1().Events(ev.Namespace).Update(ctx, ev, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager})
}

func (s *sink) Patch(ctx context.Context, ev *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	return s.client.EventsV1().Events(ev.Namespace).Patch(ctx, ev.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
}
