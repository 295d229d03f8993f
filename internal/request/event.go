package request

import (
	"encoding/json"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/argocontroller/resume-trigger/internal/fault"
)

// ParseEvent decodes the optional payload, the triggering event as a structured CloudEvent. An empty
// payload gives nil: the Sensor sends none when its trigger has no payload entries.
func ParseEvent(payload []byte) (*cloudevents.Event, error) {
	if len(payload) == 0 || string(payload) == "null" {
		return nil, nil
	}
	var ev cloudevents.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fault.Invalidf("the trigger payload is not a CloudEvent (map id, source, specversion, type, subject, time and datacontenttype by contextKey, and data by dataKey body): %v", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, fault.Invalidf("the trigger payload is an incomplete CloudEvent (it needs id, source, specversion and type): %v", err)
	}
	return &ev, nil
}
