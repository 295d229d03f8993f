package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/text"
)

// Step says which paused step, container and stage to release within one namespace.
type Step struct {
	Workflow  string
	Template  string
	NodeID    string
	NodeName  string
	Container string
	Stage     v1alpha1.Stage
}

// Request is one validated call to release a step. A Request that names a Resume takes its Step from that
// object when it is read; a direct Request (the webhook path) carries its Step itself.
type Request struct {
	Namespace string
	Resume    string
	ResumeUID types.UID
	Step      Step
	// WorkflowHint is, for a request naming a Resume, the workflow its event names (the Sensor maps it
	// from the event's copy of the object): the server starts reading it while it reads the Resume, and
	// uses that read only if the live spec names the same workflow. Empty when not a valid object name.
	WorkflowHint string
	// Revisit marks the server's own second look at a Pending Resume, not a caller's request.
	Revisit bool
	// Event is the id of the CloudEvent that triggered the request, when the Sensor passed it: the same
	// for every retry of that event.
	Event string
}

// Key identifies the object a Request is about, for serialising concurrent duplicates.
func (r Request) Key() string {
	if r.Resume != "" {
		return "resume/" + r.Namespace + "/" + r.Resume
	}
	return "workflow/" + r.Namespace + "/" + r.Step.Workflow
}

// Workflow is the workflow the request names, for logs: the step's, or a Resume request's hint.
func (r Request) Workflow() string {
	if r.Step.Workflow != "" {
		return r.Step.Workflow
	}
	return r.WorkflowHint
}

// wire is the JSON the Sensor sends after applying its parameters to the trigger's spec.
type wire struct {
	Namespace string `json:"namespace"`
	Resume    string `json:"resume"`
	ResumeUID string `json:"resumeUID"`
	Workflow  string `json:"workflow"`
	Template  string `json:"template"`
	NodeID    string `json:"nodeID"`
	NodeName  string `json:"nodeName"`
	Container string `json:"container"`
	Stage     string `json:"stage"`
}

// Keys lists the fields a request may carry, in the order the Sensor YAML documents them.
var Keys = []string{"namespace", "resume", "resumeUID", "workflow", "template", "nodeID", "nodeName", "container", "stage"}

// maxSpecSize bounds the trigger spec ParseSpec accepts; ours holds a few short strings.
const maxSpecSize = 64 << 10

// ParseSpec turns the trigger's custom.spec, which the Sensor sends as YAML of a string map, into the JSON
// object its parameters are then applied to. Only the request's keys are allowed, each with a string.
func ParseSpec(data []byte) ([]byte, error) {
	if len(data) > maxSpecSize {
		return nil, fault.Invalidf("trigger spec is %d bytes, more than %d", len(data), maxSpecSize)
	}
	// Decoded untyped: into a map of strings, sigs.k8s.io/yaml would turn an unquoted 010 into "8" or
	// true into "true" without a word. The Sensor quotes every string value, so a non-string is a mistake.
	raw := map[string]any{}
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, fault.Invalidf("trigger spec is not a map of strings (custom.spec holds string values only): %s", cut(err.Error()))
	}
	spec := map[string]string{}
	for k, v := range raw {
		if !slices.Contains(Keys, k) {
			return nil, fault.Invalidf("trigger spec key %s is unknown: use %v", echo(k), Keys)
		}
		switch v := v.(type) {
		case string:
			spec[k] = v
		case nil:
			spec[k] = ""
		default:
			return nil, fault.Invalidf("trigger spec key %s holds %s, not a string (custom.spec holds string values only; quote it)", echo(k), cut(fmt.Sprint(v)))
		}
	}
	return json.Marshal(spec)
}

// Parse decodes and validates the JSON request. Unknown keys and non-string values are refused, so that a
// typo in the Sensor's parameters shows up as an error instead of an ignored field.
func Parse(data []byte) (Request, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Request{}, fault.Invalidf("the trigger request is not a JSON object of strings with keys %s: %s", strings.Join(Keys, ", "), cut(err.Error()))
	}
	// Anything but JSON whitespace after the object is refused. dec.More alone misses a stray '}' or ']'.
	if rest := data[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) > 0 {
		return Request{}, fault.Invalidf("the trigger request holds more than one JSON value, or characters after its object")
	}
	// encoding/json matches keys regardless of case; the Sensor's keys are exact, so ours are too.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return Request{}, fault.Invalidf("the trigger request is not a JSON object: %s", cut(err.Error()))
	}
	for k := range keys {
		if !slices.Contains(Keys, k) {
			return Request{}, fault.Invalidf("the trigger request has key %s: the keys are %s, spelled exactly so", echo(k), strings.Join(Keys, ", "))
		}
	}
	r := Request{
		Namespace: strings.TrimSpace(w.Namespace),
		Resume:    strings.TrimSpace(w.Resume),
		ResumeUID: types.UID(strings.TrimSpace(w.ResumeUID)),
		Step: Step{
			Workflow:  strings.TrimSpace(w.Workflow),
			Template:  strings.TrimSpace(w.Template),
			NodeID:    strings.TrimSpace(w.NodeID),
			NodeName:  strings.TrimSpace(w.NodeName),
			Container: strings.TrimSpace(w.Container),
			Stage:     v1alpha1.Stage(strings.TrimSpace(w.Stage)),
		},
	}
	if r.Resume != "" {
		// The Sensor also maps the Resume's spec into the request, from the event's copy of the object; the
		// live object is what counts, so those fields are not used (nor judged) here. The workflow's name
		// only starts a read that the spec may use; one that is no object name starts nothing.
		if len(validation.IsDNS1123Subdomain(r.Step.Workflow)) == 0 {
			r.WorkflowHint = r.Step.Workflow
		}
		r.Step = Step{}
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Validate checks every name the request carries. A Request naming a Resume carries no Step: the step is
// read from the object and checked with ValidateStep then, so that a spec the server refuses is written
// into that Resume's status instead of failing before the object is even read.
func (r Request) Validate() error {
	if r.Namespace == "" {
		return fault.Invalidf("namespace is empty: map it from the event (body.metadata.namespace for a Resume, body.namespace for the webhook)")
	}
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fault.Invalidf("namespace %s is not a valid namespace name: %s", echo(r.Namespace), strings.Join(errs, "; "))
	}
	if r.Resume != "" {
		if errs := validation.IsDNS1123Subdomain(r.Resume); len(errs) > 0 {
			return fault.Invalidf("resume %s is not a valid object name: %s", echo(r.Resume), strings.Join(errs, "; "))
		}
		if r.ResumeUID != "" && !uidPattern.MatchString(string(r.ResumeUID)) {
			return fault.Invalidf("resumeUID %s is not a UID", echo(string(r.ResumeUID)))
		}
		return nil
	}
	return ValidateStep(r.Step)
}

var (
	uidPattern      = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)
	templatePattern = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$`)
)

// ValidateStep checks a complete Step: a workflow and at least one of template, node id and node name.
func ValidateStep(s Step) error {
	if s.Workflow == "" {
		return fault.Invalidf("workflow is empty: name the Workflow whose step is paused")
	} else if errs := validation.IsDNS1123Subdomain(s.Workflow); len(errs) > 0 {
		return fault.Invalidf("workflow %s is not a valid Workflow name: %s", echo(s.Workflow), strings.Join(errs, "; "))
	} else if len(s.Workflow) > validation.LabelValueMaxLength {
		// Argo labels every pod with the workflow's name, so a longer name cannot exist.
		return fault.Invalidf("workflow %s is longer than %d characters, which Argo does not allow", echo(s.Workflow), validation.LabelValueMaxLength)
	}
	if s.Template == "" && s.NodeID == "" && s.NodeName == "" {
		return fault.Invalidf("no step named: set the template name, a node id or a node name")
	}
	if s.Template != "" && (len(s.Template) > 253 || !templatePattern.MatchString(s.Template)) {
		return fault.Invalidf("template %s is not a valid template name (letters, digits, '-', '_', '.', at most 253)", echo(s.Template))
	}
	if s.NodeID != "" {
		if errs := validation.IsDNS1123Subdomain(s.NodeID); len(errs) > 0 {
			return fault.Invalidf("node id %s is not a valid node id: %s", echo(s.NodeID), strings.Join(errs, "; "))
		}
	}
	if s.NodeName != "" {
		if len(s.NodeName) > 1024 || strings.ContainsFunc(s.NodeName, isControl) {
			return fault.Invalidf("node name %s is longer than 1024 characters or holds control characters", echo(s.NodeName))
		}
	}
	if s.Container != "" {
		if errs := validation.IsDNS1123Label(s.Container); len(errs) > 0 {
			return fault.Invalidf("container %s is not a valid container name: %s", echo(s.Container), strings.Join(errs, "; "))
		}
		if argo.IsArgoContainer(s.Container) {
			return fault.Invalidf("container %q is Argo's own and never paused: name the step's container (usually main)", s.Container)
		}
	}
	switch s.Stage {
	case "", v1alpha1.StageBefore, v1alpha1.StageAfter:
	default:
		return fault.Invalidf("stage %s is neither %q nor %q", echo(string(s.Stage)), v1alpha1.StageBefore, v1alpha1.StageAfter)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// StepOf returns the Step a Resume's spec asks for.
func StepOf(spec v1alpha1.ResumeSpec) Step {
	return Step{
		Workflow:  spec.WorkflowID,
		Template:  spec.TemplateName,
		NodeID:    spec.NodeID,
		NodeName:  spec.NodeName,
		Container: spec.Container,
		Stage:     spec.Stage,
	}
}

// String describes the step for logs and messages.
func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workflow %s", s.Workflow)
	if s.Template != "" {
		fmt.Fprintf(&b, " template %s", s.Template)
	}
	if s.NodeID != "" {
		fmt.Fprintf(&b, " node %s", s.NodeID)
	}
	if s.NodeName != "" {
		fmt.Fprintf(&b, " node name %q", s.NodeName)
	}
	if s.Container != "" {
		fmt.Fprintf(&b, " container %s", s.Container)
	}
	if s.Stage != "" {
		fmt.Fprintf(&b, " stage %s", s.Stage)
	}
	return b.String()
}

// maxEcho bounds how much of a refused value (or of a decoder's error, which may quote it) an error
// repeats: enough to recognise it, never the whole of a hostile megabyte (errors reach the caller, the
// Resume's status and the log).
const maxEcho = 128

// echo quotes a refused value for an error message, cut to maxEcho bytes.
func echo(v string) string { return strconv.Quote(cut(v)) }

// cut is echo without the quotes, for values that are not strings.
func cut(v string) string { return text.Cut(v, maxEcho) }
