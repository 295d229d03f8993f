package rig

import (
	"context"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/internal/release"
)

// Executor is resume-trigger's own exec client (release.APIExecutor: pods/exec through the API server,
// WebSocket first, SPDY when the upgrade fails) acting as cfg, so that the rig's tests and benchmarks
// exercise the code the server runs.
func Executor(cfg *rest.Config) (*release.APIExecutor, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &release.APIExecutor{Config: cfg, Client: client}, nil
}

// Exec runs argv in a container with Executor(cfg). A command that exits non-zero is a
// *release.ExitError holding the exit code and the command's output (stdout and stderr).
func Exec(ctx context.Context, cfg *rest.Config, namespace, pod, container string, argv ...string) error {
	ex, err := Executor(cfg)
	if err != nil {
		return err
	}
	return ex.Exec(ctx, namespace, pod, container, argv)
}
