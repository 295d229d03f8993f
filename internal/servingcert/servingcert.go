package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultInterval is how often the files are read again. Kubernetes takes up to a minute or so to
// update a Secret volume; a few seconds more do not matter, and two small reads cost nothing.
const DefaultInterval = 5 * time.Second

// Config names the files and how to watch them.
type Config struct {
	// CertFile and KeyFile are the PEM certificate (chain) and its private key.
	CertFile, KeyFile string
	// Interval between looks at the files; DefaultInterval when zero.
	Interval time.Duration
	Log      logrus.FieldLogger
}

// Reloader holds the certificate last loaded from a valid pair of files and hands it to every TLS
// handshake (GetCertificate). It reads both files again every Interval and takes a new pair as soon as it
// is valid; a pair that is not (a half-written update, a key that does not match) is logged and the
// previous certificate is kept.
//
// The files' contents, not their modification times, decide whether something changed: a Secret
// volume replaces its files by swapping the `..data` symlink to a new directory, and the modification
// time a stat sees through that symlink says little about which pair is current.
type Reloader struct {
	conf Config

	mu              sync.RWMutex
	cert            *tls.Certificate
	certPEM, keyPEM []byte
	// rejectedCert/rejectedKey are the contents last found invalid, so one bad pair is logged once,
	// not at every look.
	rejectedCert, rejectedKey []byte
	// readErr is the last failure to read the files, so a lasting one is logged once.
	readErr string
}

// New loads the pair once; it fails when the files cannot be read or do not hold a valid pair, since a
// server started with a broken certificate would refuse every caller.
func New(conf Config) (*Reloader, error) {
	if conf.CertFile == "" || conf.KeyFile == "" {
		return nil, errors.New("servingcert: CertFile and KeyFile are required")
	}
	if conf.Interval <= 0 {
		conf.Interval = DefaultInterval
	}
	if conf.Log == nil {
		conf.Log = logrus.StandardLogger()
	}
	r := &Reloader{conf: conf}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", conf.CertFile, conf.KeyFile, err)
	}
	r.cert, r.certPEM, r.keyPEM = cert, certPEM, keyPEM
	warnValidity(conf.Log.WithFields(logrus.Fields{"certFile": conf.CertFile, "keyFile": conf.KeyFile}), cert.Leaf, time.Now())
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// Current is the certificate served now (its Leaf is parsed).
func (r *Reloader) Current() *x509.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert.Leaf
}

// Run looks at the files every Interval until ctx ends.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.conf.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Check()
		}
	}
}

// Check reads the files once and takes the pair if it changed and is valid. It reports whether the
// served certificate changed.
func (r *Reloader) Check() bool {
	log := r.conf.Log.WithFields(logrus.Fields{"certFile": r.conf.CertFile, "keyFile": r.conf.KeyFile})
	certPEM, keyPEM, err := r.read()
	r.mu.Lock()
	logIt := err != nil && err.Error() != r.readErr
	if r.readErr = ""; err != nil {
		r.readErr = err.Error()
	}
	r.mu.Unlock()
	if err != nil {
		// Between the removal of an old file and the creation of the new one (a writer that does not
		// swap atomically) a file may be missing for a moment: the next look sees it.
		if logIt {
			log.WithError(err).Warn("cannot read the TLS files; serving the previous certificate")
		}
		return false
	}
	r.mu.RLock()
	same := bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM)
	known := bytes.Equal(certPEM, r.rejectedCert) && bytes.Equal(keyPEM, r.rejectedKey)
	r.mu.RUnlock()
	if same || known {
		return false
	}
	cert, err := parse(certPEM, keyPEM)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.rejectedCert, r.rejectedKey = certPEM, keyPEM
		log.WithError(err).WithField("serving", describe(r.cert.Leaf)).Error("the new TLS certificate and key are not a valid pair; serving the previous certificate until they are")
		return false
	}
	old := r.cert.Leaf
	r.cert, r.certPEM, r.keyPEM = cert, certPEM, keyPEM
	r.rejectedCert, r.rejectedKey = nil, nil
	log.WithFields(logrus.Fields{"previous": describe(old), "serving": describe(cert.Leaf)}).Info("loaded a new TLS certificate")
	warnValidity(log, cert.Leaf, time.Now())
	return true
}

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.conf.CertFile); err != nil {
		return nil, nil, fmt.Errorf("read TLS certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.conf.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("read TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// parse checks that the pair belongs together.
func parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	// X509KeyPair fills Leaf (Go 1.23+); parse it anyway should that ever change.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// warnValidity logs a warning when the certificate is not valid at now: the Sensor refuses it, so every
// call fails its handshake until a valid one is loaded. It is served all the same, as a broken pair is
// not: a clock off by a little, or a certificate renewed a moment late, is better served than nothing.
func warnValidity(log logrus.FieldLogger, c *x509.Certificate, now time.Time) bool {
	switch {
	case c == nil:
	case now.Before(c.NotBefore):
		log.WithField("serving", describe(c)).Warnf("the TLS certificate is not valid before %s: callers will refuse it until then", c.NotBefore.UTC().Format(time.RFC3339))
		return true
	case now.After(c.NotAfter):
		log.WithField("serving", describe(c)).Warn("the TLS certificate has expired: callers refuse it; renew it (the server loads the renewed files without a restart)")
		return true
	}
	return false
}

// describe names a certificate in logs: subject, serial and expiry.
func describe(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%s (serial %x, valid until %s)", c.Subject.CommonName, c.SerialNumber, c.NotAfter.UTC().Format(time.RFC3339))
}
