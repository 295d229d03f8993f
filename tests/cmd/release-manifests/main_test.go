package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRendersOneInstallYAMLPerOverlay(t *testing.T) {
	out := t.TempDir()
	if err := run("v1.2.3", "registry.example/rt", out); err != nil {
		t.Fatal(err)
	}
	for _, overlay := range []string{"namespace-install", "cluster-install"} {
		b, err := os.ReadFile(filepath.Join(out, "v1.2.3", overlay, "install.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "image: registry.example/rt:v1.2.3") || strings.Contains(s, "ghcr.io/argocontroller/resume-trigger") {
			t.Errorf("%s does not point at registry.example/rt:v1.2.3 only", overlay)
		}
		for _, kind := range []string{"kind: CustomResourceDefinition", "kind: Deployment", "kind: Sensor", "kind: NetworkPolicy", "name: resume-trigger-edit"} {
			if !strings.Contains(s, kind) {
				t.Errorf("%s lacks %q", overlay, kind)
			}
		}
	}
	for _, bad := range []string{"latest", "", "1.2.3", "v1.2", "v0.1.0-3-gabc1234", "v0.1.0-dirty", "v0.1.0-3-gabc1234-dirty"} {
		if err := run(bad, "registry.example/rt", out); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
	if err := run("v1.2.3", "registry.example/rt:latest", out); err == nil {
		t.Error("an image with a tag accepted")
	}
}
