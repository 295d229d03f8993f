package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Argo Workflows v4.1 could not be run here: the Go module proxy these tests build from serves v4.0.5 as
// the newest /v4 release (the matrix of argo_test.go runs that), so no v4.1 workflow-controller can be
// built. What a v4.1 controller writes that v4.0 does not is built below from Argo's documented layout
// (v4.1.2, see /work/shared/docs/argo-workflows.md §1.5 and docs/compatibility.md), with the
// compression libraries Argo itself uses, on the real API server.

// Node status compressed as v4.1 does with WORKFLOW_COMPRESSION_ALGORITHM=zstd or brotli (util/file/
// fileutil.go: base64 of the compressed JSON of status.nodes, with github.com/klauspost/compress/zstd and
// github.com/andybalholm/brotli). The server tells them apart by content as Argo's reader does, and
// releases the step.
func TestArgo41CompressedNodes(t *testing.T) {
	for name, compress := range map[string]func(*testing.T, []byte) []byte{
		"zstd": func(t *testing.T, raw []byte) []byte {
			enc, err := zstd.NewWriter(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = enc.Close() }()
			return enc.EncodeAll(raw, nil)
		},
		"brotli": func(t *testing.T, raw []byte) []byte {
			var buf bytes.Buffer
			w := brotli.NewWriter(&buf)
			if _, err := w.Write(raw); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			wf := fixture.HelloWorld(e.ns)
			raw, err := json.Marshal(wf.Status.Nodes)
			if err != nil {
				t.Fatal(err)
			}
			wf.Status.CompressedNodes = base64.StdEncoding.EncodeToString(compress(t, raw))
			wf.Status.Nodes = nil
			created := e.createWorkflow(wf)
			stored, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Get(rig.Context(t, 10*time.Second), fixture.HelloWorkflow, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Status.Nodes) != 0 || stored.Status.CompressedNodes != wf.Status.CompressedNodes {
				t.Fatalf("stored workflow: %d plain nodes, compressedNodes %d bytes; want only the %s ones (%d bytes)", len(stored.Status.Nodes), len(stored.Status.CompressedNodes), name, len(wf.Status.CompressedNodes))
			}
			full := fixture.HelloWorld(e.ns)
			full.ObjectMeta = *created.ObjectMeta.DeepCopy()
			e.runPod(full, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
			u := e.createResume("release", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
			expectOK(t, e.srv.fireResume(t, u), 1)
			res, _ := e.resume("release")
			expectSucceeded(t, res, helloReleased)
			e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
		})
	}
}

// v4.1's opt-in init-less pod layout (config/config.go; workflow/common/common.go; workflowpod.go): no
// init container, a supervisor container in place of wait, argoexec from an image volume, and every
// container, supervisor included, mounting /var/run/argo. The server releases main; supervisor is Argo's
// own: never a target, and refused when a Resume names it.
func TestArgo41InitlessLayout(t *testing.T) {
	e := setup(t)
	wf := e.createWorkflow(fixture.HelloWorld(e.ns))
	pod := fixture.Pod(wf, wf.Status.Nodes[fixture.HelloNodeID], fixture.HelloPodV2, mainContainer(fixture.PauseAfter)...)
	pod.UID = ""
	fixture.Own(pod, wf)
	argoexec := corev1.VolumeMount{Name: "argoexec", MountPath: "/var/run/argo/bin", ReadOnly: true}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "argoexec", VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: "quay.io/argoproj/argoexec:v4.1.2", PullPolicy: corev1.PullIfNotPresent},
	}})
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, argoexec)
		if c.Name == "wait" {
			c.Name, c.Image = "supervisor", "quay.io/argoproj/argoexec:v4.1.2"
			c.Env = []corev1.EnvVar{{Name: "ARGO_CONTAINER_NAME", Value: "supervisor"}}
		}
	}
	if len(pod.Spec.InitContainers) != 0 {
		t.Fatalf("the layout has no init container, the pod has %d", len(pod.Spec.InitContainers))
	}
	// supervisor also gets the pause env: even then it is never taken for the step's container.
	pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, fixture.PauseAfter)
	fixture.SetRunning(pod)
	e.runPodObject(pod)

	bad := e.createResume("supervisor", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause", "container": "supervisor"})
	f := e.srv.fireResume(t, bad)
	expectCode(t, f, codes.InvalidArgument, `container "supervisor" is Argo's own`)
	if res, _ := e.resume("supervisor"); res.Status.Phase != v1alpha1.PhaseFailed || len(res.Status.Released) != 0 {
		t.Fatalf("resume naming supervisor: phase %s, released %+v; want Failed, nothing released", res.Status.Phase, res.Status.Released)
	}
	e.expectNoCalls()

	u := e.createResume("release", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	expectOK(t, e.srv.fireResume(t, u), 1)
	res, _ := e.resume("release")
	expectSucceeded(t, res, helloReleased)
	e.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
}
