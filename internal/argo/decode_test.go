package argo

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeNodesBounds(t *testing.T) {
	nodesJSON := func(n int, node func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("%q:%s", fmt.Sprint("n", i), node(i))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	children := func(n int) string {
		return `{"children":[` + strings.TrimSuffix(strings.Repeat(`"c",`, n), ",") + `]}`
	}
	tests := map[string]struct {
		json     string
		expNodes int
		expLimit string // the LimitError's What; empty: no error
		expErr   string // another error
	}{
		"null is no nodes":                 {json: `null`},
		"an empty object":                  {json: `{}`},
		"MaxNodes nodes":                   {json: nodesJSON(MaxNodes, func(int) string { return `{}` }), expNodes: MaxNodes},
		"one node more than MaxNodes":      {json: nodesJSON(MaxNodes+1, func(int) string { return `{}` }), expLimit: "the number of nodes"},
		"a key repeated counts each time":  {json: "{" + strings.TrimSuffix(strings.Repeat(`"n":{},`, MaxNodes+1), ",") + "}", expLimit: "the number of nodes"},
		"MaxNodes children of one node":    {json: nodesJSON(1, func(int) string { return children(MaxNodes) }), expNodes: 1},
		"more children than nodes":         {json: nodesJSON(1, func(int) string { return children(MaxNodes + 1) }), expLimit: `the number of children of node "n0"`},
		"MaxChildren children in all":      {json: nodesJSON(10, func(int) string { return children(MaxChildren / 10) }), expNodes: 10},
		"more than MaxChildren in all":     {json: nodesJSON(11, func(int) string { return children(MaxChildren / 10) }), expLimit: "the number of children all nodes list"},
		"a node larger than MaxValueBytes": {json: nodesJSON(1, func(int) string { return `{"message":"` + strings.Repeat("x", MaxValueBytes) + `"}` }), expLimit: `the JSON of node "n0"`},
		"a key larger than MaxValueBytes":  {json: `{"` + strings.Repeat("k", MaxValueBytes) + `":{}}`, expLimit: "a single JSON value"},
		"an array":                         {json: `[]`, expErr: "want a JSON object"},
		"a node that is not an object":     {json: `{"n":[]}`, expErr: `node "n"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			nodes, err := DecodeNodes(strings.NewReader(tc.json))
			var limit *LimitError
			switch {
			case tc.expLimit != "":
				if !errors.As(err, &limit) || limit.What != tc.expLimit {
					t.Fatalf("error %v, want the limit on %s", err, tc.expLimit)
				}
			case tc.expErr != "":
				if err == nil || errors.As(err, &limit) || !strings.Contains(err.Error(), tc.expErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.expErr)
				}
			case err != nil:
				t.Fatal(err)
			case len(nodes) != tc.expNodes:
				t.Fatalf("%d nodes, want %d", len(nodes), tc.expNodes)
			}
		})
	}
}

// What the lean Workflow leaves out is skipped whatever its shape, and bounded only per value: a
// managedFields entry listing every node, a large spec, unknown status fields.
func TestDecodeWorkflowSkipsWhatItDoesNotRead(t *testing.T) {
	big := strings.Repeat(`{"f:a":{"f:b":[1,2,{"c":null}]}},`, 50000)
	wf := `{"apiVersion":"argoproj.io/v1alpha1","kind":"Workflow",
	"metadata":{"name":"wf","namespace":"ns","uid":"u","annotations":{"a":"b"},"managedFields":[` + big + `{}]},
	"spec":{"entrypoint":"main","templates":[{"name":"main","steps":[[{"name":"s"}]],"inputs":{"parameters":[{"name":"x"}]}},{"name":"s","container":{"image":"i"}}],
		"arguments":{"parameters":[{"name":"p","value":"` + strings.Repeat("v", 1<<20) + `"}]}},
	"status":{"phase":"Running","unknown":[` + big + `{}],"nodes":{"wf":{"id":"wf","name":"wf","type":"Steps","inputs":[` + big + `{}]}},
		"storedTemplates":{"namespaced/t/x":{"name":"x","script":{"source":"s"}}},"storedWorkflowTemplateSpec":{"templates":[{"name":"y"}]}}}`
	got, err := DecodeWorkflow(strings.NewReader(wf))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "wf" || got.Namespace != "ns" || got.UID != "u" || got.Annotations["a"] != "b" || got.Status.Phase != "Running" ||
		len(got.Spec.Templates) != 2 || got.Spec.Templates[1].Name != "s" || got.Status.Nodes["wf"].Type != "Steps" ||
		got.Status.StoredTemplates["namespaced/t/x"].Name != "x" || got.Status.StoredWorkflowSpec.Templates[0].Name != "y" {
		t.Errorf("decoded %+v", got)
	}
}
