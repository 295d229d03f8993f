// Package request turns what the Sensor sends into a validated Request: which namespace, which Resume
// (if any) and which workflow step to release. Nothing that fails validation reaches the cluster.
package request
