package resume

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

var qEpoch = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newTestQueue(maxPerNS, maxHeld int) (*revisitQueue, *clocktesting.FakeClock) {
	c := clocktesting.NewFakeClock(qEpoch)
	return newRevisitQueue(c, maxPerNS, maxHeld, backoffBase, backoffMax), c
}

func qref(namespace, name string) Ref {
	return Ref{Namespace: namespace, Name: name, UID: types.UID("uid-" + name)}
}

// take pops every ready Resume at the clock's time, each looked at and done at once, and names them.
func take(q *revisitQueue, c *clocktesting.FakeClock) []string {
	var out []string
	for {
		q.mu.Lock()
		ref, ok := q.pop(c.Now())
		q.mu.Unlock()
		if !ok {
			return out
		}
		out = append(out, ref.String())
		q.done(ref)
	}
}

// popOne pops one ready Resume and leaves it being looked at.
func popOne(t *testing.T, q *revisitQueue, c *clocktesting.FakeClock) Ref {
	t.Helper()
	q.mu.Lock()
	ref, ok := q.pop(c.Now())
	q.mu.Unlock()
	if !ok {
		t.Fatal("nothing ready")
	}
	return ref
}

func names(ns string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/r%d", ns, i)
	}
	return out
}

func TestRevisitQueueOrder(t *testing.T) {
	tests := map[string]struct {
		fill func(q *revisitQueue, c *clocktesting.FakeClock)
		exp  []string
	}{
		"one namespace: first queued, first looked at": {
			fill: func(q *revisitQueue, _ *clocktesting.FakeClock) {
				for i := range 3 {
					q.add(qref("a", fmt.Sprintf("r%d", i)))
				}
			},
			exp: names("a", 3),
		},
		"namespaces in turn, each in its own order": {
			fill: func(q *revisitQueue, _ *clocktesting.FakeClock) {
				for i := range 3 {
					q.add(qref("a", fmt.Sprintf("r%d", i)))
				}
				q.add(qref("b", "r0"))
				q.add(qref("c", "r0"))
				q.add(qref("b", "r1"))
			},
			exp: []string{"a/r0", "b/r0", "c/r0", "a/r1", "b/r1", "a/r2"},
		},
		"a namespace ready later joins at the back of the turn": {
			fill: func(q *revisitQueue, c *clocktesting.FakeClock) {
				q.add(qref("a", "r0"))
				q.add(qref("b", "r0"))
				q.add(qref("a", "r1"))
				q.add(qref("b", "r1"))
				q.addAfter(qref("c", "r0"), time.Second)
				c.Step(time.Second)
			},
			exp: []string{"a/r0", "b/r0", "c/r0", "a/r1", "b/r1"},
		},
		"queued twice, looked at once": {
			fill: func(q *revisitQueue, _ *clocktesting.FakeClock) {
				q.add(qref("a", "r0"))
				q.add(qref("a", "r1"))
				q.add(qref("a", "r0"))
				q.addAfter(qref("a", "r1"), 0)
			},
			exp: []string{"a/r0", "a/r1"},
		},
		"a delayed Resume comes after the ready ones, in due order": {
			fill: func(q *revisitQueue, c *clocktesting.FakeClock) {
				q.addAfter(qref("a", "late"), 2*time.Second)
				q.addAfter(qref("a", "early"), time.Second)
				q.add(qref("a", "now"))
				c.Step(2 * time.Second)
			},
			exp: []string{"a/now", "a/early", "a/late"},
		},
		"asked sooner while delayed: the sooner time wins, once": {
			fill: func(q *revisitQueue, c *clocktesting.FakeClock) {
				q.addAfter(qref("a", "r0"), time.Hour)
				q.addAfter(qref("a", "r0"), time.Second)
				q.addAfter(qref("a", "r0"), time.Minute)
				c.Step(time.Second)
			},
			exp: []string{"a/r0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q, c := newTestQueue(100, 1000)
			tc.fill(q, c)
			if got := take(q, c); strings.Join(got, " ") != strings.Join(tc.exp, " ") {
				t.Errorf("looked at %v, want %v", got, tc.exp)
			}
		})
	}
}

// The case: thousands of one namespace's Resumes ready, then one of another namespace's: it is
// looked at next, not after all of them; and each of them is looked at within as many looks as there
// are namespaces.
func TestRevisitQueueIsFairPerNamespace(t *testing.T) {
	q, c := newTestQueue(10_000, 100_000)
	for i := range 5000 {
		q.add(qref("a", fmt.Sprintf("r%d", i)))
	}
	inFlight := popOne(t, q, c) // a look at one of a's is under way
	q.addAfter(qref("b", "early"), time.Second)
	c.Step(time.Second)
	got := take(q, c)
	q.done(inFlight)
	if len(got) != 5000 {
		t.Fatalf("looked at %d, want 5000", len(got))
	}
	if got[0] != "b/early" && got[1] != "b/early" {
		t.Errorf("b's Resume looked at after %v, want within the next two looks", got[:3])
	}

	// Three namespaces with a Resume each, re-queued after every look (as a Pending one is): every
	// namespace gets every third look, whatever a's backlog.
	for i := range 3000 {
		q.add(qref("a", fmt.Sprintf("r%d", i)))
	}
	q.add(qref("b", "r0"))
	q.add(qref("c", "r0"))
	looks := map[string]int{}
	for range 300 {
		ref := popOne(t, q, c)
		looks[ref.Namespace]++
		q.done(ref)
		if ref.Namespace != "a" {
			q.add(ref)
		}
	}
	if looks["a"] != 100 || looks["b"] != 100 || looks["c"] != 100 {
		t.Errorf("looks per namespace %v, want 100 each", looks)
	}
}

// Among the namespaces in turn, the one with fewer looks in flight goes first: a's slow looks do not
// take the worker b's Resume needs.
func TestRevisitQueuePrefersTheNamespaceWithFewerLooksInFlight(t *testing.T) {
	q, c := newTestQueue(100, 1000)
	for i := range 3 {
		q.add(qref("a", fmt.Sprintf("r%d", i)))
	}
	popOne(t, q, c) // a/r0, slow: still being looked at
	q.add(qref("b", "r0"))
	if ref := popOne(t, q, c); ref.Namespace != "b" {
		t.Errorf("looked at %s while a has a look in flight, want b's", ref)
	}
}

func TestRevisitQueueNeverHandsOutAResumeTwiceAtOnce(t *testing.T) {
	q, c := newTestQueue(100, 1000)
	r := qref("a", "r0")
	q.add(r)
	popOne(t, q, c)
	q.add(r)
	q.addAfter(r, time.Second)
	c.Step(time.Second)
	q.mu.Lock()
	_, ok := q.pop(c.Now())
	q.mu.Unlock()
	if ok {
		t.Fatal("a Resume under a look was handed out again")
	}
	q.done(r)
	if got := take(q, c); len(got) != 1 || got[0] != r.String() {
		t.Errorf("after its look ended: %v, want it once", got)
	}
	if all, _ := q.heldCounts("a"); all != 0 {
		t.Errorf("holds %d after every look ended, want 0", all)
	}
}

func TestRevisitQueueBackoff(t *testing.T) {
	q, c := newTestQueue(100, 1000)
	r := qref("a", "r0")
	var waits []time.Duration
	q.addRateLimited(r)
	for range 10 {
		q.mu.Lock()
		due := q.entries[r].due
		q.mu.Unlock()
		waits = append(waits, due.Sub(c.Now()))
		c.SetTime(due)
		popOne(t, q, c)
		q.addRateLimited(r) // the look failed again: the Service asks for a Backoff during it
		q.done(r)
	}
	exp := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range waits {
		if w != exp[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, exp)
		}
	}
	// A look that settles starts the backoff afresh; the Resume, still Pending, stays held meanwhile.
	c.Step(backoffMax)
	popOne(t, q, c)
	q.addAfter(r, time.Second)
	q.forget(r)
	q.done(r)
	c.Step(time.Second)
	popOne(t, q, c)
	q.addRateLimited(r)
	q.done(r)
	q.mu.Lock()
	d := q.entries[r].due.Sub(c.Now())
	q.mu.Unlock()
	if d != backoffBase {
		t.Errorf("after forget the backoff is %v, want %v", d, backoffBase)
	}
}

func TestRevisitQueueIsBoundedInMemory(t *testing.T) {
	q, c := newTestQueue(3, 5)
	for i := range 10 {
		q.add(qref("a", fmt.Sprintf("r%d", i)))
	}
	q.addAfter(qref("a", "late"), time.Minute)
	q.add(qref("b", "r0"))
	q.add(qref("b", "r1"))
	q.add(qref("c", "r0")) // the sixth: over the bound of all
	if all, inA := q.heldCounts("a"); all != 5 || inA != 3 {
		t.Fatalf("holds %d (%d of a), want 5 (3 of a)", all, inA)
	}
	if d := q.takeDropped(); d["a"] != 8 || d["c"] != 1 || d["b"] != 0 {
		t.Errorf("dropped %v, want a:8 c:1", d)
	}
	if d := q.takeDropped(); d != nil {
		t.Errorf("dropped again %v, want the counts taken", d)
	}
	// One held already is asked for again: no new room needed.
	q.add(qref("a", "r0"))
	q.addAfter(qref("a", "r1"), time.Second)
	if d := q.takeDropped(); d != nil {
		t.Errorf("dropped %v for Resumes held already", d)
	}
	got := take(q, c)
	if strings.Join(got, " ") != "a/r0 b/r0 a/r1 b/r1 a/r2" {
		t.Errorf("looked at %v", got)
	}
	c.Step(time.Second)
	take(q, c)
	// Every look ended and nothing asked again: the queue forgets every Resume and namespace.
	q.mu.Lock()
	entries, spaces, turn, delayed := len(q.entries), len(q.spaces), len(q.turn), len(q.delayed)
	q.mu.Unlock()
	if entries+spaces+turn+delayed != 0 {
		t.Errorf("holds %d entries, %d namespaces, %d in turn, %d delayed after all ended, want none", entries, spaces, turn, delayed)
	}
	// Room again: the next resync's Resumes are taken.
	q.add(qref("c", "r0"))
	if all, _ := q.heldCounts("c"); all != 1 {
		t.Errorf("holds %d after room was made, want 1", all)
	}
}

func TestRevisitQueueGetWaitsOnTheClock(t *testing.T) {
	q, c := newTestQueue(100, 1000)
	q.addAfter(qref("a", "r0"), time.Second)
	got := make(chan Ref)
	go func() {
		ref, _ := q.get(t.Context())
		got <- ref
	}()
	waitForTimer(t, c)
	c.Step(999 * time.Millisecond)
	select {
	case ref := <-got:
		t.Fatalf("got %s before it was due", ref)
	default:
	}
	c.Step(time.Millisecond)
	if ref := <-got; ref.Name != "r0" {
		t.Errorf("got %s", ref)
	}

	// A get waiting on an empty queue takes what is added, and returns when the queue shuts down.
	go func() {
		ref, _ := q.get(t.Context())
		got <- ref
	}()
	q.add(qref("b", "r0"))
	if ref := <-got; ref.Namespace != "b" {
		t.Errorf("got %s", ref)
	}
	done := make(chan bool)
	go func() {
		_, ok := q.get(t.Context())
		done <- ok
	}()
	q.shutDown()
	if <-done {
		t.Error("get after shutDown handed out a Resume")
	}
	q.add(qref("b", "r1"))
	if q.len() != 0 {
		t.Error("queued after shutDown")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok := newRevisitQueueForTest().get(ctx); ok {
		t.Error("get with an ended context handed out a Resume")
	}
}

func newRevisitQueueForTest() *revisitQueue { q, _ := newTestQueue(1, 1); return q }

func waitForTimer(t *testing.T, c *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("get did not wait on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRequeueExpireAt(t *testing.T) {
	c := clocktesting.NewFakeClock(qEpoch)
	q, err := NewRequeue(RequeueConfig{Lister: lister{newStore()}, Resync: time.Minute, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	q.ExpireAt(qref("a", "soon"), qEpoch.Add(30*time.Second))
	q.ExpireAt(qref("a", "past"), qEpoch.Add(-time.Hour))
	q.ExpireAt(qref("a", "later"), qEpoch.Add(time.Hour)) // found again by a later resync
	if all, _ := q.queue.heldCounts("a"); all != 2 {
		t.Errorf("holds %d, want the two due before the next resync", all)
	}
	if got := take(q.queue, c); strings.Join(got, " ") != "a/past" {
		t.Errorf("due now: %v, want a/past", got)
	}
	c.Step(30 * time.Second)
	if got := take(q.queue, c); strings.Join(got, " ") != "a/soon" {
		t.Errorf("due after 30s: %v, want a/soon", got)
	}
}

// fairHandler stands for the Service on revisits: every Resume stays Pending and asks for its next look.
type fairHandler struct {
	q     *Requeue
	mu    sync.Mutex
	looks []string
	seen  chan struct{}
	want  string
}

func (h *fairHandler) Handle(_ context.Context, req request.Request) (Result, error) {
	ref := Ref{Namespace: req.Namespace, Name: req.Resume, UID: req.ResumeUID}
	h.mu.Lock()
	h.looks = append(h.looks, ref.String())
	if ref.String() == h.want && h.seen != nil {
		close(h.seen)
		h.seen = nil
	}
	h.mu.Unlock()
	h.q.Pending(ref)
	return Result{Phase: v1alpha1.PhasePending}, fault.Transientf("waiting")
}

// The resync (on start, and when a standby takes over) lists one namespace's 2,000 Pending Resumes before
// another's one: that one is among the first looks, not the 2,001st.
func TestRequeueResyncIsFairPerNamespace(t *testing.T) {
	var objs []*v1alpha1.Resume
	for i := range 2000 {
		objs = append(objs, pendingIn("a", fmt.Sprintf("r%04d", i)))
	}
	objs = append(objs, pendingIn("b", "early"))
	s := newStore(objs...)
	q, err := NewRequeue(RequeueConfig{Lister: lister{s}, Namespaces: []string{"a", "b"}, Interval: time.Hour, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	h := &fairHandler{q: q, seen: seen, want: "b/early"}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { q.Run(ctx, h); close(stopped) }()
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Error("b's Resume was not looked at within 10s")
	}
	cancel()
	<-stopped
	h.mu.Lock()
	defer h.mu.Unlock()
	at := -1
	for i, l := range h.looks {
		if l == "b/early" {
			at = i
			break
		}
	}
	// The workers look at a few of a's while the resync lists the rest; the old single FIFO made it the 2,001st.
	if at < 0 {
		t.Errorf("b's Resume was not among the %d looks", len(h.looks))
	} else if at >= 20 {
		t.Errorf("b's Resume was look %d of %d, want among the first 20", at+1, len(h.looks))
	}
}

func pendingIn(namespace, name string) *v1alpha1.Resume {
	r := newResume(name, v1alpha1.ResumeStatus{Phase: v1alpha1.PhasePending})
	r.Namespace = namespace
	r.UID = types.UID("uid-" + namespace + "-" + name)
	return r
}

// The memory the queue takes per Resume it holds, at its default bound (run with -benchtime=1x): what
// DefaultMaxRevisits costs at most.
func BenchmarkRevisitQueueMemory(b *testing.B) {
	for range b.N {
		q, _ := newTestQueue(DefaultMaxRevisitsPerNamespace, DefaultMaxRevisits)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range DefaultMaxRevisits {
			// Names as long as a generated one, UIDs as the API server's.
			ref := Ref{Namespace: fmt.Sprintf("tenant-%02d", i%10), Name: fmt.Sprintf("resume-for-a-workflow-step-%08d", i), UID: types.UID(fmt.Sprintf("3f1c2b9e-7d4a-4e8b-9c21-%012d", i))}
			if i%2 == 0 {
				q.add(ref)
			} else {
				q.addAfter(ref, time.Second)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if all, _ := q.heldCounts(""); all != DefaultMaxRevisits {
			b.Fatalf("holds %d, want %d", all, DefaultMaxRevisits)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/DefaultMaxRevisits, "B/resume")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-at-bound")
		runtime.KeepAlive(q)
	}
}
