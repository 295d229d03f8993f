package argopin

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/internal/argo"
)

// leanToArgo names, for each of our lean types, the Argo type (package v1alpha1) whose JSON it reads.
var leanToArgo = map[reflect.Type]string{
	reflect.TypeFor[argo.Workflow]():            "Workflow",
	reflect.TypeFor[argo.WorkflowSpec]():        "WorkflowSpec",
	reflect.TypeFor[argo.Template]():            "Template",
	reflect.TypeFor[argo.WorkflowTemplateRef](): "WorkflowTemplateRef",
	reflect.TypeFor[argo.WorkflowStatus]():      "WorkflowStatus",
	reflect.TypeFor[argo.Node]():                "NodeStatus",
	reflect.TypeFor[argo.TemplateRef]():         "TemplateRef",
	reflect.TypeFor[argo.NodeFlag]():            "NodeFlag",
}

// A Workflow with every field resume-trigger reads set, written by Argo's own types (v3.7), reads back
// the same through the lean decoder: every lean field is filled, with Argo's value.
func TestLeanWorkflowReadsArgosJSON(t *testing.T) {
	yes, no := true, false
	node := func(id string) wfv1.NodeStatus {
		return wfv1.NodeStatus{
			ID: id, Name: "wf[0]." + id, DisplayName: id, Type: wfv1.NodeTypeRetry, TemplateName: "t-" + id,
			TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "ref-" + id, ClusterScope: true},
			Phase:       wfv1.NodeRunning, BoundaryID: "b-" + id, Children: []string{id + "(0)"}, Daemoned: &yes,
			NodeFlag: &wfv1.NodeFlag{Hooked: true, Retried: true}, TaskResultSynced: &yes,
			Message: "not read", Inputs: &wfv1.Inputs{Artifacts: []wfv1.Artifact{{Name: "not read"}}},
		}
	}
	// A step calling into a WorkflowTemplate: the lean decoder keeps only that the template calls out.
	calls := []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{Name: "s", TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "ref"}}}}}
	spec := wfv1.WorkflowSpec{
		Entrypoint:          "main",
		Templates:           []wfv1.Template{{Name: "main", Container: &corev1.Container{Image: "not read"}, Steps: calls}},
		WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: "wt", ClusterScope: true},
		Hooks:               wfv1.LifecycleHooks{"exit": {TemplateRef: &wfv1.TemplateRef{Name: "lib", Template: "on-exit"}}},
	}
	stored := spec.DeepCopy()
	stored.Templates[0].Name = "stored-main"
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{
			Name: "wf", Namespace: "ns", UID: "uid-1", Annotations: map[string]string{argo.AnnotationPodNameFormat: "v2"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "workflow-controller", FieldsV1: metav1.NewFieldsV1(`{"f:status":{}}`)}},
		},
		Spec: spec,
		Status: wfv1.WorkflowStatus{
			Phase:                    wfv1.WorkflowRunning,
			Nodes:                    wfv1.Nodes{"n1": node("n1"), "n2": node("n2")},
			CompressedNodes:          "H4sI",
			OffloadNodeStatusVersion: "fnv:1",
			StoredTemplates:          map[string]wfv1.Template{"namespaced/lib/ref": {Name: "ref", Steps: calls}},
			StoredWorkflowSpec:       stored,
		},
	}
	data, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := argo.DecodeWorkflow(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if empty := zeroFields(reflect.ValueOf(*got), "Workflow"); len(empty) > 0 {
		t.Errorf("lean fields not filled from Argo's JSON: %s", strings.Join(empty, ", "))
	}
	// Every lean value equals Argo's, compared through JSON (the lean JSON is Argo's, minus what it
	// leaves out).
	for name, pair := range map[string][2]any{
		"metadata":        {got.ObjectMeta, argo.ObjectMeta{Name: wf.Name, Namespace: wf.Namespace, UID: wf.UID, Annotations: wf.Annotations}},
		"spec":            {got.Spec, spec},
		"stored":          {got.Status.StoredWorkflowSpec, stored},
		"storedTemplates": {got.Status.StoredTemplates, wf.Status.StoredTemplates},
		"nodes":           {got.Status.Nodes, wf.Status.Nodes},
		"status": {[]any{got.Status.Phase, got.Status.CompressedNodes, got.Status.OffloadNodeStatusVersion},
			[]any{wf.Status.Phase, wf.Status.CompressedNodes, wf.Status.OffloadNodeStatusVersion}},
	} {
		if lean, full := leanJSON(t, pair[0]), leanJSON(t, pair[1]); !subset(lean, full) {
			t.Errorf("%s: lean %s is not Argo's %s", name, lean, full)
		}
	}
	// The rules Argo states as methods agree with ours.
	for id, n := range wf.Status.Nodes {
		for _, phase := range []wfv1.NodePhase{"", wfv1.NodePending, wfv1.NodeRunning, wfv1.NodeSucceeded, wfv1.NodeFailed, wfv1.NodeSkipped} {
			for _, synced := range []*bool{nil, &yes, &no} {
				for _, daemoned := range []*bool{nil, &yes, &no} {
					n.Phase, n.TaskResultSynced, n.Daemoned = phase, synced, daemoned
					l := got.Status.Nodes[id]
					l.Phase, l.TaskResultSynced, l.Daemoned = phase, synced, daemoned
					if l.Fulfilled() != n.Fulfilled() || l.IsDaemoned() != n.IsDaemoned() {
						t.Errorf("node %s phase %q synced %v daemoned %v: Fulfilled %v, Argo's %v", id, phase, synced, daemoned, l.Fulfilled(), n.Fulfilled())
					}
				}
			}
		}
	}
	for _, phase := range []wfv1.WorkflowPhase{"", wfv1.WorkflowPending, wfv1.WorkflowRunning, wfv1.WorkflowSucceeded, wfv1.WorkflowFailed, wfv1.WorkflowError} {
		if l, a := (argo.WorkflowStatus{Phase: phase}).Fulfilled(), (wfv1.WorkflowStatus{Phase: phase}).Fulfilled(); l != a {
			t.Errorf("workflow phase %q: Fulfilled %v, Argo's %v", phase, l, a)
		}
	}
}

// Every JSON name of the lean types is a field of Argo's type of the same meaning, in v3.7 (its Go types)
// and in v4.0 (its source, as pinned by the v4 workflow-controller tool module).
func TestLeanFieldNamesAreArgos(t *testing.T) {
	t.Run("v3", func(t *testing.T) {
		argoTypes := map[string]reflect.Type{
			"Workflow": reflect.TypeFor[wfv1.Workflow](), "WorkflowSpec": reflect.TypeFor[wfv1.WorkflowSpec](),
			"Template": reflect.TypeFor[wfv1.Template](), "WorkflowTemplateRef": reflect.TypeFor[wfv1.WorkflowTemplateRef](),
			"WorkflowStatus": reflect.TypeFor[wfv1.WorkflowStatus](), "NodeStatus": reflect.TypeFor[wfv1.NodeStatus](),
			"TemplateRef": reflect.TypeFor[wfv1.TemplateRef](), "NodeFlag": reflect.TypeFor[wfv1.NodeFlag](),
		}
		names := map[string]map[string]bool{}
		for name, typ := range argoTypes {
			names[name] = reflectNames(typ)
		}
		checkNames(t, names)
	})
	t.Run("v4", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v4")
		cmd.Dir = filepath.Join("..", "tools", "workflow-controller-v4")
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			// The module is in the cache once its tool is built or downloaded (go mod download, in that directory).
			t.Fatalf("find argo-workflows v4's source (go list -m in %s): %v %s", cmd.Dir, err, exitStderr(err))
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "apis", "workflow", "v1alpha1")
		names, err := sourceNames(dir)
		if err != nil {
			t.Fatalf("read v4 source %s: %v", dir, err)
		}
		checkNames(t, names)
	})
	t.Run("metadata", func(t *testing.T) {
		meta := reflectNames(reflect.TypeFor[metav1.ObjectMeta]())
		for _, f := range jsonFields(reflect.TypeFor[argo.ObjectMeta]()) {
			if !meta[f.name] {
				t.Errorf("argo.ObjectMeta field %s is not in Kubernetes' ObjectMeta", f.name)
			}
		}
	})
}

func exitStderr(err error) string {
	if e := (*exec.ExitError)(nil); errors.As(err, &e) {
		return string(e.Stderr)
	}
	return ""
}

// checkNames checks that each lean type's JSON names are among those of its Argo type.
func checkNames(t *testing.T, argoNames map[string]map[string]bool) {
	t.Helper()
	for lean, argoType := range leanToArgo {
		names, ok := argoNames[argoType]
		if !ok || len(names) == 0 {
			t.Errorf("Argo has no type %s", argoType)
			continue
		}
		for _, f := range jsonFields(lean) {
			if !names[f.name] {
				t.Errorf("%s field %s (json %q) is not a field of Argo's %s", lean.Name(), f.goName, f.name, argoType)
			}
		}
	}
}

type jsonField struct{ name, goName string }

func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, jsonField{name: name, goName: f.Name})
	}
	return out
}

func reflectNames(typ reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" && f.Anonymous {
			for n := range reflectNames(f.Type) {
				names[n] = true
			}
			continue
		}
		names[name] = true
	}
	return names
}

// sourceNames reads the JSON names of the struct types declared in the Go files of dir.
func sourceNames(dir string) (map[string]map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := spec.Type.(*ast.StructType)
			if !ok {
				return true
			}
			names := map[string]bool{}
			for _, field := range st.Fields.List {
				if field.Tag == nil {
					continue
				}
				tag, err := strconv.Unquote(field.Tag.Value)
				if err != nil {
					continue
				}
				name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
				names[name] = true
			}
			out[spec.Name.Name] = names
			return true
		})
	}
	return out, nil
}

// zeroFields lists the fields of v (recursively, through pointers, slices and maps) that are zero.
func zeroFields(v reflect.Value, path string) []string {
	// Every other kind is a leaf, judged by IsZero below.
	//exhaustive:ignore
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Kind() == reflect.Slice {
			return zeroFields(v.Index(0), path+"[0]")
		}
		iter := v.MapRange()
		iter.Next()
		return zeroFields(iter.Value(), path+"[]")
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

func leanJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// subset reports whether every value in lean is in full at the same place.
func subset(lean, full any) bool {
	switch l := lean.(type) {
	case map[string]any:
		f, ok := full.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range l {
			if !subset(v, f[k]) {
				return false
			}
		}
		return true
	case []any:
		f, ok := full.([]any)
		if !ok || len(f) != len(l) {
			return false
		}
		for i := range l {
			if !subset(l[i], f[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(lean, full)
}
