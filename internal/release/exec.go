package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// Executor runs argv in a container of a pod and returns nil only when it exited 0. A non-zero exit is an
// *ExitError; anything else is a transport or API error.
type Executor interface {
	Exec(ctx context.Context, namespace, pod, container string, argv []string) error
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Code   int
	Output string
}

func (e *ExitError) Error() string {
	if e.Output == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return fmt.Sprintf("exit status %d: %s", e.Code, e.Output)
}

// maxOutput bounds what is kept of a command's stdout and stderr; touch prints nothing when it works.
const maxOutput = 4 << 10

// APIExecutor execs through the API server's pods/exec subresource, the way kubectl does: WebSocket
// first, SPDY when the upgrade is refused (older API servers, proxies).
type APIExecutor struct {
	Config *rest.Config
	Client kubernetes.Interface
}

// Exec implements Executor. ctx bounds the whole stream, including a command that never ends.
func (a *APIExecutor) Exec(ctx context.Context, namespace, pod, container string, argv []string) error {
	req := a.Client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   argv,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(a.Config, http.MethodGet, req.URL().String())
	if err != nil {
		return fmt.Errorf("websocket executor: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(a.Config, http.MethodPost, req.URL())
	if err != nil {
		return fmt.Errorf("spdy executor: %w", err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("fallback executor: %w", err)
	}
	out := &capped{max: maxOutput}
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: out, Stderr: out})
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return &ExitError{Code: exit.ExitStatus(), Output: strings.TrimSpace(out.String())}
	}
	if err != nil && out.String() != "" {
		// Some kubelets report a command that could not start as an error status, with the reason only on
		// stderr ("executable file not found"): keep it, so the fallback can tell.
		return fmt.Errorf("%w (output: %s)", err, strings.TrimSpace(out.String()))
	}
	return err
}

// capped is a buffer that keeps the first max bytes and drops the rest. client-go copies stdout and
// stderr into it from two goroutines, so writes are serialised. The buffer is a field, not embedded:
// an embedded bytes.Buffer would make capped an io.ReaderFrom, and io.Copy would then bypass Write and
// the cap.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
