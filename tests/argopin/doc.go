// Package argopin pins resume-trigger's copies of Argo Workflows' names and rules (internal/argo) to
// argo-workflows' own constants, functions and source at the version the tests module requires, so an
// Argo bump that changes one of them fails here instead of leaving users' steps paused.
package argopin
