package chain

import (
	"encoding/json"
	"os"
	"os/exec"
	"syscall"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// startProc starts cmd as one of the chain's processes (rig.StartProcess): its own process group, the log
// at logPath, killed with the test process (PDEATHSIG) and, should that not happen, by the chain's reaper.
func (c *Chain) startProc(name, logPath string, cmd *exec.Cmd) (*rig.Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p, err := rig.StartProcess(name, logPath, cmd)
	if err != nil {
		return nil, err
	}
	if err := c.reaper.Watch(p); err != nil {
		p.Stop(syscall.SIGKILL, 0)
		return nil, err
	}
	return p, nil
}

// startLaunched starts argv through RunLauncher in a fresh mount namespace joined to netns.
func (c *Chain) startLaunched(name, logPath string, spec launchSpec) (*rig.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self) //nolint:noctx // long-lived: stopped by Kill/Stop and reaped by the chain's reaper, never by a context
	cmd.Env = []string{launchEnv + "=" + string(raw), "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return c.startProc(name, logPath, cmd)
}

// reaperCleanup is the chain's part of its reaper (rig.StartReaper), for a test process that died without
// Stop (a panic, go test's -timeout, a signal): after the process groups are killed it deletes the
// process's network namespaces and removes /argo-events unless another live chain still uses it (removing
// a mount point would unmount it in that chain's webhook EventSource). $parent is the test process.
const reaperCleanup = `
for n in /var/run/netns/` + netnsPrefix + `"$parent"-*; do
	[ -e "$n" ] && ip netns del "${n##*/}"
done
live=
for n in /var/run/netns/` + netnsPrefix + `*; do
	[ -e "$n" ] || continue
	pid=${n##*/` + netnsPrefix + `}; pid=${pid%%-*}
	[ "$pid" != "$parent" ] && kill -0 "$pid" 2>/dev/null && live=1
done
[ -n "$live" ] || rmdir ` + argoEventsDir + `
`
