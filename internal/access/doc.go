// Package access checks, with SelfSubjectAccessReviews, that the server holds in each served namespace
// every right a release needs, so a missing RoleBinding is reported at start by name instead of as a 403
// in the middle of a release.
package access
