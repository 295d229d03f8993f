package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/request"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
)

// Handler carries out a validated request.
type Handler interface {
	Handle(ctx context.Context, req request.Request) (resume.Result, error)
}

// Server implements the Argo Events custom-trigger service triggers.Trigger.
type Server struct {
	triggerpb.UnimplementedTriggerServer

	cfg Config
}

// Config is what a Server works with.
type Config struct {
	// Handler carries out a validated request (required).
	Handler Handler
	// Log is the standard logger by default.
	Log logrus.FieldLogger
}

// New returns a Server for c.
func New(c Config) (*Server, error) {
	if c.Handler == nil {
		return nil, errors.New("trigger: Config.Handler is required")
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	return &Server{cfg: c}, nil
}

var _ triggerpb.TriggerServer = (*Server)(nil)

// FetchResource turns the trigger's spec, which the Sensor sends as YAML of a string map, into the JSON
// object the Sensor's parameters are applied to. It is pure: the Sensor calls it again on every retry.
func (s *Server) FetchResource(_ context.Context, in *triggerpb.FetchResourceRequest) (*triggerpb.FetchResourceResponse, error) {
	out, err := request.ParseSpec(in.GetResource())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triggerpb.FetchResourceResponse{Resource: out}, nil
}

// Execute parses the parameterised request and the optional CloudEvent payload, carries the request out
// and answers with the Result as JSON. Errors carry a gRPC code chosen by fault.Kind.
func (s *Server) Execute(ctx context.Context, in *triggerpb.ExecuteRequest) (*triggerpb.ExecuteResponse, error) {
	log := s.log()
	ev, err := request.ParseEvent(in.GetPayload())
	if err != nil {
		log.WithError(err).Warn("refused a request with an invalid event payload")
		return nil, toStatus(err)
	}
	if ev != nil {
		log = log.WithFields(logrus.Fields{logging.Event: ev.ID(), logging.Source: ev.Source(), logging.Subject: ev.Subject()})
	}
	req, err := request.Parse(in.GetResource())
	if err != nil {
		log.WithError(err).Warn("refused an invalid request")
		return nil, toStatus(err)
	}
	if ev != nil {
		req.Event = ev.Source() + "/" + ev.ID()
	}
	log = log.WithFields(logrus.Fields{logging.Namespace: req.Namespace, logging.Resume: req.Resume, logging.Workflow: req.Workflow()})
	log.Debug("execute")
	// The handler logs the outcome, once, with this request's fields.
	res, err := s.cfg.Handler.Handle(logging.WithLogger(ctx, log), req)
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode result: %v", err)
	}
	return &triggerpb.ExecuteResponse{Response: out}, nil
}

// ApplyPolicy reports whether the release succeeded. The Sensor only logs this answer; every decision was
// made in Execute.
func (s *Server) ApplyPolicy(_ context.Context, in *triggerpb.ApplyPolicyRequest) (*triggerpb.ApplyPolicyResponse, error) {
	var res resume.Result
	if err := json.Unmarshal(in.GetRequest(), &res); err != nil {
		return &triggerpb.ApplyPolicyResponse{Success: false, Message: fmt.Sprintf("the response is not a resume-trigger result: %v", err)}, nil
	}
	msg := fmt.Sprintf("%s: %s", res.Phase, res.Message)
	if res.AlreadyFinal {
		msg = "already final, nothing done: " + msg
	}
	return &triggerpb.ApplyPolicyResponse{Success: res.Phase == v1alpha1.PhaseSucceeded, Message: msg}, nil
}

func (s *Server) log() logrus.FieldLogger { return s.cfg.Log }

// Code returns the gRPC code for a classified error: final failures get the code that names their
// cause; everything else is Unavailable, which tells the caller to retry.
func Code(err error) codes.Code {
	switch fault.KindOf(err) {
	case fault.Invalid:
		return codes.InvalidArgument
	case fault.NotFound:
		return codes.NotFound
	case fault.Precondition:
		return codes.FailedPrecondition
	case fault.Denied:
		return codes.PermissionDenied
	case fault.Transient, fault.Unknown:
	}
	// Retryable, like a kind this version does not know.
	return codes.Unavailable
}

func toStatus(err error) error {
	return status.Error(Code(err), err.Error())
}
