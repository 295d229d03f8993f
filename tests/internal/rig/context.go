package rig

import (
	"context"
	"testing"
	"time"
)

// Context bounds one step of a test to d. It ends with the test too (tb.Context), so a test that failed
// stops its calls at once; in a Cleanup, where the test's context has already ended, only d bounds it,
// since the cleanup's calls (deleting what the test made) must still run.
func Context(tb testing.TB, d time.Duration) context.Context {
	parent := tb.Context()
	if parent.Err() != nil {
		parent = context.WithoutCancel(parent)
	}
	ctx, cancel := context.WithTimeout(parent, d)
	tb.Cleanup(cancel)
	return ctx
}
