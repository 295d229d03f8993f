package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/argocontroller/resume-trigger/internal/fixture"
)

// pair is one certificate and its key, as PEM.
type pair struct {
	cert, key []byte
	serial    *big.Int
}

func newPair(t *testing.T, cn string) pair {
	t.Helper()
	certPEM, keyPEM, err := fixture.SelfSignedCert(cn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pair{cert: certPEM, key: keyPEM, serial: c.SerialNumber}
}

// secretVolume lays files out the way the kubelet does for a Secret volume: the data in a timestamped
// directory, `..data` a symlink to it, and each key a symlink through `..data`. An update writes a new
// directory and swaps `..data` with a rename.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func newSecretVolume(t *testing.T, p pair) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update(p.cert, p.key)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *secretVolume) update(cert, key []byte) {
	v.t.Helper()
	v.gen++
	data := filepath.Join(v.dir, "..2026_12_01_00_00_0"+string(rune('0'+v.gen)))
	if err := os.Mkdir(data, 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": cert, "tls.key": key} {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

func (v *secretVolume) certFile() string { return filepath.Join(v.dir, "tls.crt") }
func (v *secretVolume) keyFile() string  { return filepath.Join(v.dir, "tls.key") }

// serve runs a TLS listener whose certificate comes from r, and returns its address.
func serve(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).HandshakeContext(t.Context())
			_ = conn.Close()
		}
	}()
	return ln.Addr().String()
}

// served makes a new handshake, trusting every pair given, and returns the serial the server presented.
func served(t *testing.T, addr string, trusted ...pair) *big.Int {
	t.Helper()
	pool := x509.NewCertPool()
	for _, p := range trusted {
		pool.AppendCertsFromPEM(p.cert)
	}
	conn, err := (&tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

func errorsLogged(hook *logtest.Hook) []string {
	var out []string
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			out = append(out, e.Message)
		}
	}
	return out
}

func TestRotatedSecretVolumeIsServedToTheNextHandshake(t *testing.T) {
	a, b, c := newPair(t, "a"), newPair(t, "b"), newPair(t, "c")
	vol := newSecretVolume(t, a)
	log, hook := logtest.NewNullLogger()
	r, err := New(Config{CertFile: vol.certFile(), KeyFile: vol.keyFile(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)
	if got := served(t, addr, a, b, c); got.Cmp(a.serial) != 0 {
		t.Fatalf("first handshake served serial %x, want a's %x", got, a.serial)
	}
	if r.Check() {
		t.Error("Check reported a change with the files unchanged")
	}

	vol.update(b.cert, b.key)
	if !r.Check() {
		t.Fatal("Check did not take the rotated pair")
	}
	if got := served(t, addr, a, b, c); got.Cmp(b.serial) != 0 {
		t.Fatalf("after rotation the handshake served serial %x, want b's %x", got, b.serial)
	}

	// c's certificate with b's key: a broken update keeps b, and says so once.
	vol.update(c.cert, b.key)
	if r.Check() {
		t.Fatal("Check took a certificate with a key that does not match")
	}
	if got := served(t, addr, a, b, c); got.Cmp(b.serial) != 0 {
		t.Fatalf("after a broken update the handshake served serial %x, want b's %x kept", got, b.serial)
	}
	r.Check()
	if errs := errorsLogged(hook); len(errs) != 1 || !strings.Contains(errs[0], "serving the previous certificate") {
		t.Fatalf("errors logged for one broken pair looked at twice = %q, want one saying the previous certificate is served", errs)
	}

	// The key catches up: c is served.
	vol.update(c.cert, c.key)
	if !r.Check() {
		t.Fatal("Check did not take the repaired pair")
	}
	if got := served(t, addr, a, b, c); got.Cmp(c.serial) != 0 {
		t.Fatalf("after the repair the handshake served serial %x, want c's %x", got, c.serial)
	}
	if r.Current().SerialNumber.Cmp(c.serial) != 0 {
		t.Errorf("Current = serial %x, want c's %x", r.Current().SerialNumber, c.serial)
	}
}

func TestFilesRewrittenInPlaceAreServed(t *testing.T) {
	a, b := newPair(t, "a"), newPair(t, "b")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(p pair) {
		for f, data := range map[string][]byte{certFile: p.cert, keyFile: p.key} {
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(a)
	log, hook := logtest.NewNullLogger()
	r, err := New(Config{CertFile: certFile, KeyFile: keyFile, Interval: 20 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	addr := serve(t, r)

	write(b)
	deadline := time.Now().Add(10 * time.Second)
	for served(t, addr, a, b).Cmp(b.serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not pick up the rewritten pair within 10s (serving %x)", r.Current().SerialNumber)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A file missing keeps the current certificate, and says so once.
	cancel()
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	hook.Reset()
	for range 3 {
		if r.Check() {
			t.Error("Check changed the certificate while the key file was missing")
		}
	}
	if n := len(hook.AllEntries()); n != 1 {
		t.Errorf("%d log lines for a key file missing at three looks, want 1", n)
	}
	if got := served(t, addr, a, b); got.Cmp(b.serial) != 0 {
		t.Errorf("with the key file missing the handshake served %x, want b's %x kept", got, b.serial)
	}
}

func TestNewRefusesWhatCannotServe(t *testing.T) {
	a, b := newPair(t, "a"), newPair(t, "b")
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := map[string]struct {
		cert, key string
		exp       string
	}{
		"no files named":        {exp: "required"},
		"a certificate missing": {cert: filepath.Join(dir, "none.crt"), key: file("a.key", a.key), exp: "read TLS certificate"},
		"a key missing":         {cert: file("a.crt", a.cert), key: filepath.Join(dir, "none.key"), exp: "read TLS key"},
		"a key of another cert": {cert: file("a2.crt", a.cert), key: file("b.key", b.key), exp: "private key does not match"},
		"not PEM":               {cert: file("junk.crt", []byte("junk")), key: file("junk.key", []byte("junk")), exp: "failed to find any PEM data"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(Config{CertFile: tc.cert, KeyFile: tc.key})
			if err == nil || !strings.Contains(err.Error(), tc.exp) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.exp)
			}
		})
	}
	if _, err := New(Config{CertFile: filepath.Join(dir, "none"), KeyFile: filepath.Join(dir, "none")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with missing files = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestWarnValidity(t *testing.T) {
	c := &x509.Certificate{NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), "not valid before 2026-01-01T00:00:00Z"},
		{time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), ""},
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), "has expired"},
	} {
		log, hook := logtest.NewNullLogger()
		warned := warnValidity(log, c, tc.now)
		if warned != (tc.want != "") {
			t.Errorf("at %s: warned %v, want %v", tc.now, warned, tc.want != "")
		}
		if tc.want != "" && (len(hook.Entries) != 1 || hook.LastEntry().Level != logrus.WarnLevel || !strings.Contains(hook.LastEntry().Message, tc.want)) {
			t.Errorf("at %s: log %v, want one warning with %q", tc.now, hook.AllEntries(), tc.want)
		}
	}
}
