// Package resume carries one request through the flow: request → targets → release → report. It owns the
// rules that make a release safe to repeat: a final Resume is never acted on again, a container already
// released is never counted twice, and a failure is written once and not overwritten.
package resume
