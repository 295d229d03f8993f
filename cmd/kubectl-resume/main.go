// Command kubectl-resume is the kubectl plugin of resume-trigger: `kubectl resume WORKFLOW …` creates a
// Resume (and with --wait follows it), `kubectl resume list` shows the debug-paused containers, and
// `kubectl resume why WORKFLOW` explains the server's lookup, `kubectl resume version` says which build it
// is. Install it on PATH from a release's archive (krew manifest resume.yaml), or make build-plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/argocontroller/resume-trigger/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := plugin.Execute(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
