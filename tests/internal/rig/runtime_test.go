package rig

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	known := map[string]string{"POD": "p-1", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := known[k]; return v, ok }
	for name, tc := range map[string]struct{ in, exp string }{
		"no reference":             {"plain", "plain"},
		"known reference":          {"name=$(POD)", "name=p-1"},
		"empty value":              {"[$(EMPTY)]", "[]"},
		"unknown stays as written": {"$(NOPE)/$(POD)", "$(NOPE)/p-1"},
		"escaped":                  {"$$(POD) $$", "$(POD) $"},
		"unclosed":                 {"$(POD", "$(POD"},
		"dollar at the end":        {"cost $", "cost $"},
		"shell syntax untouched":   {"${POD} $POD", "${POD} $POD"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := expand(tc.in, lookup); got != tc.exp {
				t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.exp)
			}
		})
	}
}

func TestFieldRef(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u-1",
			Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"workflows.argoproj.io/node-id": "n-1"},
		},
		Spec: corev1.PodSpec{NodeName: NodeName, ServiceAccountName: "sa"},
	}
	for path, exp := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u-1", "spec.nodeName": NodeName,
		"spec.serviceAccountName": "sa", "metadata.labels['a']": "1",
		"metadata.annotations['workflows.argoproj.io/node-id']": "n-1",
	} {
		if got, err := fieldRef(pod, path); err != nil || got != exp {
			t.Errorf("fieldRef(%s) = %q, %v; want %q", path, got, err, exp)
		}
	}
	if _, err := fieldRef(pod, "status.hostIPs"); err == nil {
		t.Error("an unsupported fieldRef must fail the pod, not run it with an empty value")
	}
}
