package rig

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	modulePath = "github.com/argocontroller/resume-trigger"

	envAPIServer = "RESUME_TRIGGER_KUBE_APISERVER"
	envEtcd      = "RESUME_TRIGGER_ETCD"
)

// RepoRoot walks up from the working directory to the directory whose go.mod declares the
// resume-trigger module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(b, modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, module string) bool {
	s := bufio.NewScanner(bytes.NewReader(gomod))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == module {
			return true
		}
	}
	return false
}

// Kubernetes is a kube-apiserver release the rig runs: the hack/tools.sh tool that builds it (pinned there
// and in tests/tools/<tool>/go.mod), and the environment variable that may name a prebuilt binary instead.
type Kubernetes struct {
	// Minor is the release's major.minor, what the API server's /version reports.
	Minor string
	tool  string
	env   string
}

// The Kubernetes releases the rig runs: v1.37 for every test, and v1.34, the oldest k8s.io/kubernetes the
// Go module proxy serves here, the minimum the README states as tested (TestInstallAndReleaseOnEachKubernetes).
var (
	Kubernetes137 = Kubernetes{Minor: "1.37", tool: "kube-apiserver", env: envAPIServer}
	Kubernetes134 = Kubernetes{Minor: "1.34", tool: "kube-apiserver-v134", env: envAPIServer + "_V134"}
)

func (k Kubernetes) String() string { return "v" + k.Minor }

// binaries returns the paths of k's kube-apiserver and of etcd: from the environment if set, otherwise
// from hack/tools.sh, which builds a pinned version into a cache on first use. Each release has its own
// variable, so a prebuilt current kube-apiserver never stands in for the oldest one.
func binaries(root string, k Kubernetes) (apiserver, etcd string, err error) {
	apiserver, etcd = os.Getenv(k.env), os.Getenv(envEtcd)
	var want []string
	if apiserver == "" {
		want = append(want, k.tool)
	}
	if etcd == "" {
		want = append(want, "etcd")
	}
	if len(want) > 0 {
		paths, err := Tools(root, want...)
		if err != nil {
			return "", "", fmt.Errorf("%w (set %s / %s to use prebuilt binaries)", err, k.env, envEtcd)
		}
		for i, w := range want {
			if w == k.tool {
				apiserver = paths[i]
			} else {
				etcd = paths[i]
			}
		}
	}
	for _, p := range []string{apiserver, etcd} {
		if err := executable(p); err != nil {
			return "", "", err
		}
	}
	return apiserver, etcd, nil
}

func startEtcd(ctx context.Context, dir string, reaper *Reaper, bin string) (*Process, string, error) {
	client, err := FreePort(ctx, "127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	// The client port's listener is closed again, so the kernel may hand out the same port once more:
	// etcd then fails to bind the second of the two (seen in CI as "bind: address already in use").
	peer := client
	for peer == client {
		if peer, err = FreePort(ctx, "127.0.0.1"); err != nil {
			return nil, "", err
		}
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	p, err := startProcess(dir, reaper, "etcd", bin,
		"--name", "rig",
		"--data-dir", filepath.Join(dir, "etcd-data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "rig="+peerURL,
		"--unsafe-no-fsync",
		"--log-level", "warn",
	)
	if err != nil {
		return nil, "", err
	}
	hc := &http.Client{Timeout: time.Second}
	err = poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("exited early: %v", p.Err())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		stopProcess(p)
		return nil, "", p.Failure(fmt.Errorf("not healthy: %w", err))
	}
	return p, clientURL, nil
}

type apiserverFiles struct {
	certDir, tokens, saPub, saKey string
}

func writeAPIServerFiles(dir, adminToken string) (apiserverFiles, error) {
	f := apiserverFiles{
		certDir: filepath.Join(dir, "certs"),
		tokens:  filepath.Join(dir, "tokens.csv"),
		saPub:   filepath.Join(dir, "sa.pub"),
		saKey:   filepath.Join(dir, "sa.key"),
	}
	if err := os.MkdirAll(f.certDir, 0o700); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.tokens, []byte(adminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return f, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return f, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return f, err
	}
	if err := os.WriteFile(f.saKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func startAPIServer(ctx context.Context, dir string, reaper *Reaper, bin, etcdURL, bindAddress, adminToken string, extra []string) (_ *Process, host string, ca []byte, args []string, _ error) {
	files, err := writeAPIServerFiles(dir, adminToken)
	if err != nil {
		return nil, "", nil, nil, err
	}
	port, err := FreePort(ctx, bindAddress)
	if err != nil {
		return nil, "", nil, nil, err
	}
	args = []string{
		"--etcd-servers", etcdURL,
		"--bind-address", bindAddress,
		"--advertise-address", bindAddress,
		"--secure-port", strconv.Itoa(port),
		"--cert-dir", files.certDir,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", files.saPub,
		"--service-account-signing-key-file", files.saKey,
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "Node,RBAC",
		"--token-auth-file", files.tokens,
		"--allow-privileged=true",
		"--endpoint-reconciler-type", "none",
		"--v", "1",
	}
	args = append(args, extra...)
	host = "https://" + net.JoinHostPort(bindAddress, strconv.Itoa(port))
	p, err := launchAPIServer(ctx, dir, reaper, bin, args, host, adminToken)
	if err != nil {
		return nil, "", nil, nil, err
	}
	if ca, err = os.ReadFile(filepath.Join(files.certDir, "apiserver.crt")); err != nil {
		stopProcess(p)
		return nil, "", nil, nil, fmt.Errorf("read the serving certificate the apiserver generated: %w", err)
	}
	return p, host, ca, args, nil
}

// launchAPIServer starts kube-apiserver with args and waits until host answers /readyz. A restart runs
// it with the same args: the serving certificate in --cert-dir, the service-account keys and the tokens
// are kept, so clients and issued tokens stay valid.
func launchAPIServer(ctx context.Context, dir string, reaper *Reaper, bin string, args []string, host, adminToken string) (*Process, error) {
	p, err := startProcess(dir, reaper, "kube-apiserver", bin, args...)
	if err != nil {
		return nil, err
	}
	// The serving certificate only exists once the apiserver wrote it, so /readyz is polled without
	// verification; the rest.Config later trusts the written certificate.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	var last string
	err = poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("exited early: %v", p.Err())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		stopProcess(p)
		return nil, p.Failure(fmt.Errorf("/readyz never OK (last: %s): %w", last, err))
	}
	return p, nil
}

// poll calls f every interval until it reports done, returns an error, or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// startProcess starts one control-plane process in dir, logging to dir/NAME.log, and has the reaper
// watch it.
func startProcess(dir string, reaper *Reaper, name, bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...) //nolint:noctx // long-lived: stopped by stopProcess and reaped by the rig's reaper, never by a context
	cmd.Dir = dir
	p, err := StartProcess(name, filepath.Join(dir, name+".log"), cmd)
	if err != nil {
		return nil, err
	}
	if err := reaper.Watch(p); err != nil {
		stopProcess(p)
		return nil, err
	}
	return p, nil
}

// stopProcess stops a control-plane process: SIGTERM, 5 s to exit, then SIGKILL.
func stopProcess(p *Process) { p.Stop(syscall.SIGTERM, 5*time.Second) }
