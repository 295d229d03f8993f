// Package helmchart renders, lints and installs the Helm chart charts/resume-trigger with Helm's own Go
// SDK (helm.sh/helm/v4), as `helm template`, `helm lint` and `helm install` would, and maps the values a
// user writes into a kustomize overlay's install.yaml (rig.InstallValues) to the chart's values, so the two
// install paths can be rendered with the same settings and compared.
package helmchart
