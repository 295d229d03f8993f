package fault

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// namespace is where the suite's Workflows, pods and Resumes go.
const namespace = "fault"

// resyncPeriod is the servers' --resync-period.
const resyncPeriod = 15 * time.Second

// suite is the chain every fault runs on, one fault at a time, and the counts so far.
type suite struct {
	c     *chain.Chain
	front *front
	// server is the chain's resume-trigger: gRPC on loopback behind the front, HTTP at the chain's
	// MetricsURL.
	server backend

	mu   sync.Mutex
	rows []row
	// pods are every targeted pod of the suite, to judge execs that land after their fault's window.
	pods map[string]bool
}

var s *suite

func TestMain(m *testing.M) {
	chain.RunLauncher() // a re-executed copy of this binary becomes an argo-events process here
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	grpcPort, err := rig.FreePort(ctx, "127.0.0.1")
	if err != nil {
		fmt.Fprintf(os.Stderr, "fault: %v\n", err)
		return 1
	}
	grpcAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort))
	c, err := chain.Start(ctx, chain.Options{
		Namespace: namespace,
		// The server listens on loopback; the front takes the chain's server address, where the Sensor
		// calls.
		// A Resume whose event never reached the EventBus (created while NATS was down: the resource
		// EventSource drops what it cannot publish) is taken up only by the server's periodic list of
		// Resumes, every --resync-period (default 1m); 15s keeps the suite short.
		ServerArgs: []string{"--grpc-address", grpcAddr, "--resync-period", resyncPeriod.String()},
		// The faults hold bursts of 100 and 200 paused pods at once: on Argo's executor each would be two
		// processes and a copy of argoexec (init copies it into the pod's /var/run/argo, 213 MB), which
		// this 2-core machine cannot carry beside the chain. The fault tier is about the server's faults,
		// not the executor: the rig's emulation runs its pods; the e2e tier and the demo run Argo's own.
		Executor: rig.ExecutorEmulated,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fault: cannot start the chain: %v\n", err)
		return 1
	}
	defer c.Stop()
	s = &suite{c: c, server: backend{name: string(chain.Server), grpc: grpcAddr, http: c.MetricsURL}, pods: map[string]bool{}}
	if s.front, err = startFront(c.ServerAddress, s.server); err != nil {
		fmt.Fprintf(os.Stderr, "fault: cannot start the front at %s: %v\n", c.ServerAddress, err)
		return 1
	}
	defer s.front.close()
	fmt.Fprintf(os.Stderr, "fault: chain started in %v\n", time.Since(began).Round(time.Millisecond))
	code := m.Run()
	table := s.table()
	fmt.Fprintf(os.Stderr, "\nfault: %v in all\n\n%s\n", time.Since(began).Round(time.Second), table)
	// go test shows a passing package's output only with -v: make test-fault prints this file.
	if path := os.Getenv("FAULT_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "fault: write the table: %v\n", err)
			return 1
		}
	}
	return code
}

// row is the count of one fault.
type row struct {
	Fault                              string
	Injected, Resumes, Released        int
	WrongExecs, LostResumes, Duplicate int
	Took                               time.Duration
}

// add counts o into r (Fault is r's).
func (r *row) add(o row) {
	r.Injected += o.Injected
	r.Resumes += o.Resumes
	r.Released += o.Released
	r.WrongExecs += o.WrongExecs
	r.LostResumes += o.LostResumes
	r.Duplicate += o.Duplicate
	r.Took += o.Took
}

func (s *suite) record(r row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

// table is the rows as Markdown.
func (s *suite) table() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("| fault | injected | Resumes | released | wrong execs | lost Resumes | duplicate releases | took |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var sum row
	for _, r := range s.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %.1f s |\n", r.Fault, r.Injected, r.Resumes, r.Released, r.WrongExecs, r.LostResumes, r.Duplicate, r.Took.Seconds())
		sum.add(r)
	}
	fmt.Fprintf(&b, "| **all** | %d | %d | %d | %d | %d | %d | %.1f s |\n", sum.Injected, sum.Resumes, sum.Released, sum.WrongExecs, sum.LostResumes, sum.Duplicate, sum.Took.Seconds())
	return b.String()
}
