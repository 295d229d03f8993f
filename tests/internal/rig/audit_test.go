package rig

import (
	"encoding/json"
	"strings"
	"testing"
)

func auditEvent(t *testing.T, who, agent, verb, group, resource, sub string, code int) AuditEvent {
	t.Helper()
	const ns = "ns1"
	raw := map[string]any{
		"auditID": who + verb + resource + sub + ns, "verb": verb, "userAgent": agent,
		"user":             map[string]any{"username": "admin"},
		"impersonatedUser": map[string]any{"username": who},
		"objectRef":        map[string]any{"apiGroup": group, "resource": resource, "subresource": sub, "namespace": ns},
		"responseStatus":   map[string]any{"code": code},
	}
	data, _ := json.Marshal(raw)
	var e AuditEvent
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestJudgeRBAC(t *testing.T) {
	const sa = "system:serviceaccount:ns1:resume-trigger"
	granted := map[string]bool{
		GrantKey("", "pods", "get"):                 true,
		GrantKey("", "pods/exec", "create"):         true,
		GrantKey("", "pods/exec", "get"):            true,
		GrantKey("argoproj.io", "workflows", "get"): true,
	}
	none := func(string, string, string) bool { return false }
	tests := map[string]struct {
		events      []AuditEvent
		expected    func(ns, resource, verb string) bool
		wantUnused  string
		wantRefused string
	}{
		"everything used; a WebSocket exec covers create": {
			events: []AuditEvent{
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "", 200),
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 404),
			},
			expected: none,
		},
		"a granted verb never used": {
			events: []AuditEvent{
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 200),
			},
			expected:   none,
			wantUnused: "core/pods:get",
		},
		"a test acting as the identity is not the program": {
			events: []AuditEvent{
				auditEvent(t, sa, "integration.test", "get", "", "pods", "", 200),
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 200),
				auditEvent(t, sa, "integration.test", "list", "", "secrets", "", 403),
			},
			expected:   none,
			wantUnused: "core/pods:get",
		},
		"a refusal": {
			events: []AuditEvent{
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "", 200),
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 200),
				auditEvent(t, sa, "resume-trigger", "update", "", "pods", "ephemeralcontainers", 403),
			},
			expected:    none,
			wantRefused: "core/pods/ephemeralcontainers:update in namespace ns1",
		},
		"a refusal a test asked for": {
			events: []AuditEvent{
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "", 200),
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 200),
				auditEvent(t, sa, "resume-trigger", "update", "", "pods", "ephemeralcontainers", 403),
			},
			expected: func(ns, resource, verb string) bool {
				return ns == "ns1" && resource == "pods/ephemeralcontainers" && verb == "update"
			},
		},
		"another identity does not count": {
			events: []AuditEvent{
				auditEvent(t, "system:serviceaccount:ns1:other", "resume-trigger", "get", "", "pods", "", 200),
				auditEvent(t, sa, "resume-trigger", "get", "", "pods", "exec", 101),
				auditEvent(t, sa, "resume-trigger", "get", "argoproj.io", "workflows", "", 200),
			},
			expected:   none,
			wantUnused: "core/pods:get",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			unused, refused := JudgeRBAC(granted, tc.events, ":resume-trigger", "resume-trigger", tc.expected)
			if got := strings.Join(unused, ","); got != tc.wantUnused {
				t.Errorf("unused %q, want %q", got, tc.wantUnused)
			}
			if got := strings.Join(refused, ","); got != tc.wantRefused {
				t.Errorf("refused %q, want %q", got, tc.wantRefused)
			}
		})
	}
}
