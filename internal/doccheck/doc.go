// Package doccheck holds the tests that hold the documentation to the code: every flag, make target,
// repository path, metric and link the Markdown names must exist, the flag and metric tables must match
// the binaries, and the examples must apply in an order that works. It has no code of its own.
package doccheck
