package chain_test

import (
	"context"
	"log"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
)

// A program (the demo) drives the chain like this. It must run as root, and RunLauncher must come first:
// the chain re-executes the program to enter the argo-events processes' namespaces.
func Example() {
	chain.RunLauncher()
	// The chain stops (its processes end) before the program exits, also on failure.
	if err := releaseHelloWorld(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func releaseHelloWorld(ctx context.Context) error {
	c, err := chain.Start(ctx, chain.Options{Logf: log.Printf})
	if err != nil {
		return err
	}
	defer c.Stop()
	step, err := c.CreatePausedStep(ctx, "hello-world") // the README's Workflow, run by Argo's controller until main pauses
	if err != nil {
		return err
	}
	if _, err := c.CreateResume(ctx, "resume-hello-world", step); err != nil {
		return err
	}
	call, err := c.WaitMarker(ctx, step) // the kubelet ran touch /var/run/argo/ctr/main/after
	if err != nil {
		return err
	}
	res, err := c.WaitResumePhase(ctx, "resume-hello-world", v1alpha1.PhaseSucceeded)
	if err != nil {
		return err
	}
	log.Printf("released %s/%s at %v; Resume %s; step done: %v", call.Pod, call.Container, call.Time, res.Status.Phase, c.WaitStepDone(ctx, step))
	return nil
}
