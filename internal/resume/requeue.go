package resume

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// Lister lists the Resumes of one namespace ("" for all), a page at a time.
type Lister interface {
	List(ctx context.Context, namespace string, visit func(*v1alpha1.Resume)) error
}

// RequeueConfig is what a Requeue works with. NewRequeue checks it and fills in the defaults.
type RequeueConfig struct {
	// Lister lists the served namespaces' Resumes on start and every Resync (required).
	Lister Lister
	// Namespaces are listed on a resync; "*" lists all.
	Namespaces []string
	// Interval is how soon a Pending Resume is looked at again (2s by default).
	Interval time.Duration
	// Resync is how often every served Resume is listed again, to take up ones that no request reached
	// (a minute by default: the backstop when an event is lost, e.g. by a Sensor left without a
	// subscription after an EventBus restart).
	Resync time.Duration
	// Rate bounds revisits per second over all Pending Resumes (5 by default), so many Pending Resumes share
	// the API budget with the Sensor's requests instead of starving them; each then waits longer than
	// Interval. The namespaces share it round robin: one namespace's many Resumes slow only its own.
	Rate float64
	// Workers revisit in parallel (2 by default).
	Workers int
	// MaxPerNamespace bounds the Resumes of one namespace held for a revisit (10,000 by default), and
	// MaxHeld those of all namespaces (100,000 by default), so a tenant creating Resumes without end
	// cannot grow the server's memory without end. Those refused are offered again by the next resync.
	MaxPerNamespace, MaxHeld int
	// Clock tells the time and times the delays; the real clock by default.
	Clock clock.WithTicker
	// Log is the standard logger by default.
	Log logrus.FieldLogger
}

// Requeue looks again at Pending Resumes until they end, and deletes finished ones whose TTL ran out. The
// Sensor calls once per Resume; a step may pause much later, so the server keeps the Resumes still waiting
// and revisits each every Interval through the same Handle the Sensor's calls take, the namespaces in
// turn (revisitQueue), so a namespace's waiting Resumes never delay another's. It holds only references
// to Pending Resumes (and finished ones whose TTL runs out before the next resync): its memory is
// O(those), at most MaxHeld of them, never O(workflows) or O(pods). A restart loses nothing: on start,
// and every Resync, it lists the served namespaces' Resumes and takes up the ones not final.
type Requeue struct {
	cfg   RequeueConfig
	queue *revisitQueue
}

// NewRequeue returns a Requeue for c.
func NewRequeue(c RequeueConfig) (*Requeue, error) {
	if c.Lister == nil {
		return nil, errors.New("resume: RequeueConfig.Lister is required")
	}
	if c.Interval < 0 || c.Resync < 0 || c.Rate < 0 || c.Workers < 0 || c.MaxPerNamespace < 0 || c.MaxHeld < 0 {
		return nil, errors.New("resume: RequeueConfig durations, Rate, Workers and bounds cannot be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultRevisitInterval
	}
	if c.Resync == 0 {
		c.Resync = DefaultResyncPeriod
	}
	if c.Rate == 0 {
		c.Rate = DefaultRevisitRate
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.MaxPerNamespace == 0 {
		c.MaxPerNamespace = DefaultMaxRevisitsPerNamespace
	}
	if c.MaxHeld == 0 {
		c.MaxHeld = DefaultMaxRevisits
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return &Requeue{cfg: c, queue: newRevisitQueue(c.Clock, c.MaxPerNamespace, c.MaxHeld, backoffBase, backoffMax)}, nil
}

// The revisits' defaults (RequeueConfig, and the server's flags): a Resume is released within about 2s of
// its step pausing, and at 5 revisits a second, each of 2 to 6 API calls, the revisits stay well inside the
// server's client-side rate limit.
const (
	DefaultRevisitInterval = 2 * time.Second
	DefaultResyncPeriod    = time.Minute
	DefaultRevisitRate     = 5
)

// Bounds on the Resumes held for a revisit (see RequeueConfig): at 5 revisits a second a namespace with
// 10,000 Pending Resumes revisits each about every 33 minutes already, so more would only cost memory.
const (
	DefaultMaxRevisitsPerNamespace = 10_000
	DefaultMaxRevisits             = 100_000
)

// Handler carries out one request; *Service is one.
type Handler interface {
	Handle(ctx context.Context, req request.Request) (Result, error)
}

// Backoff bounds: a Resume whose look keeps failing (unreadable, status not writable, not deletable) is
// looked at after 2s, 4s, … up to 5 minutes, not every Interval.
const (
	backoffBase = 2 * time.Second
	backoffMax  = 5 * time.Minute
)

var _ Revisits = (*Requeue)(nil)

func (q *Requeue) interval() time.Duration { return q.cfg.Interval }

// Pending asks for another look after Interval.
func (q *Requeue) Pending(ref Ref) {
	q.queue.addAfter(ref, q.interval())
}

// ExpireAt asks for a look when a finished Resume's TTL runs out. A TTL longer than the resync period is
// not held in memory: a later resync finds the Resume again.
func (q *Requeue) ExpireAt(ref Ref, at time.Time) {
	if !at.After(q.cfg.Clock.Now().Add(q.resyncPeriod())) {
		q.queue.addAt(ref, at)
	}
}

// Backoff asks for a look later each time a look at ref fails again.
func (q *Requeue) Backoff(ref Ref) {
	q.queue.addRateLimited(ref)
}

func (q *Requeue) resyncPeriod() time.Duration { return q.cfg.Resync }

// Len is the number of Resumes ready for a look, for tests and metrics.
func (q *Requeue) Len() int {
	return q.queue.len()
}

// Run lists the served Resumes, then revisits them through h until ctx ends.
func (q *Requeue) Run(ctx context.Context, h Handler) {
	workers := q.cfg.Workers
	limit := rate.NewLimiter(rate.Limit(q.cfg.Rate), workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(ctx, h, limit) {
			}
		}()
	}
	t := q.cfg.Clock.NewTicker(q.resyncPeriod())
	defer t.Stop()
	for {
		q.resync(ctx)
		select {
		case <-ctx.Done():
			q.queue.shutDown()
			wg.Wait()
			return
		case <-t.C():
		}
	}
}

// resync lists every served Resume and queues the ones that may need work: not final, or final with a TTL.
func (q *Requeue) resync(ctx context.Context) {
	found := 0
	for _, ns := range Listed(q.cfg.Namespaces) {
		err := q.cfg.Lister.List(ctx, ns, func(obj *v1alpha1.Resume) {
			ref := Ref{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
			if !obj.Status.Phase.Final() {
				found++
				q.queue.add(ref)
			} else if due, ok := expiry(obj); ok {
				q.ExpireAt(ref, due)
			}
		})
		if err != nil && ctx.Err() == nil {
			q.log().WithError(err).WithField(logging.Namespace, ns).Warn("could not list Resumes; Pending ones are taken up at the next resync")
		}
	}
	q.log().WithField("pending", found).Debug("listed Resumes")
	for ns, n := range q.queue.takeDropped() {
		q.log().WithFields(logrus.Fields{logging.Namespace: ns, "refused": n, "maxPerNamespace": q.cfg.MaxPerNamespace, "max": q.cfg.MaxHeld}).
			Warn("too many Resumes waiting for a revisit: some are looked at only after others end (a ResourceQuota on count/resumes.argocontroller.io bounds a namespace's Resumes)")
	}
}

// next revisits one Resume; it returns false when ctx ends or the queue shuts down. It takes its share of
// the rate before it picks the Resume, so the pick sees every namespace that became ready meanwhile.
func (q *Requeue) next(ctx context.Context, h Handler, limit *rate.Limiter) bool {
	if err := limit.Wait(ctx); err != nil {
		return ctx.Err() == nil
	}
	ref, ok := q.queue.get(ctx)
	if !ok {
		return false
	}
	defer q.queue.done(ref)
	_, err := h.Handle(ctx, request.Request{Namespace: ref.Namespace, Resume: ref.Name, ResumeUID: ref.UID, Revisit: true})
	if k := fault.KindOf(err); err == nil || (k != fault.Transient && k != fault.Unknown) {
		// Settled, one way or the other: a later failure starts its backoff afresh.
		q.queue.forget(ref)
	}
	return true
}

func (q *Requeue) log() logrus.FieldLogger { return q.cfg.Log }
