package chain

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// ResumeTrigger is the Sensor trigger that Resume objects fire (sensor/sensor.yaml).
const ResumeTrigger = "release-resume"

// RetryBudget is how long the Sensor keeps calling resume-trigger about one event that keeps failing,
// from trigger's retryStrategy in sensor/sensor.yaml: argo-events makes `steps` attempts and waits
// duration·factor^i (i = 0 … steps-2) between them, each wait lengthened by up to `jitter` of itself. Min
// is the sum of the waits without jitter, Max with the most jitter; the attempts' own time comes on top.
type RetryBudget struct {
	Steps    int
	Duration time.Duration
	Factor   float64
	Jitter   float64
	Min, Max time.Duration
	waits    []time.Duration
}

func (b RetryBudget) String() string {
	waits := make([]string, len(b.waits))
	for i, w := range b.waits {
		waits[i] = w.String()
	}
	return fmt.Sprintf("%d attempts, waits %s between them (each up to %g longer): %v to %v", b.Steps, strings.Join(waits, ", "), b.Jitter, b.Min, b.Max.Round(100*time.Millisecond))
}

// SensorRetryBudget reads trigger's retryStrategy from the Sensor the chain runs.
func (c *Chain) SensorRetryBudget(trigger string) (RetryBudget, error) {
	spec, err := c.objects[Sensor].path("spec")
	if err != nil {
		return RetryBudget{}, err
	}
	triggers, _ := spec["triggers"].([]any)
	for _, tr := range triggers {
		m, _ := tr.(map[string]any)
		tmpl, err := object(m).path("template")
		if err != nil || tmpl["name"] != trigger {
			continue
		}
		rs, ok := m["retryStrategy"].(map[string]any)
		if !ok {
			return RetryBudget{}, fmt.Errorf("%s: trigger %s has no retryStrategy", SensorFile, trigger)
		}
		return parseRetryStrategy(rs)
	}
	return RetryBudget{}, fmt.Errorf("%s has no trigger %s", SensorFile, trigger)
}

func parseRetryStrategy(rs map[string]any) (RetryBudget, error) {
	num := func(key string) (float64, error) {
		switch v := rs[key].(type) {
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case nil:
			return 0, fmt.Errorf("retryStrategy.%s is missing", key)
		default:
			return 0, fmt.Errorf("retryStrategy.%s is %T %v, want a number", key, v, v)
		}
	}
	var b RetryBudget
	steps, err := num("steps")
	if err != nil {
		return b, err
	}
	if b.Factor, err = num("factor"); err != nil {
		return b, err
	}
	if b.Jitter, err = num("jitter"); err != nil {
		return b, err
	}
	d, ok := rs["duration"].(string)
	if !ok {
		return b, fmt.Errorf("retryStrategy.duration is %T %v, want a duration string", rs["duration"], rs["duration"])
	}
	if b.Duration, err = time.ParseDuration(d); err != nil {
		return b, fmt.Errorf("retryStrategy.duration: %w", err)
	}
	b.Steps = int(steps)
	for i := range b.Steps - 1 {
		w := time.Duration(float64(b.Duration) * math.Pow(b.Factor, float64(i)))
		b.Min += w
		b.Max += time.Duration(float64(w) * (1 + b.Jitter))
		b.waits = append(b.waits, w)
	}
	return b, nil
}

// SensorActivity is what the Sensor's log (its latest run) says about one trigger's events. Every event
// the trigger acts on is logged when the action starts, and then once more: either when a call succeeded
// (which ends the retries) or when the retries ran out. The Sensor acts on one event at a time per
// trigger, so an event that keeps failing holds back the ones after it for its whole retry budget.
type SensorActivity struct {
	// Started counts events the trigger started acting on.
	Started int
	// Succeeded counts events with a successful call.
	Succeeded int
	// GaveUp holds, for every event whose retries ran out, the last error and when it gave up.
	GaveUp []SensorGiveUp
}

// SensorGiveUp is an event the Sensor gave up on.
type SensorGiveUp struct {
	Time  time.Time
	Error string
}

// Busy reports whether an event is still being acted on (or retried).
func (a SensorActivity) Busy() bool { return a.Started > a.Succeeded+len(a.GaveUp) }

// Finished counts events the trigger is done with.
func (a SensorActivity) Finished() int { return a.Succeeded + len(a.GaveUp) }

func (a SensorActivity) String() string {
	return fmt.Sprintf("%d events started, %d succeeded, %d given up", a.Started, a.Succeeded, len(a.GaveUp))
}

// Sensor log messages (argo-events v1.9 pkg/sensors/listener.go and eventbus/jetstream/sensor).
const (
	sensorStartedMsg   = "Triggering actions after receiving dependency "
	sensorSucceededMsg = "Successfully processed trigger "
	sensorGaveUpMsg    = "failed to trigger actions, "
)

// SensorActivity reads the Sensor's current log for trigger.
func (c *Chain) SensorActivity(trigger string) (SensorActivity, error) {
	path := c.LogFile(Sensor)
	f, err := os.Open(path)
	if err != nil {
		return SensorActivity{}, err
	}
	defer func() { _ = f.Close() }()
	var a SensorActivity
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var line struct {
			Msg     string    `json:"msg"`
			Trigger string    `json:"triggerName"`
			Time    time.Time `json:"ts"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Trigger != trigger {
			continue
		}
		switch {
		case strings.HasPrefix(line.Msg, sensorStartedMsg):
			a.Started++
		case strings.HasPrefix(line.Msg, sensorSucceededMsg):
			a.Succeeded++
		case strings.HasPrefix(line.Msg, sensorGaveUpMsg):
			a.GaveUp = append(a.GaveUp, SensorGiveUp{Time: line.Time, Error: strings.TrimPrefix(line.Msg, sensorGaveUpMsg)})
		}
	}
	if err := sc.Err(); err != nil {
		return a, fmt.Errorf("read %s: %w", path, err)
	}
	return a, nil
}

// WaitSensorGaveUp waits until the Sensor has given up on an event of trigger whose last error contains
// substr (a workflow's name, say), and returns that give-up.
func (c *Chain) WaitSensorGaveUp(ctx context.Context, trigger, substr string) (SensorGiveUp, error) {
	var got SensorGiveUp
	err := rig.Eventually(ctx, func() error {
		a, err := c.SensorActivity(trigger)
		if err != nil {
			return err
		}
		for _, g := range a.GaveUp {
			if strings.Contains(g.Error, substr) {
				got = g
				return nil
			}
		}
		return fmt.Errorf("the Sensor has not given up on an event of trigger %s about %q (%v; log %s)", trigger, substr, a, c.LogFile(Sensor))
	})
	return got, err
}

// WaitSensorDone waits until the Sensor (its current run) has started on at least n events of trigger
// more than since says, and is done with every event it started: none is being acted on or retried.
func (c *Chain) WaitSensorDone(ctx context.Context, trigger string, since SensorActivity, n int) (SensorActivity, error) {
	var a SensorActivity
	err := rig.Eventually(ctx, func() error {
		var err error
		if a, err = c.SensorActivity(trigger); err != nil {
			return err
		}
		if a.Started-since.Started < n || a.Busy() {
			return fmt.Errorf("the Sensor's trigger %s is not done with %d more events: %v, %d before (log %s)", trigger, n, a, since.Started, c.LogFile(Sensor))
		}
		return nil
	})
	return a, err
}
