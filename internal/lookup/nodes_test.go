package lookup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/klauspost/compress/zstd"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

func gzipBase64(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// compressed moves a cluster's nodes into status.compressedNodes, the way Argo stores large workflows.
func compressed(t *testing.T, c cluster) cluster {
	t.Helper()
	s, err := lookup.CompressNodes(c.wf.Status.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	c.wf.Status.Nodes, c.wf.Status.CompressedNodes = nil, s
	return c
}

// offloaded empties a cluster's node status as Argo does when it offloads it to its database, and returns
// the nodes.
func offloaded(c cluster) (cluster, wfv1.Nodes) {
	nodes := c.wf.Status.Nodes
	c.wf.Status.Nodes, c.wf.Status.OffloadNodeStatusVersion = nil, "fnv:1234"
	return c, nodes
}

func TestCompressNodesIsArgoEncoding(t *testing.T) {
	// Decode independently of the package: base64, gunzip, JSON.
	nodes := helloWorld().wf.Status.Nodes
	s, err := lookup.CompressNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	var got wfv1.Nodes
	if err := json.NewDecoder(zr).Decode(&got); err != nil {
		t.Fatalf("not JSON nodes: %v", err)
	}
	if len(got) != len(nodes) || got[helloNode].Name != "hello-world[0].pause" || got[helloNode].Type != wfv1.NodeTypePod {
		t.Errorf("decoded nodes = %v, want %v", got, nodes)
	}
}

// helloNodesJSON is the original example's node status as JSON.
func helloNodesJSON(t *testing.T) []byte {
	t.Helper()
	data, err := json.Marshal(helloWorld().wf.Status.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// zstdBase64 and brotliBase64 compress as Argo v4.1 does with WORKFLOW_COMPRESSION_ALGORITHM zstd or
// brotli, with the same libraries. No controller of that version could be run here: the module proxy
// serves argo-workflows v4 only up to a version without these algorithms.
func zstdBase64(t *testing.T, data []byte) string {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zw.Close() }()
	return base64.StdEncoding.EncodeToString(zw.EncodeAll(data, nil))
}

func brotliBase64(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	bw := brotli.NewWriter(&buf)
	if _, err := bw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestFindCompressedNodes(t *testing.T) {
	gz := gzipBase64(t, []byte(`{"a":`))
	tests := map[string]struct {
		compressed string // "" keeps the nodes CompressNodes wrote
		expKind    fault.Kind
		expErr     []string
	}{
		"compressed nodes are read": {},
		"compressed nodes that are not base64 are Precondition": {
			compressed: "%%%not-base64%%%",
			expKind:    fault.Precondition,
			expErr:     []string{"status.compressedNodes cannot be read", "not base64"},
		},
		"compressed nodes that are none of gzip, zstd or brotli are Precondition": {
			// Neither gzip's nor zstd's magic bytes: read as brotli, as Argo's reader does.
			compressed: base64.StdEncoding.EncodeToString([]byte("plain text")),
			expKind:    fault.Precondition,
			expErr:     []string{"status.compressedNodes cannot be read", "brotli:"},
		},
		"nodes compressed with zstd (Argo v4.1) are read": {
			compressed: zstdBase64(t, helloNodesJSON(t)),
		},
		"nodes compressed with brotli (Argo v4.1) are read": {
			compressed: brotliBase64(t, helloNodesJSON(t)),
		},
		"zstd cut short is Precondition": {
			compressed: func() string {
				raw, _ := base64.StdEncoding.DecodeString(zstdBase64(t, bytes.Repeat([]byte(`{"x":{"id":"x"}}`), 64)))
				return base64.StdEncoding.EncodeToString(raw[:len(raw)/2])
			}(),
			expKind: fault.Precondition,
			expErr:  []string{"status.compressedNodes cannot be read", "zstd:"},
		},
		"compressed nodes cut short are Precondition": {
			compressed: func() string {
				raw, _ := base64.StdEncoding.DecodeString(gzipBase64(t, bytes.Repeat([]byte(`{"x":{"id":"x"}}`), 64)))
				return base64.StdEncoding.EncodeToString(raw[:len(raw)/2])
			}(),
			expKind: fault.Precondition,
			expErr:  []string{"status.compressedNodes cannot be read", "gzip:"},
		},
		"compressed nodes that are not a JSON node map are Precondition": {
			compressed: gz,
			expKind:    fault.Precondition,
			expErr:     []string{"status.compressedNodes cannot be read", "not a JSON node map"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := compressed(t, helloWorld())
			if tc.compressed != "" {
				c.wf.Status.CompressedNodes = tc.compressed
			}
			f, wfc, kube := newFinder(c, nil)
			res, err := f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			var exp []target
			if tc.expKind == fault.Unknown {
				exp = []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}}
			}
			c.wf.Status.Nodes = helloWorld().wf.Status.Nodes // for checkTargets' node-name check
			checkTargets(t, c, res.Targets, exp)
			checkActions(t, wfc, kube, "hello-world", lists(1, tc.expKind == fault.Unknown), 0)
		})
	}
}

// argoServer is an httptest argo-server that serves GET /api/v1/workflows/{ns}/{name}.
type argoServer struct {
	mu       sync.Mutex
	requests []*http.Request
	status   int
	body     string
}

func (a *argoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r)
	a.mu.Unlock()
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func workflowJSON(t *testing.T, nodes wfv1.Nodes, compressedNodes string) string {
	t.Helper()
	wf := helloWorld().wf
	wf.Status.Nodes, wf.Status.CompressedNodes = nodes, compressedNodes
	data, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// compressedNodes this server cannot decode (an algorithm of a newer Argo, say), with argo-server
// configured: argo-server, which reads node status with Argo's own code, is asked before giving up.
func TestUndecodableNodesAskArgoServer(t *testing.T) {
	nodes := helloWorld().wf.Status.Nodes
	for name, tc := range map[string]struct {
		server  *argoServer
		expKind fault.Kind
		expErr  []string
	}{
		"argo-server answers": {server: &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")}},
		"argo-server fails too": {
			server:  &argoServer{status: http.StatusInternalServerError, body: `{"code":13,"message":"down"}`},
			expKind: fault.Precondition,
			expErr:  []string{"status.compressedNodes cannot be read", "argo-server could not tell either", "down"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := helloWorld()
			c.wf.Status.Nodes, c.wf.Status.CompressedNodes = nil, base64.StdEncoding.EncodeToString([]byte("a format of tomorrow"))
			srv := httptest.NewServer(tc.server)
			defer srv.Close()
			f, _, _ := newFinder(c, &lookup.ArgoServer{URL: srv.URL, TokenFile: tokenFile(t, "s3cret"), Client: srv.Client()})
			res, err := f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			if tc.expKind == fault.Unknown && (len(res.Targets) != 1 || res.Targets[0].Pod != helloPod) {
				t.Errorf("targets %+v, want %s", res.Targets, helloPod)
			}
			if len(tc.server.requests) != 1 {
				t.Errorf("argo-server asked %d times, want once", len(tc.server.requests))
			}
		})
	}
}

func TestFindOffloadedNodes(t *testing.T) {
	nodes := helloWorld().wf.Status.Nodes
	tests := map[string]struct {
		// server answers with status and body; nil means no argo-server is configured.
		server  *argoServer
		expKind fault.Kind
		expErr  []string
	}{
		"offloaded nodes without argo-server are Precondition naming --argo-server-url": {
			expKind: fault.Precondition,
			expErr:  []string{"offloaded", "offloadNodeStatusVersion fnv:1234", "--argo-server-url"},
		},
		"offloaded nodes are read from argo-server": {
			server: &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")},
		},
		"workflow unknown to argo-server is NotFound": {
			server:  &argoServer{status: http.StatusNotFound, body: `{"code":5,"message":"not found"}`},
			expKind: fault.NotFound,
			expErr:  []string{"argo-server does not know workflow argo/hello-world"},
		},
		"argo-server failing is Transient": {
			server:  &argoServer{status: http.StatusInternalServerError, body: `{"code":13,"message":"database is down"}`},
			expKind: fault.Transient,
			expErr:  []string{"500 Internal Server Error", "database is down"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, _ := offloaded(helloWorld())
			var src lookup.NodeSource
			if tc.server != nil {
				srv := httptest.NewServer(tc.server)
				defer srv.Close()
				src = &lookup.ArgoServer{URL: srv.URL, TokenFile: tokenFile(t, "s3cret\n"), Client: srv.Client()}
			}
			f, wfc, kube := newFinder(c, src)
			res, err := f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			var exp []target
			if tc.expKind == fault.Unknown {
				exp = []target{{Node: helloNode, Pod: helloPod, Container: "main", Stage: v1alpha1.StageBefore}}
			}
			c.wf.Status.Nodes = nodes
			checkTargets(t, c, res.Targets, exp)
			checkActions(t, wfc, kube, "hello-world", lists(1, tc.expKind == fault.Unknown), 0)
			if tc.server != nil && len(tc.server.requests) != 1 {
				t.Errorf("argo-server got %d requests, want 1", len(tc.server.requests))
			}
		})
	}
}

func TestArgoServerNodes(t *testing.T) {
	nodes := helloWorld().wf.Status.Nodes
	packed, err := lookup.CompressNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		server *argoServer
		// token is the token file's content; "-" means no token file is configured, "missing" a path that
		// does not exist.
		token string
		// url changes the server's URL: "slash" adds a trailing slash, "closed" points at a closed server,
		// "bad" is not a URL.
		url      string
		expNodes bool
		expKind  fault.Kind
		expErr   []string
	}{
		"nodes with a bearer token read from the file": {
			server:   &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")},
			token:    "s3cret\n",
			expNodes: true,
		},
		"no token file sends no Authorization": {
			server:   &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")},
			token:    "-",
			expNodes: true,
		},
		"trailing slash in the URL is tolerated": {
			server:   &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")},
			token:    "t",
			url:      "slash",
			expNodes: true,
		},
		"compressed nodes from argo-server are decompressed": {
			server:   &argoServer{status: http.StatusOK, body: workflowJSON(t, nil, packed)},
			token:    "t",
			expNodes: true,
		},
		"corrupt compressed nodes from argo-server are Precondition": {
			server:  &argoServer{status: http.StatusOK, body: workflowJSON(t, nil, "!!")},
			token:   "t",
			expKind: fault.Precondition,
			expErr:  []string{"argo-server's workflow argo/hello-world", "not base64"},
		},
		"workflow without nodes is Precondition": {
			server:  &argoServer{status: http.StatusOK, body: workflowJSON(t, nil, "")},
			token:   "t",
			expKind: fault.Precondition,
			expErr:  []string{"without nodes"},
		},
		"an archived namesake (another uid) is Precondition": {
			server: &argoServer{status: http.StatusOK, body: func() string {
				wf := helloWorld().wf
				wf.UID = "another-uid"
				data, _ := json.Marshal(wf)
				return string(data)
			}()},
			token:   "t",
			expKind: fault.Precondition,
			expErr:  []string{"has uid another-uid", "another workflow of that name"},
		},
		"not a workflow is Transient": {
			server:  &argoServer{status: http.StatusOK, body: "<html>login</html>"},
			token:   "t",
			expKind: fault.Transient,
			expErr:  []string{"argo-server sent no workflow for argo/hello-world"},
		},
		"404 is NotFound": {
			server:  &argoServer{status: http.StatusNotFound},
			token:   "t",
			expKind: fault.NotFound,
			expErr:  []string{"argo-server does not know workflow argo/hello-world", "check --argo-server-url"},
		},
		"500 is Transient with the status and body": {
			server:  &argoServer{status: http.StatusInternalServerError, body: "boom"},
			token:   "t",
			expKind: fault.Transient,
			expErr:  []string{"500 Internal Server Error", "boom"},
		},
		"401 is Transient": {
			server:  &argoServer{status: http.StatusUnauthorized, body: "token expired"},
			token:   "t",
			expKind: fault.Transient,
			expErr:  []string{"401 Unauthorized", "token expired"},
		},
		"long error bodies are cut": {
			server:  &argoServer{status: http.StatusBadGateway, body: strings.Repeat("x", 1000)},
			token:   "t",
			expKind: fault.Transient,
			expErr:  []string{"502 Bad Gateway for workflow argo/hello-world: " + strings.Repeat("x", 200)},
		},
		"missing token file is Transient": {
			server:  &argoServer{status: http.StatusOK, body: workflowJSON(t, nodes, "")},
			token:   "missing",
			expKind: fault.Transient,
			expErr:  []string{"read argo-server token"},
		},
		"unreachable argo-server is Transient": {
			server:  &argoServer{status: http.StatusOK},
			token:   "-",
			url:     "closed",
			expKind: fault.Transient,
			expErr:  []string{"read nodes of workflow argo/hello-world from argo-server"},
		},
		"malformed URL is Invalid": {
			server:  &argoServer{status: http.StatusOK},
			token:   "-",
			url:     "bad",
			expKind: fault.Invalid,
			expErr:  []string{"argo-server request"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.server)
			defer srv.Close()
			a := &lookup.ArgoServer{URL: srv.URL}
			switch tc.token {
			case "-":
			case "missing":
				a.TokenFile = filepath.Join(t.TempDir(), "nope")
			default:
				a.TokenFile = tokenFile(t, tc.token)
			}
			switch tc.url {
			case "slash":
				a.URL += "/"
			case "closed":
				srv.Close()
			case "bad":
				a.URL = "http://[::1"
			}
			got, err := a.Nodes(t.Context(), fixture.Lean(helloWorld().wf))
			if tc.expNodes {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(got) != len(nodes) || got[helloNode].Name != nodes[helloNode].Name {
					t.Errorf("nodes = %v, want %v", got, nodes)
				}
			} else {
				if err == nil {
					t.Fatalf("got nodes %v, want an error", got)
				}
				if k := fault.KindOf(err); k != tc.expKind {
					t.Errorf("error kind = %s, want %s: %v", k, tc.expKind, err)
				}
				for _, s := range tc.expErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if strings.Contains(err.Error(), strings.Repeat("x", 201)) {
					t.Errorf("error carries more than 200 bytes of the body: %q", err)
				}
			}
			tc.server.mu.Lock()
			defer tc.server.mu.Unlock()
			if tc.url == "closed" || tc.url == "bad" || tc.token == "missing" {
				if len(tc.server.requests) != 0 {
					t.Errorf("argo-server got %d requests, want none", len(tc.server.requests))
				}
				return
			}
			if len(tc.server.requests) != 1 {
				t.Fatalf("argo-server got %d requests, want 1", len(tc.server.requests))
			}
			r := tc.server.requests[0]
			if r.Method != http.MethodGet || r.URL.Path != "/api/v1/workflows/argo/hello-world" {
				t.Errorf("request = %s %s, want GET /api/v1/workflows/argo/hello-world", r.Method, r.URL.Path)
			}
			expAuth := ""
			if tc.token != "-" {
				expAuth = "Bearer " + strings.TrimSpace(tc.token)
			}
			if auth := r.Header.Get("Authorization"); auth != expAuth {
				t.Errorf("Authorization = %q, want %q", auth, expAuth)
			}
		})
	}
}

func TestArgoServerHonoursContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&lookup.ArgoServer{URL: srv.URL}).Nodes(ctx, fixture.Lean(helloWorld().wf))
	if k := fault.KindOf(err); k != fault.Transient {
		t.Fatalf("error kind = %s, want Transient: %v", k, err)
	}
}

// A compressedNodes value anyone who can write a Workflow may set: a few hundred KiB inflating to 300 MiB
// (or past the 16 MiB cap), with each algorithm Argo writes, in every shape that meets a different bound.
// It is refused, saying why, and the server allocates a bounded amount on the way, not the 300 MiB.
func TestCompressedNodesBomb(t *testing.T) {
	repeat := func(head, chunk string) func(io.Writer) error {
		return func(w io.Writer) error {
			if _, err := io.WriteString(w, head); err != nil {
				return err
			}
			for written := 0; written < 300<<20; written += len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return err
				}
			}
			return nil
		}
	}
	shapes := map[string]struct {
		write  func(io.Writer) error
		expErr string
	}{
		"one node of 300 MiB":           {write: repeat(`{"n":`, strings.Repeat(" ", 1<<20)), expErr: `the JSON of node "n" exceeds resume-trigger's limit of 2097152`},
		"300 MiB of one small node":     {write: repeat(`{"n":{}`, strings.Repeat(`,"n":{}`, 1<<17)), expErr: "the number of nodes exceeds resume-trigger's limit of 30000"},
		"300 MiB of children of a node": {write: repeat(`{"n":{"children":[""`, strings.Repeat(`,""`, 1<<18)), expErr: `the JSON of node "n" exceeds resume-trigger's limit of 2097152`},
		"300 MiB of whitespace":         {write: repeat(`{"n":{}`, strings.Repeat(" ", 1<<20)), expErr: "a single JSON value exceeds resume-trigger's limit of 2097152"},
		"20 MiB of 10 KiB nodes": {write: func(w io.Writer) error {
			pad := strings.Repeat("x", 10<<10)
			if _, err := io.WriteString(w, `{"n":{}`); err != nil {
				return err
			}
			for i := range 2 << 10 {
				if _, err := fmt.Fprintf(w, `,"n%d":{"message":"%s"}`, i, pad); err != nil {
					return err
				}
			}
			return nil
		}, expErr: "larger than 16777216 bytes once decompressed"},
	}
	writers := map[string]func(*bytes.Buffer) (io.WriteCloser, error){
		"gzip": func(b *bytes.Buffer) (io.WriteCloser, error) { return gzip.NewWriterLevel(b, gzip.BestSpeed) },
		"zstd": func(b *bytes.Buffer) (io.WriteCloser, error) {
			return zstd.NewWriter(b, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		},
		"brotli": func(b *bytes.Buffer) (io.WriteCloser, error) { return brotli.NewWriterLevel(b, 1), nil },
	}
	for shapeName, shape := range shapes {
		for name, writer := range writers {
			t.Run(shapeName+"/"+name, func(t *testing.T) {
				var buf bytes.Buffer
				w, err := writer(&buf)
				if err != nil {
					t.Fatal(err)
				}
				if err := shape.write(w); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				c := helloWorld()
				c.wf.Status.Nodes, c.wf.Status.CompressedNodes = nil, base64.StdEncoding.EncodeToString(buf.Bytes())
				t.Logf("compressedNodes: %d KiB of base64 for 300 MiB inflated", len(c.wf.Status.CompressedNodes)>>10)
				f, _, _ := newFinder(c, nil)

				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				_, err = f.Find(t.Context(), ns, request.Step{Workflow: "hello-world", Template: "pause"})
				runtime.ReadMemStats(&after)
				fixture.CheckFault(t, err, fault.Precondition, []string{"status.compressedNodes cannot be read", shape.expErr})
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 96<<20 {
					t.Errorf("reading the bomb allocated %d MiB, want a bounded amount (the cap is 16 MiB)", alloc>>20)
				}
			})
		}
	}
}
