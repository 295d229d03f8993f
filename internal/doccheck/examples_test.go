package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// kindsOf lists the kinds of the YAML documents of a file.
func kindsOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		var o struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(part), &o); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.Kind != "" {
			kinds = append(kinds, o.Kind)
		}
	}
	return kinds
}

// servedNamespace is the first namespace the default namespace-install serves.
func servedNamespace(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "manifests", "namespace-install", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n---")
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(first), &cm); err != nil {
		t.Fatal(err)
	}
	ns, _, _ := strings.Cut(cm.Data["namespaces"], ",")
	if ns == "" {
		t.Fatal("manifests/namespace-install/install.yaml serves no namespace")
	}
	return ns
}

var rank = map[string]int{"WorkflowTemplate": 0, "Workflow": 1, "Resume": 2}

// The examples the README lists apply as `kubectl apply -k examples/<name>` says: into a namespace the
// default install serves, every file of the folder, a WorkflowTemplate before the Workflow that uses it
// and the Resume last, in that order (fifo; kustomize would sort by kind otherwise). No folder holds both
// debug-pause policies, so one `kubectl apply -f` never installs both. Images are pinned by tag. (The
// integration tier renders the kustomizations with kustomize and runs the examples on Argo's controller.)
func TestExamplesLayout(t *testing.T) {
	served := servedNamespace(t)
	readme, err := os.ReadFile(filepath.Join(root, "examples", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(filepath.Join(root, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range dirs {
		if !e.IsDir() {
			continue
		}
		if !strings.Contains(string(readme), "]("+e.Name()+")") {
			t.Errorf("examples/README.md does not list examples/%s", e.Name())
		}
	}
	image := regexp.MustCompile(`(?m)^\s*-?\s*image:\s*"?([^"\s]+)`)
	err = filepath.WalkDir(filepath.Join(root, "examples"), func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, dir)
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		var objects []string // files holding objects, not the kustomization
		policies := map[string]bool{}
		namespaced := false
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			objects = append(objects, filepath.Base(f))
			for _, k := range kindsOf(t, f) {
				switch k {
				case "MutatingAdmissionPolicy", "ClusterPolicy":
					policies[k] = true
				case "Workflow", "WorkflowTemplate", "Resume":
					namespaced = true
				}
			}
			b, _ := os.ReadFile(f)
			for _, m := range image.FindAllStringSubmatch(string(b), -1) {
				ref := m[1]
				if i := strings.LastIndex(ref, "/"); i >= 0 {
					ref = ref[i+1:]
				}
				if _, tag, ok := strings.Cut(ref, ":"); !ok || tag == "latest" {
					t.Errorf("%s: image %s is not pinned by a tag", f, m[1])
				}
			}
		}
		if len(policies) > 1 {
			t.Errorf("%s holds both a MutatingAdmissionPolicy and a Kyverno ClusterPolicy: `kubectl apply -f %s` would install both", rel, rel)
		}
		if !namespaced {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Errorf("%s holds Workflows or Resumes but no kustomization.yaml to put them into a served namespace in order", rel)
			return nil
		}
		var k fixture.Kustomization
		if err := yaml.UnmarshalStrict(b, &k); err != nil {
			t.Errorf("%s/kustomization.yaml: %v", rel, err)
			return nil
		}
		if k.Namespace != served {
			t.Errorf("%s/kustomization.yaml: namespace %q, want %q (served by the default install)", rel, k.Namespace, served)
		}
		if k.SortOptions.Order != "fifo" {
			t.Errorf("%s/kustomization.yaml: sortOptions.order %q, want fifo (kustomize's legacy order puts a Workflow before its WorkflowTemplate)", rel, k.SortOptions.Order)
		}
		if a, b := slices.Sorted(slices.Values(k.Resources)), slices.Sorted(slices.Values(objects)); !slices.Equal(a, b) {
			t.Errorf("%s/kustomization.yaml lists %v, the folder holds %v", rel, a, b)
		}
		last, lastFile := -1, ""
		for _, r := range k.Resources {
			for _, kind := range kindsOf(t, filepath.Join(dir, r)) {
				n, ok := rank[kind]
				if !ok {
					continue
				}
				if n < last {
					t.Errorf("%s/kustomization.yaml: %s (%s) comes after %s", rel, r, kind, lastFile)
				}
				last, lastFile = n, r
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
