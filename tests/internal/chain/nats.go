package chain

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// natsConfig is a nats-server configuration with JetStream, TLS for clients and plain-HTTP monitoring on
// loopback (the harness reads /jsz there to see the Sensor's consumers).
func natsConfig(dir, listen string, monitorPort int) (string, error) {
	cert, key := filepath.Join(dir, "nats.crt"), filepath.Join(dir, "nats.key")
	host, _, _ := net.SplitHostPort(listen)
	certPEM, keyPEM, err := fixture.SelfSignedCert("resume-trigger chain eventbus", host, "127.0.0.1")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		return "", err
	}
	store := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(store, 0o700); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`listen: %q
http: "127.0.0.1:%d"
server_name: resume-trigger-chain
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
tls {
  cert_file: %q
  key_file: %q
  timeout: 5
}
`, listen, monitorPort, store, cert, key)
	path := filepath.Join(dir, "nats.conf")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

type jsz struct {
	AccountDetails []struct {
		StreamDetail []struct {
			Name           string `json:"name"`
			ConsumerDetail []struct {
				Name string `json:"name"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// consumerCount counts the consumers of stream from the monitoring endpoint.
func consumerCount(ctx context.Context, monitor, stream string) (int, error) {
	body, err := get(ctx, monitor+"/jsz?accounts=true&streams=true&consumers=true")
	if err != nil {
		return 0, err
	}
	var j jsz
	if err := json.Unmarshal(body, &j); err != nil {
		return 0, fmt.Errorf("decode /jsz: %w", err)
	}
	n := 0
	for _, a := range j.AccountDetails {
		for _, s := range a.StreamDetail {
			if s.Name == stream {
				n += len(s.ConsumerDetail)
			}
		}
	}
	return n, nil
}
