// Package chart tests the Helm chart charts/resume-trigger with Helm's own Go SDK: it lints, it renders
// every option as the server and the API server expect, its values schema and checks refuse bad values
// with a clear message, its defaults render what the kustomize overlays render (kinds, names, RBAC rules,
// server args, Sensor and EventSources: two install paths, one truth), and it installs on a real API
// server.
package chart
