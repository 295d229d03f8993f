package report

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// EventTypePrefix starts the type of every result CloudEvent; the outcome follows, e.g.
// io.argocontroller.resume.Succeeded.
const EventTypePrefix = "io.argocontroller.resume."

// Sink sends one CloudEvent per outcome to a URL (HTTP binary mode).
type Sink struct {
	client cloudevents.Client
	source string
}

// NewSink returns a Sink that posts to url, naming source as the events' source.
func NewSink(url, source string) (*Sink, error) {
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url))
	if err != nil {
		return nil, fmt.Errorf("result sink %s: %w", url, err)
	}
	return &Sink{client: c, source: source}, nil
}

// Send posts the outcome with data (any JSON-encodable value); subject names the Resume or workflow.
func (s *Sink) Send(ctx context.Context, outcome, subject string, data any) error {
	ev := cloudevents.NewEvent()
	ev.SetID(string(uuid.NewUUID()))
	ev.SetSource(s.source)
	ev.SetType(EventTypePrefix + outcome)
	ev.SetSubject(subject)
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return fmt.Errorf("encode result event: %w", err)
	}
	if res := s.client.Send(ctx, ev); !protocol.IsACK(res) {
		return fmt.Errorf("send result event to sink: %w", res)
	}
	return nil
}
