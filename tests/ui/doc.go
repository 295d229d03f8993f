// Package ui tests resume-trigger's web page (--ui-address) in a real browser: Debian's chromium,
// headless, driven by chromedp, against the rig (a real API server, Argo's real workflow-controller) and
// the server started in-process with the page on, over TLS. People are ServiceAccounts with tokens from
// the TokenRequest API and Roles of their own, so what the page may do is decided by the API server alone.
package ui
