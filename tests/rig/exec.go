package rig

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Exec runs argv in a container through the API server the way kubectl does: WebSocket (GET) first,
// SPDY (POST) when the upgrade fails. A non-zero exit is an error that wraps
// k8s.io/client-go/util/exec.CodeExitError.
func Exec(ctx context.Context, cfg *rest.Config, namespace, pod, container string, argv ...string) (stdout, stderr string, err error) {
	q := url.Values{"container": {container}, "stdout": {"true"}, "stderr": {"true"}, "command": argv}
	u, err := url.Parse(fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/exec?%s",
		strings.TrimSuffix(cfg.Host, "/"), url.PathEscape(namespace), url.PathEscape(pod), q.Encode()))
	if err != nil {
		return "", "", err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return "", "", err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return "", "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", err
	}
	var out, errOut bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}
