package app

import (
	"fmt"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// clients are the server's API clients, all sharing one client-side rate limit (clientConfig).
type clients struct {
	config    *rest.Config
	kube      kubernetes.Interface
	workflows wfclient.Interface
	dynamic   dynamic.Interface
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
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &clients{config: cfg, kube: kube, workflows: wf, dynamic: dyn}, nil
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
