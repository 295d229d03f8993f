package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The release workflow makes the release with make release, pushes the image layout make release wrote
// (and checks the pushed digest against it), and uploads dist/ as it is, nothing else.
func TestWorkflowPublishesDist(t *testing.T) {
	repo, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repo, ".github/workflows/release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string `json:"name"`
				Uses string `json:"uses"`
				Run  string `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, job := range wf.Jobs {
		for _, s := range job.Steps {
			runs = append(runs, s.Run)
		}
	}
	all := strings.Join(runs, "\n")
	for _, want := range []string{
		"make release VERSION=",
		"tar -xf dist/" + imageTarball,
		"crane push",
		"cat dist/" + imageDigest,
		`gh release create "$TAG" --verify-tag --generate-notes dist/*`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the release workflow does not run %q", want)
		}
	}
	if strings.Contains(all, "docker") || strings.Count(all, "gh release") != 1 {
		t.Errorf("the release workflow builds with Docker or uploads more than once:\n%s", all)
	}
}
