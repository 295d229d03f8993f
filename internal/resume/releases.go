package resume

import (
	"context"
	"errors"
	"strings"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
)

// releaseAll releases every target not yet done (done lists what earlier requests released; they are in
// res.AlreadyReleased already). It returns the first transient error, or else a final error describing the
// targets that could not be released. Before each release it asks stop: a non-nil answer (the deadline
// passed, this replica lost the Lease) ends the releases with that error. Before each batch of at most
// maxReleasing releases it calls mark, unless nil, with the batch: a failing mark ends the releases
// before their exec.
func (s *Service) releaseAll(ctx context.Context, found lookup.Result, done map[string]bool, res *Result, stop func(lookup.Target) error, mark func([]lookup.Target) error) error {
	var transient error
	var failures []string
	var finalKind fault.Kind
	var todo []lookup.Target
	for _, t := range found.Targets {
		if done[targetKey(t.Pod, t.Container, t.Stage)] {
			s.targetLogger(ctx, t).WithField(logging.Outcome, "already-released").Debug("already released")
			continue
		}
		todo = append(todo, t)
	}
	for len(todo) > 0 {
		batch := todo[:min(len(todo), maxReleasing)]
		todo = todo[len(batch):]
		if err := stop(batch[0]); err != nil {
			return err
		}
		if mark != nil {
			if err := mark(batch); err != nil {
				return err
			}
		}
		for _, t := range batch {
			log := s.targetLogger(ctx, t)
			if err := stop(t); err != nil {
				return err
			}
			start := s.clock()
			out, err := s.cfg.Releaser.Release(ctx, t)
			took := s.clock().Sub(start)
			if err != nil {
				// Not a warning of its own: the request's outcome says what failed, once.
				log.WithError(err).WithFields(logrus.Fields{logging.Outcome: "failed", logging.Duration: logging.Seconds(took)}).Debug("release failed")
				var answered *release.ExitError
				retry := fault.KindOf(err) == fault.Transient || fault.KindOf(err) == fault.Unknown
				if retry {
					if transient == nil {
						transient = err
					}
				} else {
					failures = append(failures, err.Error())
					finalKind = fault.KindOf(err)
				}
				if !retry || errors.As(err, &answered) {
					// Not released, for sure: failed for good, or the touch itself answered non-zero. A
					// transport error keeps the announcement: the touch may have run.
					res.unreleased = append(res.unreleased, targetKey(t.Pod, t.Container, t.Stage))
				}
				continue
			}
			via := "self"
			switch {
			case out.Ephemeral:
				via = "ephemeral"
			case out.Via != t.Container:
				via = "sibling"
			}
			s.cfg.Metrics.Release(via, took)
			rt := v1alpha1.ReleasedTarget{Node: t.Node, Pod: t.Pod, Container: t.Container, Stage: t.Stage, Time: metav1.NewTime(s.clock()), ExitCode: out.ExitCode}
			if out.Via != t.Container {
				rt.Via = out.Via
			}
			res.Released = append(res.Released, rt)
			log.WithFields(logrus.Fields{logging.Outcome: "released", logging.Via: out.Via, logging.Duration: logging.Seconds(took)}).Info("released debug pause")
		}
	}
	if transient != nil {
		return transient
	}
	if len(failures) > 0 {
		return &fault.Error{Kind: finalKind, Err: errors.New(strings.Join(failures, "; "))}
	}
	return nil
}

func (s *Service) targetLogger(ctx context.Context, t lookup.Target) logrus.FieldLogger {
	return s.logger(ctx).WithFields(logrus.Fields{
		logging.Workflow: t.Workflow, logging.Node: t.Node,
		logging.Pod: t.Pod, logging.Container: t.Container, logging.Stage: t.Stage,
	})
}

func targetKey(pod, container string, stage v1alpha1.Stage) string {
	return pod + "/" + container + "/" + string(stage)
}
