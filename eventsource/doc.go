// Package eventsource ships the Argo Events EventSources that feed resume-trigger: a resource watch on
// Resume objects and a bearer-token webhook. It holds YAML only; its tests check that YAML against
// argo-events' own types and validators.
package eventsource
