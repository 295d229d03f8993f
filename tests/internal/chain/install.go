package chain

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// DefaultInstallNamespace is the install namespace of the shipped overlays.
const DefaultInstallNamespace = "argo-resume"

// install is what the chain took from one rendering of a shipped overlay.
type install struct {
	overlay string
	values  rig.InstallValues
	objects []*unstructured.Unstructured
	// sensor, resource and webhook are the argo-events objects, as rendered.
	sensor, resource, webhook object
	// serverSA, resourceSA are the ServiceAccounts the server's Deployment and the resource EventSource
	// run as.
	serverSA, resourceSA string
	// serverArgs and serverEnv are the Deployment's container args, with $(VAR) expanded from its env as
	// the kubelet does, and the env a process needs (POD_NAMESPACE).
	serverArgs []string
	serverEnv  []string
}

// Renderer renders an install for what a user sets (install namespace, served and webhook namespaces,
// Components): another way in than a kustomize overlay, such as the Helm chart.
type Renderer func(root string, values rig.InstallValues) ([]*unstructured.Unstructured, error)

// renderInstall renders overlay with values (rig.RenderInstall, the edit a user makes to install.yaml),
// or with render when set, and picks out what the chain runs.
func renderInstall(root, overlay string, values rig.InstallValues, render Renderer) (*install, error) {
	if render == nil {
		render = func(root string, values rig.InstallValues) ([]*unstructured.Unstructured, error) {
			return rig.RenderInstall(root, overlay, values)
		}
	}
	objs, err := render(root, values)
	if err != nil {
		return nil, err
	}
	in := &install{overlay: overlay, values: values, objects: objs}
	for _, u := range objs {
		switch kind, name := u.GetKind(), u.GetName(); {
		case kind == "Sensor":
			if in.sensor != nil {
				return nil, fmt.Errorf("%s renders more than one Sensor", overlay)
			}
			in.sensor = object(u.Object)
		case kind == "EventSource" && hasKey(u, "spec", "resource"):
			in.resource = object(u.Object)
			in.resourceSA, _, _ = unstructured.NestedString(u.Object, "spec", "template", "serviceAccountName")
		case kind == "EventSource" && hasKey(u, "spec", "webhook"):
			in.webhook = object(u.Object)
		case kind == "Deployment" && name == "resume-trigger":
			if err := in.server(u); err != nil {
				return nil, fmt.Errorf("%s: Deployment %s: %w", overlay, name, err)
			}
		}
	}
	switch {
	case in.sensor == nil || in.resource == nil || in.webhook == nil:
		return nil, fmt.Errorf("%s does not render the Sensor and both EventSources", overlay)
	case in.serverSA == "" || in.resourceSA == "":
		return nil, fmt.Errorf("%s: no ServiceAccount for the server (%q) or the resource EventSource (%q)", overlay, in.serverSA, in.resourceSA)
	}
	return in, nil
}

func hasKey(u *unstructured.Unstructured, fields ...string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(u.Object, fields...)
	return ok
}

// server reads the server's command line and identity from the rendered Deployment. The flags the chain
// sets itself (addresses, kubeconfig) are dropped, and so is --leader-elect: the chain runs one replica,
// and a Lease left by a killed server would hold its restart for the lease duration.
func (in *install) server(u *unstructured.Unstructured) error {
	in.serverSA, _, _ = unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		return fmt.Errorf("%d containers, the chain runs one", len(containers))
	}
	c, _ := containers[0].(map[string]any)
	env := map[string]string{"POD_NAMESPACE": u.GetNamespace()}
	envList, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range envList {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if v, ok := m["value"].(string); ok {
			env[name] = v
		}
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, a := range args {
		flagName, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch flagName {
		case "grpc-address", "metrics-address", "kubeconfig", "leader-elect":
			continue
		}
		in.serverArgs = append(in.serverArgs, expand(a, env))
	}
	in.serverEnv = []string{"POD_NAMESPACE=" + u.GetNamespace()}
	return nil
}

// expand replaces $(NAME) in s with env[NAME], as the kubelet does for a container's args; an unknown
// name stays as written, as there.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], ")")
		if j < 0 {
			break
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		if v, ok := env[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// rbacKinds are the rendered kinds the chain applies to its API server: the identities and rights of the
// server and the EventSource, the roles for people, and the FlowSchema that gives the server's Lease calls
// their priority level (the API server's own priority and fairness, as in a cluster). The rest runs as
// processes of the chain (server, argo-events) or needs a controller the rig lacks (Deployment, Service,
// NetworkPolicy, EventBus).
var rbacKinds = map[string]schema.GroupVersionResource{
	"FlowSchema":         {Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Resource: "flowschemas"},
	"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
	"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
}

// applyRBAC creates (or, already there from an earlier install, updates) the rendered identities and
// rights and returns them as Kind/namespace/name.
func applyRBAC(ctx context.Context, dyn dynamic.Interface, in *install) ([]string, error) {
	var applied []string
	for _, u := range in.objects {
		gvr, ok := rbacKinds[u.GetKind()]
		if !ok {
			continue
		}
		var client dynamic.ResourceInterface = dyn.Resource(gvr)
		if ns := u.GetNamespace(); ns != "" {
			client = dyn.Resource(gvr).Namespace(ns)
		}
		u = u.DeepCopy()
		_, err := client.Create(ctx, u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			old, gerr := client.Get(ctx, u.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return nil, gerr
			}
			u.SetResourceVersion(old.GetResourceVersion())
			_, err = client.Update(ctx, u, metav1.UpdateOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("apply %s %s/%s from %s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), in.overlay, err)
		}
		applied = append(applied, strings.TrimSuffix(u.GetKind()+"/"+u.GetNamespace(), "/")+"/"+u.GetName())
	}
	slices.Sort(applied)
	return applied, nil
}
