package lookup

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// status.compressedNodes is written by anyone who can write a Workflow: whatever it holds, reading it
// answers nodes or a Precondition error, never a panic.
func FuzzCompressedNodes(f *testing.F) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	for _, seed := range [][]byte{
		gz(`{"wf-1":{"id":"wf-1","name":"wf[0].a","type":"Pod","templateName":"a","phase":"Running"}}`),
		gz(`{}`), gz(`[]`), gz(`{"a":`), gz(`null`), []byte("not gzip"), {},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wf := &argo.Workflow{ObjectMeta: argo.ObjectMeta{Name: "wf"}}
		wf.Status.CompressedNodes = base64.StdEncoding.EncodeToString(data)
		nodes, ok, err := statusNodes(wf)
		if !ok && len(data) > 0 {
			t.Fatal("a Workflow with compressedNodes said to carry none")
		}
		if err != nil {
			if fault.KindOf(err) != fault.Precondition {
				t.Fatalf("error of kind %s: %v", fault.KindOf(err), err)
			}
			return
		}
		_ = nodes
	})
}

// Whatever the node status holds (it is the Workflow's, unchecked by any schema of ours), selecting a
// step's nodes answers picks or a classified error, never a panic, and every pick is a Pod node.
func FuzzPick(f *testing.F) {
	for _, seed := range []string{
		`{"r":{"id":"r","name":"wf[0].s","type":"Retry","templateName":"s","phase":"Running","children":["a0","h"]},"a0":{"id":"a0","name":"wf[0].s(0)","type":"Pod","templateName":"s","phase":"Running"},"h":{"id":"h","name":"wf[0].s.hooks.x","type":"Pod","templateName":"x"}}`,
		`{"p":{"id":"p","name":"wf[0].set","type":"Pod","templateName":"s"},"c":{"id":"c","name":"wf[0].set.lint","type":"Container","templateName":"s","boundaryID":"p"}}`,
		`{"c":{"id":"c","name":"x","type":"Container","templateName":"s","boundaryID":"c"}}`,
		`{"r":{"id":"r","name":"r","type":"Retry","templateName":"s","children":["r"]}}`,
		`{}`,
	} {
		f.Add([]byte(seed), "s", "")
	}
	f.Fuzz(func(t *testing.T, nodesJSON []byte, template, nodeName string) {
		var nodes argo.Nodes
		if json.Unmarshal(nodesJSON, &nodes) != nil {
			return
		}
		wf := &argo.Workflow{ObjectMeta: argo.ObjectMeta{Name: "wf"}}
		wf.Status.Nodes = nodes
		step := request.Step{Workflow: "wf", Template: template, NodeName: nodeName}
		if step.Template == "" && step.NodeName == "" {
			step.Template = "s"
		}
		picks, waiting, err := pick(wf, nodes, step)
		if err != nil && fault.KindOf(err) == fault.Unknown {
			t.Fatalf("unclassified error: %v", err)
		}
		for _, p := range picks {
			if p.node.Type != wfv1.NodeTypePod {
				t.Fatalf("picked a %s node %s", p.node.Type, p.node.ID)
			}
		}
		for _, w := range waiting {
			if fault.KindOf(w.Reason) != fault.Transient {
				t.Fatalf("waiting for a non-transient reason: %v", w.Reason)
			}
		}
	})
}
