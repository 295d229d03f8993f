package inspect

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// Verdicts of why, per candidate.
const (
	VerdictReleasable = "releasable" // a Resume would release it now
	VerdictWaiting    = "waiting"    // not yet: a Resume would wait for it (until its deadline)
	VerdictNarrow     = "narrow"     // the request must say more (a stage, a container)
	VerdictNo         = "no"         // never, as things stand
)

// Candidate is one thing the server's lookup considered, and what it would do with it.
type Candidate struct {
	// Node is the node's id; NodeName its full name (known for releasable candidates).
	Node      string `json:"node,omitempty"`
	NodeName  string `json:"nodeName,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Verdict   string `json:"verdict"`
	Why       string `json:"why"`
}

// Explanation is what `kubectl resume why` prints, structured.
type Explanation struct {
	Namespace  string      `json:"namespace"`
	Workflow   string      `json:"workflow"`
	Step       string      `json:"step"`
	Candidates []Candidate `json:"candidates"`
}

// Explain runs the server's own lookup for step in namespace ns, read-only and with the finder's clients,
// and says for each candidate whether a Resume would release it now, would wait for it, needs a narrower
// request, or never would. A step that names neither template nor node makes every node that runs a pod a
// candidate. The error is one the lookup cannot judge past: the step is not valid, the Workflow does not
// exist, or the API server refused or failed a read (a 403 for a user without the rights, say).
func Explain(ctx context.Context, finder *lookup.Finder, ns string, step request.Step) (Explanation, error) {
	check := step
	if check.Template == "" && check.NodeID == "" && check.NodeName == "" {
		check.Template = "every-node" // no filter: every node is a candidate; the rest is checked
	}
	if err := request.ValidateStep(check); err != nil {
		return Explanation{}, err
	}
	res, err := finder.Find(ctx, ns, step)
	if err != nil && (lookup.IsNoWorkflow(err) || IsAPIError(err)) {
		return Explanation{}, err
	}
	ex := Explanation{Namespace: ns, Workflow: step.Workflow, Step: step.String()}
	for _, t := range res.Targets {
		ex.Candidates = append(ex.Candidates, Candidate{
			Node: t.Node, NodeName: t.NodeName, Pod: t.Pod, Container: t.Container, Stage: string(t.Stage),
			Verdict: VerdictReleasable, Why: fmt.Sprintf("container %s is paused %s its command: a Resume releases it now", t.Container, t.Stage),
		})
	}
	for _, s := range res.Skipped {
		ex.Candidates = append(ex.Candidates, Candidate{Node: s.Node, Pod: s.Pod, Verdict: verdict(s.Reason), Why: s.Reason.Error()})
	}
	if err != nil && len(res.Skipped) == 0 {
		ex.Candidates = append(ex.Candidates, Candidate{Verdict: verdict(err), Why: err.Error()})
	}
	return ex, nil
}

// verdict says in one word what the server would do with a candidate it skipped for reason.
func verdict(reason error) string {
	switch fault.KindOf(reason) {
	case fault.Transient, fault.Unknown:
		return VerdictWaiting
	case fault.Invalid:
		return VerdictNarrow
	case fault.NotFound, fault.Precondition, fault.Denied:
		return VerdictNo
	}
	return VerdictNo
}

// IsAPIError reports whether err comes from the API server (forbidden, unreachable, …) rather than from
// the lookup's judgement.
func IsAPIError(err error) bool {
	var status apierrors.APIStatus
	var transport *url.Error
	return errors.As(err, &status) || errors.As(err, &transport)
}
