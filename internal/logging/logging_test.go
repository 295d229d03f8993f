package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

func TestRouteKlog(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.InfoLevel)
	RouteKlog(log)
	t.Cleanup(klog.ClearLogger)

	klog.InfoS("lease acquired", "lock", "argo/resume-trigger")
	klog.V(4).InfoS("verbose detail")
	klog.ErrorS(errors.New("boom"), "watch failed", "resource", "pods")
	klog.Warning("unstructured warning")
	klog.Flush()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (the verbose one is a debug line, off at info):\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		if entry[Component] != "client-go" {
			t.Errorf("line %q lacks component=client-go", line)
		}
	}
	if !strings.Contains(lines[0], `"lock":"argo/resume-trigger"`) || !strings.Contains(lines[1], `"error":"boom"`) || !strings.Contains(lines[1], `"level":"error"`) {
		t.Errorf("fields or levels lost:\n%s", buf.String())
	}
}

func TestLoggerInContext(t *testing.T) {
	base := logrus.New()
	if Carried(context.Background()) {
		t.Fatal("an empty context carries a logger")
	}
	if FromContext(context.Background(), base) != base {
		t.Error("the fallback was not used")
	}
	req := base.WithField(Event, "ev-1")
	ctx := WithLogger(context.Background(), req)
	if !Carried(ctx) || FromContext(ctx, base) != req {
		t.Error("the request's logger was not returned")
	}
}
