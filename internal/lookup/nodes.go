package lookup

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/klauspost/compress/zstd"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
)

// maxNodesSize bounds the decompressed size of status.compressedNodes. Anyone who can write a Workflow can
// set that field (Argo's CRD has no status subresource), and a few hundred KiB of gzip can inflate to
// gigabytes. The nodes are decoded as they are inflated, keeping only what a lookup reads (argo.Node,
// bounded by argo's limits), so memory does not follow the inflated size; the bound caps the time spent.
// Argo compresses node status only when the Workflow would not fit in etcd (about 1 MiB), and node JSON
// compresses about ten to one, so 16 MiB is room for some 15,000 nodes.
const maxNodesSize = 16 << 20

// NodeSource reads the nodes of a workflow whose node status is offloaded to Argo's database, which the
// Kubernetes API cannot return (argo-server can).
type NodeSource interface {
	Nodes(ctx context.Context, wf *argo.Workflow) (argo.Nodes, error)
}

// nodesOf returns the workflow's nodes from status.nodes, status.compressedNodes or, when offloaded, the
// NodeSource.
func nodesOf(ctx context.Context, wf *argo.Workflow, offloaded NodeSource) (argo.Nodes, error) {
	nodes, ok, err := statusNodes(wf)
	if err != nil && offloaded != nil {
		// argo-server reads node status with Argo's own code, whatever this server could not decode.
		if fromServer, serr := offloaded.Nodes(ctx, wf); serr == nil {
			return fromServer, nil
		} else {
			return nil, fault.Preconditionf("%w; argo-server could not tell either: %v", err, serr)
		}
	}
	if ok || err != nil {
		return nodes, err
	}
	if wf.Status.OffloadNodeStatusVersion == "" {
		return nil, nil
	}
	if offloaded == nil {
		return nil, fault.Preconditionf("workflow %s keeps its node status offloaded in Argo's database (offloadNodeStatusVersion %s), which the Kubernetes API cannot return: start resume-trigger with --argo-server-url to read nodes from argo-server", wf.Name, wf.Status.OffloadNodeStatusVersion)
	}
	return offloaded.Nodes(ctx, wf)
}

// statusNodes reads the nodes a Workflow object carries itself: status.nodes, else status.compressedNodes.
// ok is false when it carries neither.
func statusNodes(wf *argo.Workflow) (nodes argo.Nodes, ok bool, err error) {
	switch {
	case len(wf.Status.Nodes) > 0:
		return wf.Status.Nodes, true, nil
	case wf.Status.CompressedNodes != "":
		nodes, err := decompressNodes(wf.Status.CompressedNodes)
		if err != nil {
			return nil, true, fault.Preconditionf("workflow %s: status.compressedNodes cannot be read: %w", wf.Name, err)
		}
		return nodes, true, nil
	}
	return nil, false, nil
}

func decompressNodes(s string) (argo.Nodes, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	zr, closeZR, err := inflater(raw)
	if err != nil {
		return nil, err
	}
	defer closeZR()
	inflated := &readErr{r: zr}
	limited := &io.LimitedReader{R: inflated, N: maxNodesSize + 1}
	nodes, err := argo.DecodeNodes(limited)
	if err != nil {
		var limit *argo.LimitError
		switch {
		case errors.As(err, &limit):
			return nil, err
		case limited.N <= 0:
			return nil, fmt.Errorf("larger than %d bytes once decompressed", maxNodesSize)
		case inflated.err != nil:
			return nil, fmt.Errorf("%s: %w", algorithmOf(raw), inflated.err)
		}
		return nil, fmt.Errorf("not a JSON node map: %w", err)
	}
	return nodes, nil
}

// Argo writes status.compressedNodes with gzip, or (v4.1, WORKFLOW_COMPRESSION_ALGORITHM) zstd or
// brotli, and its reader tells them apart by content: gzip and zstd by their magic bytes, anything else
// is brotli. So does this one.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func algorithmOf(raw []byte) string {
	switch {
	case bytes.HasPrefix(raw, gzipMagic):
		return "gzip"
	case bytes.HasPrefix(raw, zstdMagic):
		return "zstd"
	default:
		return "brotli"
	}
}

// inflater returns a reader of raw's decompressed bytes, and what closes it.
func inflater(raw []byte) (io.Reader, func(), error) {
	switch algorithmOf(raw) {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, nil, fmt.Errorf("not gzip: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case "zstd":
		// The decoder's window is bounded too, so a frame cannot ask for more memory than the cap.
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxNodesSize), zstd.WithDecoderMaxMemory(maxNodesSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("not zstd: %w", err)
		}
		return zr, zr.Close, nil
	default:
		return brotli.NewReader(bytes.NewReader(raw)), func() {}, nil
	}
}

// readErr remembers the first error other than EOF its reader returned, so a broken gzip stream is told
// apart from broken JSON inside a sound one.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// CompressNodes encodes nodes the way Argo stores status.compressedNodes (base64 of gzipped JSON); tests
// and benchmarks write Workflows with it.
func CompressNodes(nodes wfv1.Nodes) (string, error) {
	data, err := json.Marshal(nodes)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
