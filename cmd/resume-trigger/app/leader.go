package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/argocontroller/resume-trigger/internal/version"
)

// Run serves until ctx ends, then shuts down gracefully: health turns NOT_SERVING first, so probes and
// new callers go elsewhere, and in-flight requests get --shutdown-timeout to finish.
func (a *App) Run(ctx context.Context) error {
	errc := a.serve()
	l := newLeadership(ctx, a)
	defer l.stopRevisits()
	defer l.stopWork()
	if a.certs != nil {
		go a.certs.Run(l.work)
	}
	go a.Rights.Run(l.work, a.opts.Revisits.Resync)
	if err := l.start(); err != nil {
		a.grpc.Stop()
		return err
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case <-l.lost:
		err = errors.New("lost the leader Lease: stopping so that only the new leader acts")
	}
	a.log.Info("shutting down")
	l.shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	// Nothing records an Event any more: write the ones queued.
	a.events.Shutdown(sctx)
	for _, s := range []*http.Server{a.http, a.ui} {
		if s != nil {
			_ = s.Shutdown(sctx)
		}
	}
	return err
}

// serve starts the gRPC server, the HTTP endpoint and the web page; what they end with is sent on the
// channel. The Trigger service is not serving until this replica leads.
func (a *App) serve() <-chan error {
	errc := make(chan error, 4)
	go func() { errc <- a.grpc.Serve(a.grpcLn) }()
	if a.ui != nil {
		go func() {
			if err := a.serveUI(); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if a.http != nil {
		go func() {
			if err := a.http.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_NOT_SERVING)
	a.log.WithFields(logrus.Fields{"grpc": a.GRPCAddr(), "metrics": a.MetricsAddr(), "ui": a.UIAddr(), "namespaces": a.Service.Namespaces().String(), "webhookNamespaces": a.Service.WebhookNamespaces().String(), "tls": a.opts.Server.TLSCertFile != "", "leaderElect": a.opts.Leader.Enabled}).Info("resume-trigger serving")
	a.log.WithFields(logrus.Fields{"version": version.Version, "commit": version.Commit, "go": version.GoVersion()}).Info(version.String())
	return errc
}

// leadership is one Run's serving lifetime: while this replica leads (always, without --leader-elect) it
// serves the Trigger service and revisits Pending Resumes; at shutdown it stops them in order.
type leadership struct {
	a *App
	// parent is Run's context: a Lease lost while it is still alive ends Run (lost).
	parent context.Context
	// Two lifetimes, ended in order at shutdown: revisits stop (and their in-flight look finishes) before
	// the Lease is handed over, so the next leader never acts on a Resume this replica is still handling.
	revisits, work         context.Context
	stopRevisits, stopWork context.CancelFunc

	mu sync.Mutex
	// closing is set at shutdown: a Lease won from then on is handed back at once.
	closing    bool
	revisiting sync.WaitGroup
	electing   sync.WaitGroup
	// lost is closed when the Lease is lost while Run's context is alive.
	lost     chan struct{}
	loseOnce sync.Once
}

func newLeadership(ctx context.Context, a *App) *leadership {
	l := &leadership{a: a, parent: ctx, lost: make(chan struct{})}
	l.revisits, l.stopRevisits = context.WithCancel(context.WithoutCancel(ctx))
	l.work, l.stopWork = context.WithCancel(context.WithoutCancel(ctx))
	return l
}

// start leads at once without leader election; with it, runs for the Lease.
func (l *leadership) start() error {
	if !l.a.opts.Leader.Enabled {
		go l.lead(l.work)
		return nil
	}
	elector, err := l.elector()
	if err != nil {
		return err
	}
	l.electing.Add(1)
	go func() { defer l.electing.Done(); elector.Run(l.work) }()
	return nil
}

// lead serves and revisits until leading ends; it does nothing once shutdown began.
func (l *leadership) lead(leading context.Context) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.revisiting.Add(1)
	l.mu.Unlock()
	defer l.revisiting.Done()
	a := l.a
	a.leading.Store(true)
	a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_SERVING)
	if a.Requeue == nil {
		return
	}
	rctx, cancel := context.WithCancel(leading)
	defer cancel()
	defer context.AfterFunc(l.revisits, cancel)()
	a.Requeue.Run(rctx, a.Service)
}

// stopLeading is called when the Lease is lost or handed back: the replica stops serving, and unless
// Run is ending anyway, Run ends too.
func (l *leadership) stopLeading() {
	l.a.leading.Store(false)
	l.a.health.SetServingStatus(triggerService, healthpb.HealthCheckResponse_NOT_SERVING)
	if l.parent.Err() == nil {
		l.loseOnce.Do(func() { close(l.lost) })
	}
}

// shutdown stops releasing at once and then, within --shutdown-timeout, lets in-flight requests and the
// revisit in progress finish before the Lease is handed over.
func (l *leadership) shutdown() {
	a := l.a
	// From here on nothing new is released: Execute is refused (Unavailable, the Sensor retries on the
	// next leader), no revisit starts, and a release in progress stops before its next target.
	a.leading.Store(false)
	a.health.Shutdown()
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.stopRevisits()
	drained := make(chan struct{})
	go func() { a.grpc.GracefulStop(); l.revisiting.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(a.opts.Server.ShutdownTimeout):
		a.log.Warn("in-flight requests did not finish in time; stopping")
		a.grpc.Stop()
	}
	l.stopWork()
	l.electing.Wait()
}

// elector holds the Lease named by --leader-election-id: while it does, this replica serves the Trigger
// service and revisits Pending Resumes; the others stand by, not ready. ReleaseOnCancel hands the Lease
// over at once on a clean shutdown.
func (l *leadership) elector() (*leaderelection.LeaderElector, error) {
	a, opts := l.a, l.a.opts.Leader
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s_%s", host, uuid.NewUUID())
	// A client of its own: renewing the Lease must not wait behind a burst of releases on the shared
	// client-side rate limit, or the Lease is lost under load.
	cfg := rest.CopyConfig(a.config)
	cfg.QPS, cfg.Burst, cfg.RateLimiter = 5, 10, nil
	cfg.UserAgent = "resume-trigger/leader-election"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, a.opts.leaseNamespace, opts.ID,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   opts.LeaseDuration,
		RenewDeadline:   opts.RenewDeadline,
		RetryPeriod:     opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            opts.ID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				a.log.WithField("identity", id).Info("holding the leader Lease: serving")
				l.lead(ctx)
			},
			OnStoppedLeading: l.stopLeading,
			OnNewLeader: func(identity string) {
				if identity != id {
					a.log.WithField("leader", identity).Info("standing by: another replica holds the leader Lease")
				}
			},
		},
	})
}
