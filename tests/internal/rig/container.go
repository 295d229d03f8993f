package rig

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// envContainer carries a containerSpec to the copy of the running binary that becomes a container's
// process (see init): a test binary, the demo and the bench all import this package, so each of them can
// be that helper without a helper binary of its own.
const envContainer = "RESUME_TRIGGER_RIG_CONTAINER"

// containerSpec is what the helper does before it becomes the container's command: bind-mount the pod's
// volumes in its own mount namespace (the kubelet starts it with CLONE_NEWNS), enter Dir, and exec Argv
// with the environment it was given, minus envContainer.
type containerSpec struct {
	Mounts []mount `json:"mounts"`
	Dir    string  `json:"dir"`
	Argv   []string
}

// mount is one of a container's volume mounts: the pod's directory Source at Target.
type mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// mountRoots are where the helper may create a missing mount point. They are on /run, a tmpfs: a mount
// point made there for /var/run/argo or the service-account directory is an empty directory in memory
// and never writes the host's disk. Elsewhere the mount point must exist (a container asking for
// /argo/staging, a script template, is refused: see doc.go).
var mountRoots = []string{"/run/", "/var/run/"}

func init() {
	raw, ok := os.LookupEnv(envContainer)
	if !ok {
		return
	}
	// Nothing of the test binary runs past this point: the helper becomes the container's command, or
	// exits with the code a runtime gives a container it cannot start.
	err := becomeContainer(raw)
	var nf *notFoundError
	if errors.As(err, &nf) {
		// What crun and CRI-O report for a command missing from the image: the shell's 127.
		fmt.Fprintf(os.Stderr, "exec: %q: executable file not found in $PATH\n", nf.name)
		os.Exit(127)
	}
	fmt.Fprintf(os.Stderr, "rig container: %v\n", err)
	os.Exit(128)
}

type notFoundError struct{ name string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("%q: executable file not found in $PATH", e.name)
}

func becomeContainer(raw string) error {
	var spec containerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("decode %s: %w", envContainer, err)
	}
	if len(spec.Argv) == 0 {
		return errors.New("no command")
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, envContainer+"=") })
	// What lives in the rig's directory (the working directory, the volumes' directories, the image's
	// PATH) is opened before anything is mounted: a volume at /tmp (Argo's wait container has one) hides
	// the rig's directory under /tmp from then on.
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	bin := spec.Argv[0]
	if !strings.Contains(bin, "/") {
		path := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		found := lookPath(bin, path)
		if found == "" {
			return &notFoundError{name: spec.Argv[0]}
		}
		fd, err := syscall.Open(found, oPath|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", found, err)
		}
		bin = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	// The kubelet started this process in a mount namespace of its own whose mounts are private (Go's
	// forkAndExec makes / MS_REC|MS_PRIVATE after CLONE_NEWNS), so nothing below reaches the host's.
	for i := range spec.Mounts {
		fd, err := syscall.Open(spec.Mounts[i].Source, oPath|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("volume directory %s: %w", spec.Mounts[i].Source, err)
		}
		spec.Mounts[i].Source = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	for _, m := range spec.Mounts {
		if err := bindMount(m); err != nil {
			return err
		}
	}
	if strings.HasPrefix(spec.Argv[0], "/") {
		if _, err := os.Stat(bin); err != nil {
			return &notFoundError{name: spec.Argv[0]}
		}
	}
	return syscall.Exec(bin, spec.Argv, env)
}

// lookPath resolves name in the container's PATH (not the test process's).
func lookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func bindMount(m mount) error {
	if _, err := os.Stat(m.Target); errors.Is(err, os.ErrNotExist) {
		if !slices.ContainsFunc(mountRoots, func(root string) bool { return strings.HasPrefix(m.Target, root) }) {
			return fmt.Errorf("mount %s: no such directory on this machine, and the rig makes mount points only under /run", m.Target)
		}
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
	}
	if err := syscall.Mount(m.Source, m.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s at %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := syscall.Mount("", m.Target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", m.Target, err)
		}
	}
	return nil
}

// containerCommand is the command that runs spec as a container: this binary again, in a new mount
// namespace, with env (the container's environment) and spec for the helper.
func containerCommand(self string, spec containerSpec, env []string) (*exec.Cmd, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self) //nolint:noctx // a container's process: ended by the pod runtime (its process group), never by a context
	cmd.Args = []string{"rig-container"}
	cmd.Env = append(slices.Clone(env), envContainer+"="+string(raw))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// oPath is Linux's O_PATH (the syscall package does not name it): a descriptor that only names the file,
// for mounting it or executing it through /proc/self/fd once the name is hidden.
const oPath = 0x200000
