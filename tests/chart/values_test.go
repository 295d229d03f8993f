package chart

import (
	"strings"
	"testing"

	"github.com/argocontroller/resume-trigger/tests/internal/helmchart"
)

// What the server would refuse, helm refuses before anything reaches the cluster (`helm template`,
// `helm install` and `helm lint` alike), with a message naming the value.
func TestChartRefusesBadValues(t *testing.T) {
	root := repoRoot(t)
	served := []any{"team-a"}
	for name, tc := range map[string]struct {
		values helmchart.Values
		want   []string // each in the error
	}{
		"no served namespace":                     {helmchart.Values{}, []string{"namespaces: list the namespaces"}},
		"a namespace with a space":                {helmchart.Values{"namespaces": []any{"team a"}}, []string{"namespaces", "team a"}},
		"two namespaces in one string":            {helmchart.Values{"namespaces": []any{"team-a, team-b"}}, []string{"namespaces"}},
		"a namespace with capitals":               {helmchart.Values{"namespaces": []any{"Team-A"}}, []string{"namespaces", "Team-A"}},
		"a namespace longer than a DNS label":     {helmchart.Values{"namespaces": []any{strings.Repeat("a", 64)}}, []string{"namespaces"}},
		"namespaces as a comma string":            {helmchart.Values{"namespaces": "team-a,team-b"}, []string{"namespaces"}},
		"* beside a name":                         {helmchart.Values{"namespaces": []any{"*", "team-a"}}, []string{"namespaces"}},
		"a namespace twice":                       {helmchart.Values{"namespaces": []any{"team-a", "team-a"}}, []string{"namespaces"}},
		"the install namespace served":            {helmchart.Values{"namespaces": []any{installNamespace}}, []string{"names the install namespace argo-resume"}},
		"a webhook namespace not served":          {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"enabled": true, "namespaces": []any{"team-b"}}}, []string{"webhook.namespaces names team-b, which namespaces [team-a] does not serve"}},
		"webhook namespaces with the webhook off": {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"namespaces": served}}, []string{"webhook.enabled is false"}},
		"an unknown value":                        {helmchart.Values{"namespaces": served, "namespace": "team-a"}, []string{"namespace"}},
		"a misspelt nested value":                 {helmchart.Values{"namespaces": served, "webhook": helmchart.Values{"enable": true}}, []string{"enable"}},
		"an unknown TLS mode":                     {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "self-signed"}}, []string{"mode"}},
		"an unknown log level":                    {helmchart.Values{"namespaces": served, "logLevel": "verbose"}, []string{"logLevel"}},
		"a duration without a unit":               {helmchart.Values{"namespaces": served, "resumeDeadline": "15"}, []string{"resumeDeadline"}},
		"the image tag latest":                    {helmchart.Values{"namespaces": served, "image": helmchart.Values{"tag": "latest"}}, []string{"tag"}},
		"no replica":                              {helmchart.Values{"namespaces": served, "replicas": 0}, []string{"replicas"}},
		"two replicas without leader election":    {helmchart.Values{"namespaces": served, "replicas": 2, "leaderElection": false}, []string{"replicas > 1 needs leaderElection"}},
		"alerts without paused metrics":           {helmchart.Values{"namespaces": served, "prometheusRule": helmchart.Values{"enabled": true}}, []string{"prometheusRule.enabled needs pausedMetrics"}},
		"a TLS Secret name with a space":          {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "secret", "secretName": "my tls"}}, []string{"secretName"}},
		"an issuer kind cert-manager lacks":       {helmchart.Values{"namespaces": served, "tls": helmchart.Values{"mode": "cert-manager", "certManager": helmchart.Values{"issuerRef": helmchart.Values{"name": "x", "kind": "Vault"}}}}, []string{"kind"}},
		"no memory limit":                         {helmchart.Values{"namespaces": served, "resources": helmchart.Values{"limits": helmchart.Values{"cpu": "1"}}}, []string{"memory"}},
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
			if lerr := helmchart.Lint(root, installNamespace, tc.values); lerr == nil {
				t.Errorf("helm lint accepted %v", tc.values)
			}
		})
	}
}
