package rig

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The API server writes an audit log (metadata only) of every request, so a test can see exactly which
// verbs the server's identity used and which were refused. Tests act as a ServiceAccount by
// impersonation or with its token: Identity says who it was either way.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/readyz*", "/healthz*", "/livez*", "/version", "/openapi*", "/api", "/apis*"]
  - level: Metadata
`

func writeAuditPolicy(dir string) (flags []string, logPath string, err error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	logPath = filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, "", err
	}
	return []string{"--audit-policy-file", policy, "--audit-log-path", logPath, "--audit-log-format", "json", "--audit-log-mode", "blocking"}, logPath, nil
}

// AuditEvent is one request of a ServiceAccount, as the API server audited it.
type AuditEvent struct {
	AuditID   string `json:"auditID"`
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// RequestURI is the path and query: for pods/exec it holds the container and the command.
	RequestURI string `json:"requestURI"`
}

// Identity is the user the request acted as: the impersonated one, if any.
func (e AuditEvent) Identity() string {
	if e.ImpersonatedUser != nil && e.ImpersonatedUser.Username != "" {
		return e.ImpersonatedUser.Username
	}
	return e.User.Username
}

// Resource is "resource" or "resource/subresource".
func (e AuditEvent) Resource() string {
	if e.ObjectRef == nil {
		return ""
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// Code is the response code, 0 when the request had none yet.
func (e AuditEvent) Code() int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

// AuditEvents reads every audited request so far, one per request (its last stage).
func (r *Rig) AuditEvents() ([]AuditEvent, error) {
	f, err := os.Open(r.auditLog)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer func() { _ = f.Close() }()
	byID := map[string]int{}
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %q: %w", sc.Text(), err)
		}
		if i, ok := byID[e.AuditID]; ok {
			out[i] = e
			continue
		}
		byID[e.AuditID] = len(out)
		out = append(out, e)
	}
	return out, sc.Err()
}

// GrantKey names one RBAC permission as JudgeRBAC compares them: "group/resource[/subresource]:verb",
// with "core" for the core group.
func GrantKey(group, resource, verb string) string {
	if group == "" {
		group = "core"
	}
	return group + "/" + resource + ":" + verb
}

// JudgeRBAC compares what roles grant with what one identity did: the audited requests of users whose
// name ends in identitySuffix, sent with a user agent starting with agent (the program under test, not a
// test acting as it). It returns the granted permissions never used, and the requests refused (403) that
// expected does not excuse, both sorted. A request the authorizer let through counts as a use whatever
// the object said after (a NotFound or a Conflict is the object's answer, not the authorizer's).
func JudgeRBAC(granted map[string]bool, events []AuditEvent, identitySuffix, agent string, expected func(ns, resource, verb string) bool) (unused, refused []string) {
	used := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range events {
		who := e.Identity()
		if !strings.HasPrefix(who, "system:serviceaccount:") || !strings.HasSuffix(who, identitySuffix) || !strings.HasPrefix(e.UserAgent, agent) || e.ObjectRef == nil {
			continue
		}
		key := GrantKey(e.ObjectRef.APIGroup, e.Resource(), e.Verb)
		switch code := e.Code(); {
		case code == 403:
			if r := fmt.Sprintf("%s in namespace %s", key, e.ObjectRef.Namespace); !expected(e.ObjectRef.Namespace, e.Resource(), e.Verb) && !seen[r] {
				seen[r] = true
				refused = append(refused, r)
			}
		case code > 0 && code < 400, code == 404, code == 409:
			used[key] = true
		}
	}
	// client-go execs over WebSocket, a GET, which the API server authorizes as get and, since Kubernetes
	// 1.35, also as create on pods/exec; the audit log records the GET only.
	if used[GrantKey("", "pods/exec", "get")] {
		used[GrantKey("", "pods/exec", "create")] = true
	}
	for k := range granted {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	sort.Strings(refused)
	return unused, refused
}
