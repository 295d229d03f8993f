package lookup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
)

// ArgoServer reads a workflow's nodes from argo-server, which hydrates offloaded node status from Argo's
// database.
type ArgoServer struct {
	// URL is argo-server's base URL, e.g. https://argo-server.argo.svc:2746.
	URL string
	// TokenFile holds the bearer token to send, read on every call so a rotated token is picked up.
	TokenFile string
	Client    *http.Client
}

// maxWorkflowSize bounds the argo-server response that is read. It is decoded as it arrives, keeping only
// what argo.Workflow holds within argo's limits, so this bounds the time spent, not memory.
const maxWorkflowSize = 64 << 20

// maxErrorBody bounds what is read of an answer that is not the workflow, to quote it.
const maxErrorBody = 4 << 10

// Nodes implements NodeSource. The workflow argo-server returns must be the one the API server has (same
// UID), not an archived namesake.
func (a *ArgoServer) Nodes(ctx context.Context, want *argo.Workflow) (argo.Nodes, error) {
	namespace, workflow := want.Namespace, want.Name
	u := strings.TrimRight(a.URL, "/") + "/api/v1/workflows/" + url.PathEscape(namespace) + "/" + url.PathEscape(workflow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fault.Invalidf("argo-server request: %w", err)
	}
	if a.TokenFile != "" {
		token, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return nil, fault.Transientf("read argo-server token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fault.Transientf("read nodes of workflow %s/%s from argo-server: %w", namespace, workflow, err)
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fault.NotFoundf("argo-server does not know workflow %s/%s, which the API server has: check --argo-server-url", namespace, workflow)
	case resp.StatusCode != http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return nil, fault.Transientf("read nodes of workflow %s/%s from argo-server: %w", namespace, workflow, err)
		}
		return nil, fault.Transientf("argo-server answered %s for workflow %s/%s: %.200s", resp.Status, namespace, workflow, body)
	}
	wf, err := argo.DecodeWorkflow(io.LimitReader(resp.Body, maxWorkflowSize))
	var limit *argo.LimitError
	switch {
	case errors.As(err, &limit):
		return nil, fault.Preconditionf("argo-server's workflow %s/%s cannot be read: %w", namespace, workflow, err)
	case err != nil:
		return nil, fault.Transientf("argo-server sent no workflow for %s/%s: %w", namespace, workflow, err)
	}
	if wf.UID != "" && want.UID != "" && wf.UID != want.UID {
		return nil, fault.Preconditionf("argo-server's workflow %s/%s has uid %s, the API server's %s: it is another workflow of that name", namespace, workflow, wf.UID, want.UID)
	}
	nodes, ok, err := statusNodes(wf)
	switch {
	case err != nil:
		return nil, fault.Preconditionf("argo-server's workflow %s/%s: %w", namespace, workflow, err)
	case !ok:
		return nil, fault.Preconditionf("argo-server returned workflow %s/%s without nodes", namespace, workflow)
	}
	return nodes, nil
}
