// Package release holds what the release tools share: which versions a release may be called, and the
// install files rendered for one.
package release
