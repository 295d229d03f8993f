package resume

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// revisitQueue holds the Resumes due for a revisit, one FIFO per namespace, and hands them out round robin
// over the namespaces that have one ready: a namespace with thousands of waiting Resumes gets one look in
// turn like a namespace with one, so it delays only its own (a single FIFO let 5,000 Resumes of one
// namespace space everyone's looks ~17 minutes apart, past the default deadline). Among the namespaces
// next in turn, the one with the fewest looks in flight goes first, so slow looks of one namespace do not
// hold every worker while another's wait.
//
// Per Resume it keeps client-go's workqueue rules, which the revisits were built on: a Resume is queued
// at most once; one being looked at is never handed to a second worker, and if asked for again meanwhile
// it is queued when its look ends; a delayed Resume asked for sooner takes the sooner time.
//
// Its memory is bounded: it holds at most maxPerNS Resumes of one namespace and maxHeld in all, and forgets
// a namespace and a Resume (its backoff too) as soon as nothing of it is queued, delayed or being looked
// at. What it refuses is counted per namespace (dropped); the next resync offers those Resumes again.
type revisitQueue struct {
	clock               clock.Clock
	maxPerNS, maxHeld   int
	backoff, maxBackoff time.Duration

	mu      sync.Mutex
	entries map[Ref]*entry
	spaces  map[string]*space
	// turn lists the namespaces with a ready Resume, in the order they are served.
	turn    []*space
	delayed delayHeap
	ready   int
	// changed is closed (and replaced) whenever a waiting get may find something new.
	changed chan struct{}
	shut    bool
	dropped map[string]int
}

// entry is one Resume the queue holds: queued (ready, in its namespace's FIFO or due to go back there
// when its look ends), active (being looked at), delayed (index ≥ 0 in the heap), or several of these.
type entry struct {
	ref      Ref
	queued   bool
	active   bool
	due      time.Time
	index    int
	failures int
}

func (e *entry) held() bool { return e.queued || e.active || e.index >= 0 }

// space is one namespace's share of the queue.
type space struct {
	name   string
	fifo   []*entry
	held   int
	active int
	inTurn bool
}

func newRevisitQueue(c clock.Clock, maxPerNS, maxHeld int, backoff, maxBackoff time.Duration) *revisitQueue {
	return &revisitQueue{
		clock: c, maxPerNS: maxPerNS, maxHeld: maxHeld, backoff: backoff, maxBackoff: maxBackoff,
		entries: map[Ref]*entry{}, spaces: map[string]*space{}, changed: make(chan struct{}), dropped: map[string]int{},
	}
}

// add queues ref for a look now.
func (q *revisitQueue) add(ref Ref) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.hold(ref); e != nil {
		q.enqueue(e)
	}
}

// addAfter queues ref for a look after d; if it is delayed already, the sooner time wins.
func (q *revisitQueue) addAfter(ref Ref, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.delay(ref, q.clock.Now().Add(d))
}

// addAt queues ref for a look at due; if it is delayed already, the sooner time wins.
func (q *revisitQueue) addAt(ref Ref, due time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.delay(ref, due)
}

func (q *revisitQueue) delay(ref Ref, due time.Time) {
	e := q.hold(ref)
	switch {
	case e == nil:
	case !due.After(q.clock.Now()):
		q.enqueue(e)
	case e.index >= 0:
		if due.Before(e.due) {
			e.due = due
			heap.Fix(&q.delayed, e.index)
			q.wake()
		}
	default:
		e.due = due
		heap.Push(&q.delayed, e)
		q.wake()
	}
}

// addRateLimited queues ref after a delay that doubles each time it is asked for again before forget.
func (q *revisitQueue) addRateLimited(ref Ref) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.hold(ref)
	if e == nil {
		return
	}
	d := q.backoff
	for i := 0; i < e.failures && d < q.maxBackoff; i++ {
		d *= 2
	}
	e.failures++
	q.delay(ref, q.clock.Now().Add(min(d, q.maxBackoff)))
}

// forget starts ref's backoff afresh.
func (q *revisitQueue) forget(ref Ref) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.entries[ref]; e != nil {
		e.failures = 0
	}
}

// hold returns ref's entry, making one if the bounds leave room; nil once shut down or when refused.
func (q *revisitQueue) hold(ref Ref) *entry {
	if q.shut {
		return nil
	}
	if e := q.entries[ref]; e != nil {
		return e
	}
	sp := q.spaces[ref.Namespace]
	if len(q.entries) >= q.maxHeld || (sp != nil && sp.held >= q.maxPerNS) {
		q.dropped[ref.Namespace]++
		return nil
	}
	if sp == nil {
		sp = &space{name: ref.Namespace}
		q.spaces[ref.Namespace] = sp
	}
	sp.held++
	e := &entry{ref: ref, index: -1}
	q.entries[ref] = e
	return e
}

// enqueue marks e ready; it goes to its namespace's FIFO now, or when its look ends.
func (q *revisitQueue) enqueue(e *entry) {
	if e.queued {
		return
	}
	e.queued = true
	if !e.active {
		q.push(e)
	}
}

func (q *revisitQueue) push(e *entry) {
	sp := q.spaces[e.ref.Namespace]
	sp.fifo = append(sp.fifo, e)
	q.ready++
	if !sp.inTurn {
		sp.inTurn = true
		q.turn = append(q.turn, sp)
	}
	q.wake()
}

func (q *revisitQueue) wake() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// pop hands out the next Resume at now, if one is ready: the first namespace in turn among those with
// the fewest looks in flight gives its oldest; it then goes to the back of the turn if it has more.
func (q *revisitQueue) pop(now time.Time) (Ref, bool) {
	for len(q.delayed) > 0 && !q.delayed[0].due.After(now) {
		e := heap.Pop(&q.delayed).(*entry)
		q.enqueue(e)
	}
	if len(q.turn) == 0 {
		return Ref{}, false
	}
	at := 0
	for i, sp := range q.turn {
		if sp.active < q.turn[at].active {
			at = i
		}
	}
	sp := q.turn[at]
	q.turn = append(q.turn[:at], q.turn[at+1:]...)
	e := sp.fifo[0]
	sp.fifo[0] = nil
	sp.fifo = sp.fifo[1:]
	q.ready--
	if len(sp.fifo) > 0 {
		q.turn = append(q.turn, sp)
	} else {
		sp.inTurn = false
		sp.fifo = nil
	}
	e.queued, e.active = false, true
	sp.active++
	return e.ref, true
}

// get waits for the next Resume to look at; false once ctx ends or the queue shuts down. done must follow.
func (q *revisitQueue) get(ctx context.Context) (Ref, bool) {
	for {
		q.mu.Lock()
		if q.shut {
			q.mu.Unlock()
			return Ref{}, false
		}
		now := q.clock.Now()
		if ref, ok := q.pop(now); ok {
			q.mu.Unlock()
			return ref, true
		}
		changed := q.changed
		var timer clock.Timer
		var fired <-chan time.Time
		if len(q.delayed) > 0 {
			timer = q.clock.NewTimer(q.delayed[0].due.Sub(now))
			fired = timer.C()
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return Ref{}, false
		}
	}
}

// done ends the look at ref: queued again if it was asked for meanwhile, forgotten if nothing holds it.
func (q *revisitQueue) done(ref Ref) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[ref]
	if e == nil || !e.active {
		return
	}
	e.active = false
	sp := q.spaces[ref.Namespace]
	sp.active--
	switch {
	case e.queued && !q.shut:
		q.push(e)
	case !e.held():
		delete(q.entries, ref)
		if sp.held--; sp.held == 0 {
			delete(q.spaces, ref.Namespace)
		}
	}
}

// shutDown wakes every get, which then returns false; nothing is queued after it.
func (q *revisitQueue) shutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shut = true
	q.wake()
}

// len is the number of Resumes ready for a look.
func (q *revisitQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready
}

// heldCounts is the number of Resumes held, in all and in ns (queued, delayed or being looked at).
func (q *revisitQueue) heldCounts(ns string) (all, inNS int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if sp := q.spaces[ns]; sp != nil {
		inNS = sp.held
	}
	return len(q.entries), inNS
}

// takeDropped returns how many times each namespace's Resumes were refused since the last call.
func (q *revisitQueue) takeDropped() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.dropped) == 0 {
		return nil
	}
	d := q.dropped
	q.dropped = map[string]int{}
	return d
}

// delayHeap orders delayed entries by due time.
type delayHeap []*entry

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *delayHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *delayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
