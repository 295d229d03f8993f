package plugin

import (
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
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
	Node      string `json:"node,omitempty"`
	NodeName  string `json:"nodeName,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Verdict   string `json:"verdict"`
	Why       string `json:"why"`
}

// Explanation is why's structured output.
type Explanation struct {
	Namespace  string      `json:"namespace"`
	Workflow   string      `json:"workflow"`
	Step       string      `json:"step"`
	Candidates []Candidate `json:"candidates"`
}

func newWhyCommand(o *options) *cobra.Command {
	r := &resumeOptions{options: o}
	cmd := &cobra.Command{
		Use:   "why WORKFLOW [--template T | --node NAME_OR_ID] [--container C] [--stage before|after]",
		Short: "Explain what a Resume for this workflow would release, and why not the rest",
		Long: `Run resume-trigger's own lookup, read-only and with your credentials (a GET of the Workflow, GETs of
its pods by the names Argo gives them, a LIST of its pods when the names do not decide), and say for each candidate node, pod and container whether a Resume would release it
now, would wait for it, needs a narrower request, or never would. Without --template or --node every
node that runs a pod is a candidate.`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			step := r.step(args[0])
			check := step
			if check.Template == "" && check.NodeID == "" && check.NodeName == "" {
				check.Template = "every-node" // no filter: every node is a candidate; the rest is checked
			}
			if err := request.ValidateStep(check); err != nil {
				return err
			}
			finder := &lookup.Finder{Workflows: lookup.RESTWorkflows{Client: c.workflows.ArgoprojV1alpha1().RESTClient()}, Pods: c.kube}
			res, err := finder.Find(cmd.Context(), c.namespace, step)
			if err != nil && (lookup.IsNoWorkflow(err) || isAPIError(err)) {
				return err
			}
			ex := Explanation{Namespace: c.namespace, Workflow: step.Workflow, Step: step.String()}
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
			if o.output != outputTable {
				return printStructured(o.streams.Out, o.output, ex)
			}
			tw := tabwriter.NewWriter(o.streams.Out, 0, 8, 3, ' ', 0)
			_, _ = fmt.Fprintln(tw, "NODE\tPOD\tCONTAINER\tSTAGE\tVERDICT\tWHY")
			for _, c := range ex.Candidates {
				_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(c.Node), dash(c.Pod), dash(c.Container), dash(c.Stage), c.Verdict, c.Why)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.template, "template", "", "the step's template (templateName or templateRef.template)")
	f.StringVar(&r.node, "node", "", "the step's node: its id, name or display name")
	f.StringVar(&r.container, "container", "", "only this container")
	f.StringVar(&r.stage, "stage", "", "the pause to release: before or after")
	cmd.MarkFlagsMutuallyExclusive("template", "node")
	return cmd
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

// isAPIError reports whether err comes from the API server (forbidden, unreachable, …) rather than from
// the lookup's judgement.
func isAPIError(err error) bool {
	var status apierrors.APIStatus
	var transport *url.Error
	return errors.As(err, &status) || errors.As(err, &transport)
}
