// Package sensor ships the Argo Events Sensor whose custom triggers call resume-trigger. It holds YAML
// only; its tests run argo-events' validation and parameter resolution over that YAML.
package sensor
