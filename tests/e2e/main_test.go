package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/argocontroller/resume-trigger/tests/chain"
)

// ch is the chain every test of the package shares: one namespace, each test its own workflows.
var ch *chain.Chain

func TestMain(m *testing.M) {
	chain.RunLauncher() // a re-executed copy of this binary becomes an argo-events process here
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := chain.Start(ctx, chain.Options{
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the chain: %v\n", err)
		return 1
	}
	defer c.Stop()
	ch = c
	fmt.Fprintf(os.Stderr, "e2e: chain started in %v\n", time.Since(began).Round(time.Millisecond))
	return m.Run()
}

// setup gives a test the shared chain and prints every process log's tail if the test fails.
func setup(t *testing.T) *chain.Chain {
	t.Helper()
	if ch == nil {
		t.Fatal("no chain: TestMain did not start it")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet execs in %s: %s\n%s", ch.Namespace, chain.FormatCalls(ch.Calls()), ch.LogTails(40))
		}
	})
	return ch
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
