// Package fault classifies what went wrong with a release so that the gRPC edge can answer with the right
// code and the Resume's status can tell a final failure from one that is retried.
package fault
