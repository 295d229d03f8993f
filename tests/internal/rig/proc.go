package rig

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process of a test (etcd, kube-apiserver, nats-server, an argo-events process, the
// server), started in its own process group so that stopping it also stops whatever it spawned, with its
// output in a log file.
type Process struct {
	// Name is what errors call the process.
	Name string
	// Log is the file its stdout and stderr go to.
	Log string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done is closed
}

// StartProcess starts cmd in a process group of its own with stdout and stderr appended to logPath. Other
// SysProcAttr settings of cmd (a Pdeathsig, namespace flags) are kept.
func StartProcess(name, logPath string, cmd *exec.Cmd) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		_ = f.Close() // nothing was written through it; the start error is what matters
		return nil, fmt.Errorf("start %s (%s): %w", name, cmd.Path, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close() // the process wrote through its own descriptor; this only releases ours
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended; nil while it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends sig to the process group, waits up to grace for the process to exit, then SIGKILLs the group
// (also after a clean exit of the leader: a child it left behind must go too) and waits until the process
// is reaped. It does nothing for a nil Process.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid(), sig)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Failure wraps err with the name of the process and the tail of its log, which is where the reason
// usually is.
func (p *Process) Failure(err error) error {
	return fmt.Errorf("%s: %w\n--- last lines of %s ---\n%s", p.Name, err, p.Log, Tail(p.Log, 40))
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort asks the kernel for a free TCP port on addr. The port is released before the caller uses it,
// which leaves a small race that is acceptable for a test rig.
func FreePort(ctx context.Context, addr string) (int, error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tools returns the paths of pinned tools (kube-apiserver, etcd, nats-server, argo-events,
// controller-gen) from hack/tools.sh under the repository root root, which builds what is missing into a
// cache outside the checkout. A cold build takes minutes and reports progress on stderr.
func Tools(root string, names ...string) ([]string, error) {
	script := filepath.Join(root, "hack", "tools.sh")
	cmd := exec.Command("bash", append([]string{script}, names...)...) //nolint:noctx // a cold build takes minutes and is deliberately bounded by no caller's deadline
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", script, strings.Join(names, " "), err)
	}
	paths := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(paths) != len(names) {
		return nil, fmt.Errorf("%s %s printed %q, want one path for each tool", script, strings.Join(names, " "), out)
	}
	for _, p := range paths {
		if err := executable(p); err != nil {
			return nil, fmt.Errorf("%s %s: %w", script, strings.Join(names, " "), err)
		}
	}
	return paths, nil
}

func executable(path string) error {
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%q is not an executable file", path)
	}
	return nil
}

// Reaper is a detached shell that outlives the test process and cleans up after it when it dies without
// its deferred teardown (a panicking test, go test's -timeout, a signal): it kills the process groups
// Watch recorded, runs the cleanup script given to StartReaper, and removes the directory.
type Reaper struct {
	dir string
	cmd *exec.Cmd
	mu  sync.Mutex
}

// reaperScript waits for $parent to exit, then kills the process groups listed in $dir/pgids, runs
// $cleanup (sh, with $parent set) and removes $dir.
const reaperScript = `
parent=$1; dir=$2; cleanup=$3
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
if [ -f "$dir/pgids" ]; then
	for g in $(cat "$dir/pgids"); do kill -TERM "-$g" 2>/dev/null; done
	sleep 1
	for g in $(cat "$dir/pgids"); do kill -KILL "-$g" 2>/dev/null; done
fi
[ -z "$cleanup" ] || (eval "$cleanup") >/dev/null 2>&1
rm -rf "$dir"
`

// StartReaper starts the reaper of dir. cleanup is a sh script that runs after the process groups are
// killed and before dir is removed, with $parent set to this process's pid; "" for none.
func StartReaper(dir, cleanup string) (*Reaper, error) {
	cmd := exec.Command("sh", "-c", reaperScript, "rig-reaper", strconv.Itoa(os.Getpid()), dir, cleanup) //nolint:noctx // must outlive this process; ended only by Stop
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the reaper of %s: %w", dir, err)
	}
	go func() { _ = cmd.Wait() }()
	return &Reaper{dir: dir, cmd: cmd}, nil
}

// Watch records p's process group, to be killed if this process dies without stopping p.
func (r *Reaper) Watch(p *Process) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(r.dir, "pgids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, p.Pid()); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// Stop ends the reaper without it doing anything: the caller cleaned up itself.
func (r *Reaper) Stop() {
	if r != nil {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
}
