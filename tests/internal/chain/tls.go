package chain

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Shipped TLS kustomizations, relative to the repository root.
const (
	TLSComponentDir  = "manifests/tls"
	CertManagerDir   = "manifests/tls/cert-manager"
	tlsCertFileFlag  = "--tls-cert-file="
	tlsKeyFileFlag   = "--tls-key-file="
	caKeyInTheSecret = "ca.crt"
)

// serverTLS is what manifests/tls sets up, done by the chain: the certificate cert-manager would issue
// (the Certificate's names, signed by a CA of the test), laid out as the kubelet lays out the Secret's
// volume, and the CA where the argo-events sensor controller would mount certSecret.
type serverTLS struct {
	dir        string // the Secret volume: tls.crt, tls.key, ca.crt through ..data
	certFile   string // the server's --tls-cert-file, inside dir
	keyFile    string
	serverName string // the Sensor's serverNameOverride
	dnsNames   []string
	caPath     string // /argo-events/secrets/<certSecret.name>/<certSecret.key> in the Sensor's namespace
	// deployment is the server's Deployment as rendered with the Component.
	deployment *unstructured.Unstructured

	mu  sync.Mutex
	ca  *testCA
	gen int
}

// checkTLS takes an overlay rendered with manifests/tls and its cert-manager Certificate (installValues),
// checks that the pieces name the same Secret, and returns the TLS setup for the server: the Sensor
// runs as rendered (secure, certSecret, serverNameOverride).
func checkTLS(objs []*unstructured.Unstructured, dir string) (*serverTLS, error) {
	var sensor, deploy, cert object
	var rendered *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Sensor":
			sensor = object(o.Object)
		case "Deployment":
			deploy, rendered = object(o.Object), o
		case "Certificate":
			cert = object(o.Object)
		}
	}
	if sensor == nil || deploy == nil || cert == nil {
		return nil, fmt.Errorf("%s with %s: want a Sensor, a Deployment and a Certificate", TLSComponentDir, CertManagerDir)
	}
	secretName, _, _ := unstructured.NestedString(cert, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(cert, "spec", "dnsNames")

	// The server: the flags' files must lie in a volume of the Certificate's Secret.
	containers, _, _ := unstructured.NestedSlice(deploy, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return nil, errors.New("the rendered Deployment has no container")
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	var certFlag, keyFlag string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, tlsCertFileFlag); ok {
			certFlag = v
		}
		if v, ok := strings.CutPrefix(a, tlsKeyFileFlag); ok {
			keyFlag = v
		}
	}
	if certFlag == "" || keyFlag == "" || filepath.Dir(certFlag) != filepath.Dir(keyFlag) {
		return nil, fmt.Errorf("%s: the Deployment's args %v do not name a certificate and key in one directory", TLSComponentDir, args)
	}
	mounts, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "volumeMounts")
	volumes, _, _ := unstructured.NestedSlice(deploy, "spec", "template", "spec", "volumes")
	mounted := ""
	for _, m := range mounts {
		mm := m.(map[string]any)
		if mm["mountPath"] == filepath.Dir(certFlag) {
			if _, sub := mm["subPath"]; sub {
				return nil, fmt.Errorf("%s: the certificate is mounted with subPath, which the kubelet never updates", TLSComponentDir)
			}
			for _, v := range volumes {
				vm := v.(map[string]any)
				if vm["name"] == mm["name"] {
					mounted, _, _ = unstructured.NestedString(vm, "secret", "secretName")
				}
			}
		}
	}
	if mounted == "" || mounted != secretName {
		return nil, fmt.Errorf("%s: %s is in a volume of Secret %q, the Certificate writes %q", TLSComponentDir, certFlag, mounted, secretName)
	}

	// The Sensor: every custom trigger secure, trusting ca.crt of that Secret under one name.
	triggers, _, _ := unstructured.NestedSlice(sensor, "spec", "triggers")
	var caPath, serverName string
	for i, t := range triggers {
		custom, _, _ := unstructured.NestedMap(t.(map[string]any), "template", "custom")
		secure, _, _ := unstructured.NestedBool(custom, "secure")
		name, _, _ := unstructured.NestedString(custom, "certSecret", "name")
		key, _, _ := unstructured.NestedString(custom, "certSecret", "key")
		override, _, _ := unstructured.NestedString(custom, "serverNameOverride")
		if !secure || name != secretName || key != caKeyInTheSecret || override == "" {
			return nil, fmt.Errorf("%s: trigger %d: secure %v, certSecret %s/%s, serverNameOverride %q; want secure with %s/%s", TLSComponentDir, i, secure, name, key, override, secretName, caKeyInTheSecret)
		}
		if serverName != "" && override != serverName {
			return nil, fmt.Errorf("%s: the triggers verify different names (%s, %s)", TLSComponentDir, serverName, override)
		}
		serverName, caPath = override, filepath.Join("/argo-events/secrets", name, key)
	}
	if !slices.Contains(dnsNames, serverName) {
		return nil, fmt.Errorf("%s: the Certificate's dnsNames %v lack %q, the name the Sensor verifies", CertManagerDir, dnsNames, serverName)
	}
	vol := filepath.Join(dir, "tls", filepath.Base(filepath.Dir(certFlag)))
	if err := os.MkdirAll(vol, 0o755); err != nil {
		return nil, err
	}
	s := &serverTLS{
		dir: vol, certFile: filepath.Join(vol, filepath.Base(certFlag)), keyFile: filepath.Join(vol, filepath.Base(keyFlag)),
		serverName: serverName, dnsNames: dnsNames, caPath: caPath, deployment: rendered,
	}
	if _, err := s.issue(); err != nil {
		return nil, err
	}
	for _, f := range []string{s.certFile, s.keyFile, filepath.Join(vol, caKeyInTheSecret)} {
		if err := os.Symlink(filepath.Join("..data", filepath.Base(f)), f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// issue signs a new server certificate for the Certificate's names (and, first time or when a new CA
// is wanted, makes the CA) and swaps it into the Secret volume the way the kubelet does: a new
// timestamped directory, then `..data` renamed onto it. It returns the new certificate's serial.
func (s *serverTLS) issue() (*big.Int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca == nil {
		ca, err := newTestCA(fmt.Sprintf("chain-ca-%d", s.gen))
		if err != nil {
			return nil, err
		}
		s.ca = ca
	}
	certPEM, keyPEM, serial, err := s.ca.issue(s.serverName, s.dnsNames)
	if err != nil {
		return nil, err
	}
	s.gen++
	data := filepath.Join(s.dir, fmt.Sprintf("..%s_%d", time.Now().UTC().Format("2006_01_02_15_04_05"), s.gen))
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	for name, b := range map[string][]byte{filepath.Base(s.certFile): certPEM, filepath.Base(s.keyFile): keyPEM, caKeyInTheSecret: s.ca.certPEM} {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		return nil, err
	}
	return serial, nil
}

func (s *serverTLS) caPEM() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ca.certPEM
}

// testCA signs server certificates.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(cn string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue signs a server certificate (not a CA) for dnsNames, as cert-manager's CA issuer would.
func (ca *testCA) issue(cn string, dnsNames []string) (certPEM, keyPEM []byte, serial *big.Int, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), tmpl.SerialNumber, nil
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	return n
}

// ServesTLS reports whether the chain serves resume-trigger over TLS (Options.TLS).
func (c *Chain) ServesTLS() bool { return c.tls != nil }

// RotateServerCert replaces the server's certificate in its Secret volume with one from a new CA, as a
// renewal with a new CA would, and returns its serial. The server is not told: it must notice. The
// Sensor keeps its connection (and its trust in the old CA) until it starts again, which then hands it
// the new CA: so after a restart of the Sensor, a release proves the server serves the new certificate.
func (c *Chain) RotateServerCert() (*big.Int, error) {
	if c.tls == nil {
		return nil, errors.New("the chain does not serve TLS (Options.TLS)")
	}
	c.tls.mu.Lock()
	c.tls.ca = nil
	c.tls.mu.Unlock()
	serial, err := c.tls.issue()
	if err != nil {
		return nil, err
	}
	c.logf("chain: server certificate rotated (serial %x, new CA)", serial)
	return serial, nil
}

// TLSDeployment is the server's Deployment rendered from manifests/base with manifests/tls.
func (c *Chain) TLSDeployment() (*unstructured.Unstructured, error) {
	if c.tls == nil {
		return nil, errors.New("the chain does not serve TLS (Options.TLS)")
	}
	return c.tls.deployment.DeepCopy(), nil
}

// ServedCertSerial makes a new TLS handshake with resume-trigger as the Sensor would (the CA it is given,
// the name it verifies) and returns the serial of the certificate the server presented.
func (c *Chain) ServedCertSerial(ctx context.Context) (*big.Int, error) {
	if c.tls == nil {
		return nil, errors.New("the chain does not serve TLS (Options.TLS)")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.tls.caPEM())
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: c.tls.serverName, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", c.ServerAddress)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}
