// Package ui serves resume-trigger's web page: what is debug-paused in a namespace, a workflow's steps with
// the verdicts of `kubectl resume why` and a Release button for each paused container and stage, and the
// target of the Argo UI's pod link. Every API call behind a page is made with the bearer token the person
// pasted (re-posted by every form, never stored by the server, never in a cookie), so the page can do no
// more than the person's RBAC allows; the server's own ServiceAccount is never used for it.
package ui
