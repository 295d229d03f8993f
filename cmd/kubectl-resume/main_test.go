package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The version stamped at build time, as make build-plugin and make release do, is what both
// `kubectl resume version` and `kubectl resume --version` print.
func TestVersionIsStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kubectl-resume")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "-ldflags",
		"-X github.com/argocontroller/resume-trigger/internal/version.Version=v9.8.7 -X github.com/argocontroller/resume-trigger/internal/version.Commit=abc1234", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := "kubectl-resume v9.8.7 (commit abc1234, " + runtime.Version() + ")\n"
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.CommandContext(t.Context(), bin, arg).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("kubectl-resume %s: %q, %v; want %q", arg, out, err, want)
		}
	}
}
