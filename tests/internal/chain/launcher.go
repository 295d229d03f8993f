package chain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// launchEnv carries a launchSpec to a re-executed copy of the current binary.
const launchEnv = "RESUME_TRIGGER_CHAIN_LAUNCH"

// launchSpec is what the launcher does before it becomes the target program.
type launchSpec struct {
	// NetNS is a name under /var/run/netns to join.
	NetNS string `json:"netns"`
	// Tmpfs are directories that get a fresh tmpfs in the launcher's own mount namespace.
	Tmpfs []string `json:"tmpfs,omitempty"`
	// Files are written after the tmpfs mounts, so they are only visible to the target.
	Files []launchFile `json:"files,omitempty"`
	Argv  []string     `json:"argv"`
	Env   []string     `json:"env"`
	Dir   string       `json:"dir,omitempty"`
}

type launchFile struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
	Mode uint32 `json:"mode"`
}

// RunLauncher turns this process into an argo-events process inside its namespaces when Chain started it
// as a launcher, and returns at once otherwise. Call it before anything else in main or TestMain.
func RunLauncher() {
	raw, ok := os.LookupEnv(launchEnv)
	if !ok {
		return
	}
	err := launch(raw)
	fmt.Fprintf(os.Stderr, "chain launcher: %v\n", err)
	os.Exit(111)
}

// launch runs in a process the parent started with its own mount namespace (Unshareflags CLONE_NEWNS,
// / already made rprivate by the Go runtime). It joins the network namespace on this thread, mounts the
// private directories, writes the files and execs the target from the same thread, so the target
// inherits the thread's network namespace.
func launch(raw string) error {
	var spec launchSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("decode %s: %w", launchEnv, err)
	}
	if len(spec.Argv) == 0 {
		return fmt.Errorf("no argv")
	}
	runtime.LockOSThread() // never unlocked: the exec below replaces the process from this thread
	if spec.NetNS != "" {
		f, err := os.Open(filepath.Join("/var/run/netns", spec.NetNS))
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", spec.NetNS, err)
		}
		_ = f.Close() // the namespace is joined; the descriptor is no longer needed
	}
	// The binary may live under a directory the tmpfs below hides (a tool cache under /tmp, say): hold it
	// open first, and exec it through its descriptor.
	bin, err := os.Open(spec.Argv[0])
	if err != nil {
		return fmt.Errorf("open %s: %w", spec.Argv[0], err)
	}
	// Redundant with what the runtime did after unshare, but cheap: nothing mounted here may leak out.
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	for _, dir := range spec.Tmpfs {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777,size=64m"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	for _, f := range spec.Files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.Path, f.Data, os.FileMode(f.Mode)); err != nil {
			return err
		}
	}
	if spec.Dir != "" {
		if err := os.Chdir(spec.Dir); err != nil {
			return err
		}
	}
	env := make([]string, 0, len(spec.Env))
	for _, e := range spec.Env {
		if !strings.HasPrefix(e, launchEnv+"=") {
			env = append(env, e)
		}
	}
	// The descriptor is close-on-exec, which is fine for a binary: the kernel has opened it by then.
	return syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", bin.Fd()), spec.Argv, env)
}
