// Package report tells the world what a release did: the Resume's status, Kubernetes Events on the Resume
// or the Workflow, Prometheus metrics and, optionally, one CloudEvent per outcome.
package report
