package app

import (
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/argocontroller/resume-trigger/internal/servingcert"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/trigger"
)

// buildGRPC builds the gRPC server: the Trigger service over a.Service, and the health service.
func (a *App) buildGRPC() error {
	srv, err := trigger.New(trigger.Config{Handler: a.Service, Log: a.log})
	if err != nil {
		return err
	}
	s := a.opts.Server
	serverOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.MaxMessageBytes),
		grpc.MaxConcurrentStreams(uint32(s.MaxStreams)),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// The per-RPC bound is a little longer than the flow's own, so the flow can still record its outcome.
		grpc.ChainUnaryInterceptor(trigger.Recover(a.log), trigger.Log(a.log), trigger.Standby(a.leading.Load), trigger.Deadline(s.RequestTimeout+5*time.Second)),
	}
	if s.TLSCertFile != "" {
		// Read again while serving (Run), so a renewed certificate reaches the next handshake without a
		// restart; the Sensor dials anew whenever its connection is not ready.
		if a.certs, err = servingcert.New(servingcert.Config{CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile, Log: a.log}); err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(&tls.Config{GetCertificate: a.certs.GetCertificate, MinVersion: tls.VersionTLS12})))
	}
	a.grpc = grpc.NewServer(serverOpts...)
	triggerpb.RegisterTriggerServer(a.grpc, srv)
	healthpb.RegisterHealthServer(a.grpc, a.health)
	return nil
}
