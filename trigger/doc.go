// Package trigger is the gRPC edge: it implements the argo-events custom trigger service
// (triggers.Trigger) on top of the resume flow, and maps outcomes to gRPC codes on purpose. gRPC types
// stay here.
package trigger
