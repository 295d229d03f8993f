package chain

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// SensorFile is the shipped Sensor; the chain runs it as the overlay renders it.
const SensorFile = "sensor/sensor.yaml"

// object is a decoded YAML object.
type object map[string]any

// path walks nested maps (and list indexes are not needed here); it fails loudly when the shipped YAML
// no longer has the shape the harness adapts.
func (o object) path(keys ...string) (map[string]any, error) {
	var cur map[string]any = o
	for i, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no map at %s", strings.Join(keys[:i+1], "."))
		}
		cur = next
	}
	return cur, nil
}

func (o object) name() string {
	m, _ := o.path("metadata")
	s, _ := m["name"].(string)
	return s
}

// envelope is what the argo-events controller hands its pods: name, namespace and spec only, as base64
// (std) of the JSON.
func (o object) envelope(namespace string) (string, error) {
	spec, ok := o["spec"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("object %s has no spec", o.name())
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": o["apiVersion"],
		"kind":       o["kind"],
		"metadata":   map[string]any{"name": o.name(), "namespace": namespace},
		"spec":       spec,
	})
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// adaptSensor points every custom trigger at serverURL and returns the number of triggers.
func adaptSensor(o object, serverURL string) (int, error) {
	spec, err := o.path("spec")
	if err != nil {
		return 0, err
	}
	triggers, ok := spec["triggers"].([]any)
	if !ok || len(triggers) == 0 {
		return 0, fmt.Errorf("sensor %s has no triggers", o.name())
	}
	for i, t := range triggers {
		custom, err := object(t.(map[string]any)).path("template", "custom")
		if err != nil {
			return 0, fmt.Errorf("trigger %d: %w", i, err)
		}
		custom["serverURL"] = serverURL
	}
	return len(triggers), nil
}

// webhookEndpoint returns port, endpoint and the auth secret (name, key) of the only webhook event.
func webhookEndpoint(o object) (port, endpoint, secretName, secretKey string, err error) {
	wh, err := o.path("spec", "webhook")
	if err != nil {
		return "", "", "", "", err
	}
	if len(wh) != 1 {
		return "", "", "", "", fmt.Errorf("webhook EventSource %s has %d events, the harness expects 1", o.name(), len(wh))
	}
	for _, ev := range wh {
		m, _ := ev.(map[string]any)
		port, _ = m["port"].(string)
		endpoint, _ = m["endpoint"].(string)
		if auth, ok := m["authSecret"].(map[string]any); ok {
			secretName, _ = auth["name"].(string)
			secretKey, _ = auth["key"].(string)
		}
	}
	if port == "" || endpoint == "" || secretName == "" || secretKey == "" {
		return "", "", "", "", fmt.Errorf("webhook EventSource %s: port %q endpoint %q authSecret %s/%s: the harness needs all of them", o.name(), port, endpoint, secretName, secretKey)
	}
	return port, endpoint, secretName, secretKey, nil
}
