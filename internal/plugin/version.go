package plugin

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/argocontroller/resume-trigger/internal/version"
)

// programName is the plugin's binary; kubectl finds it on PATH as `kubectl resume`.
const programName = "kubectl-resume"

// versionInfo is what `kubectl resume version -o json|yaml` prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// newVersionCommand prints the plugin's version, stamped at build time like the server's: the line to
// quote in a bug report, and the check that a release's archive holds the release's build.
func newVersionCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != outputTable {
				return printStructured(o.streams.Out, o.output, versionInfo{Version: version.Version, Commit: version.Commit, Go: version.GoVersion()})
			}
			_, err := fmt.Fprintln(o.streams.Out, version.Of(programName))
			return err
		},
	}
}
