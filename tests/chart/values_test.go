package chart

import (
	"strings"
	"testing"

	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
)

// What the server would refuse, helm refuses before anything reaches the cluster (`helm template` and
// `helm install`), with a message naming the value. `helm lint` refuses what values.schema.json refuses;
// the checks between values are `fail` calls in the templates, which Helm's lint mode only logs, so lint
// is asked to refuse the schema's cases only (relation: true marks the others).
func TestChartRefusesBadValues(t *testing.T) {
	root := repoRoot(t)
	served := []any{"team-a"}
	for name, tc := range map[string]struct {
		values   helmchart.Values
		want     []string // each in the error
		relation bool     // refused by a check between values (templates), not by the schema
	}{
		"no served namespace":                     {helmchart.Values{}, []string{"namespaces: list the namespaces"}, true},
		"a namespace with a space":                {helmchart.Values{"namespaces": []any{"team a"}}, []string{"namespaces", "team a"}, false},
		"two namespaces in one string":            {helmchart.Values{"namespaces": []any{"team-a, team-b"}}, []string{"namespaces"}, false},
		"a namespace with capitals":               {helmchart.Values{"namespaces": []any{"Team-A"}}, []string{"namespaces", "Team-A"}, false},
		"a namespace longer than a DNS label":     {helmchart.Values{"namespaces": []any{strings.Repeat("a", 64)}}, []string{"namespaces"}, false},
		"namespaces as a comma string":            {helmchart.Values{"namespaces": "team-a,team-b"}, []string{"namespaces"}, false},
		"* beside a name":                         {helmchart.Values{"namespaces": []any{"*", "team-a"}}, []string{"namespaces"}, false},
		"a namespace twice":                       {helmchart.Values{"namespaces": []any{"team-a", "team-a"}}, []string{"namespaces"}, false},
		"the install namespace served":            {helmchart.Values{"namespaces": []any{installNamespace}}, []string{"names the install namespace argo-resume"}, true},
		"a webhook namespace not served":          {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"enabled": true, "namespaces": []any{"team-b"}}}, []string{"webhook.namespaces names team-b, which namespaces [team-a] does not serve"}, true},
		"webhook namespaces with the webhook off": {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"namespaces": served}}, []string{"webhook.enabled is false"}, true},
		"an unknown value":                        {helmchart.Values{"namespaces": served, "namespace": "team-a"}, []string{"namespace"}, false},
		"a misspelt nested value":                 {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"enable": true}}, []string{"enable"}, false},
		"an unknown TLS mode":                     {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "self-signed"}}, []string{"mode"}, false},
		"an unknown log level":                    {helmchart.Values{"namespaces": served, "logLevel": "verbose"}, []string{"logLevel"}, false},
		"a duration without a unit":               {helmchart.Values{"namespaces": served, "resumeDeadline": "15"}, []string{"resumeDeadline"}, false},
		"the image tag latest":                    {helmchart.Values{"namespaces": served, "image": helmchart.Values{"tag": "latest"}}, []string{"tag"}, false},
		"no replica":                              {helmchart.Values{"namespaces": served, "replicas": 0}, []string{"replicas"}, false},
		"two replicas without leader election":    {helmchart.Values{"namespaces": served, "replicas": 2, "leaderElection": false}, []string{"replicas > 1 needs leaderElection"}, true},
		"alerts without paused metrics":           {helmchart.Values{"namespaces": served, "prometheusRule": helmchart.Values{"enabled": true}}, []string{"prometheusRule.enabled needs pausedMetrics"}, true},
		"a TLS Secret name with a space":          {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "secret", "secretName": "my tls"}}, []string{"secretName"}, false},
		"an issuer kind cert-manager lacks":       {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "cert-manager", "certManager": helmchart.Values{"issuerRef": helmchart.Values{"name": "x", "kind": "Vault"}}}}, []string{"kind"}, false},
		"no memory limit":                         {helmchart.Values{"namespaces": served, "resources": helmchart.Values{"limits": helmchart.Values{"memory": nil}}}, []string{"memory"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helmchart.Render(root, installNamespace, tc.values)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("helm template's error does not say %q:\n%v", w, err)
				}
			}
			if lerr := helmchart.Lint(root, installNamespace, tc.values); lerr == nil && !tc.relation {
				t.Errorf("helm lint accepted %v", tc.values)
			}
		})
	}
}
