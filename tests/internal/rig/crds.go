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

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	argoWorkflowsModule   = "github.com/argoproj/argo-workflows/v3"
	argoWorkflowsV4Module = "github.com/argoproj/argo-workflows/v4"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WorkflowGVR is the Argo Workflow resource the rig installs.
var WorkflowGVR = schema.GroupVersionResource{Group: workflow.Group, Version: workflow.Version, Resource: workflow.WorkflowPlural}

// ArgoCRDs says which of Argo's CRDs a rig installs.
type ArgoCRDs int

const (
	// MinimalCRDs are the minimal CRDs of argo-workflows v3.7.17 (the module this module pins): no schema,
	// so the API server keeps every field as written. The default; v4.0.5's minimal CRDs differ from them
	// only in descriptions.
	MinimalCRDs ArgoCRDs = iota
	// FullCRDsV4 are the full CRDs of argo-workflows v4.0.5, which v4 installs by default: the whole
	// OpenAPI schema, so the API server validates and prunes what the controller and we write. They are
	// read from the module cache, the version pinned by tests/tools/workflow-controller-v4.
	FullCRDsV4
)

func (c ArgoCRDs) String() string {
	if c == FullCRDsV4 {
		return "full CRDs of " + ArgoV4.Version
	}
	return "minimal CRDs of " + ArgoV3.Version
}

// crdFiles lists the CRDs the rig installs: Argo's (Workflow, WorkflowTemplate, WorkflowTaskResult and
// the others its controller watches; minimal or full per which) and ours (manifests/base/crd).
func crdFiles(ctx context.Context, root string, which ArgoCRDs) ([]string, error) {
	module, from, flavour := argoWorkflowsModule, "", "minimal"
	if which == FullCRDsV4 {
		module, from, flavour = argoWorkflowsV4Module, filepath.Join(root, "tests", "tools", ArgoV4.tool), "full"
	}
	argo, err := moduleDir(ctx, from, module)
	if err != nil {
		return nil, err
	}
	ours, err := filepath.Glob(filepath.Join(root, "manifests", "base", "crd", "*.yaml"))
	if err != nil || len(ours) == 0 {
		return nil, fmt.Errorf("no CRDs in %s/manifests/base/crd (err %v)", root, err)
	}
	argos, err := filepath.Glob(filepath.Join(argo, "manifests", "base", "crds", flavour, "argoproj.io_*.yaml"))
	if err != nil || len(argos) == 0 {
		return nil, fmt.Errorf("no CRDs in %s/manifests/base/crds/%s (err %v)", argo, flavour, err)
	}
	return append(argos, ours...), nil
}

// moduleDir finds a module of the build list of the module in directory dir ("": the working directory,
// which is inside the tests module when tests run) in the module cache, downloading it if need be.
func moduleDir(ctx context.Context, dir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", module)
	cmd.Dir = dir
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
		dl.Dir = dir
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
	files, err := crdFiles(ctx, root, r.opts.ArgoCRDs)
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
