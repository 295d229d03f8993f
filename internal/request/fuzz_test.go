package request

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/argocontroller/resume-trigger/internal/fault"
)

// The Sensor's trigger spec: whatever comes in, ParseSpec answers a JSON object of strings with known
// keys, or an Invalid error of bounded size; it never panics.
func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{
		"namespace: argo\nresume: r\n",
		"namespace: \"\"\ntemplate: \"\"\nworkflow: \"\"\n",
		"nodeID: 010\n",
		"stage: true\n",
		"unknown: x\n",
		"- a\n- b\n",
		"namespace: &a x\nresume: *a\n",
		"{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseSpec(data)
		if err != nil {
			if fault.KindOf(err) != fault.Invalid {
				t.Fatalf("error of kind %s: %v", fault.KindOf(err), err)
			}
			if len(err.Error()) > 2048 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		var m map[string]string
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("output %q is not a JSON object of strings: %v", out, err)
		}
		for k := range m {
			if !slices.Contains(Keys, k) {
				t.Fatalf("output has key %q", k)
			}
		}
	})
}

// The request after the Sensor applied its parameters: Parse accepts only a valid request (it passes
// Validate), and refuses everything else with an Invalid error of bounded size, valid UTF-8.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"namespace":"argo","resume":"resume-1"}`,
		`{"namespace":"argo","workflow":"wf","template":"main","container":"main","stage":"after"}`,
		`{"namespace":"argo","workflow":"wf","nodeName":"wf[0].loop(1:b)"}`,
		`{"Namespace":"argo","resume":"r"}`,
		`{"namespace":"argo","resume":"r"}}`,
		`{"namespace":"argo","workflow":"wf","container":"wait","template":"t"}`,
		`[]`, `null`, `{"namespace":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Parse(data)
		if err != nil {
			if fault.KindOf(err) != fault.Invalid {
				t.Fatalf("error of kind %s: %v", fault.KindOf(err), err)
			}
			if len(err.Error()) > 2048 || !utf8.ValidString(err.Error()) {
				t.Fatalf("error of %d bytes (valid UTF-8: %v)", len(err.Error()), utf8.ValidString(err.Error()))
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("Parse accepted %q, which Validate refuses: %v", data, err)
		}
		if strings.ContainsAny(req.Namespace+req.Step.Workflow+req.Step.Container+req.WorkflowHint, "/ \x00") {
			t.Fatalf("accepted names with separators: %+v", req)
		}
	})
}

// The CloudEvent payload: ParseEvent answers a complete event, nil (no payload), or an Invalid error.
func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{
		``, `null`,
		`{"id":"ev-1","source":"s","specversion":"1.0","type":"t","subject":"x","time":"2026-05-04T10:11:12Z","datacontenttype":"application/json","data":{"a":1}}`,
		`{"id":"ev-1","source":"s","specversion":"0.3","type":"t"}`,
		`{"object":{"a":1},"eventID":"x"}`,
		"\x00\x01garbage",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvent(data)
		if err != nil {
			if fault.KindOf(err) != fault.Invalid {
				t.Fatalf("error of kind %s: %v", fault.KindOf(err), err)
			}
			return
		}
		if ev != nil && (ev.ID() == "" || ev.Source() == "" || ev.Type() == "") {
			t.Fatalf("accepted an incomplete event: %+v", ev)
		}
	})
}
