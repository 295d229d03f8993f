package plugin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	typedv1alpha1 "github.com/argocontroller/resume-trigger/internal/client/clientset/versioned/typed/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// pollInterval is how often --wait reads the Resume back.
const pollInterval = 250 * time.Millisecond

type resumeOptions struct {
	*options
	template, node, container, stage string
	wait                             bool
	timeout                          time.Duration
}

func newResumeCommand(o *options) *cobra.Command {
	r := &resumeOptions{options: o}
	cmd := &cobra.Command{
		Use:   "kubectl-resume WORKFLOW [--template T | --node NAME_OR_ID] [--container C] [--stage before|after] [--wait] [--timeout 2m]",
		Short: "Release a debug-paused step of an Argo Workflow by creating a Resume",
		Long: `Release a debug-paused step (ARGO_DEBUG_PAUSE_BEFORE/AFTER) of an Argo Workflow: creates a Resume
in the workflow's namespace with your own credentials; resume-trigger releases the step. With --wait,
follows the Resume to its end and prints what was released, or why it failed (non-zero exit).`,
		Example: `  kubectl resume hello-world --template pause --wait
  kubectl resume list -A
  kubectl resume why hello-world --template pause`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl resume"},
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.template, "template", "", "the step's template (templateName or templateRef.template)")
	f.StringVar(&r.node, "node", "", "the step's node: its id, name or display name")
	f.StringVar(&r.container, "container", "", "release only this container (default: every paused container of the step)")
	f.StringVar(&r.stage, "stage", "", "the pause to release: before or after (default: the one the container pauses at)")
	f.BoolVar(&r.wait, "wait", false, "follow the Resume until it ends and print what was released")
	f.DurationVar(&r.timeout, "timeout", 2*time.Minute, "with --wait, how long to wait; also the Resume's activeDeadlineSeconds")
	_ = cmd.RegisterFlagCompletionFunc("stage", cobra.FixedCompletions([]string{string(v1alpha1.StageBefore), string(v1alpha1.StageAfter)}, cobra.ShellCompDirectiveNoFileComp))
	cmd.MarkFlagsMutuallyExclusive("template", "node")
	return cmd
}

// nodeIDPattern matches the ids Argo gives nodes: the workflow name, a dash and a decimal hash.
var nodeIDPattern = regexp.MustCompile(`^[a-z0-9.-]+-[0-9]+$`)

// step is what the flags ask for.
func (r *resumeOptions) step(workflow string) request.Step {
	s := request.Step{Workflow: workflow, Template: r.template, Container: r.container, Stage: v1alpha1.Stage(r.stage)}
	if r.node != "" {
		if strings.HasPrefix(r.node, workflow+"-") && nodeIDPattern.MatchString(r.node) {
			s.NodeID = r.node
		} else {
			s.NodeName = r.node
		}
	}
	return s
}

func (r *resumeOptions) run(ctx context.Context, workflow string) error {
	step := r.step(workflow)
	if step.Template == "" && step.NodeID == "" && step.NodeName == "" {
		return errors.New("name the step: --template T or --node NAME_OR_ID (see: kubectl resume why " + workflow + ")")
	}
	if err := request.ValidateStep(step); err != nil {
		return err
	}
	if r.wait && r.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	c, err := r.clients()
	if err != nil {
		return err
	}
	var deadline time.Duration
	if r.wait {
		deadline = r.timeout
	}
	resumes := c.resumes.ArgocontrollerV1alpha1().Resumes(c.namespace)
	created, err := resumes.Create(ctx, request.NewResume(c.namespace, step, deadline), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Resume for workflow %s in namespace %s: %w", workflow, c.namespace, err)
	}
	if r.output == outputTable {
		_, _ = fmt.Fprintf(r.streams.Out, "resume.%s/%s created\n", v1alpha1.GroupVersion.Group, created.Name)
	}
	if !r.wait {
		if r.output != outputTable {
			return printStructured(r.streams.Out, r.output, withType(created))
		}
		return nil
	}
	return r.follow(ctx, resumes, created.Name)
}

// follow reads the Resume back until it ends, or the timeout passes.
func (r *resumeOptions) follow(ctx context.Context, resumes typedv1alpha1.ResumeInterface, name string) error {
	wctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var last *v1alpha1.Resume
	for {
		got, err := resumes.Get(wctx, name, metav1.GetOptions{})
		if err == nil {
			last = got
			if last.Status.Phase.Final() {
				return r.report(last)
			}
		} else if wctx.Err() == nil {
			return fmt.Errorf("read Resume %s: %w", name, err)
		}
		select {
		case <-wctx.Done():
			return timedOut(name, r.timeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// withType is res with its apiVersion and kind, which a typed client's answer leaves out, for printing.
func withType(res *v1alpha1.Resume) *v1alpha1.Resume {
	res = res.DeepCopy()
	res.APIVersion, res.Kind = v1alpha1.GroupVersion.String(), v1alpha1.Kind
	return res
}

// report prints a Resume that ended, and returns the failure if it failed.
func (r *resumeOptions) report(res *v1alpha1.Resume) error {
	st := res.Status
	if r.output != outputTable {
		if err := printStructured(r.streams.Out, r.output, withType(res)); err != nil {
			return err
		}
	} else {
		for _, t := range st.Released {
			via := ""
			if t.Via != "" {
				via = " (marker created from " + t.Via + ")"
			}
			_, _ = fmt.Fprintf(r.streams.Out, "released pod %s container %s stage %s%s\n", t.Pod, t.Container, t.Stage, via)
		}
		if st.Phase == v1alpha1.PhaseSucceeded {
			_, _ = fmt.Fprintf(r.streams.Out, "resume %s %s (%s): %s\n", res.Name, st.Phase, st.Reason, st.Message)
		}
	}
	if st.Phase == v1alpha1.PhaseFailed {
		return fmt.Errorf("resume %s failed (%s): %s", res.Name, st.Reason, st.Message)
	}
	return nil
}

func timedOut(name string, timeout time.Duration, last *v1alpha1.Resume) error {
	if last == nil {
		return fmt.Errorf("resume %s: not read back within %v", name, timeout)
	}
	st := last.Status
	msg := fmt.Sprintf("resume %s did not end within %v: phase %s", name, timeout, orNone(string(st.Phase)))
	if st.Message != "" {
		msg += ": " + st.Message
	}
	for _, w := range st.Waiting {
		msg += fmt.Sprintf("; node %s waits: %s", w.Node, w.Reason)
	}
	if st.Phase == "" {
		msg += " (nothing has looked at it: is resume-trigger running, and its Sensor?)"
	}
	return errors.New(msg)
}

func orNone(s string) string {
	if s == "" {
		return "(none yet)"
	}
	return s
}
