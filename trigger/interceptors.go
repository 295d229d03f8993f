package trigger

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argocontroller/resume-trigger/internal/logging"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
)

// Deadline bounds every RPC: the Sensor calls with no deadline, so a server that hangs would stall that
// trigger's queue forever.
func Deadline(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return handler(ctx, req)
	}
}

// Recover turns a panic in a handler into an Internal error instead of a crashed server.
func Recover(log logrus.FieldLogger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.WithFields(logrus.Fields{logging.Method: info.FullMethod, "panic": r, "stack": string(debug.Stack())}).Error("handler panicked")
				err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(ctx, req)
	}
}

// Log logs each RPC with its method, code and duration, at debug level. A failure is logged once: Execute
// logs its own outcome with the request's fields, so only the other methods' failures are warnings here.
func Log(log logrus.FieldLogger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		entry := log.WithFields(logrus.Fields{logging.Method: info.FullMethod, logging.Code: status.Code(err).String(), logging.Duration: logging.Seconds(time.Since(start))})
		if err != nil && info.FullMethod != triggerpb.Trigger_Execute_FullMethodName {
			entry.WithError(err).Warn("rpc failed")
		} else {
			entry.Debug("rpc done")
		}
		return resp, err
	}
}

// Standby refuses Execute with Unavailable while serving() is false: a replica that does not hold the
// leader Lease must not release anything (the leader alone keeps duplicates of one Resume apart). The
// Sensor retries, and the Service sends it to the ready replica. FetchResource and ApplyPolicy act on
// nothing and still answer, as do health checks, so probes see a live but not ready replica.
func Standby(serving func() bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !serving() && info.FullMethod == triggerpb.Trigger_Execute_FullMethodName {
			return nil, status.Error(codes.Unavailable, "this resume-trigger replica is standing by: another replica holds the leader Lease")
		}
		return handler(ctx, req)
	}
}
