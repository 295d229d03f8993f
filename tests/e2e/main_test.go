package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/argocontroller/resume-trigger/tests/internal/chain"
)

// Two chains run the tests, each one test at a time, side by side:
//
//   - shared, started before any test, serves most tests: one namespace, each test its own workflows.
//   - quiet, started at the same time, serves the tests that need the Sensor to
//     themselves for longer: the Sensor acts on one Resume event at a time, and an early Resume holds it for
//     its whole retry budget (about half a minute); other tests there stop and kill components.
//
// Every test is parallel and waits for its chain, so the long waits of one chain overlap the other's tests.
//
// A third, install, is started by the first test that needs it (install_test.go): its own install
// namespace serving team-a, with team-b beside it, to switch between the shipped overlays. A fourth,
// tlsLane, serves resume-trigger over TLS (manifests/tls); it too starts only when a test asks for it.
var (
	shared  = &lane{name: "shared"}
	quiet   = &lane{name: "quiet", namespace: "e2e-quiet"}
	tlsLane = &lane{name: "tls", namespace: "e2e-tls", opts: chain.Options{TLS: true}}
)

func TestMain(m *testing.M) {
	chain.RunLauncher() // a re-executed copy of this binary becomes an argo-events process here
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	began := time.Now()
	// Both chains start side by side; a test of the quiet chain that finds it failed to start says why.
	go func() { _ = quiet.start() }()
	defer quiet.stop()
	defer shared.stop()
	defer tlsLane.stop()
	defer install.stop()
	defer chartLane.stop()
	if err := shared.start(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the chain: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: shared chain started in %v\n", time.Since(began).Round(time.Millisecond))
	// A test waiting for its chain holds one of -parallel's slots (GOMAXPROCS by default, 2 on the CI
	// machine), so the default would let the tests of one chain take them all.
	raiseParallel(16)
	return m.Run()
}

// raiseParallel sets -test.parallel to n unless the command line set it.
func raiseParallel(n int) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// lane is one chain and the lock a test holds while it uses it.
type lane struct {
	name, namespace string
	// opts are the chain's options beyond Namespace and Logf.
	opts chain.Options

	use     sync.Mutex // held by the test using the chain
	once    sync.Once
	c       *chain.Chain
	err     error
	stopped sync.Once
}

func (l *lane) start() error {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		opts := l.opts
		opts.Namespace = l.namespace
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s [%s] "+format+"\n", append([]any{time.Now().Format("15:04:05.000"), l.name}, args...)...)
		}
		l.c, l.err = chain.Start(ctx, opts)
	})
	return l.err
}

// stop stops the chain once start has returned.
func (l *lane) stop() {
	l.stopped.Do(func() {
		l.once.Do(func() {}) // waits for a start under way; prevents a later one
		if l.c != nil {
			l.c.Stop()
		}
	})
}

// acquire makes t parallel, waits until the lane's chain is free (starting it if need be) and gives it to
// t until t ends; if t fails, every process log's tail is printed.
func (l *lane) acquire(t *testing.T) *chain.Chain {
	t.Helper()
	t.Parallel()
	waited := time.Now()
	l.use.Lock()
	t.Cleanup(l.use.Unlock)
	if d := time.Since(waited); d > time.Second {
		t.Logf("waited %v for the %s chain to be free", d.Round(time.Millisecond), l.name)
	}
	if err := l.start(); err != nil {
		t.Fatalf("no %s chain: %v", l.name, err)
	}
	c := l.c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet execs in %s: %s\n%s", c.Namespace, chain.FormatCalls(c.Calls()), c.LogTails(40))
		}
	})
	return c
}

// setup gives a test the shared chain.
func setup(t *testing.T) *chain.Chain {
	t.Helper()
	return shared.acquire(t)
}

// setupQuiet gives a test the quiet chain.
func setupQuiet(t *testing.T) *chain.Chain {
	t.Helper()
	return quiet.acquire(t)
}

func contextFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
