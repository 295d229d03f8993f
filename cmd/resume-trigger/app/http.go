package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/resume"
	"github.com/argocontroller/resume-trigger/internal/version"
)

// httpShutdownTimeout bounds what follows the gRPC drain, writing the Events still queued and the metrics
// and probe endpoint's shutdown: the pod's terminationGracePeriodSeconds must cover --shutdown-timeout
// plus this.
const httpShutdownTimeout = 5 * time.Second

// newRegistry is what /metrics serves: the Go and process collectors, the build, and with
// --paused-metrics the paused containers of the served namespaces.
func newRegistry(c *Completed, cl *clients) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	if c.Metrics.Paused {
		reg.MustRegister(report.NewPaused(report.PausedConfig{Pods: cl.kube, Namespaces: resume.Listed(c.namespaces)}))
	}
	return reg
}

// buildInfo is the resume_trigger_build_info gauge: always 1, its labels say which build runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "resume_trigger_build_info",
		Help: "The running build: version, commit and Go version as labels; always 1.",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(version.Version, version.Commit, version.GoVersion()).Set(1)
	return g
}

// listen opens the gRPC listener, the HTTP endpoint's unless --metrics-address is empty, and the web
// page's with --ui-address; if one fails, those opened are closed.
func (a *App) listen(ctx context.Context) error {
	if err := a.listenServer(ctx); err != nil {
		return err
	}
	if a.opts.UI.Address == "" {
		return nil
	}
	if err := a.listenUI(ctx); err != nil {
		_ = a.grpcLn.Close()
		if a.httpLn != nil {
			_ = a.httpLn.Close()
		}
		return err
	}
	return nil
}

// listenServer opens the gRPC listener and, unless --metrics-address is empty, the HTTP endpoint's.
func (a *App) listenServer(ctx context.Context) error {
	var lc net.ListenConfig
	var err error
	if a.grpcLn, err = lc.Listen(ctx, "tcp", a.opts.Server.GRPCAddress); err != nil {
		return fmt.Errorf("listen on --grpc-address: %w", err)
	}
	if a.opts.Metrics.Address == "" {
		return nil
	}
	a.http = &http.Server{Handler: a.mux(), ReadHeaderTimeout: 5 * time.Second}
	if a.httpLn, err = lc.Listen(ctx, "tcp", a.opts.Metrics.Address); err != nil {
		_ = a.grpcLn.Close()
		return fmt.Errorf("listen on --metrics-address: %w", err)
	}
	return nil
}

// mux serves /metrics, the probes, and with --profiling the pprof profiles.
func (a *App) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: triggerService})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	if a.opts.Metrics.Profiling {
		// Opt-in: profiles tell where a release spends its time, and also reveal the server's internals.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
