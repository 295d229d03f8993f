// Package plugin is kubectl-resume, the kubectl plugin of resume-trigger: it creates Resumes and follows
// them, lists the debug-paused containers, and explains the server's lookup, all with the user's own
// credentials (kubectl's flags and kubeconfig).
package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
	"github.com/argocontroller/resume-trigger/internal/version"
)

// Output formats of every command.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// Execute runs kubectl-resume with args (without the program name). The error, if any, is the reason for
// a non-zero exit; it has not been printed.
func Execute(ctx context.Context, args []string, streams genericiooptions.IOStreams) error {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// options are the flags every command shares.
type options struct {
	config  *genericclioptions.ConfigFlags
	output  string
	streams genericiooptions.IOStreams
}

// NewCommand returns the kubectl-resume command tree: create a Resume (the root command), list, why, and
// shell completion.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), output: outputTable, streams: streams}
	root := newResumeCommand(o)
	o.config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&o.output, "output", "o", outputTable, "output format: table, json or yaml")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp))
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		switch o.output {
		case outputTable, outputJSON, outputYAML:
			return nil
		}
		return fmt.Errorf("--output %q: want table, json or yaml", o.output)
	}
	root.AddCommand(newListCommand(o), newWhyCommand(o), newVersionCommand(o))
	// --version prints the same line as the version command; both need no cluster.
	root.Version = version.Version
	root.SetVersionTemplate(version.Of(programName) + "\n")
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	return root
}

// clients are the user's API clients, from kubectl's flags.
type clients struct {
	namespace string
	kube      kubernetes.Interface
	resumes   versioned.Interface
	workflows wfclient.Interface
	metadata  metadata.Interface
}

func (o *options) clients() (*clients, error) {
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	c := &clients{namespace: ns}
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.resumes, err = versioned.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.workflows, err = wfclient.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.metadata, err = metadata.NewForConfig(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// printStructured writes v as JSON or YAML.
func printStructured(w io.Writer, format string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == outputYAML {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	_, err = w.Write(data)
	return err
}
