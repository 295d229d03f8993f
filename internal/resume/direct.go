package resume

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// A direct request (the webhook path) has no object to record what it did, and the Sensor retries it as
// a whole. Between two tries a step's next retry attempt may have paused: a later try must not release
// that one. So the server remembers, per triggering event, the pods its first try chose and what it
// released; a later try of the same event acts only on those pods and releases nothing twice. The memory
// is bounded (maxDirect events, each for directTTL), and a restart forgets it: a retry after a restart is
// handled as a new request.
const (
	maxDirect = 4096
	directTTL = 15 * time.Minute
)

type directMemory struct {
	mu     sync.Mutex
	events map[string]*directEvent
}

type directEvent struct {
	at       time.Time
	pods     map[types.UID]bool                 // the pods the first try chose
	released map[string]v1alpha1.ReleasedTarget // what any try released, by targetKey
}

// done lists the targetKeys released so far, and the releases themselves.
func (e *directEvent) done() (map[string]bool, []v1alpha1.ReleasedTarget) {
	keys := map[string]bool{}
	var list []v1alpha1.ReleasedTarget
	for k, r := range e.released {
		keys[k] = true
		list = append(list, r)
	}
	return keys, list
}

// recall returns what earlier tries of event did (nil for a first try), and forgets expired events.
func (m *directMemory) recall(event string, now time.Time) (pods map[types.UID]bool, done map[string]bool, released []v1alpha1.ReleasedTarget, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, e := range m.events {
		if now.Sub(e.at) > directTTL {
			delete(m.events, id)
		}
	}
	e, ok := m.events[event]
	if !ok {
		return nil, nil, nil, false
	}
	done, released = e.done()
	return e.pods, done, released, true
}

// remember records the first try's chosen pods, and what a try released.
func (m *directMemory) remember(event string, now time.Time, targets []lookup.Target, released []v1alpha1.ReleasedTarget) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[string]*directEvent{}
	}
	e, ok := m.events[event]
	if !ok {
		if len(m.events) >= maxDirect {
			var oldest string
			for id, x := range m.events {
				if oldest == "" || x.at.Before(m.events[oldest].at) {
					oldest = id
				}
			}
			delete(m.events, oldest)
		}
		e = &directEvent{at: now, pods: map[types.UID]bool{}, released: map[string]v1alpha1.ReleasedTarget{}}
		for _, t := range targets {
			e.pods[t.PodUID] = true
		}
		m.events[event] = e
	}
	for _, r := range released {
		e.released[targetKey(r.Pod, r.Container, r.Stage)] = r
	}
}

func (s *Service) handleDirect(ctx context.Context, req request.Request, res *Result) error {
	if _, err := s.permitted(req.Namespace); err != nil {
		return err
	}
	found, err := s.cfg.Finder.Find(ctx, req.Namespace, req.Step)
	for _, sk := range found.Skipped {
		res.Skipped = append(res.Skipped, sk.Reason.Error())
	}
	if err != nil {
		res.Phase, res.Reason, res.Message = phaseOf(err), reasonOf(err), err.Error()
		return err
	}
	var done map[string]bool
	if req.Event != "" {
		if pods, released, list, ok := s.direct.recall(req.Event, s.clock()); ok {
			// A retry of the same event: only the pods its first try chose, nothing released twice.
			kept := found.Targets[:0:0]
			for _, t := range found.Targets {
				if pods[t.PodUID] {
					kept = append(kept, t)
				} else {
					res.Skipped = append(res.Skipped, fmt.Sprintf("pod %s was not chosen by this event's first try (event %s)", t.Pod, req.Event))
				}
			}
			found.Targets, done, res.AlreadyReleased = kept, released, list
		}
	}
	err = s.releaseAll(ctx, found, done, res, func(lookup.Target) error { return s.active() }, nil)
	if req.Event != "" {
		s.direct.remember(req.Event, s.clock(), found.Targets, res.Released)
	}
	res.Phase, res.Reason, res.Message = s.summary(res, err)
	wf := report.Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow", Namespace: req.Namespace, Name: found.Workflow, UID: found.WorkflowUID}
	if len(res.Released) > 0 {
		s.event(wf, false, "DebugPauseReleased", "released by a direct request: "+res.Message)
	}
	if err != nil && len(res.Released) == 0 {
		s.event(wf, true, "DebugPauseNotReleased", err.Error())
	}
	// As for a Resume: some released and the rest never will be is a success; anything that may still
	// change (transient or unclassified) is returned for a retry.
	if len(res.Released) > 0 && fault.KindOf(err).Final() {
		return nil
	}
	return err
}
