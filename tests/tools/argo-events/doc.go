// Package argoevents pins the argo-events binary (eventsource-service, sensor-service) that the end-to-end
// tests run; it holds no code of its own.
package argoevents
