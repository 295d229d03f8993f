package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The version stamped at build time (as the Makefile does from git describe) is what --version prints.
func TestVersionIsStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "resume-trigger")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "-ldflags",
		"-X github.com/argocontroller/resume-trigger/internal/version.Version=v9.8.7 -X github.com/argocontroller/resume-trigger/internal/version.Commit=abc1234", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if want := "resume-trigger v9.8.7 (commit abc1234, " + runtime.Version() + ")\n"; string(out) != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
	if strings.Contains(string(out), "level=") {
		t.Error("--version logged instead of printing")
	}
}
