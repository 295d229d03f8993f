package request

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
)

// body encodes a request the way the Sensor sends it: a JSON object of strings.
func body(t *testing.T, fields map[string]string) string {
	t.Helper()
	data, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// with returns base with the given keys set.
func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

var (
	resumeBase = map[string]string{"namespace": "argo", "resume": "resume-1"}
	directBase = map[string]string{"namespace": "argo", "workflow": "wf-1", "template": "main"}
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Request
		wantErr string // substring of the error; empty means success
	}{
		"resume request as the Sensor sends it (every key, unused ones empty)": {
			in: `{"container":"","namespace":"argo","nodeID":"","nodeName":"","resume":"resume-1","resumeUID":"0f1e2d3c-aaaa-bbbb-cccc-000000000001","stage":"","template":"","workflow":""}`,
			want: Request{
				Namespace: "argo", Resume: "resume-1", ResumeUID: "0f1e2d3c-aaaa-bbbb-cccc-000000000001",
			},
		},
		"resume request with only namespace and resume": {
			in:   `{"namespace":"argo","resume":"resume-1"}`,
			want: Request{Namespace: "argo", Resume: "resume-1"},
		},
		"resume request drops the step the Sensor copied from the event: the live object counts": {
			in:   `{"namespace":"argo","resume":"resume-1","workflow":"wf-1","template":"main","container":"main"}`,
			want: Request{Namespace: "argo", Resume: "resume-1", WorkflowHint: "wf-1"},
		},
		"resume request does not judge the copied step: the Resume's status will say what is wrong": {
			in:   `{"namespace":"argo","resume":"resume-1","workflow":"wf-1","template":"bad-","container":"wait"}`,
			want: Request{Namespace: "argo", Resume: "resume-1", WorkflowHint: "wf-1"},
		},
		"resume request: a copied workflow that is no object name is no hint": {
			in:   `{"namespace":"argo","resume":"resume-1","workflow":"../wf 1"}`,
			want: Request{Namespace: "argo", Resume: "resume-1"},
		},
		"direct request with every step field": {
			in: `{"namespace":"argo","workflow":"wf-1","template":"main","nodeID":"wf-1-12345","nodeName":"wf-1[0].step(1:b)","container":"main","stage":"after"}`,
			want: Request{Namespace: "argo", Step: Step{
				Workflow: "wf-1", Template: "main", NodeID: "wf-1-12345", NodeName: "wf-1[0].step(1:b)", Container: "main", Stage: v1alpha1.StageAfter,
			}},
		},
		"a key in another case is refused, though encoding/json would match it": {
			in:      `{"Namespace":"argo","resume":"resume-1"}`,
			wantErr: `the trigger request has key "Namespace"`,
		},
		"a step key in another case is refused too": {
			in:      `{"namespace":"argo","Workflow":"wf-1","template":"main"}`,
			wantErr: `the trigger request has key "Workflow"`,
		},
		"direct request selecting by node name only": {
			in:   `{"namespace":"argo","workflow":"wf-1","nodeName":"wf-1[0].a"}`,
			want: Request{Namespace: "argo", Step: Step{Workflow: "wf-1", NodeName: "wf-1[0].a"}},
		},
		"direct request with stage before": {
			in:   `{"namespace":"argo","workflow":"wf-1","nodeID":"wf-1-1","stage":"before"}`,
			want: Request{Namespace: "argo", Step: Step{Workflow: "wf-1", NodeID: "wf-1-1", Stage: v1alpha1.StageBefore}},
		},
		"whitespace around every value is trimmed": {
			in: `{"namespace":" argo\n","workflow":" wf-1 ","template":" main ","nodeID":" n-1 ","nodeName":" wf-1.a ","container":" main ","stage":" after "}`,
			want: Request{Namespace: "argo", Step: Step{
				Workflow: "wf-1", Template: "main", NodeID: "n-1", NodeName: "wf-1.a", Container: "main", Stage: v1alpha1.StageAfter,
			}},
		},
		"whitespace around resume fields is trimmed": {
			in:   `{"namespace":" argo\n","resume":"\tresume-1 ","resumeUID":" abc-123 "}`,
			want: Request{Namespace: "argo", Resume: "resume-1", ResumeUID: "abc-123"},
		},
		"whitespace around the object is fine": {
			in:   " \n{\"namespace\":\"argo\",\"resume\":\"r\"}\r\n\t ",
			want: Request{Namespace: "argo", Resume: "r"},
		},
		"unknown key is refused": {
			in:      `{"namespace":"argo","resume":"r","workflowName":"wf"}`,
			wantErr: `unknown field "workflowName"`,
		},
		"number value is refused": {
			in:      `{"namespace":"argo","resume":"r","stage":1}`,
			wantErr: "not a JSON object of strings",
		},
		"object value is refused": {
			in:      `{"namespace":"argo","resume":{"name":"r"}}`,
			wantErr: "not a JSON object of strings",
		},
		"null value is taken as empty": {
			in:   `{"namespace":"argo","resume":"r","stage":null}`,
			want: Request{Namespace: "argo", Resume: "r"},
		},
		"two JSON values are refused": {
			in:      `{"namespace":"argo","resume":"r"} {"namespace":"other","resume":"x"}`,
			wantErr: "more than one JSON value",
		},
		"a stray closing brace after the object is refused": {
			in:      `{"namespace":"argo","resume":"r"}}`,
			wantErr: "more than one JSON value",
		},
		"a stray closing bracket after the object is refused": {
			in:      `{"namespace":"argo","resume":"r"}]`,
			wantErr: "more than one JSON value",
		},
		"trailing garbage is refused": {
			in:      `{"namespace":"argo","resume":"r"} rm -rf /`,
			wantErr: "more than one JSON value",
		},
		"empty input is refused": {
			in:      ``,
			wantErr: "not a JSON object of strings",
		},
		"YAML is refused": {
			in:      "namespace: argo\nresume: r\n",
			wantErr: "not a JSON object of strings",
		},
		"JSON array is refused": {
			in:      `["argo","r"]`,
			wantErr: "not a JSON object of strings",
		},
		"JSON null has no namespace": {
			in:      `null`,
			wantErr: "namespace is empty",
		},
		"empty namespace is refused": {
			in:      `{"namespace":"","resume":"r"}`,
			wantErr: "namespace is empty",
		},
		"blank namespace is refused": {
			in:      `{"namespace":"   ","resume":"r"}`,
			wantErr: "namespace is empty",
		},
		"missing namespace is refused": {
			in:      `{"resume":"r"}`,
			wantErr: "namespace is empty",
		},
		"namespace with a dot is refused (a label, not a subdomain)": {
			in:      `{"namespace":"argo.prod","resume":"r"}`,
			wantErr: "not a valid namespace name",
		},
		"reserved container wait is refused": {
			in:      body(t, with(directBase, "container", "wait")),
			wantErr: `container "wait" is Argo's own`,
		},
		"Argo v4.1's supervisor is refused": {
			in:      body(t, with(directBase, "container", "supervisor")),
			wantErr: `container "supervisor" is Argo's own`,
		},
		"reserved container init is refused": {
			in:      body(t, with(directBase, "container", "init")),
			wantErr: `container "init" is Argo's own`,
		},
		"unknown stage is refused": {
			in:      body(t, with(directBase, "stage", "during")),
			wantErr: `stage "during" is neither`,
		},
		"stage in upper case is refused": {
			in:      body(t, with(directBase, "stage", "After")),
			wantErr: `stage "After" is neither`,
		},
		"direct request without workflow is refused": {
			in:      `{"namespace":"argo","template":"main"}`,
			wantErr: "workflow is empty",
		},
		"direct request without any step selector is refused": {
			in:      `{"namespace":"argo","workflow":"wf-1","container":"main","stage":"after"}`,
			wantErr: "no step named",
		},
		"request with only a namespace is refused": {
			in:      `{"namespace":"argo"}`,
			wantErr: "workflow is empty",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(%s): %v", tc.in, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Parse(%s) =\n %#v\nwant\n %#v", tc.in, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%s) = %#v, want an error containing %q", tc.in, got, tc.wantErr)
			}
			if k := fault.KindOf(err); k != fault.Invalid {
				t.Errorf("Parse(%s) error kind = %v, want Invalid (%v)", tc.in, k, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%s) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, Request{}) {
				t.Errorf("Parse(%s) returned %#v with an error, want the zero Request", tc.in, got)
			}
		})
	}
}

// TestParseRefusesInjectionNames sends every name field with values that look like shell, path or
// header injection. Only the node name is free text (Argo node names hold brackets, colons and spaces);
// it is only ever compared, never passed on, and it still refuses control characters and excess length.
func TestParseRefusesInjectionNames(t *testing.T) {
	long := strings.Repeat("a", 300)
	values := map[string]string{
		"shell command":         "main; rm -rf /",
		"command substitution":  "$(id)",
		"path traversal":        "../../etc",
		"newline":               "ma\nin",
		"carriage return":       "ma\rin",
		"space":                 "a b",
		"300 characters":        long,
		"upper case":            "Main",
		"backtick":              "`id`",
		"slash":                 "a/b",
		"NUL":                   "a\x00b",
		"leading dash (option)": "-rf",
	}
	// accepted lists, per field, the kinds of values that are legal there.
	fields := map[string]struct {
		base     map[string]string
		accepted map[string]bool
	}{
		"namespace": {base: resumeBase},
		"resume":    {base: resumeBase},
		"resumeUID": {base: resumeBase},
		"workflow":  {base: directBase},
		"template":  {base: directBase, accepted: map[string]bool{"upper case": true}},
		"nodeID":    {base: directBase},
		"nodeName": {base: directBase, accepted: map[string]bool{
			"shell command": true, "command substitution": true, "path traversal": true, "space": true,
			"300 characters": true, "upper case": true, "backtick": true, "slash": true, "leading dash (option)": true,
		}},
		"container": {base: directBase},
		"stage":     {base: directBase},
	}
	type row struct {
		field, value string
		ok           bool
	}
	tests := map[string]row{}
	for field, f := range fields {
		for label, v := range values {
			tests[field+" with "+label] = row{field: field, value: v, ok: f.accepted[label]}
		}
	}
	tests["nodeName longer than 1024 characters"] = row{field: "nodeName", value: strings.Repeat("n", 1025), ok: false}
	tests["nodeName of exactly 1024 characters"] = row{field: "nodeName", value: strings.Repeat("n", 1024), ok: true}
	tests["nodeName with DEL"] = row{field: "nodeName", value: "a\x7fb", ok: false}
	tests["template of 253 characters"] = row{field: "template", value: strings.Repeat("t", 253), ok: true}
	tests["template of 254 characters"] = row{field: "template", value: strings.Repeat("t", 254), ok: false}
	tests["template ending in a dot"] = row{field: "template", value: "main.", ok: false}
	tests["resume of 253 characters"] = row{field: "resume", value: strings.Repeat("r", 253), ok: true}
	tests["resume of 254 characters"] = row{field: "resume", value: strings.Repeat("r", 254), ok: false}
	tests["namespace of 63 characters"] = row{field: "namespace", value: strings.Repeat("n", 63), ok: true}
	tests["namespace of 64 characters"] = row{field: "namespace", value: strings.Repeat("n", 64), ok: false}
	tests["container of 64 characters"] = row{field: "container", value: strings.Repeat("c", 64), ok: false}
	tests["resumeUID longer than 64 characters"] = row{field: "resumeUID", value: strings.Repeat("a", 65), ok: false}

	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := body(t, with(fields[tc.field].base, tc.field, tc.value))
			if tc.field == "resumeUID" {
				in = body(t, with(resumeBase, "resumeUID", tc.value))
			}
			got, err := Parse([]byte(in))
			if tc.ok {
				if err != nil {
					t.Fatalf("Parse(%s): %v, want it accepted", in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%s) accepted %q in %s: %#v", in, tc.value, tc.field, got)
			}
			if k := fault.KindOf(err); k != fault.Invalid {
				t.Errorf("error kind = %v, want Invalid (%v)", k, err)
			}
		})
	}
}

func TestValidateStep(t *testing.T) {
	tests := map[string]struct {
		spec    v1alpha1.ResumeSpec
		wantErr string
	}{
		"original example: Workflow-ID and TemplateName": {
			spec: v1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "main"},
		},
		"node id only": {
			spec: v1alpha1.ResumeSpec{WorkflowID: "wf-1", NodeID: "wf-1-123"},
		},
		"spec without workflow": {
			spec:    v1alpha1.ResumeSpec{TemplateName: "main"},
			wantErr: "workflow is empty",
		},
		"spec without step selector": {
			spec:    v1alpha1.ResumeSpec{WorkflowID: "wf-1", Container: "main"},
			wantErr: "no step named",
		},
		"spec naming the wait container": {
			spec:    v1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "main", Container: "wait"},
			wantErr: "Argo's own",
		},
		"spec with a shell in the container": {
			spec:    v1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "main", Container: "main; rm -rf /"},
			wantErr: "not a valid container name",
		},
		"spec with a bad stage": {
			spec:    v1alpha1.ResumeSpec{WorkflowID: "wf-1", TemplateName: "main", Stage: "later"},
			wantErr: "is neither",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateStep(StepOf(tc.spec))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateStep: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateStep = %v, want an error containing %q", err, tc.wantErr)
			}
			if k := fault.KindOf(err); k != fault.Invalid {
				t.Errorf("error kind = %v, want Invalid", k)
			}
		})
	}
}

func TestStepOfAndKey(t *testing.T) {
	spec := v1alpha1.ResumeSpec{WorkflowID: "wf", TemplateName: "t", NodeID: "n", NodeName: "nn", Container: "c", Stage: v1alpha1.StageBefore}
	want := Step{Workflow: "wf", Template: "t", NodeID: "n", NodeName: "nn", Container: "c", Stage: v1alpha1.StageBefore}
	if got := StepOf(spec); got != want {
		t.Errorf("StepOf = %#v, want %#v", got, want)
	}
	tests := map[string]struct {
		req  Request
		want string
	}{
		"resume request is keyed by the Resume": {
			req:  Request{Namespace: "argo", Resume: "r", Step: Step{Workflow: "wf"}},
			want: "resume/argo/r",
		},
		"direct request is keyed by the Workflow": {
			req:  Request{Namespace: "argo", Step: Step{Workflow: "wf"}},
			want: "workflow/argo/wf",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.req.Key(); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
		})
	}
	if got, wantSub := want.String(), `workflow wf template t node n node name "nn" container c stage before`; got != wantSub {
		t.Errorf("String = %q, want %q", got, wantSub)
	}
}

func TestParseEvent(t *testing.T) {
	// structured is the payload the Sensor builds from contextKey entries for the context attributes and
	// dataKey body (useRawData) for data.
	const structured = `{"id":"7f3c0a2e-1111-2222-3333-444455556666","source":"resume-source","specversion":"1.0",` +
		`"type":"resource","subject":"resume","time":"2026-05-04T10:11:12Z","datacontenttype":"application/json",` +
		`"data":{"apiVersion":"argocontroller.io/v1alpha1","kind":"Resume","metadata":{"name":"resume-1","namespace":"argo"}}}`
	type want struct {
		id, source, specversion, typ, subject, contentType string
		time                                               time.Time
		dataName                                           string
	}
	tests := map[string]struct {
		in      []byte
		isNil   bool
		want    want
		wantErr bool
	}{
		"nil payload gives nil":   {in: nil, isNil: true},
		"empty payload gives nil": {in: []byte{}, isNil: true},
		"JSON null gives nil":     {in: []byte("null"), isNil: true},
		"structured CloudEvent as the Sensor builds it": {
			in: []byte(structured),
			want: want{
				id: "7f3c0a2e-1111-2222-3333-444455556666", source: "resume-source", specversion: "1.0",
				typ: "resource", subject: "resume", contentType: "application/json",
				time: time.Date(2026, 5, 4, 10, 11, 12, 0, time.UTC), dataName: "resume-1",
			},
		},
		"garbage is refused":                       {in: []byte("not json at all"), wantErr: true},
		"empty object is refused (no specversion)": {in: []byte("{}"), wantErr: true},
		"JSON array is refused":                    {in: []byte(`[{"specversion":"1.0"}]`), wantErr: true},
		"payload that is not an event is refused": {
			in: []byte(`{"object":{"metadata":{"name":"r"}},"eventID":"x"}`), wantErr: true,
		},
		"extension with an object value is refused": {
			in: []byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","extra":{"x":1}}`), wantErr: true,
		},
		"bad time is refused": {
			in: []byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`), wantErr: true,
		},
		"trailing garbage is refused": {
			in: []byte(structured + " x"), wantErr: true,
		},
		"whitespace only is refused": {in: []byte("  "), wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ev, err := ParseEvent(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseEvent(%q) = %v, want an error", tc.in, ev)
				}
				if k := fault.KindOf(err); k != fault.Invalid {
					t.Errorf("error kind = %v, want Invalid (%v)", k, err)
				}
				if ev != nil {
					t.Errorf("ParseEvent returned an event with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvent(%q): %v", tc.in, err)
			}
			if tc.isNil {
				if ev != nil {
					t.Fatalf("ParseEvent(%q) = %v, want nil", tc.in, ev)
				}
				return
			}
			if ev == nil {
				t.Fatal("ParseEvent returned nil")
			}
			got := want{
				id: ev.ID(), source: ev.Source(), specversion: ev.SpecVersion(), typ: ev.Type(),
				subject: ev.Subject(), contentType: ev.DataContentType(), time: ev.Time().UTC(),
			}
			var data struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := ev.DataAs(&data); err != nil {
				t.Fatalf("DataAs: %v", err)
			}
			got.dataName = data.Metadata.Name
			if got != tc.want {
				t.Errorf("event = %+v, want %+v", got, tc.want)
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("the decoded event is not valid: %v", err)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    string
		wantErr string
	}{
		"the Sensor's YAML (sorted keys, quoted strings) becomes a JSON object": {
			in:   "namespace: \"\"\nresume: \"\"\nworkflow: \"\"\n",
			want: `{"namespace":"","resume":"","workflow":""}`,
		},
		"values are kept":               {in: "namespace: argo\nstage: after\n", want: `{"namespace":"argo","stage":"after"}`},
		"null reads as empty":           {in: "namespace: null\n", want: `{"namespace":""}`},
		"empty spec is an empty object": {in: "", want: `{}`},
		"unknown key":                   {in: "namespace: argo\nworkflowName: wf\n", wantErr: `trigger spec key "workflowName" is unknown`},
		"key in another case":           {in: "Namespace: argo\n", wantErr: `trigger spec key "Namespace" is unknown`},
		"unquoted number":               {in: "nodeID: 010\n", wantErr: `trigger spec key "nodeID" holds 8, not a string`},
		"unquoted boolean":              {in: "stage: true\n", wantErr: `holds true, not a string`},
		"a list is no map":              {in: "- namespace\n", wantErr: "trigger spec is not a map of strings"},
		"a nested map is no string":     {in: "namespace:\n  a: b\n", wantErr: `trigger spec key "namespace" holds`},
		"too large":                     {in: "namespace: \"" + strings.Repeat("a", 70000) + "\"\n", wantErr: "more than 65536"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSpec([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("ParseSpec = %s, %v; want an Invalid error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ParseSpec = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// A refused value is echoed in part only: errors reach the caller, the Resume's status and the log.
func TestRefusedValuesAreNotEchoedWhole(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB
	for name, in := range map[string]string{
		"workflow": `{"namespace":"argo","workflow":"` + huge + `","template":"t"}`,
		"template": `{"namespace":"argo","workflow":"wf","template":"` + huge + `"}`,
		"key":      `{"namespace":"argo","` + huge + `":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if len(err.Error()) > 512 || !strings.Contains(err.Error(), "bytes)") || !utf8.ValidString(err.Error()) {
				t.Errorf("error of %d bytes (valid UTF-8: %v): %.200s", len(err.Error()), utf8.ValidString(err.Error()), err)
			}
		})
	}
}
