package helmchart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// Dir is the chart, relative to the repository root.
const Dir = "charts/resume-trigger"

// ReleaseName is the release name the tests install under (the README's).
const ReleaseName = "resume-trigger"

// Values are the chart values a test sets on top of values.yaml, as `--set`/`-f` would.
type Values = map[string]any

// Load reads the chart from the checkout at root.
func Load(root string) (*chartv2.Chart, error) {
	c, err := loader.Load(filepath.Join(root, Dir))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", Dir, err)
	}
	return c, nil
}

// quiet keeps Helm's own log lines out of the test output; its errors come back as errors.
func quiet() *action.Configuration {
	return action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
}

// KubeVersion is the Kubernetes version Render and Lint render for, as `helm template --kube-version`:
// the minor of the k8s.io/api module of tests/go.mod, the one the rig's kube-apiserver is built at. Helm's
// SDK alone would say v1.20 (its CLI sets the version it was built with).
func KubeVersion(root string) (*common.KubeVersion, error) {
	b, err := os.ReadFile(filepath.Join(root, "tests", "go.mod"))
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+\.\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		return nil, errors.New("tests/go.mod requires no k8s.io/api v0.x.y: cannot tell the Kubernetes version")
	}
	return common.ParseKubeVersion("v1." + string(m[1]))
}

// Render renders the chart into namespace as `helm template --namespace namespace --kube-version
// KubeVersion` does (no cluster), values over values.yaml, schema and templates' checks included.
func Render(root, namespace string, values Values) ([]*unstructured.Unstructured, error) {
	c, err := Load(root)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(quiet())
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName = ReleaseName
	in.Namespace = namespace
	in.Replace = true
	if in.KubeVersion, err = KubeVersion(root); err != nil {
		return nil, err
	}
	rel, err := in.Run(c, values)
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w", Dir, err)
	}
	acc, err := release.NewAccessor(rel)
	if err != nil {
		return nil, err
	}
	return Decode(acc.Manifest())
}

// Lint runs `helm lint --strict` with values; nil means the chart passes.
func Lint(root, namespace string, values Values) error {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	var err error
	if l.KubeVersion, err = KubeVersion(root); err != nil {
		return err
	}
	res := l.Run([]string{filepath.Join(root, Dir)}, values)
	var msgs []string
	for _, m := range res.Messages {
		msgs = append(msgs, m.Error())
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("helm lint --strict %s: %w (all messages: %s)", Dir, errors.Join(res.Errors...), strings.Join(msgs, "; "))
	}
	return nil
}

// Decode splits a rendered manifest into objects, dropping empty documents.
func Decode(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("rendered manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		// Through JSON, so numbers are int64 as everywhere in unstructured (and as rig.Render gives them).
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("rendered manifest: %w", err)
		}
		out = append(out, u)
	}
}

// Components of the kustomize install and what they are in the chart's values.
const (
	tlsComponent         = "manifests/tls"
	certManagerComponent = "manifests/tls/cert-manager"
	selfSignedComponent  = "manifests/tls/self-signed-ca"
	uiComponent          = "manifests/ui"
)

// ValuesFor are the chart values that say what v says to a kustomize overlay: the served and webhook
// namespaces, and the TLS Components as tls.mode. The install namespace is the release namespace, not a
// value. A Component the chart has no value for is an error, never dropped.
func ValuesFor(v rig.InstallValues) (Values, error) {
	values := Values{
		"namespaces": toAny(v.Namespaces),
		"webhook":    Values{"enabled": len(v.WebhookNamespaces) > 0, "namespaces": toAny(v.WebhookNamespaces)},
	}
	tls := map[string]bool{}
	for _, c := range v.Components {
		switch c {
		case tlsComponent, certManagerComponent, selfSignedComponent:
			tls[c] = true
		case uiComponent:
			values["ui"] = Values{"enabled": true}
		default:
			return nil, fmt.Errorf("kustomize Component %s has no chart value", c)
		}
	}
	switch {
	case len(tls) == 0:
	case tls[tlsComponent] && tls[certManagerComponent] && tls[selfSignedComponent]:
		values["tls"] = Values{"mode": "cert-manager"}
	case tls[tlsComponent] && tls[certManagerComponent]:
		// The Certificate names an Issuer resume-trigger-ca the user brings.
		values["tls"] = Values{"mode": "cert-manager", "certManager": Values{"issuerRef": Values{"name": "resume-trigger-ca", "kind": "Issuer"}}}
	case tls[tlsComponent] && len(tls) == 1:
		values["tls"] = Values{"mode": "secret"}
	default:
		return nil, fmt.Errorf("TLS Components %v: cert-manager/ and self-signed-ca/ need manifests/tls", v.Components)
	}
	return values, nil
}

func toAny(s []string) []any {
	out := make([]any, 0, len(s))
	for _, x := range s {
		out = append(out, x)
	}
	return out
}
