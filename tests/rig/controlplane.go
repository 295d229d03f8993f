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

// process is one child of the rig (etcd or kube-apiserver), started in its own process group so that
// teardown can kill it with everything it spawned.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done is closed
}

func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop kills the whole process group and waits for the process to be reaped.
func (p *process) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	// SIGKILL the group even after a clean exit of the leader: a child it left behind must go too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// failure wraps err with the tail of the process log, which is where the reason usually is.
func (p *process) failure(err error) error {
	return fmt.Errorf("%s: %w\n--- last lines of %s ---\n%s", p.name, err, p.log, tail(p.log, 40))
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free TCP port on addr. The port is released before the caller uses
// it, which leaves a small race that is acceptable for a test rig.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

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

// binaries returns the kube-apiserver and etcd paths: from the environment if set, otherwise from
// hack/tools.sh, which builds a pinned version into a cache on first use.
func binaries(root string) (apiserver, etcd string, err error) {
	apiserver, etcd = os.Getenv(envAPIServer), os.Getenv(envEtcd)
	var want []string
	if apiserver == "" {
		want = append(want, "kube-apiserver")
	}
	if etcd == "" {
		want = append(want, "etcd")
	}
	if len(want) > 0 {
		script := filepath.Join(root, "hack", "tools.sh")
		cmd := exec.Command("bash", append([]string{script}, want...)...)
		cmd.Stderr = os.Stderr // a cold build takes many minutes and reports progress there
		out, err := cmd.Output()
		if err != nil {
			return "", "", fmt.Errorf("%s %s: %w (set %s / %s to use prebuilt binaries)",
				script, strings.Join(want, " "), err, envAPIServer, envEtcd)
		}
		paths := strings.Fields(string(out))
		if len(paths) != len(want) {
			return "", "", fmt.Errorf("%s printed %q, want one path for each of %v", script, out, want)
		}
		for i, w := range want {
			if w == "kube-apiserver" {
				apiserver = paths[i]
			} else {
				etcd = paths[i]
			}
		}
	}
	for _, p := range []string{apiserver, etcd} {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", "", fmt.Errorf("%s is not an executable file", p)
		}
	}
	return apiserver, etcd, nil
}

// startReaper starts a detached shell that waits for this process to die and then kills the process
// groups listed in dir/pgids and removes dir. It covers the exits that skip deferred teardown:
// a panicking test, a -timeout, a signal.
func startReaper(dir string) (*exec.Cmd, error) {
	const script = `
parent=$1; dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
if [ -f "$dir/pgids" ]; then
	for g in $(cat "$dir/pgids"); do kill -TERM "-$g" 2>/dev/null; done
	sleep 1
	for g in $(cat "$dir/pgids"); do kill -KILL "-$g" 2>/dev/null; done
fi
rm -rf "$dir"
`
	cmd := exec.Command("sh", "-c", script, "rig-reaper", strconv.Itoa(os.Getpid()), dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd, nil
}

func recordPgid(dir string, p *process) error {
	f, err := os.OpenFile(filepath.Join(dir, "pgids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, p.cmd.Process.Pid)
	return err
}

func startEtcd(ctx context.Context, dir, bin string) (*process, string, error) {
	client, err := freePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	peer, err := freePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	p, err := startProcess(dir, "etcd", bin,
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
	if err := recordPgid(dir, p); err != nil {
		p.stop()
		return nil, "", err
	}
	hc := &http.Client{Timeout: time.Second}
	err = poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("exited early: %v", p.err)
		}
		resp, err := hc.Get(clientURL + "/health")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.stop()
		return nil, "", p.failure(fmt.Errorf("not healthy: %w", err))
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

func startAPIServer(ctx context.Context, dir, bin, etcdURL, bindAddress, adminToken string, extra []string) (*process, string, []byte, error) {
	files, err := writeAPIServerFiles(dir, adminToken)
	if err != nil {
		return nil, "", nil, err
	}
	port, err := freePort(bindAddress)
	if err != nil {
		return nil, "", nil, err
	}
	args := []string{
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
	p, err := startProcess(dir, "kube-apiserver", bin, args...)
	if err != nil {
		return nil, "", nil, err
	}
	if err := recordPgid(dir, p); err != nil {
		p.stop()
		return nil, "", nil, err
	}
	host := "https://" + net.JoinHostPort(bindAddress, strconv.Itoa(port))
	// The serving certificate only exists once the apiserver wrote it, so /readyz is polled without
	// verification; the rest.Config later trusts the written certificate.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	var last string
	err = poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("exited early: %v", p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.stop()
		return nil, "", nil, p.failure(fmt.Errorf("/readyz never OK (last: %s): %w", last, err))
	}
	ca, err := os.ReadFile(filepath.Join(files.certDir, "apiserver.crt"))
	if err != nil {
		p.stop()
		return nil, "", nil, fmt.Errorf("read the serving certificate the apiserver generated: %w", err)
	}
	return p, host, ca, nil
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

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
