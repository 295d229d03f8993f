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

// maxInFlight bounds the pages being answered at once: each holds the person's API reads in memory (a
// namespace's pods, its Resumes), so a few people cannot make the server hold many namespaces at once.
const maxInFlight = 64

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
	conf  Config
	api   *rest.Config
	pages *template.Template
	limit *limiter
	waits chan struct{}
	// inFlight holds a token per page being answered (static files aside).
	inFlight chan struct{}
	mux      *http.ServeMux
	headers  map[string]string
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
		conf:     conf,
		api:      userBase(conf.API),
		pages:    pages,
		limit:    newLimiter(conf.Rate, conf.Burst, conf.Now),
		waits:    make(chan struct{}, conf.MaxWaits),
		inFlight: make(chan struct{}, maxInFlight),
		mux:      http.NewServeMux(),
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
	// A GET without a token (the Argo UI's links) gets the sign-in form; with one from an auth proxy, the
	// page. A release is a POST only: no link can make one.
	for _, m := range []string{"GET", "POST"} {
		h.mux.HandleFunc(m+" /namespaces/{ns}", h.namespace)
		h.mux.HandleFunc(m+" /namespaces/{ns}/workflows/{wf}", h.workflow)
		h.mux.HandleFunc(m+" /namespaces/{ns}/pods/{pod}", h.pod)
		h.mux.HandleFunc(m+" /namespaces/{ns}/resumes/{name}", h.resume)
	}
	h.mux.HandleFunc("POST /namespaces/{ns}/workflows/{wf}/release", h.release)
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
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			rec.Header().Set("Retry-After", "2")
			http.Error(rec, "busy: too many pages are being answered; try again in a few seconds", http.StatusServiceUnavailable)
			return
		}
	}
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

// errNoToken is a page asked for without any token: the sign-in form, without a complaint.
var errNoToken = errors.New("paste a Kubernetes bearer token")

// credential is the person's token and where it came from.
type credential struct {
	token string
	// fromHeader: an auth proxy in front set the Authorization header (docs/ui.md). The browser then
	// sends the proxy's session cookie with every request, cross-site ones too, so a POST must come from
	// this page's own origin.
	fromHeader bool
}

// credentialOf reads the person's token: the posted form's field first (pasted, or re-posted by the
// page's forms), else an Authorization header set by an auth proxy.
func credentialOf(r *http.Request) (credential, error) {
	var t string
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return credential{}, fmt.Errorf("the form could not be read (at most %d KiB): %w", maxBodyBytes>>10, err)
		}
		t = strings.TrimPrefix(strings.TrimSpace(r.PostForm.Get("token")), "Bearer ")
	}
	c := credential{token: t}
	if t == "" {
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			c = credential{token: strings.TrimSpace(h), fromHeader: true}
		}
	}
	switch {
	case c.token == "":
		return c, errNoToken
	case len(c.token) > maxTokenBytes:
		return credential{}, fmt.Errorf("the token is longer than %d KiB", maxTokenBytes>>10)
	case !tokenPattern.MatchString(c.token):
		return credential{}, errors.New("that is not a bearer token (letters, digits and -._~+/ only)")
	case c.fromHeader && r.Method == http.MethodPost && !sameOrigin(r):
		return credential{}, errCrossSite
	}
	return c, nil
}

// errCrossSite refuses a POST another site made the browser send through the auth proxy.
var errCrossSite = errors.New("refused: this request was sent from another site")

// sameOrigin reports whether a request comes from a page of this origin, by the headers browsers set
// and pages cannot: Sec-Fetch-Site, else Origin. A client that sends neither is not a browser (curl), which
// no other site can make send anything.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		return err == nil && u.Host == r.Host
	}
	return true
}

// pathOf is the page's path with its query, for a form that posts back to it.
func pathOf(r *http.Request) string {
	u := url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	return u.String()
}
