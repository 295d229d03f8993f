package rig

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	known := map[string]string{"POD": "p-1", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := known[k]; return v, ok }
	for name, tc := range map[string]struct{ in, exp string }{
		"no reference":             {"plain", "plain"},
		"known reference":          {"name=$(POD)", "name=p-1"},
		"empty value":              {"[$(EMPTY)]", "[]"},
		"unknown stays as written": {"$(NOPE)/$(POD)", "$(NOPE)/p-1"},
		"escaped":                  {"$$(POD) $$", "$(POD) $"},
		"unclosed":                 {"$(POD", "$(POD"},
		"dollar at the end":        {"cost $", "cost $"},
		"shell syntax untouched":   {"${POD} $POD", "${POD} $POD"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := expand(tc.in, lookup); got != tc.exp {
				t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.exp)
			}
		})
	}
}

func TestFieldRef(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u-1",
			Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"workflows.argoproj.io/node-id": "n-1"},
		},
		Spec: corev1.PodSpec{NodeName: NodeName, ServiceAccountName: "sa"},
	}
	for path, exp := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u-1", "spec.nodeName": NodeName,
		"spec.serviceAccountName": "sa", "metadata.labels['a']": "1",
		"metadata.annotations['workflows.argoproj.io/node-id']": "n-1",
	} {
		if got, err := fieldRef(pod, path); err != nil || got != exp {
			t.Errorf("fieldRef(%s) = %q, %v; want %q", path, got, err, exp)
		}
	}
	if _, err := fieldRef(pod, "status.hostIPs"); err == nil {
		t.Error("an unsupported fieldRef must fail the pod, not run it with an empty value")
	}
}

// A container's process sees the pod's directory at /var/run/argo, and nothing of it reaches the host's
// mount table; a command missing from the image's PATH ends as a runtime reports it (exit 127).
func TestContainerProcess(t *testing.T) {
	r := Get(t)
	if err := r.probeMounts(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vol, home, bin := t.TempDir(), t.TempDir(), t.TempDir()
	touch, err := exec.LookPath("touch")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(touch, filepath.Join(bin, "touch")); err != nil {
		t.Fatal(err)
	}
	run := func(path string, argv ...string) (string, error) {
		cmd, err := containerCommand(r.kubelet.self, containerSpec{Mounts: []mount{{Source: vol, Target: MarkerDir}}, Dir: home, Argv: argv}, []string{"PATH=" + path})
		if err != nil {
			t.Fatal(err)
		}
		out, err := runWithContext(ctx, cmd)
		return string(out), err
	}
	if out, err := run(bin, "touch", MarkerDir+"/ctr-made-inside"); err != nil {
		t.Fatalf("touch in the container: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(vol, "ctr-made-inside")); err != nil {
		t.Errorf("the pod's directory lacks what the container made: %v", err)
	}
	if _, err := os.Stat(MarkerDir + "/ctr-made-inside"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the host's %s saw the container's file: %v", MarkerDir, err)
	}
	out, err := run(t.TempDir(), "touch", MarkerDir+"/x")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || !strings.Contains(out, "executable file not found") {
		t.Errorf("touch missing from the image: %v, %q; want exit 127 and executable file not found", err, out)
	}
}
