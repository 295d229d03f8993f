package ui

import (
	"reflect"
	"testing"

	"github.com/argocontroller/resume-trigger/internal/inspect"
)

// A releasable candidate gets one Release button; a container that pauses both before and after its
// command (the lookup asks for a stage: narrow) gets one per stage still paused; a candidate that is not
// paused gets none; ?node= selects its row.
func TestStepsOfferAReleasePerContainerAndStage(t *testing.T) {
	ex := inspect.Explanation{Candidates: []inspect.Candidate{
		{Node: "wf-1", NodeName: "wf[0].a", Pod: "wf-a-1", Container: "main", Stage: "after", Verdict: inspect.VerdictReleasable},
		{Node: "wf-2", Pod: "wf-b-2", Verdict: inspect.VerdictNarrow, Why: "container main pauses both before and after its command: set stage"},
		{Node: "wf-3", Pod: "wf-c-3", Verdict: inspect.VerdictNo, Why: "container main is not debug-paused"},
	}}
	paused := []inspect.Paused{
		{Workflow: "wf", Node: "a", NodeID: "wf-1", Pod: "wf-a-1", Container: "main", Stage: "after"},
		{Workflow: "wf", Node: "b", NodeID: "wf-2", Pod: "wf-b-2", Container: "main", Stage: "before,after"},
	}
	got := steps(ex, paused, "wf-2")
	want := [][]releaseButton{
		{{Node: "wf-1", Container: "main", Stage: "after"}},
		{{Node: "wf-2", Container: "main", Stage: "before"}, {Node: "wf-2", Container: "main", Stage: "after"}},
		nil,
	}
	for i, s := range got {
		if !reflect.DeepEqual(s.Releases, want[i]) {
			t.Errorf("row %d (%s): buttons %+v, want %+v", i, s.Verdict, s.Releases, want[i])
		}
		if s.Selected != (s.Node == "wf-2") {
			t.Errorf("row %d selected %v", i, s.Selected)
		}
	}
	if got[0].Display != "a" || got[1].Display != "b" || got[2].Display != "" {
		t.Errorf("display names %q %q %q", got[0].Display, got[1].Display, got[2].Display)
	}
}
