package resume

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// Lister lists the Resumes of one namespace ("" for all), a page at a time.
type Lister interface {
	List(ctx context.Context, namespace string, visit func(*v1alpha1.Resume)) error
}

// Requeue looks again at Pending Resumes until they end, and deletes finished ones whose TTL ran out. The
// Sensor calls once per Resume (plus its few retries, about 30 s); a step may pause much later, so the
// server keeps the Resumes still waiting and revisits each every Interval through the same Handle the
// Sensor's calls take. It holds only references to Pending Resumes (and finished ones with a TTL to come):
// its memory is O(those), never O(workflows) or O(pods). A restart loses nothing: on start, and every
// Resync, it lists the served namespaces' Resumes and takes up the ones not final.
type Requeue struct {
	Service *Service
	Lister  Lister
	// Namespaces are listed on a resync; "*" lists all.
	Namespaces []string
	// Interval is how soon a Pending Resume is looked at again (2s by default).
	Interval time.Duration
	// Resync is how often every served Resume is listed again, to take up ones that no request reached
	// (5 minutes by default).
	Resync time.Duration
	// Rate bounds revisits per second over all Pending Resumes (5 by default), so many Pending Resumes share
	// the API budget with the Sensor's requests instead of starving them; each then waits longer than
	// Interval.
	Rate float64
	// Workers revisit in parallel (2 by default).
	Workers int
	Log     logrus.FieldLogger

	once  sync.Once
	queue workqueue.TypedRateLimitingInterface[Ref]
}

// Backoff bounds: a Resume whose look keeps failing (unreadable, status not writable, not deletable) is
// looked at after 2s, 4s, … up to 5 minutes, not every Interval.
const (
	backoffBase = 2 * time.Second
	backoffMax  = 5 * time.Minute
)

var _ Revisits = (*Requeue)(nil)

func (q *Requeue) init() {
	q.once.Do(func() {
		q.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[Ref](backoffBase, backoffMax),
			workqueue.TypedRateLimitingQueueConfig[Ref]{Name: "resumes"})
	})
}

func (q *Requeue) interval() time.Duration {
	if q.Interval <= 0 {
		return 2 * time.Second
	}
	return q.Interval
}

// Pending asks for another look after Interval.
func (q *Requeue) Pending(ref Ref) {
	q.init()
	q.queue.AddAfter(ref, q.interval())
}

// ExpireAt asks for a look when a finished Resume's TTL runs out. A TTL longer than the resync period is
// not held in memory: a later resync finds the Resume again.
func (q *Requeue) ExpireAt(ref Ref, at time.Time) {
	q.init()
	if d := time.Until(at); d <= q.resyncPeriod() {
		q.queue.AddAfter(ref, d)
	}
}

// Backoff asks for a look later each time a look at ref fails again.
func (q *Requeue) Backoff(ref Ref) {
	q.init()
	q.queue.AddRateLimited(ref)
}

func (q *Requeue) resyncPeriod() time.Duration {
	if q.Resync <= 0 {
		return 5 * time.Minute
	}
	return q.Resync
}

// Len is the number of Resumes waiting for a look, for tests and metrics.
func (q *Requeue) Len() int {
	q.init()
	return q.queue.Len()
}

// Run lists the served Resumes, then revisits them until ctx ends.
func (q *Requeue) Run(ctx context.Context) {
	q.init()
	workers := q.Workers
	if workers <= 0 {
		workers = 2
	}
	r := q.Rate
	if r <= 0 {
		r = 5
	}
	limit := rate.NewLimiter(rate.Limit(r), workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(ctx, limit) {
			}
		}()
	}
	t := time.NewTicker(q.resyncPeriod())
	defer t.Stop()
	for {
		q.resync(ctx)
		select {
		case <-ctx.Done():
			q.queue.ShutDown()
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// resync lists every served Resume and queues the ones that may need work: not final, or final with a TTL.
func (q *Requeue) resync(ctx context.Context) {
	found := 0
	for _, ns := range q.Namespaces {
		if ns == AllNamespaces {
			ns = ""
		}
		err := q.Lister.List(ctx, ns, func(obj *v1alpha1.Resume) {
			ref := Ref{Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID}
			if !obj.Status.Phase.Final() {
				found++
				q.queue.Add(ref)
			} else if due, ok := expiry(obj); ok {
				q.ExpireAt(ref, due)
			}
		})
		if err != nil && ctx.Err() == nil {
			q.log().WithError(err).WithField(logging.Namespace, ns).Warn("could not list Resumes; Pending ones are taken up at the next resync")
		}
	}
	q.log().WithField("pending", found).Debug("listed Resumes")
}

// next revisits one Resume; it returns false when the queue shuts down.
func (q *Requeue) next(ctx context.Context, limit *rate.Limiter) bool {
	ref, shutdown := q.queue.Get()
	if shutdown {
		return false
	}
	defer q.queue.Done(ref)
	if err := limit.Wait(ctx); err != nil {
		return ctx.Err() == nil
	}
	_, err := q.Service.Handle(ctx, request.Request{Namespace: ref.Namespace, Resume: ref.Name, ResumeUID: ref.UID, Revisit: true})
	if k := fault.KindOf(err); err == nil || (k != fault.Transient && k != fault.Unknown) {
		// Settled, one way or the other: a later failure starts its backoff afresh.
		q.queue.Forget(ref)
	}
	return true
}

func (q *Requeue) log() logrus.FieldLogger {
	if q.Log == nil {
		return logrus.StandardLogger()
	}
	return q.Log
}
