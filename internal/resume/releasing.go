package resume

import (
	"context"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
)

// A release is recorded in status.releasing before its exec, and moved to status.released after it. The
// record survives whatever loses the outcome in between (the status write after the exec fails, the
// exec's stream is cut after the touch ran, the server is killed mid-release), so the next look, by this
// replica or another, confirms it from the pod instead of taking the container's end for a failure.
// The record is in the Resume's status and not in the server's memory: a standby that takes over after the
// leader died mid-release sees it too. It costs one status write per batch of releases, before the exec.

const (
	// maxReleased bounds status.released: a loop of thousands of iterations must not push the status past
	// what etcd stores (about 1.5 MiB), or every look would fail to record and touch every pod again.
	// Entries are about 200 bytes; the most recent are kept, and releasedCount counts all.
	maxReleased = 500
	// maxReleasing bounds status.releasing, and so how many releases one status write announces.
	maxReleasing = 50
)

// addReleased appends the entries of add not listed yet to list, keeps the most recent maxReleased, and
// returns the list with the count of every release recorded (a Resume written before releasedCount
// existed counts its list).
func addReleased(list []v1alpha1.ReleasedTarget, count int32, add []v1alpha1.ReleasedTarget) ([]v1alpha1.ReleasedTarget, int32) {
	count = max(count, int32(len(list)))
	seen := map[string]bool{}
	for _, r := range list {
		seen[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	out := slices.Clone(list)
	for _, r := range add {
		if k := targetKey(r.Pod, r.Container, r.Stage); !seen[k] {
			seen[k] = true
			out = append(out, r)
			count++
		}
	}
	if len(out) > maxReleased {
		out = slices.Clone(out[len(out)-maxReleased:])
	}
	return out, count
}

// releasingOf is status.releasing after a step of a look: cur without the entries that are settled (keys
// released or found never released), with start added or renewed, the oldest dropped past maxReleasing.
func releasingOf(cur []v1alpha1.ReleasingTarget, settled map[string]bool, start []lookup.Target, now time.Time) []v1alpha1.ReleasingTarget {
	var out []v1alpha1.ReleasingTarget
	renewed := map[string]bool{}
	for _, t := range start {
		renewed[targetKey(t.Pod, t.Container, t.Stage)] = true
	}
	for _, r := range cur {
		if k := targetKey(r.Pod, r.Container, r.Stage); !settled[k] && !renewed[k] {
			out = append(out, r)
		}
	}
	for _, t := range start {
		out = append(out, v1alpha1.ReleasingTarget{
			Node: t.Node, Pod: t.Pod, PodUID: string(t.PodUID), Container: t.Container, Stage: t.Stage,
			Time: metav1.NewTime(now.Truncate(time.Second)),
		})
	}
	if len(out) > maxReleasing {
		out = out[len(out)-maxReleasing:]
	}
	return out
}

// settledKeys are the keys status.releasing no longer needs: released (by this look or recorded), or
// found never released (p.drop).
func settledKeys(status *v1alpha1.ResumeStatus, res *Result, drop map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range drop {
		out[k] = true
	}
	for _, list := range [][]v1alpha1.ReleasedTarget{status.Released, res.Released} {
		for _, r := range list {
			out[targetKey(r.Pod, r.Container, r.Stage)] = true
		}
	}
	return out
}

// confirmation is what a look learned about the releases an earlier look started and did not record.
type confirmation struct {
	// released are the entries whose container ended or whose pod is gone since: released.
	released []v1alpha1.ReleasedTarget
	// open are the entries still undecided: the container still runs (touching it again is safe), or its
	// pod could not be read.
	open []v1alpha1.ReleasingTarget
	// drop are the keys of entries whose pod was replaced: the release never reached the new one.
	drop map[string]bool
}

// confirm asks what became of each entry of releasing that status.released does not list.
func (s *Service) confirm(ctx context.Context, obj *v1alpha1.Resume, releasing []v1alpha1.ReleasingTarget) confirmation {
	c := confirmation{drop: map[string]bool{}}
	listed := map[string]bool{}
	for _, r := range obj.Status.Released {
		listed[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	for _, r := range releasing {
		key := targetKey(r.Pod, r.Container, r.Stage)
		if listed[key] {
			continue
		}
		t := lookup.Target{Namespace: obj.Namespace, Node: r.Node, Pod: r.Pod, PodUID: types.UID(r.PodUID), Container: r.Container, Stage: r.Stage}
		got, err := s.cfg.Releaser.Confirm(ctx, t)
		log := s.logger(ctx).WithFields(logrus.Fields{logging.Node: r.Node, logging.Pod: r.Pod, logging.Container: r.Container, logging.Stage: r.Stage})
		switch {
		case err != nil:
			log.WithError(err).Debug("could not confirm a release started earlier")
			c.open = append(c.open, r)
		case got.Fate == release.FateEnded || got.Fate == release.FateGone:
			log.WithField(logging.Outcome, "confirmed").Info("a release started earlier made the container end: recorded as released")
			c.released = append(c.released, v1alpha1.ReleasedTarget{Node: r.Node, Pod: r.Pod, Container: r.Container, Stage: r.Stage, Time: r.Time, ExitCode: got.ExitCode})
		case got.Fate == release.FateReplaced:
			c.drop[key] = true
		default:
			c.open = append(c.open, r)
		}
	}
	return c
}

// merge adds what a second confirm learned about c.open.
func (c *confirmation) merge(more confirmation) {
	c.released = append(c.released, more.released...)
	c.open = more.open
	for k := range more.drop {
		c.drop[k] = true
	}
}

// withoutConfirmed drops the final skips about the nodes and pods of confirmed releases: they say the
// container ended, which the release made it do.
func withoutConfirmed(skipped []lookup.Skip, confirmed []v1alpha1.ReleasedTarget) []lookup.Skip {
	if len(confirmed) == 0 {
		return skipped
	}
	nodes, pods := map[string]bool{}, map[string]bool{}
	for _, r := range confirmed {
		nodes[r.Node], pods[r.Pod] = true, true
	}
	return slices.DeleteFunc(slices.Clone(skipped), func(sk lookup.Skip) bool {
		return fault.KindOf(sk.Reason).Final() && (nodes[sk.Node] || (sk.Pod != "" && pods[sk.Pod]))
	})
}

// startedKeys are the keys of entries still open, whose release a look past the deadline may finish.
func startedKeys(open []v1alpha1.ReleasingTarget) map[string]bool {
	out := map[string]bool{}
	for _, r := range open {
		out[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	return out
}

// unionReleasing is the entries of theirs and ours, each once, without the released ones, the oldest
// dropped past maxReleasing: two writers' announced releases both stand until a look confirms them.
func unionReleasing(theirs, ours []v1alpha1.ReleasingTarget, released map[string]bool) []v1alpha1.ReleasingTarget {
	var out []v1alpha1.ReleasingTarget
	seen := map[string]bool{}
	for _, r := range append(slices.Clone(theirs), ours...) {
		if k := targetKey(r.Pod, r.Container, r.Stage); !released[k] && !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	if len(out) > maxReleasing {
		out = out[len(out)-maxReleasing:]
	}
	return out
}

// added are the entries of list that base does not hold: what a writer added to the status it read.
func added(base, list []v1alpha1.ReleasedTarget) []v1alpha1.ReleasedTarget {
	had := map[string]bool{}
	for _, r := range base {
		had[targetKey(r.Pod, r.Container, r.Stage)] = true
	}
	var out []v1alpha1.ReleasedTarget
	for _, r := range list {
		if !had[targetKey(r.Pod, r.Container, r.Stage)] {
			out = append(out, r)
		}
	}
	return out
}
