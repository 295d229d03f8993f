// Package version is the build's version, commit and Go version, stamped by the Makefile (-ldflags -X) from
// git describe; a plain go build says "dev".
package version

import "runtime"

// Stamped at build time: go build -ldflags "-X github.com/argocontroller/resume-trigger/internal/version.Version=v0.3.0 ...".
var (
	Version = "dev"
	Commit  = "unknown"
)

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is the one-line form the server's --version prints.
func String() string { return Of("resume-trigger") }

// Of is the one-line version of the program named program (kubectl-resume prints its own name).
func Of(program string) string {
	return program + " " + Version + " (commit " + Commit + ", " + GoVersion() + ")"
}
