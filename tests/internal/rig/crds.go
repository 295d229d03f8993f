package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
)

const argoWorkflowsModule = "github.com/argoproj/argo-workflows/v3"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WorkflowGVR is the Argo Workflow resource the rig installs.
var WorkflowGVR = schema.GroupVersionResource{Group: workflow.Group, Version: workflow.Version, Resource: workflow.WorkflowPlural}

// crdFiles lists the CRDs the rig installs: Argo's minimal CRDs (from the argo-workflows module this
// module pins: Workflow, WorkflowTemplate, WorkflowTaskResult and the others its controller watches) and
// ours (manifests/base/crd).
func crdFiles(ctx context.Context, root string) ([]string, error) {
	argo, err := moduleDir(ctx, argoWorkflowsModule)
	if err != nil {
		return nil, err
	}
	ours, err := filepath.Glob(filepath.Join(root, "manifests", "base", "crd", "*.yaml"))
	if err != nil || len(ours) == 0 {
		return nil, fmt.Errorf("no CRDs in %s/manifests/base/crd (err %v)", root, err)
	}
	argos, err := filepath.Glob(filepath.Join(argo, "manifests", "base", "crds", "minimal", "argoproj.io_*.yaml"))
	if err != nil || len(argos) == 0 {
		return nil, fmt.Errorf("no CRDs in %s/manifests/base/crds/minimal (err %v)", argo, err)
	}
	return append(argos, ours...), nil
}

// moduleDir finds a module of the build list in the module cache. It asks the go command from the
// working directory, which is inside the tests module when tests run.
func moduleDir(ctx context.Context, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", module)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w: %s", module, err, stderr.String())
	}
	var m struct{ Dir, Version string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	if m.Dir == "" {
		// Listed but not downloaded yet.
		dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+m.Version)
		dl.Stderr = &stderr
		if out, err = dl.Output(); err != nil {
			return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, m.Version, err, stderr.String())
		}
		if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
			return "", fmt.Errorf("go mod download %s@%s gave no directory (%v)", module, m.Version, err)
		}
	}
	return m.Dir, nil
}

func (r *Rig) installCRDs(ctx context.Context, root string) error {
	files, err := crdFiles(ctx, root)
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		objs, err := ReadObjects(f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := r.dynamic.Resource(crdGVR).Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create CRD %s from %s: %w", o.GetName(), f, err)
			}
			names = append(names, o.GetName())
		}
	}
	for _, name := range names {
		if err := r.waitEstablished(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rig) waitEstablished(ctx context.Context, name string) error {
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		crd, err := r.dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not Established: %w", name, err)
	}
	return nil
}

// ReadObjects decodes every YAML (or JSON) document of a file; empty documents are skipped.
func ReadObjects(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s (after %d objects): %w", path, len(out), err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}
