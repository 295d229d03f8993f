package app

import (
	"context"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/report"
)

// An Event recorded before shutdown is waited for after the gRPC drain, within the budget that follows
// it: here the API server cannot be reached, so the wait ends at the budget and says what was lost.
func TestShutdownFlushesEvents(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	a, err := NewWithConfig(t.Context(), testCompleted(t), noAPI, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.events.Normal(report.Object{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Namespace: "argo", Name: "r", UID: "u"}, "Released", "m")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3*time.Second + httpShutdownTimeout + 5*time.Second):
		t.Fatal("Run did not return within --shutdown-timeout and the budget after the drain")
	}
	var warned bool
	for _, e := range hook.AllEntries() {
		warned = warned || strings.Contains(e.Message, "Events not written before the shutdown deadline")
	}
	if !warned {
		t.Error("Run returned without flushing the Events (no word of the one it could not write)")
	}
}
