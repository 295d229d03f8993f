package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// install runs the shipped overlays as a user installs them: install namespace argo-resume, apart from
// team-a and team-b, whose workflows it serves. It starts on first use.
var install = &lane{name: "install", namespace: "team-a", opts: chain.Options{
	Overlay:           rig.NamespaceInstallDir,
	InstallNamespace:  chain.DefaultInstallNamespace,
	Namespaces:        []string{"team-a"},
	WebhookNamespaces: []string{"team-a"},
	ExtraNamespaces:   []string{"team-b"},
}}

const teamB = "team-b"

// Every object comes from the shipped overlays, rendered with only install.yaml edited (served and webhook
// namespaces); the chain changes nothing but the Sensor's address and the server's listen addresses.
//
//  1. namespace-install serving team-a only: a Resume in team-a is released; one in team-b is not, and
//     nothing is exec'd there. The team-b Resume stops at the Sensor's filter: it is created before the
//     team-a one and the Sensor takes events in order, so once team-a's is released team-b's was passed
//     over.
//  2. cluster-install, same install namespace: a Resume and a webhook call for team-b are released.
//  3. namespace-install serving team-a only again: a webhook call for team-b reaches the server, which
//     refuses it, and nothing is exec'd. Last, because the Sensor keeps retrying the refused call.
func TestInstallServesOnlyItsNamespaces(t *testing.T) {
	c := install.acquire(t)
	ctx := rig.Context(t, 5*time.Minute)
	if c.InstallNamespace == c.Namespace || c.Namespace != "team-a" {
		t.Fatalf("install namespace %s, served %s: want argo-resume apart from team-a", c.InstallNamespace, c.Namespace)
	}
	began := time.Now()
	stepA, err := c.CreatePausedStepIn(ctx, c.Namespace, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	stepB, err := c.CreatePausedStepIn(ctx, teamB, "b-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(ctx, "b-1", stepB); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResume(ctx, "a-1", stepA); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResumePhase(ctx, "a-1", v1alpha1.PhaseSucceeded); err != nil {
		t.Fatalf("team-a, served: %v", err)
	}
	if _, err := c.WaitMarker(ctx, stepA); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetResumeIn(ctx, teamB, "b-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.Phase != "" {
		t.Errorf("team-b's Resume, not served, has status %q (%s): it should stop at the Sensor's filter", res.Status.Phase, res.Status.Message)
	}
	if calls := c.CallsIn(teamB); len(calls) != 0 {
		t.Fatalf("execs into team-b, which namespace-install does not serve: %s", chain.FormatCalls(calls))
	}
	t.Logf("namespace-install: team-a's Resume released, team-b's passed over, in %v", time.Since(began).Round(time.Millisecond))

	// cluster-install. The team-b Resume no one served is deleted first: the server lists every Resume
	// when it starts and would take it up, which is right, but this case is about the Sensor's path.
	began = time.Now()
	if err := c.Dynamic().Resource(v1alpha1.Resource).Namespace(teamB).Delete(ctx, "b-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reinstall(ctx, rig.ClusterInstallDir, []string{"*"}, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(c.ServerArgs(), " "); !strings.Contains(args, "--namespaces=* ") || !strings.Contains(args, "--webhook-namespaces=* ") {
		t.Fatalf("cluster-install's server args %q lack --namespaces=* and --webhook-namespaces=*", args)
	}
	if _, err := c.CreateResume(ctx, "b-2", stepB); err != nil {
		t.Fatal(err)
	}
	if err := waitResumeIn(c, teamB, "b-2", v1alpha1.PhaseSucceeded, 90*time.Second); err != nil {
		t.Fatalf("team-b under cluster-install: %v", err)
	}
	if _, err := c.WaitMarker(ctx, stepB); err != nil {
		t.Fatal(err)
	}
	stepB2, err := c.CreatePausedStepIn(ctx, teamB, "b-2")
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := c.PostWebhook(ctx, c.WebhookToken, stepB2.ReleaseRequest()); err != nil || code != 200 {
		t.Fatalf("webhook for team-b: %d %q %v", code, body, err)
	}
	if _, err := c.WaitMarker(ctx, stepB2); err != nil {
		t.Fatalf("cluster-install, webhook for team-b: %v", err)
	}
	t.Logf("cluster-install: a Resume and a webhook call for team-b released in %v", time.Since(began).Round(time.Millisecond))

	// namespace-install serving team-a again: the webhook call for team-b is refused by the server.
	began = time.Now()
	stepB3, err := c.CreatePausedStepIn(ctx, teamB, "b-3")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reinstall(ctx, rig.NamespaceInstallDir, []string{"team-a"}, []string{"team-a"}); err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{"kind": "direct", "outcome": string(v1alpha1.PhaseFailed)}
	if code, body, err := c.PostWebhook(ctx, c.WebhookToken, stepB3.ReleaseRequest()); err != nil || code != 200 {
		t.Fatalf("webhook for team-b: %d %q %v; want 200 from the EventSource (the server decides)", code, body, err)
	}
	if err := rig.Eventually(ctx, func() error {
		n, err := c.Metric(ctx, "resume_trigger_requests_total", refused)
		if err == nil && n < 1 {
			err = errors.New("the server has not refused the team-b webhook call yet")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if log := c.LogFile(chain.Server); !fileContains(log, "namespace team-b is not served") {
		t.Errorf("the server's log %s does not say why the team-b webhook call was refused", log)
	}
	if calls := c.MarkerCalls(stepB3); len(calls) != 0 {
		t.Fatalf("execs into team-b's step after namespace-install refused it: %s", chain.FormatCalls(calls))
	}
	for _, call := range c.CallsIn(teamB) {
		if !slices.Contains([]string{stepB.Pod, stepB2.Pod}, call.Pod) {
			t.Errorf("unexpected exec into team-b: %s", chain.FormatCalls([]rig.Call{call}))
		}
	}
	t.Logf("namespace-install again: the webhook call for team-b refused in %v", time.Since(began).Round(time.Millisecond))
}

// waitResumeIn waits until Resume ns/name reaches phase.
func waitResumeIn(c *chain.Chain, ns, name string, phase v1alpha1.Phase, d time.Duration) error {
	ctx, cancel := contextFor(d)
	defer cancel()
	return rig.Eventually(ctx, func() error {
		res, err := c.GetResumeIn(ctx, ns, name)
		if err != nil {
			return err
		}
		if res.Status.Phase != phase {
			return fmt.Errorf("resume %s/%s is %q (%s), want %s", ns, name, res.Status.Phase, res.Status.Message, phase)
		}
		return nil
	})
}
