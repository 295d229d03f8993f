package argopin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-workflows/v3/workflow/common"
	argoutil "github.com/argoproj/argo-workflows/v3/workflow/util"

	"github.com/argocontroller/resume-trigger/internal/argo"
)

func TestNamesAreArgos(t *testing.T) {
	pins := map[string]struct{ ours, argos string }{
		"workflow label":             {argo.LabelWorkflow, common.LabelKeyWorkflow},
		"completed label":            {argo.LabelCompleted, common.LabelKeyCompleted},
		"node-id annotation":         {argo.AnnotationNodeID, common.AnnotationKeyNodeID},
		"node-name annotation":       {argo.AnnotationNodeName, common.AnnotationKeyNodeName},
		"pod-name-format annotation": {argo.AnnotationPodNameFormat, common.AnnotationKeyPodNameVersion},
		"/var/run/argo":              {argo.VarRunArgo, common.VarRunArgoPath},
		"init container":             {argo.ContainerInit, common.InitContainerName},
		"wait container":             {argo.ContainerWait, common.WaitContainerName},
	}
	for name, p := range pins {
		if p.ours != p.argos {
			t.Errorf("%s: ours %q, Argo's %q", name, p.ours, p.argos)
		}
	}
	for _, c := range []string{common.InitContainerName, common.WaitContainerName} {
		if !argo.IsArgoContainer(c) {
			t.Errorf("%s is Argo's own container but IsArgoContainer says no", c)
		}
	}
}

// argoSource reads a file of the argo-workflows module the tests module requires.
func argoSource(t *testing.T, rel string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v3").Output()
	if err != nil {
		t.Fatalf("locate argo-workflows: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Argo has no exported constants for these: they are literals in its source, so the source is what we pin.
func TestLiteralsInArgosSource(t *testing.T) {
	emissary := argoSource(t, "cmd/argoexec/commands/emissary.go")
	for _, want := range []string{
		fmt.Sprintf(`os.Getenv(%q) == "true"`, argo.EnvPauseBefore),
		fmt.Sprintf(`os.Getenv(%q) == "true"`, argo.EnvPauseAfter),
		`varRunArgo          = common.VarRunArgoPath`,
		`os.Stat(varRunArgo + "/ctr/" + containerName + "/before")`,
		`os.Stat(varRunArgo + "/ctr/" + containerName + "/after")`,
	} {
		if !strings.Contains(emissary, want) {
			t.Errorf("argoexec's emissary no longer has %s: check how the debug pause works", want)
		}
	}
	if got := argo.MarkerPath("main", "after"); got != "/var/run/argo/ctr/main/after" {
		t.Errorf("MarkerPath = %s", got)
	}
	pod := argoSource(t, "workflow/controller/workflowpod.go")
	if !strings.Contains(pod, fmt.Sprintf("Name: %q", argo.VolumeVarRunArgo)) {
		t.Errorf("the controller's pods no longer have the volume %s", argo.VolumeVarRunArgo)
	}
}

// Our pod-name rule against Argo's GeneratePodName, over names, templates and both formats.
func TestPodNameIsArgos(t *testing.T) {
	long := strings.Repeat("w", 200)
	cases := []struct{ wf, node, template, ref string }{
		{"hello-world", "hello-world[0].pause", "pause", ""},
		{"hello-world", "hello-world", "main", ""},
		{"loop", "loop[0].fan(1:b)", "fan", ""},
		{"dag-x7k2p", "dag-x7k2p.build", "build", ""},
		{"ref", "ref[0].step", "", "shared-step"},
		{"ref", "ref[0].step", "local", "shared-step"},
		{long, long + "[0].step", strings.Repeat("t", 100), ""},
		{"cs", "cs[0].set", "set", ""},
	}
	for _, c := range cases {
		node := argo.Node{ID: c.wf + "-1234", Name: c.node, TemplateName: c.template}
		if c.ref != "" {
			node.TemplateRef = &argo.TemplateRef{Name: "tmpl", Template: c.ref}
		}
		for _, format := range []argoutil.PodNameVersion{argoutil.PodNameV1, argoutil.PodNameV2} {
			wf := &argo.Workflow{ObjectMeta: argo.ObjectMeta{Name: c.wf, Annotations: map[string]string{argo.AnnotationPodNameFormat: format.String()}}}
			// Argo's controller passes the template's name as its reader resolves it: templateRef.template when
			// the node has a templateRef.
			want := argoutil.GeneratePodName(c.wf, c.node, argo.TemplateOf(node), node.ID, format)
			if got := argo.PodName(wf, node); got != want {
				t.Errorf("%s node %s template %q ref %q format %s: ours %s, Argo's %s", c.wf, c.node, c.template, c.ref, format, got, want)
			}
		}
	}
	// A Workflow without the annotation: Argo's default.
	wf := &argo.Workflow{ObjectMeta: argo.ObjectMeta{Name: "plain"}}
	node := argo.Node{ID: "plain-1", Name: "plain[0].s", TemplateName: "s"}
	if got, want := argo.PodName(wf, node), argoutil.GeneratePodName("plain", node.Name, "s", node.ID, argoutil.DefaultPodNameVersion); got != want {
		t.Errorf("no annotation: ours %s, Argo's default %s", got, want)
	}
}
