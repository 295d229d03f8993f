package plugin

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/argocontroller/resume-trigger/internal/inspect"
)

type (
	// Paused is one debug-paused container, as list shows it.
	Paused = inspect.Paused
	// PausedList is list's structured output.
	PausedList = inspect.PausedList
)

// ListPaused is inspect.ListPaused: the rule list applies.
var ListPaused = inspect.ListPaused

func newListCommand(o *options) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list [-A]",
		Short: "List the debug-paused containers of Argo Workflows",
		Long: `List the containers that are debug-paused now, by the same rule resume-trigger applies before it
releases one (ARGO_DEBUG_PAUSE_BEFORE/AFTER exactly "true" in the pod spec, pod and container running),
in pods controlled by an Argo Workflow. Reads pods with one label-selected LIST per namespace (one for -A)
and the Resumes and Workflows (metadata only) with one more each; no exec, no logs. A stage already released by a Resume is not shown.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			ns := c.namespace
			if all {
				ns = metav1.NamespaceAll
			}
			items, err := inspect.ListPaused(cmd.Context(), c.kube, c.resumes, c.metadata, ns)
			if err != nil {
				return err
			}
			if o.output != outputTable {
				return printStructured(o.streams.Out, o.output, PausedList{Items: items})
			}
			return printPaused(o.streams.Out, items, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the paused containers of every namespace")
	return cmd
}

func printPaused(w interface{ Write([]byte) (int, error) }, items []Paused, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAMESPACE\tWORKFLOW\tNODE\tTEMPLATE\tPOD\tCONTAINER\tSTAGE\tPAUSED SINCE\tRESUME")
	for _, p := range items {
		since := "<unknown>"
		if !p.Since.IsZero() {
			since = duration.HumanDuration(now.Sub(p.Since.Time))
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Workflow, p.Node, dash(p.Template), p.Pod, p.Container, p.Stage, since, dash(p.Resume))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
