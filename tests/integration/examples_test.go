package integration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The tests of this file apply what examples/ ships to the real API server: every YAML document there
// is decoded strictly into its Go type, the Workflow examples run on Argo's real workflow-controller
// until their step pauses, and the example's own Resume releases it. examples/monitoring is checked by
// internal/report (the alert's expression against the gauges).

// exampleDocs reads every YAML document under examples/ (but monitoring/ and the kustomizations), keyed by
// path. The documents carry no namespace: each example's kustomization sets it.
func exampleDocs(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*unstructured.Unstructured{}
	dir := filepath.Join(root, "examples")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() && rel == "monitoring" {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() == "kustomization.yaml" || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return nil
		}
		objs, err := rig.ReadObjects(path)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = objs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// example is the single object of kind in examples/<rel>.
func example(t *testing.T, docs map[string][]*unstructured.Unstructured, rel, kind string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range docs[rel] {
		if o.GetKind() == kind {
			if found != nil {
				t.Fatalf("examples/%s has more than one %s", rel, kind)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("examples/%s has no %s", rel, kind)
	}
	return found
}

// strict decodes o into into, refusing unknown fields: an example with a typo fails here.
func strict(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	b, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// Every document decodes strictly into the type of its kind; a kind the tests do not know fails, so a
// new example cannot go untested.
func TestExamplesDecode(t *testing.T) {
	docs := exampleDocs(t)
	if len(docs) == 0 {
		t.Fatal("no YAML under examples/")
	}
	for rel, objs := range docs {
		for _, o := range objs {
			switch o.GetKind() {
			case "Workflow":
				strict(t, o, &wfv1.Workflow{})
			case "WorkflowTemplate":
				strict(t, o, &wfv1.WorkflowTemplate{})
			case "Resume":
				var r v1alpha1.Resume
				strict(t, o, &r)
				if r.Namespace != "" {
					t.Errorf("examples/%s: Resume %s names namespace %q: leave it out, the example's kustomization sets it", rel, r.Name, r.Namespace)
				}
			case "ResourceQuota":
				// Applied by TestExampleResourceQuotaRefusesResumesBeyondIt.
				strict(t, o, &corev1.ResourceQuota{})
			case "MutatingAdmissionPolicy":
				strict(t, o, &admissionregistrationv1.MutatingAdmissionPolicy{})
			case "MutatingAdmissionPolicyBinding":
				strict(t, o, &admissionregistrationv1.MutatingAdmissionPolicyBinding{})
			case "ClusterPolicy":
				// Kyverno's types are not a dependency here, and no Kyverno runs: checked by
				// TestExampleKyvernoPolicyMatchesTheAdmissionPolicy.
				if o.GetAPIVersion() != "kyverno.io/v1" {
					t.Errorf("examples/%s: ClusterPolicy %s apiVersion %s, want kyverno.io/v1", rel, o.GetName(), o.GetAPIVersion())
				}
			default:
				t.Errorf("examples/%s: %s %s: no test applies this kind", rel, o.GetKind(), o.GetName())
			}
		}
	}
}

// Each example's kustomization, rendered as `kubectl apply -k examples/<name>` renders it, puts every
// object into the install's served namespace and keeps the order it lists: the WorkflowTemplate before
// the Workflow that references it, the Resume last (kustomize's default order would sort by kind and put
// the Resume first and the Workflow before its WorkflowTemplate). internal/doccheck checks the kustomization files themselves; this proves kustomize
// does what they say.
func TestExampleKustomizationsRenderInOrder(t *testing.T) {
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	install, err := rig.ReadObjects(filepath.Join(root, rig.NamespaceInstallDir, "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	served, _, _ := unstructured.NestedString(install[0].Object, "data", "namespaces")
	served, _, _ = strings.Cut(served, ",")
	rank := map[string]int{"WorkflowTemplate": 0, "Workflow": 1, "Resume": 2}
	for dir, want := range map[string][]string{
		"templateref":  {"WorkflowTemplate", "Workflow", "Resume"},
		"loop":         {"Workflow", "Resume"},
		"containerset": {"Workflow", "Resume"},
		"debug-policy": {"Workflow", "Resume"},
	} {
		objs := renderUnsorted(t, filepath.Join(root, "examples", dir))
		var kinds []string
		for i, o := range objs {
			kinds = append(kinds, o.GetKind())
			if o.GetNamespace() != served {
				t.Errorf("examples/%s: %s %s goes to namespace %q, want %q (served by the default install)", dir, o.GetKind(), o.GetName(), o.GetNamespace(), served)
			}
			if i > 0 && rank[objs[i-1].GetKind()] > rank[o.GetKind()] {
				t.Errorf("examples/%s: %s %s comes after %s %s", dir, o.GetKind(), o.GetName(), objs[i-1].GetKind(), objs[i-1].GetName())
			}
		}
		if !slices.Equal(kinds, want) {
			t.Errorf("examples/%s renders %v, want %v", dir, kinds, want)
		}
	}
}

// renderUnsorted builds the kustomization in dir as `kustomize build` does by default: kustomize's legacy
// order by kind, unless the kustomization's sortOptions say otherwise (rig.Render keeps the order of the
// files, which would hide a missing sortOptions).
func renderUnsorted(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rig.Objects(resources)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// create makes o in the test's namespace (or the cluster, for a cluster-scoped kind) through the
// dynamic client, as `kubectl -n NS create -f` does.
func (e *env) createExample(o *unstructured.Unstructured) *unstructured.Unstructured {
	e.t.Helper()
	o = o.DeepCopy()
	ctx := rig.Context(e.t, 10*time.Second)
	switch o.GetKind() {
	case "Workflow", "WorkflowTemplate":
		var err error
		if o.GetKind() == "Workflow" {
			var wf wfv1.Workflow
			strict(e.t, o, &wf)
			_, err = e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(ctx, &wf, metav1.CreateOptions{})
		} else {
			var wft wfv1.WorkflowTemplate
			strict(e.t, o, &wft)
			_, err = e.wfc.ArgoprojV1alpha1().WorkflowTemplates(e.ns).Create(ctx, &wft, metav1.CreateOptions{})
		}
		if err != nil {
			e.t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		return o
	case "Resume":
		o.SetNamespace(e.ns)
		u, err := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns).Create(ctx, o, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatalf("create Resume %s: %v", o.GetName(), err)
		}
		return u
	}
	e.t.Fatalf("createExample: kind %s", o.GetKind())
	return nil
}

// releaseExample creates the example's Resume, fires it at the server as the Sensor would and requires
// it Succeeded, having released exactly the pods given (container, stage).
func (e *env) releaseExample(o *unstructured.Unstructured, container string, stage v1alpha1.Stage, pods ...corev1.Pod) {
	e.t.Helper()
	u := e.createExample(o)
	expectOK(e.t, e.srv.fireResume(e.t, u), len(pods))
	res, _ := e.resume(u.GetName())
	var want []v1alpha1.ReleasedTarget
	for _, p := range pods {
		want = append(want, v1alpha1.ReleasedTarget{Node: p.Annotations["workflows.argoproj.io/node-id"], Pod: p.Name, Container: container, Stage: stage})
	}
	expectSucceeded(e.t, res, want...)
}

// The templateRef, loop and containerSet examples, submitted as shipped to Argo's controller in one
// namespace; each Resume of examples/ releases what its comment says.
func TestExampleWorkflowsReleasedByTheirResumes(t *testing.T) {
	docs := exampleDocs(t)
	e := setupArgo(t, cellV3PodNamesV2, rig.ControllerOptions{})
	e.createExample(example(t, docs, "templateref/workflowtemplate.yaml", "WorkflowTemplate"))
	for _, f := range []string{"templateref/workflow.yaml", "loop/workflow.yaml", "containerset/workflow.yaml"} {
		e.createExample(example(t, docs, f, "Workflow"))
	}

	t.Run("templateRef", func(t *testing.T) {
		e := e.with(t)
		paused := e.waitPaused("templateref-demo", "main", 1)
		e.releaseExample(example(t, docs, "templateref/resume.yaml", "Resume"), "main", v1alpha1.StageAfter, paused...)
		e.waitSucceeded("templateref-demo")
	})
	t.Run("loop item by nodeName", func(t *testing.T) {
		e := e.with(t)
		paused := e.waitPaused("loop-demo", "main", 3)
		item, pod := e.pausedItem("loop-demo", "shard(1:b)", paused)
		e.releaseExample(example(t, docs, "loop/resume.yaml", "Resume"), "main", v1alpha1.StageAfter, pod)
		e.itemGoesOn("loop-demo", item, pod, "main", 2)
	})
	t.Run("containerSet before", func(t *testing.T) {
		e := e.with(t)
		paused := e.waitPaused("containerset-demo", "migrate", 1)
		e.releaseExample(example(t, docs, "containerset/resume.yaml", "Resume"), "migrate", v1alpha1.StageBefore, paused...)
		e.waitSucceeded("containerset-demo")
	})
}

// with is e for a subtest: failures and waits are t's.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// examples/webhook: request.json is the body of the README's curl, and the names its commands use are
// the shipped EventSource's and Secret's. The body, sent as the webhook trigger sends it, releases the
// README's workflow (in the test's namespace instead of argo).
func TestExampleWebhookRequestReleasesTheReadmeWorkflow(t *testing.T) {
	root, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "examples/webhook/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	es, err := rig.ReadObjects(filepath.Join(root, "eventsource/webhook/webhook.yaml"))
	if err != nil || len(es) != 1 {
		t.Fatalf("eventsource/webhook/webhook.yaml: %v (%d objects)", err, len(es))
	}
	events, _, _ := unstructured.NestedMap(es[0].Object, "spec", "webhook")
	if len(events) != 1 {
		t.Fatalf("eventsource/webhook/webhook.yaml has %d webhook events, want 1", len(events))
	}
	for _, ev := range events {
		m := ev.(map[string]any)
		port, endpoint := m["port"].(string), m["endpoint"].(string)
		secret, _, _ := unstructured.NestedString(m, "authSecret", "name")
		key, _, _ := unstructured.NestedString(m, "authSecret", "key")
		for _, want := range []string{
			"get secret " + secret + " -o jsonpath='{.data." + key + "}'",
			"port-forward svc/" + es[0].GetName() + "-eventsource-svc " + port + ":" + port,
			"http://127.0.0.1:" + port + endpoint,
			"--data @examples/webhook/request.json",
		} {
			if !strings.Contains(string(readme), want) {
				t.Errorf("examples/webhook/README.md does not say %q", want)
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "examples/webhook/request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("examples/webhook/request.json: %v", err)
	}
	readmeWF, err := rig.ReadmeWorkflow()
	if err != nil {
		t.Fatal(err)
	}
	if body["workflow"] != readmeWF.Name || body["namespace"] != readmeWF.Namespace {
		t.Fatalf("request.json names %s/%s, the README's Workflow is %s/%s", body["namespace"], body["workflow"], readmeWF.Namespace, readmeWF.Name)
	}
	e := setupArgo(t, cellV3PodNamesV2, rig.ControllerOptions{})
	wf := readmeWF.DeepCopy()
	wf.Namespace = e.ns
	if _, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(rig.Context(t, 10*time.Second), wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	paused := e.waitPaused(wf.Name, "main", 1)
	body["namespace"] = e.ns
	expectOK(t, e.srv.fireDirect(t, body), 1)
	e.expectCalls(rig.Call{Pod: paused[0].Name, Container: "main", Argv: []string{"touch", "/var/run/argo/ctr/main/after"}, Outcome: "exit 0"})
	e.waitSucceeded(wf.Name)
}

// examples/debug-policy on the real API server (v1.37 serves admissionregistration.k8s.io/v1
// MutatingAdmissionPolicy by default): the labelled example Workflow gets ARGO_DEBUG_PAUSE_AFTER on its
// step's container and pauses; the same Workflow without the label runs through untouched; the
// example's Resume releases the paused one.
func TestExampleDebugPolicyPausesLabelledWorkflowsOnly(t *testing.T) {
	docs := exampleDocs(t)
	policy := example(t, docs, "debug-policy/admission-policy/mutatingadmissionpolicy.yaml", "MutatingAdmissionPolicy")
	binding := example(t, docs, "debug-policy/admission-policy/mutatingadmissionpolicy.yaml", "MutatingAdmissionPolicyBinding")
	var map1 admissionregistrationv1.MutatingAdmissionPolicy
	var bind admissionregistrationv1.MutatingAdmissionPolicyBinding
	strict(t, policy, &map1)
	strict(t, binding, &bind)
	e := setupArgo(t, cellV3PodNamesV2, rig.ControllerOptions{})
	// Cluster-scoped, so for this test only: the binding is narrowed to the test's namespace.
	bind.Spec.MatchResources = &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.ns},
	}}
	suffix := "-" + e.ns
	map1.Name += suffix
	bind.Name += suffix
	bind.Spec.PolicyName = map1.Name
	adm := e.r.Client().AdmissionregistrationV1()
	ctx := rig.Context(t, 10*time.Second)
	if _, err := adm.MutatingAdmissionPolicies().Create(ctx, &map1, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the example's MutatingAdmissionPolicy: %v", err)
	}
	t.Cleanup(func() {
		_ = adm.MutatingAdmissionPolicies().Delete(rig.Context(t, 10*time.Second), map1.Name, metav1.DeleteOptions{})
	})
	if _, err := adm.MutatingAdmissionPolicyBindings().Create(ctx, &bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the example's MutatingAdmissionPolicyBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = adm.MutatingAdmissionPolicyBindings().Delete(rig.Context(t, 10*time.Second), bind.Name, metav1.DeleteOptions{})
	})

	var labelled wfv1.Workflow
	strict(t, example(t, docs, "debug-policy/workflow.yaml", "Workflow"), &labelled)
	// The API server takes up a new policy through an informer: wait, with server-side dry runs of the
	// labelled Workflow, until it is in force.
	eventually(t, 30*time.Second, "the MutatingAdmissionPolicy changes a labelled Workflow", func() error {
		got, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(rig.Context(t, 10*time.Second), labelled.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("dry run of the labelled Workflow: %v", err)
		}
		if got.Spec.TemplateDefaults == nil {
			return errors.New("the dry run has no templateDefaults")
		}
		return nil
	})

	unlabelled := labelled.DeepCopy()
	unlabelled.Name += "-unlabelled"
	unlabelled.Labels = nil

	// What the policy makes of templateDefaults, by server-side dry runs.
	pause := corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_AFTER", Value: "true"}
	own := corev1.EnvVar{Name: "OWN", Value: "1"}
	for name, tc := range map[string]struct {
		wf  *wfv1.Workflow
		in  *wfv1.Template
		exp []corev1.EnvVar
	}{
		"labelled, no templateDefaults":          {wf: &labelled, exp: []corev1.EnvVar{pause}},
		"labelled, templateDefaults of its own":  {wf: &labelled, in: &wfv1.Template{Timeout: "1h"}, exp: []corev1.EnvVar{pause}},
		"labelled, an env of its own":            {wf: &labelled, in: &wfv1.Template{Container: &corev1.Container{Env: []corev1.EnvVar{own}}}, exp: []corev1.EnvVar{own, pause}},
		"labelled, its own pause setting stands": {wf: &labelled, in: &wfv1.Template{Container: &corev1.Container{Env: []corev1.EnvVar{{Name: pause.Name, Value: "false"}}}}, exp: []corev1.EnvVar{{Name: pause.Name, Value: "false"}}},
		"unlabelled":                             {wf: unlabelled},
	} {
		t.Run(name, func(t *testing.T) {
			wf := tc.wf.DeepCopy()
			wf.Spec.TemplateDefaults = tc.in.DeepCopy()
			got, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(rig.Context(t, 10*time.Second), wf, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			var env []corev1.EnvVar
			if d := got.Spec.TemplateDefaults; d != nil && d.Container != nil {
				env = d.Container.Env
			}
			if !slices.Equal(env, tc.exp) {
				t.Errorf("templateDefaults container env = %v, want %v", env, tc.exp)
			}
			if tc.in != nil && tc.in.Timeout != "" && got.Spec.TemplateDefaults.Timeout != tc.in.Timeout {
				t.Errorf("templateDefaults.timeout %q lost", tc.in.Timeout)
			}
		})
	}

	for _, wf := range []*wfv1.Workflow{&labelled, unlabelled} {
		if _, err := e.wfc.ArgoprojV1alpha1().Workflows(e.ns).Create(rig.Context(t, 10*time.Second), wf, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create workflow %s: %v", wf.Name, err)
		}
	}
	done := e.waitSucceeded(unlabelled.Name)
	if done.Spec.TemplateDefaults != nil {
		t.Errorf("the unlabelled Workflow was changed: templateDefaults %+v", done.Spec.TemplateDefaults)
	}
	pods, err := e.r.WaitPods(rig.Context(t, 10*time.Second), e.ns, unlabelled.Name, func(p []corev1.Pod) bool { return len(p) == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if env := pauseEnv(pods[0], "main"); len(env) != 0 {
		t.Errorf("pod %s of the unlabelled Workflow has %v", pods[0].Name, env)
	}

	paused := e.waitPaused(labelled.Name, "main", 1)
	if env := pauseEnv(paused[0], "main"); !slices.Equal(env, []string{"ARGO_DEBUG_PAUSE_AFTER=true"}) {
		t.Fatalf("pod %s of the labelled Workflow has pause env %v, want ARGO_DEBUG_PAUSE_AFTER=true", paused[0].Name, env)
	}
	e.releaseExample(example(t, docs, "debug-policy/resume.yaml", "Resume"), "main", v1alpha1.StageAfter, paused...)
	e.waitSucceeded(labelled.Name)
}

// pauseEnv lists the ARGO_DEBUG_PAUSE_* env of a container of pod, as NAME=value.
func pauseEnv(pod corev1.Pod, container string) []string {
	var out []string
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, ev := range c.Env {
			if strings.HasPrefix(ev.Name, "ARGO_DEBUG_PAUSE_") {
				out = append(out, ev.Name+"="+ev.Value)
			}
		}
	}
	sort.Strings(out)
	return out
}

// No Kyverno runs here, so the ClusterPolicy is checked against the MutatingAdmissionPolicy it mirrors:
// it matches Workflow CREATEs by the same label, and its patch, merged into the example Workflow by
// Kubernetes' strategic merge on Argo's own Workflow type, adds the same env to templateDefaults.
func TestExampleKyvernoPolicyMatchesTheAdmissionPolicy(t *testing.T) {
	docs := exampleDocs(t)
	kp := example(t, docs, "debug-policy/kyverno/clusterpolicy.yaml", "ClusterPolicy")
	var map1 admissionregistrationv1.MutatingAdmissionPolicy
	strict(t, example(t, docs, "debug-policy/admission-policy/mutatingadmissionpolicy.yaml", "MutatingAdmissionPolicy"), &map1)

	rules, _, _ := unstructured.NestedSlice(kp.Object, "spec", "rules")
	if len(rules) != 1 {
		t.Fatalf("ClusterPolicy has %d rules, want 1", len(rules))
	}
	rule := rules[0].(map[string]any)
	matches, _, _ := unstructured.NestedSlice(rule, "match", "any")
	if len(matches) != 1 {
		t.Fatalf("ClusterPolicy match.any has %d entries, want 1", len(matches))
	}
	res := matches[0].(map[string]any)["resources"].(map[string]any)
	kinds, _, _ := unstructured.NestedStringSlice(res, "kinds")
	ops, _, _ := unstructured.NestedStringSlice(res, "operations")
	labels, _, _ := unstructured.NestedStringMap(res, "selector", "matchLabels")
	if !slices.Equal(kinds, []string{"argoproj.io/v1alpha1/Workflow"}) || !slices.Equal(ops, []string{"CREATE"}) {
		t.Errorf("ClusterPolicy matches kinds %v operations %v, want Workflow CREATE", kinds, ops)
	}
	if want := map1.Spec.MatchConstraints.ObjectSelector.MatchLabels; !maps.Equal(labels, want) {
		t.Errorf("ClusterPolicy selects %v, the MutatingAdmissionPolicy %v", labels, want)
	}

	patch, _, _ := unstructured.NestedMap(rule, "mutate", "patchStrategicMerge")
	var wf wfv1.Workflow
	strict(t, example(t, docs, "debug-policy/workflow.yaml", "Workflow"), &wf)
	orig, _ := json.Marshal(wf)
	p, _ := json.Marshal(patch)
	merged, err := strategicpatch.StrategicMergePatch(orig, p, wfv1.Workflow{})
	if err != nil {
		t.Fatalf("the ClusterPolicy's patch does not merge into a Workflow: %v", err)
	}
	var out wfv1.Workflow
	if err := json.Unmarshal(merged, &out); err != nil {
		t.Fatal(err)
	}
	if d := out.Spec.TemplateDefaults; d == nil || d.Container == nil || len(d.Container.Env) != 1 ||
		d.Container.Env[0] != (corev1.EnvVar{Name: "ARGO_DEBUG_PAUSE_AFTER", Value: "true"}) {
		t.Errorf("the ClusterPolicy makes templateDefaults %+v, want container env ARGO_DEBUG_PAUSE_AFTER=true", out.Spec.TemplateDefaults)
	}
}
