// Package app wires resume-trigger together from its options: Kubernetes clients, the resume flow, the
// gRPC server with its health service, and the metrics endpoint. Run returns when the context ends.
package app
