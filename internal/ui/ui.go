package ui

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"
)

//go:embed assets
var assets embed.FS

// Defaults of Config.
const (
	DefaultReleaseWait = time.Minute
	DefaultRate        = 5
	DefaultBurst       = 20
	DefaultMaxWaits    = 32
)

// maxBodyBytes bounds a form: a token (an OIDC ID token with many groups is a few KiB) and a few names.
const maxBodyBytes = 64 << 10

// maxTokenBytes bounds the token itself.
const maxTokenBytes = 16 << 10

// MaxHeaderBytes is what the UI's http.Server should allow: no page needs large headers.
const MaxHeaderBytes = 16 << 10

// pollInterval is how often a release reads its Resume back.
const pollInterval = 250 * time.Millisecond

// apiTimeout bounds the API calls of one page.
const apiTimeout = 15 * time.Second

// Config is what the UI needs.
type Config struct {
	// API says where the API server is and how to trust it (host, CA, server name, proxy). Its
	// credentials are dropped: every request carries the person's token instead.
	API *rest.Config
	Log logrus.FieldLogger
	// ReleaseWait bounds how long a release follows its Resume, and is the Resume's activeDeadlineSeconds.
	ReleaseWait time.Duration
	// Rate and Burst are the requests per second each client address may make.
	Rate  float64
	Burst int
	// MaxWaits bounds the releases followed at once (each holds a request open); more are refused (503).
	MaxWaits int
	// TLS says the page is served over TLS (Strict-Transport-Security is then sent).
	TLS bool
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.API == nil || c.API.Host == "" {
		return errors.New("ui: the API server's address is required")
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	if c.ReleaseWait == 0 {
		c.ReleaseWait = DefaultReleaseWait
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxWaits == 0 {
		c.MaxWaits = DefaultMaxWaits
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ReleaseWait < time.Second || c.Rate < 0 || c.Burst < 1 || c.MaxWaits < 1 {
		return errors.New("ui: ReleaseWait must be at least 1s, Rate, Burst and MaxWaits positive")
	}
	return nil
}

// Handler serves the UI.
type Handler struct {
	conf    Config
	api     *rest.Config
	pages   *template.Template
	limit   *limiter
	waits   chan struct{}
	mux     *http.ServeMux
	headers map[string]string
}

// New builds the UI's handler.
func New(conf Config) (*Handler, error) {
	if err := conf.validate(); err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	h := &Handler{
		conf:  conf,
		api:   userBase(conf.API),
		pages: pages,
		limit: newLimiter(conf.Rate, conf.Burst, conf.Now),
		waits: make(chan struct{}, conf.MaxWaits),
		mux:   http.NewServeMux(),
		headers: map[string]string{
			// No script at all, styles and images only from here, forms only posted here, never framed.
			"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			// A page holds the token in its forms: never cached, never named to another site.
			"Cache-Control":                "no-store",
			"Referrer-Policy":              "no-referrer",
			"Cross-Origin-Opener-Policy":   "same-origin",
			"Cross-Origin-Resource-Policy": "same-origin",
		},
	}
	if conf.TLS {
		h.headers["Strict-Transport-Security"] = "max-age=31536000"
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /{$}", h.home)
	h.mux.HandleFunc("POST /{$}", h.home)
	h.mux.HandleFunc("GET /namespaces/{ns}", h.signIn)
	h.mux.HandleFunc("POST /namespaces/{ns}", h.namespace)
	h.mux.HandleFunc("GET /namespaces/{ns}/workflows/{wf}", h.signIn)
	h.mux.HandleFunc("POST /namespaces/{ns}/workflows/{wf}", h.workflow)
	h.mux.HandleFunc("POST /namespaces/{ns}/workflows/{wf}/release", h.release)
	h.mux.HandleFunc("GET /namespaces/{ns}/pods/{pod}", h.signIn)
	h.mux.HandleFunc("POST /namespaces/{ns}/pods/{pod}", h.pod)
	h.mux.HandleFunc("POST /namespaces/{ns}/resumes/{name}", h.resume)
	return h, nil
}

// ServeHTTP sets the security headers, applies the rate and size limits and logs the request (never its
// body: the token is there).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := h.conf.Now()
	for k, v := range h.headers {
		w.Header().Set(k, v)
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		h.conf.Log.WithFields(logrus.Fields{
			"method": r.Method, "path": r.URL.Path, "status": rec.status, "remote": r.RemoteAddr,
			"duration": h.conf.Now().Sub(began).Round(time.Millisecond).String(),
		}).Debug("ui request")
	}()
	if !h.limit.allow(r) {
		rec.Header().Set("Retry-After", "1")
		http.Error(rec, "too many requests", http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(rec, r.Body, maxBodyBytes)
	h.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// tokenPattern is RFC 6750's b64token: what a Kubernetes bearer token (a JWT, a static token) is made of.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// token reads the person's token from the posted form.
func token(r *http.Request) (string, error) {
	if err := r.ParseForm(); err != nil {
		return "", fmt.Errorf("the form could not be read (at most %d KiB): %w", maxBodyBytes>>10, err)
	}
	t := strings.TrimSpace(r.PostForm.Get("token"))
	t = strings.TrimPrefix(t, "Bearer ")
	switch {
	case t == "":
		return "", errors.New("paste a Kubernetes bearer token")
	case len(t) > maxTokenBytes:
		return "", fmt.Errorf("the token is longer than %d KiB", maxTokenBytes>>10)
	case !tokenPattern.MatchString(t):
		return "", errors.New("that is not a bearer token (letters, digits and -._~+/ only)")
	}
	return t, nil
}

// pathOf is the page's path with its query, for a form that posts back to it.
func pathOf(r *http.Request) string {
	u := url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	return u.String()
}
