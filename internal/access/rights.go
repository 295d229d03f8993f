package access

import (
	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

// Right is one verb on one resource (or subresource) that the server calls.
type Right struct {
	Group       string
	Resource    string
	Subresource string
	Verb        string
}

func (r Right) String() string {
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	if r.Group != "" {
		res += "." + r.Group
	}
	return r.Verb + " " + res
}

// Needed are the rights a release calls in every served namespace: exactly the rules of
// manifests/cluster-scoped/clusterrole.yaml (a test compares the two in both directions).
var Needed = []Right{
	{Resource: "pods", Verb: "get"},
	{Resource: "pods", Verb: "list"},
	// WebSocket exec is a GET, and since Kubernetes 1.35 also authorized as create; SPDY is a POST.
	{Resource: "pods", Subresource: "exec", Verb: "create"},
	{Resource: "pods", Subresource: "exec", Verb: "get"},
	{Group: "argoproj.io", Resource: "workflows", Verb: "get"},
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Verb: "get"},
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Verb: "list"},
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Verb: "delete"},
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Subresource: "status", Verb: "update"},
	{Group: "events.k8s.io", Resource: "events", Verb: "create"},
	{Group: "events.k8s.io", Resource: "events", Verb: "patch"},
}

// EphemeralFallback is the right of manifests/ephemeral-fallback, called only with --ephemeral-image.
// Without it only the fallback is refused; the namespace stays ready.
var EphemeralFallback = Right{Resource: "pods", Subresource: "ephemeralcontainers", Verb: "update"}

// recording are the rights without which a Resume's outcome cannot be written at all: without them a
// Resume cannot even be told that the server may not act.
var recording = []Right{
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Verb: "get"},
	{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource.Resource, Subresource: "status", Verb: "update"},
}
