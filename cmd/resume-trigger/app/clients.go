package app

import (
	"fmt"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
)

// clients are the server's API clients, all sharing one client-side rate limit (clientConfig).
type clients struct {
	config    *rest.Config
	kube      kubernetes.Interface
	workflows wfclient.Interface
	resumes   versioned.Interface
}

func newClients(cfg *rest.Config, opts KubeOptions) (*clients, error) {
	cfg = clientConfig(cfg, opts)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	wf, err := wfclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("workflow client: %w", err)
	}
	rc, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("resume client: %w", err)
	}
	return &clients{config: cfg, kube: kube, workflows: wf, resumes: rc}, nil
}

// clientConfig is cfg with the server's user agent and client-side rate limit: one token bucket for
// every client made from it, so --kube-api-qps and --kube-api-burst bound what the server sends in all
// (client-go would give each client a bucket of its own). A negative QPS leaves no client-side limit.
func clientConfig(cfg *rest.Config, opts KubeOptions) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(opts.QPS), opts.Burst
	cfg.RateLimiter = nil
	if opts.QPS > 0 {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(opts.QPS), opts.Burst)
	}
	cfg.UserAgent = "resume-trigger"
	return cfg
}
