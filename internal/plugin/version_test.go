package plugin

import (
	"encoding/json"
	"testing"

	"github.com/argocontroller/resume-trigger/internal/version"
)

// Both forms print without a cluster: no kubeconfig exists at the path given.
func TestVersion(t *testing.T) {
	kc := []string{"--kubeconfig", t.TempDir() + "/none"}
	want := "kubectl-resume " + version.Version + " (commit " + version.Commit + ", " + version.GoVersion() + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := run(append(args, kc...)...)
		if err != nil || out != want {
			t.Errorf("%v: %q, %v; want %q", args, out, err, want)
		}
	}
	out, err := run("version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got versionInfo
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Version != version.Version || got.Commit != version.Commit || got.Go != version.GoVersion() {
		t.Errorf("version -o json: %s (%v)", out, err)
	}
	if _, err := run("version", "extra"); err == nil {
		t.Error("version accepted an argument")
	}
}
