package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// netnsPrefix names the network namespaces of a chain: rtchain-<pid of the test process>-<index>. The pid
// lets a later run remove what a killed run left behind; the index is unique in the process, so one
// process can run several chains at once.
const netnsPrefix = "rtchain-"

var (
	// netnsMu serialises picking a subnet and creating namespaces on it, so chains starting at once in
	// one process do not pick the same subnet.
	netnsMu sync.Mutex
	// netnsNext is the next namespace index of this process.
	netnsNext int
	// argoEventsUsers counts this process's chains that use argoEventsDir.
	argoEventsUsers atomic.Int32
)

// netNS is one network namespace joined to the host by a veth pair on a /30 of 198.18.0.0/15 (the
// benchmarking range, never routed on the Internet): the host side is .4i+1, the namespace side .4i+2.
type netNS struct {
	Name     string
	HostIP   string // host side of the veth pair
	IP       string // namespace side
	hostLink string
	peer     string // the namespace side's link
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// pickSubnet returns a third octet X such that no interface has an address in 198.18.X.0/24.
func pickSubnet(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr", "show").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ip -o -4 addr show: %w: %s (the chain needs iproute2 and root)", err, bytes.TrimSpace(out))
	}
	for range 50 {
		x := 1 + rand.IntN(254)
		if !strings.Contains(string(out), fmt.Sprintf(" 198.18.%d.", x)) {
			return x, nil
		}
	}
	return 0, fmt.Errorf("no free 198.18.X.0/24 subnet")
}

// addNetNSes picks a free subnet and creates count namespaces on it (addNetNS); on error it deletes the
// ones it made.
func addNetNSes(ctx context.Context, count int) ([]*netNS, error) {
	netnsMu.Lock()
	defer netnsMu.Unlock()
	x, err := pickSubnet(ctx)
	if err != nil {
		return nil, err
	}
	var out []*netNS
	for i := range count {
		n, err := addNetNS(ctx, x, i, netnsNext)
		if err != nil {
			for _, m := range out {
				_ = m.delete()
			}
			return nil, err
		}
		netnsNext++
		out = append(out, n)
	}
	return out, nil
}

// addNetNS creates namespace i of a chain, index idx in this process, on subnet 198.18.x.0/24 with lo up
// and a default route to the host.
func addNetNS(ctx context.Context, x, i, idx int) (*netNS, error) {
	n := &netNS{
		Name:     fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), idx),
		HostIP:   fmt.Sprintf("198.18.%d.%d", x, 4*i+1),
		IP:       fmt.Sprintf("198.18.%d.%d", x, 4*i+2),
		hostLink: fmt.Sprintf("rtc%dh%d", os.Getpid(), idx),
	}
	peer := fmt.Sprintf("rtc%dn%d", os.Getpid(), idx)
	n.peer = peer
	if err := ipCmd(ctx, "netns", "add", n.Name); err != nil {
		return nil, fmt.Errorf("%w (creating network namespaces needs root / CAP_SYS_ADMIN)", err)
	}
	steps := [][]string{
		{"link", "add", n.hostLink, "type", "veth", "peer", "name", peer, "netns", n.Name},
		{"addr", "add", n.HostIP + "/30", "dev", n.hostLink},
		{"link", "set", n.hostLink, "up"},
		{"-n", n.Name, "addr", "add", n.IP + "/30", "dev", peer},
		{"-n", n.Name, "link", "set", peer, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "route", "add", "default", "via", n.HostIP},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			_ = n.delete() // best effort: a namespace left behind is swept by a later Start (sweepStaleNetNS)
			return nil, err
		}
	}
	return n, nil
}

// delete removes the namespace; the veth pair goes with it. Teardown is bound to no context: it runs
// from Stop and after a failed Start, whose context may be over already.
func (n *netNS) delete() error {
	ctx := context.Background()
	_ = exec.CommandContext(ctx, "ip", "link", "del", n.hostLink).Run() // normally gone already with the namespace
	return ipCmd(ctx, "netns", "del", n.Name)
}

// dirPrefix names a chain's temporary directory: resume-trigger-chain-<pid>-<random>.
const dirPrefix = "resume-trigger-chain-"

// argoEventsDir is where argo-events reads secrets (/argo-events/secrets/<name>/<key>). It must exist on
// the host as a mount point for the webhook EventSource's private tmpfs; it stays empty on the host.
const argoEventsDir = "/argo-events"

// ownArgoEventsDir creates /argo-events if it is missing. Every successful call needs a
// releaseArgoEventsDir.
func ownArgoEventsDir() error {
	argoEventsUsers.Add(1)
	if err := os.Mkdir(argoEventsDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		argoEventsUsers.Add(-1)
		return fmt.Errorf("create the mount point %s: %w", argoEventsDir, err)
	}
	return nil
}

// releaseArgoEventsDir removes /argo-events when it is empty and no other live chain, of this process or
// another, uses it (removing a mount point would unmount it in that chain's webhook EventSource).
func releaseArgoEventsDir() {
	if argoEventsUsers.Add(-1) == 0 && len(liveChains()) == 0 {
		_ = os.Remove(argoEventsDir) // fails, as it should, when not empty
	}
}

// chainPID parses the pid out of rtchain-<pid>-<i> or resume-trigger-chain-<pid>-<random>.
func chainPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	return pid, err == nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) != syscall.ESRCH }

// liveChains are the pids of other processes whose chain namespaces exist.
func liveChains() []int {
	entries, _ := os.ReadDir("/var/run/netns")
	var out []int
	for _, e := range entries {
		if pid, ok := chainPID(e.Name(), netnsPrefix); ok && pid != os.Getpid() && alive(pid) && !slices.Contains(out, pid) {
			out = append(out, pid)
		}
	}
	return out
}

// sweepStaleDirs removes temporary directories of chains whose process is gone (killed before Stop).
func sweepStaleDirs() {
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		if pid, ok := chainPID(e.Name(), dirPrefix); ok && pid != os.Getpid() && !alive(pid) {
			_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}

// sweepStaleNetNS deletes namespaces of chains whose process no longer exists.
func sweepStaleNetNS(ctx context.Context) {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		if pid, ok := chainPID(e.Name(), netnsPrefix); ok && pid != os.Getpid() && !alive(pid) {
			_ = exec.CommandContext(ctx, "ip", "netns", "del", e.Name()).Run()
		}
	}
}
