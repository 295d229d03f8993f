package chain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// RestartNATS stops nats-server with sig (syscall.SIGKILL for a crash), runs down while it is gone (nil:
// nothing), and starts it again on the same address with the same configuration: JetStream's store under
// Dir/nats is kept, so are the streams, their messages and the durable consumers. It returns once
// JetStream is healthy again, or with down's error after the restart.
func (c *Chain) RestartNATS(ctx context.Context, sig syscall.Signal, down func() error) error {
	c.mu.Lock()
	p := c.nats
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("nats-server was never started")
	}
	p.Stop(sig, 10*time.Second)
	c.logf("chain: nats-server (pid %d) stopped with %v", p.Pid(), sig)
	var downErr error
	if down != nil {
		downErr = down()
	}
	step := time.Now()
	if err := c.runNATS(ctx); err != nil {
		return fmt.Errorf("start nats-server again: %w", err)
	}
	c.logf("chain: nats-server back in %v", time.Since(step).Round(time.Millisecond))
	return downErr
}

// SetLink takes the link of comp's network namespace down (up false) or brings it up again. While it is
// down, comp runs on but reaches nothing on the host (API server, NATS, resume-trigger) and nothing
// reaches it, as when a node's network fails; its connections are not closed, they time out. Bringing it
// up restores the namespace's default route, which went with the link.
func (c *Chain) SetLink(ctx context.Context, comp Component, up bool) error {
	idx := -1
	for i, a := range argoComponents {
		if a == comp {
			idx = i
		}
	}
	if idx < 0 || idx >= len(c.netns) {
		return fmt.Errorf("%s runs in no network namespace of the chain", comp)
	}
	n := c.netns[idx]
	state := "down"
	if up {
		state = "up"
	}
	if err := ipCmd(ctx, "-n", n.Name, "link", "set", n.peer, state); err != nil {
		return err
	}
	if up {
		if err := ipCmd(ctx, "-n", n.Name, "route", "replace", "default", "via", n.HostIP); err != nil {
			return err
		}
	}
	c.logf("chain: link of %s (%s in %s) %s", comp, n.peer, n.Name, state)
	return nil
}

// StartServerReplica starts another resume-trigger beside the chain's, with the same binary, identity,
// namespace and arguments (Options.ServerArgs included), serving gRPC at grpcAddress and HTTP at
// metricsAddress, with args appended, and returns once it runs (it may stand by: with --leader-elect only
// the leader is ready). name names its log; Stop stops it, the caller may stop it earlier.
func (c *Chain) StartServerReplica(ctx context.Context, name, grpcAddress, metricsAddress string, args ...string) (*rig.Process, error) {
	log := filepath.Join(c.Dir, "logs", name+".log")
	c.addLog(log)
	c.mu.Lock()
	// The chain's own command line (the rendered Deployment's args, then the chain's), its addresses
	// replaced: a flag given twice takes the last value.
	argv := append(c.serverArgs(), "--grpc-address", grpcAddress, "--metrics-address", metricsAddress)
	argv = append(argv, args...)
	cmd := exec.Command(c.serverBin, argv...) //nolint:noctx // long-lived: stopped by the caller or Stop and reaped by the chain's reaper, never by a context
	cmd.Env = append(os.Environ(), c.install.serverEnv...)
	c.mu.Unlock()
	p, err := c.startProc(name, log, cmd)
	if err != nil {
		return nil, err
	}
	c.onStop(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	if err := c.poll(ctx, p, "serving /healthz", func(ctx context.Context) (bool, error) {
		return HTTPOK(ctx, "http://"+strings.TrimPrefix(metricsAddress, "http://")+"/healthz"), nil
	}); err != nil {
		return nil, err
	}
	c.logf("chain: %s (pid %d) runs, gRPC %s", name, p.Pid(), grpcAddress)
	return p, nil
}
