// Command resume-trigger is the Argo Events custom trigger server that releases debug-paused Argo
// Workflows steps.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	// Mozilla's roots inside the binary, used only where the system has none: the image holds nothing
	// but this binary (no CA bundle to copy from a base image), so --result-sink and --argo-server-url
	// over HTTPS verify the same way whether the image was built by Docker or by make release.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/version"
)

func main() {
	if limit, ok := app.SoftMemoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	opts := app.NewOptions()
	opts.AddFlags(flag.CommandLine)
	showVersion := flag.Bool("version", false, "print the version, commit and Go version, and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String())
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		// The first signal starts a graceful shutdown; a second one ends the process at once.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGTERM, os.Interrupt)
		<-again
		os.Exit(1)
	}()

	if err := app.Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "resume-trigger:", err)
		os.Exit(1)
	}
}
