package logging

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// Field names, the same in every log line that carries them.
const (
	Namespace = "namespace"
	Resume    = "resume"
	Workflow  = "workflow"
	Node      = "node"
	Pod       = "pod"
	Container = "container"
	Stage     = "stage"
	Via       = "via"
	Outcome   = "outcome"
	Released  = "released"
	Kind      = "kind"
	Duration  = "duration" // seconds, as a float
	Event     = "event"    // the CloudEvent id of the triggering event
	Source    = "source"
	Subject   = "subject"
	Method    = "method"
	Code      = "code"
	Component = "component"
)

// Seconds is a duration as the Duration field carries it.
func Seconds(d time.Duration) float64 { return d.Seconds() }

type key struct{}

// WithLogger returns a context carrying log, for the code a request runs through.
func WithLogger(ctx context.Context, log logrus.FieldLogger) context.Context {
	return context.WithValue(ctx, key{}, log)
}

// Carried reports whether ctx carries a request's logger.
func Carried(ctx context.Context) bool {
	_, ok := ctx.Value(key{}).(logrus.FieldLogger)
	return ok
}

// FromContext returns the request's logger, or fallback when the context carries none.
func FromContext(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	if log, ok := ctx.Value(key{}).(logrus.FieldLogger); ok {
		return log
	}
	if fallback == nil {
		return logrus.StandardLogger()
	}
	return fallback
}

// RouteKlog sends everything klog prints (client-go's warnings, leader election) to log, as entries with
// component=client-go, so a JSON log is not interleaved with klog's text lines.
func RouteKlog(log *logrus.Logger) {
	klog.SetLogger(logr.New(&sink{log: log.WithField(Component, "client-go")}))
}

// sink is a logr.LogSink writing to logrus. klog's verbosity levels above 0 are debug lines.
type sink struct {
	log  *logrus.Entry
	name string
}

func (s *sink) Init(logr.RuntimeInfo) {}

func (s *sink) Enabled(level int) bool {
	if level > 0 {
		return s.log.Logger.IsLevelEnabled(logrus.DebugLevel)
	}
	return s.log.Logger.IsLevelEnabled(logrus.InfoLevel)
}

func (s *sink) Info(level int, msg string, kv ...any) {
	e := s.entry(kv)
	if level > 0 {
		e.Debug(msg)
		return
	}
	e.Info(msg)
}

func (s *sink) Error(err error, msg string, kv ...any) {
	s.entry(kv).WithError(err).Error(msg)
}

func (s *sink) WithValues(kv ...any) logr.LogSink {
	return &sink{log: s.entry(kv), name: s.name}
}

func (s *sink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "." + name
	}
	return &sink{log: s.log.WithField("logger", name), name: name}
}

func (s *sink) entry(kv []any) *logrus.Entry {
	if len(kv) == 0 {
		return s.log
	}
	fields := logrus.Fields{}
	for i := 0; i < len(kv); i += 2 {
		k := fmt.Sprint(kv[i])
		if i+1 < len(kv) {
			fields[k] = kv[i+1]
		} else {
			fields[k] = "(missing value)"
		}
	}
	return s.log.WithFields(fields)
}
