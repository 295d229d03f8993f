package plugin

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/argocontroller/resume-trigger/internal/inspect"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

// Verdicts of why, per candidate (inspect's, named here for the plugin's callers).
const (
	VerdictReleasable = inspect.VerdictReleasable
	VerdictWaiting    = inspect.VerdictWaiting
	VerdictNarrow     = inspect.VerdictNarrow
	VerdictNo         = inspect.VerdictNo
)

type (
	// Candidate is one thing the server's lookup considered, and what it would do with it.
	Candidate = inspect.Candidate
	// Explanation is why's structured output.
	Explanation = inspect.Explanation
)

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
			finder := &lookup.Finder{Workflows: lookup.RESTWorkflows{Client: c.workflows.ArgoprojV1alpha1().RESTClient()}, Pods: c.kube}
			ex, err := inspect.Explain(cmd.Context(), finder, c.namespace, r.step(args[0]))
			if err != nil {
				return err
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
