package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// A node-status bomb beside an ordinary step, on the server binary with the Deployment's memory limit:
// namespace B holds a Workflow whose status.compressedNodes is 21 KiB of gzip that inflates to 16 MiB of
// one node's inputs.artifacts ([{},{},…], which Argo's typed decoder turned into 1.46 GiB), and a Pending
// Resume naming it; namespace A an ordinary paused step and its Resume. The server takes both up at start
// (as after every restart): A's step is released, B's Resume fails saying which bound the Workflow
// exceeds, and the server's peak RSS stays under the Deployment's limit.
func TestNodeStatusBombBesideAnOrdinaryStep(t *testing.T) {
	t.Parallel()
	limit := deploymentMemoryLimit(t)
	ordinary := newEnv(t)
	bombed := &env{t: t, r: ordinary.r, ns: ordinary.r.Namespace(t), wfc: ordinary.wfc}

	hello := ordinary.createWorkflow(fixture.HelloWorld(ordinary.ns))
	ordinary.runPod(hello, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	ordinary.createResume("ordinary", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})

	wf := fixture.Workflow(bombed.ns, "bomb")
	wf.Status.Nodes, wf.Status.CompressedNodes = nil, nodeStatusBomb(t)
	t.Logf("status.compressedNodes of the bomb: %d KiB", len(wf.Status.CompressedNodes)>>10)
	bombed.createWorkflow(wf)
	bombed.createResume("bombed", map[string]any{"Workflow-ID": "bomb", "TemplateName": "pause"})

	p := startServerBinary(t, ordinary.r, []string{ordinary.ns, bombed.ns}, limit)
	var peak int64
	watch := func(what string) {
		hwm, err := peakRSS(p.Pid())
		if err != nil {
			t.Fatalf("%s: read the server's VmHWM: %v (log %s:\n%s)", what, err, p.Log, tail(p.Log))
		}
		peak = max(peak, hwm)
		if peak > limit {
			t.Fatalf("%s: the server's peak RSS is %d MiB, over the Deployment's limit of %d MiB", what, peak>>20, limit>>20)
		}
	}
	wait := func(e *env, name string, ok func(*v1alpha1.Resume) bool) *v1alpha1.Resume {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		var res *v1alpha1.Resume
		if err := rig.Eventually(ctx, func() error {
			watch("waiting for resume " + name)
			if res, _ = e.resume(name); !ok(res) {
				return fmt.Errorf("phase %s reason %s message %q", res.Status.Phase, res.Status.Reason, res.Status.Message)
			}
			return nil
		}); err != nil {
			t.Fatalf("resume %s after 60s: %v (server log %s:\n%s)", name, err, p.Log, tail(p.Log))
		}
		return res
	}

	released := wait(ordinary, "ordinary", isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(t, released, helloReleased)
	refused := wait(bombed, "bombed", func(r *v1alpha1.Resume) bool { return r.Status.Phase.Final() })
	if refused.Status.Phase != v1alpha1.PhaseFailed || !strings.Contains(refused.Status.Message, "workflow bomb") ||
		!strings.Contains(refused.Status.Message, "exceeds resume-trigger's limit") {
		t.Errorf("the bombed Resume ended %s (%s): %q, want Failed naming the workflow and the bound it exceeds", refused.Status.Phase, refused.Status.Reason, refused.Status.Message)
	}
	watch("after both Resumes ended")
	t.Logf("server peak RSS (VmHWM) %d MiB, Deployment limit %d MiB; bombed Resume: %s: %s", peak>>20, limit>>20, refused.Status.Reason, refused.Status.Message)
}

// nodeStatusBomb is the compressedNodes value of issue 18: one node whose inputs.artifacts is a list of
// empty objects, 16 MiB inflated (just under the cap on inflated bytes), gzip and base64.
func nodeStatusBomb(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	const size = 16<<20 - 64
	head, tailJSON := `{"n":{"id":"n","inputs":{"artifacts":[{}`, `]}}}`
	body := []byte(head + strings.Repeat(`,{}`, (size-len(head)-len(tailJSON))/3) + tailJSON)
	if _, err := zw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// deploymentMemoryLimit is the server container's memory limit in manifests/base/deployment.yaml.
func deploymentMemoryLimit(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "manifests", "base", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatalf("manifests/base/deployment.yaml: %v", err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if q, ok := c.Resources.Limits["memory"]; ok {
			return q.Value()
		}
	}
	t.Fatal("manifests/base/deployment.yaml sets no memory limit")
	return 0
}

// startServerBinary builds ./cmd/resume-trigger and runs it as the Deployment does (its memory limit in
// RESUME_TRIGGER_MEMORY_LIMIT, revisits on), serving namespaces with admin rights. It stops with the test.
func startServerBinary(t *testing.T, r *rig.Rig, namespaces []string, memoryLimit int64) *rig.Process {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "resume-trigger")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/resume-trigger")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/resume-trigger: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := rig.WriteKubeconfig(r.AdminConfig(), kubeconfig); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), bin, // stopped by SIGTERM in the cleanup, after t.Context is done
		"--kubeconfig", kubeconfig,
		"--namespaces", strings.Join(namespaces, ","),
		"--grpc-address", "127.0.0.1:0",
		"--metrics-address", "",
		"--revisits", "--revisit-interval", productRevisits.String(),
		"--log-format", "json", "--log-level", "debug",
	)
	cmd.Env = append(os.Environ(), "RESUME_TRIGGER_MEMORY_LIMIT="+strconv.FormatInt(memoryLimit, 10))
	p, err := rig.StartProcess("resume-trigger", filepath.Join(dir, "resume-trigger.log"), cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("resume-trigger log:\n%s", tail(p.Log))
		}
	})
	return p
}

// peakRSS is VmHWM of /proc/<pid>/status, in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// tail is the last 4 KiB of a log file.
func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4<<10 {
		data = data[len(data)-4<<10:]
	}
	return string(data)
}
