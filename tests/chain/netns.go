package chain

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// netnsPrefix names the network namespaces of a chain: rtchain-<pid of the test process>-<index>. The pid
// lets a later run remove what a killed run left behind.
const netnsPrefix = "rtchain-"

// netNS is one network namespace joined to the host by a veth pair on a /30 of 198.18.0.0/15 (the
// benchmarking range, never routed on the Internet): the host side is .4i+1, the namespace side .4i+2.
type netNS struct {
	Name     string
	HostIP   string // host side of the veth pair
	IP       string // namespace side
	hostLink string
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// pickSubnet returns a third octet X such that no interface has an address in 198.18.X.0/24.
func pickSubnet() (int, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").CombinedOutput()
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

// addNetNS creates namespace index i on subnet 198.18.x.0/24 with lo up and a default route to the host.
func addNetNS(x, i int) (*netNS, error) {
	n := &netNS{
		Name:     fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), i),
		HostIP:   fmt.Sprintf("198.18.%d.%d", x, 4*i+1),
		IP:       fmt.Sprintf("198.18.%d.%d", x, 4*i+2),
		hostLink: fmt.Sprintf("rtc%dh%d", os.Getpid(), i),
	}
	peer := fmt.Sprintf("rtc%dn%d", os.Getpid(), i)
	if err := ipCmd("netns", "add", n.Name); err != nil {
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
		if err := ipCmd(s...); err != nil {
			n.delete()
			return nil, err
		}
	}
	return n, nil
}

// delete removes the namespace; the veth pair goes with it.
func (n *netNS) delete() error {
	_ = exec.Command("ip", "link", "del", n.hostLink).Run() // normally gone already with the namespace
	return ipCmd("netns", "del", n.Name)
}

// sweepStaleNetNS deletes namespaces of chains whose process no longer exists.
func sweepStaleNetNS() {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}
