package resume

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// Result is the outcome of one request, as the response reports it.
type Result struct {
	Phase     v1alpha1.Phase `json:"phase"`
	Reason    string         `json:"reason"`
	Message   string         `json:"message"`
	Namespace string         `json:"namespace"`
	Resume    string         `json:"resume,omitempty"`
	Workflow  string         `json:"workflow,omitempty"`
	// Released are the containers released by this request.
	Released []v1alpha1.ReleasedTarget `json:"released,omitempty"`
	// AlreadyReleased are the containers an earlier request had released.
	AlreadyReleased []v1alpha1.ReleasedTarget `json:"alreadyReleased,omitempty"`
	// Skipped says why candidates were left alone.
	Skipped []string `json:"skipped,omitempty"`
	// AlreadyFinal is true when the Resume was already final and nothing was done.
	AlreadyFinal bool `json:"alreadyFinal,omitempty"`

	// taken is true when the Resume is recorded Pending and the server revisits it until it ends.
	taken bool
	// unreleased are the keys of the targets this request found not released: their release failed for
	// good, or the touch answered non-zero.
	unreleased []string
	// recorded is how many of Released the Resume's status lists already.
	recorded int
}

// Condition reasons, also used as Event reasons.
const (
	ReasonReleased          = "Released"
	ReasonPartiallyReleased = "PartiallyReleased"
	ReasonWaiting           = "Waiting"
	ReasonInvalid           = "InvalidRequest"
	ReasonNotFound          = "NotFound"
	ReasonNotReleasable     = "NotReleasable"
	ReasonDeadlineExceeded  = "DeadlineExceeded"
	ReasonWorkflowReplaced  = "WorkflowReplaced"
	ReasonNotServed         = "NotServed"
)

// summary decides the phase, reason and message of a request from what was released and the error.
func (s *Service) summary(res *Result, err error) (v1alpha1.Phase, string, string) {
	released := len(res.Released) + len(res.AlreadyReleased)
	var msg strings.Builder
	if released > 0 {
		var names []string
		for _, r := range append(append([]v1alpha1.ReleasedTarget{}, res.AlreadyReleased...), res.Released...) {
			names = append(names, fmt.Sprintf("%s/%s (%s)", r.Pod, r.Container, r.Stage))
		}
		sort.Strings(names)
		fmt.Fprintf(&msg, "released %s", strings.Join(names, ", "))
	}
	if err == nil {
		if len(res.Skipped) > 0 {
			fmt.Fprintf(&msg, "; left alone: %s", strings.Join(res.Skipped, "; "))
		}
		return v1alpha1.PhaseSucceeded, ReasonReleased, msg.String()
	}
	var de *deadlineError
	if released > 0 && fault.KindOf(err).Final() && !errors.As(err, &de) {
		fmt.Fprintf(&msg, "; not released: %v", err)
		return v1alpha1.PhaseSucceeded, ReasonPartiallyReleased, msg.String()
	}
	if msg.Len() > 0 {
		msg.WriteString("; ")
	}
	msg.WriteString(err.Error())
	return phaseOf(err), reasonOf(err), msg.String()
}

func phaseOf(err error) v1alpha1.Phase {
	if fault.KindOf(err).Final() {
		return v1alpha1.PhaseFailed
	}
	return v1alpha1.PhasePending
}

func reasonOf(err error) string {
	var de *deadlineError
	var we *replacedError
	var np *notPermittedError
	switch {
	case errors.As(err, &np):
		return ReasonNotPermitted
	case errors.As(err, &de):
		return ReasonDeadlineExceeded
	case errors.As(err, &we):
		return ReasonWorkflowReplaced
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		return ReasonInvalid
	case fault.NotFound:
		return ReasonNotFound
	case fault.Precondition:
		return ReasonNotReleasable
	case fault.Denied:
		return ReasonNotServed
	case fault.Transient, fault.Unknown:
		return ReasonWaiting
	default:
		return ReasonWaiting
	}
}

func (s *Service) event(obj report.Object, warning bool, reason, message string) {
	switch {
	case s.cfg.Events == nil || obj.Name == "":
	case warning:
		s.cfg.Events.Warning(obj, reason, message)
	default:
		s.cfg.Events.Normal(obj, reason, message)
	}
}

// finish logs, counts and notifies the outcome of a request.
func (s *Service) finish(ctx context.Context, req request.Request, res *Result, err error, start time.Time) {
	ctx, cancel := recording(ctx)
	defer cancel()
	if res.Phase == "" {
		res.Phase, res.Reason, res.Message = phaseOf(err), reasonOf(err), err.Error()
	}
	outcome := string(res.Phase)
	if res.AlreadyFinal {
		outcome = "AlreadyFinal"
	}
	kind := "direct"
	switch {
	case req.Revisit:
		kind = "revisit"
	case req.Resume != "":
		kind = "resume"
	}
	// A revisit of a Resume that still waits, or is already final, is routine: it happens every few
	// seconds per Pending Resume and says nothing new.
	quiet := req.Revisit && len(res.Released) == 0 && (res.AlreadyFinal || res.Phase == v1alpha1.PhasePending)
	took := s.clock().Sub(start)
	s.cfg.Metrics.Request(kind, outcome, took)
	log := s.logger(ctx).WithFields(logrus.Fields{
		logging.Workflow: res.Workflow, logging.Outcome: outcome, logging.Released: len(res.Released), logging.Duration: logging.Seconds(took),
	})
	switch {
	case quiet:
		log.WithError(err).Debug("revisited a Pending Resume")
	case err != nil:
		log.WithError(err).WithField(logging.Kind, fault.KindOf(err).String()).Warn("request not carried out")
	default:
		log.Info(res.Message)
	}
	if s.cfg.Notifier != nil && !res.AlreadyFinal && !quiet {
		subject := req.Namespace + "/" + res.Workflow
		if req.Resume != "" {
			subject = req.Namespace + "/" + req.Resume
		}
		if nerr := s.cfg.Notifier.Send(ctx, outcome, subject, res); nerr != nil {
			log.WithError(nerr).Warn("could not send the result event")
		}
	}
}

// logger is the request's logger: the one the caller put in ctx (with the event's id and source), or the
// service's own with the request's namespace and Resume.
func (s *Service) logger(ctx context.Context) logrus.FieldLogger {
	return logging.FromContext(ctx, s.cfg.Log)
}

// requestLogger puts a logger with the request's fields into ctx, unless the caller already did.
func (s *Service) requestLogger(ctx context.Context, req request.Request) context.Context {
	if logging.Carried(ctx) {
		return ctx
	}
	base := s.cfg.Log
	fields := logrus.Fields{logging.Namespace: req.Namespace, logging.Resume: req.Resume, logging.Workflow: req.Workflow()}
	if req.Revisit {
		fields["revisit"] = true
	}
	return logging.WithLogger(ctx, base.WithFields(fields))
}
