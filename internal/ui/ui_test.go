package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"k8s.io/client-go/rest"
)

const (
	serverToken = "the-servers-own-token"
	userToken   = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
)

// fakeAPI answers as a Kubernetes API server would, and records the Authorization header of every request.
type fakeAPI struct {
	mu    sync.Mutex
	auth  []string
	paths []string
	// hold, when set, keeps every request waiting until it is closed; each announces itself on held.
	hold, held chan struct{}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	hold, held := f.hold, f.held
	f.mu.Unlock()
	if hold != nil {
		held <- struct{}{}
		<-hold
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/selfsubjectreviews"):
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","status":{"userInfo":{"username":"alice<b>"}}}`))
	case r.URL.Path == "/api/v1/namespaces/team-a/pods/wf-pause-1":
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"wf-pause-1","namespace":"team-a",
			"annotations":{"workflows.argoproj.io/node-id":"wf-1"},"labels":{"workflows.argoproj.io/workflow":"wf"},
			"ownerReferences":[{"apiVersion":"argoproj.io/v1alpha1","kind":"Workflow","name":"wf","uid":"u1","controller":true}]}}`))
	default:
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
			"message": `pods is forbidden: User "alice" cannot list resource "pods" <script>alert(1)</script>`,
		})
	}
}

func newTestUI(t *testing.T, burst int) (*Handler, *fakeAPI, *logtest.Hook) {
	t.Helper()
	api := &fakeAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h, err := New(Config{
		API:   &rest.Config{Host: srv.URL, BearerToken: serverToken, Username: "server", Password: "secret"},
		Log:   log,
		Rate:  1,
		Burst: burst,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, api, hook
}

func newRequest(method, target string, body io.Reader) *http.Request {
	return httptest.NewRequestWithContext(context.Background(), method, target, body)
}

func post(h http.Handler, path string, form url.Values) *httptest.ResponseRecorder {
	req := newRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Every API request behind a page carries the person's token, never the server's credentials; the API
// server's refusal is what the page shows, escaped; the token is in no log line and in no cookie.
func TestActsAsThePersonOnly(t *testing.T) {
	h, api, hook := newTestUI(t, 100)
	rec := post(h, "/namespaces/team-a", url.Values{"token": {userToken}})
	body := rec.Body.String()
	if rec.Code != http.StatusForbidden || !strings.Contains(body, `cannot list resource &#34;pods&#34; &lt;script&gt;alert(1)&lt;/script&gt;`) {
		t.Errorf("status %d, page:\n%s", rec.Code, body)
	}
	if !strings.Contains(body, "acting as <b>alice&lt;b&gt;</b>") {
		t.Errorf("the page does not say whose rights it acts with:\n%s", body)
	}
	if len(api.auth) < 2 {
		t.Fatalf("requests %v", api.paths)
	}
	for i, a := range api.auth {
		if a != "Bearer "+userToken {
			t.Errorf("%s carried %q, want the person's token", api.paths[i], a)
		}
	}
	if c := rec.Header().Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("cookies set: %v", c)
	}
	for _, e := range hook.AllEntries() {
		line, _ := e.String()
		if strings.Contains(line, userToken) || strings.Contains(line, serverToken) {
			t.Errorf("a token was logged: %s", line)
		}
	}
}

func TestSecurityHeadersAndSignIn(t *testing.T) {
	h, api, _ := newTestUI(t, 100)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(http.MethodGet, "/namespaces/team-a/workflows/wf?node=wf-1", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `action="/namespaces/team-a/workflows/wf?node=wf-1"`) {
		t.Errorf("sign-in: %d\n%s", rec.Code, rec.Body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if strings.Contains(rec.Body.String(), "<script") {
		t.Error("the page has a script")
	}
	if len(api.paths) != 0 {
		t.Errorf("a page without a token called the API server: %v", api.paths)
	}
	css := httptest.NewRecorder()
	h.ServeHTTP(css, newRequest(http.MethodGet, "/static/style.css", nil))
	if css.Code != http.StatusOK || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %s", css.Code, css.Header().Get("Content-Type"))
	}
}

// Bad input is refused before any API call.
func TestRefusedBeforeAnyCall(t *testing.T) {
	h, api, _ := newTestUI(t, 100)
	for name, tc := range map[string]struct {
		path string
		form url.Values
		code int
		want string
	}{
		"no token":             {"/namespaces/team-a", url.Values{}, 400, "paste a Kubernetes bearer token"},
		"not a token":          {"/namespaces/team-a", url.Values{"token": {"a b\"<"}}, 400, "not a bearer token"},
		"token too long":       {"/namespaces/team-a", url.Values{"token": {strings.Repeat("a", maxTokenBytes+1)}}, 400, "longer than"},
		"body too large":       {"/namespaces/team-a", url.Values{"token": {strings.Repeat("a", maxBodyBytes)}}, 400, "could not be read"},
		"bad namespace":        {"/namespaces/Team_A", url.Values{"token": {userToken}}, 400, "namespace in the address is not a valid name"},
		"bad workflow":         {"/namespaces/team-a/workflows/WF!", url.Values{"token": {userToken}}, 400, "workflow in the address"},
		"release without node": {"/namespaces/team-a/workflows/wf/release", url.Values{"token": {userToken}, "container": {"main"}}, 400, "no step named"},
		"release, bad stage":   {"/namespaces/team-a/workflows/wf/release", url.Values{"token": {userToken}, "node": {"wf-1"}, "stage": {"during"}}, 400, "during"},
	} {
		api.paths = nil
		rec := post(h, tc.path, tc.form)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d, want %d with %q:\n%s", name, rec.Code, tc.code, tc.want, rec.Body)
		}
		for _, p := range api.paths {
			if !strings.HasSuffix(p, "/selfsubjectreviews") {
				t.Errorf("%s: called %s", name, p)
			}
		}
	}
}

// The pod page sends the person on to the workflow page with the step selected, keeping the POST (307)
// so the token travels in the body, not in the URL.
func TestPodRedirects(t *testing.T) {
	h, _, _ := newTestUI(t, 100)
	rec := post(h, "/namespaces/team-a/pods/wf-pause-1", url.Values{"token": {userToken}})
	if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != "/namespaces/team-a/workflows/wf?node=wf-1#node-wf-1" {
		t.Errorf("%d Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestRateLimitPerAddress(t *testing.T) {
	h, _, _ := newTestUI(t, 3)
	codes := func(addr string, n int) []int {
		var out []int
		for range n {
			req := newRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = addr
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			out = append(out, rec.Code)
		}
		return out
	}
	if got := codes("192.0.2.1:1000", 4); got[2] != 200 || got[3] != http.StatusTooManyRequests {
		t.Errorf("first address: %v", got)
	}
	if got := codes("192.0.2.2:1000", 1); got[0] != 200 {
		t.Errorf("another address shares the first one's bucket: %v", got)
	}
}

func TestLimiterForgetsRefilledClients(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(1, 2, func() time.Time { return now })
	for i := range maxClients {
		req := newRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)
		l.allow(req)
	}
	now = now.Add(3 * time.Second)
	req := newRequest(http.MethodGet, "/", nil)
	l.allow(req)
	if len(l.clients) != 1 {
		t.Errorf("%d clients kept, want the new one only", len(l.clients))
	}
}

// Behind an auth proxy the token comes in the Authorization header: a GET renders the page with it, the
// page's forms carry no token, and a POST another site makes the browser send (the proxy's cookie goes
// along) is refused before any API call.
func TestAuthProxyHeader(t *testing.T) {
	h, api, _ := newTestUI(t, 100)
	req := newRequest(http.MethodGet, "/namespaces/team-a", nil)
	req.Header.Set("Authorization", "Bearer "+userToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "cannot list resource") || strings.Contains(rec.Body.String(), userToken) {
		t.Errorf("GET with the proxy's header: %d\n%s", rec.Code, rec.Body)
	}
	for i, a := range api.auth {
		if a != "Bearer "+userToken {
			t.Errorf("%s carried %q", api.paths[i], a)
		}
	}
	release := url.Values{"node": {"wf-1"}, "container": {"main"}, "stage": {"after"}}.Encode()
	for name, tc := range map[string]struct {
		headers map[string]string
		refused bool
	}{
		"cross-site by Sec-Fetch-Site": {map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://example.com"}, true},
		"same-site is not same-origin": {map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		"another Origin":               {map[string]string{"Origin": "https://evil.example"}, true},
		"same origin":                  {map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, false},
	} {
		api.paths = nil
		req := newRequest(http.MethodPost, "/namespaces/team-a/workflows/wf/release", strings.NewReader(release))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+userToken)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		refused := rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), "sent from another site")
		if refused != tc.refused || (tc.refused && len(api.paths) != 0) {
			t.Errorf("%s: %d, API calls %v\n%s", name, rec.Code, api.paths, rec.Body)
		}
	}
	// A release is never a GET: no link can make one.
	req = newRequest(http.MethodGet, "/namespaces/team-a/workflows/wf/release?node=wf-1", nil)
	req.Header.Set("Authorization", "Bearer "+userToken)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET release: %d", rec.Code)
	}
}

// Pages answered at once are bounded: past maxInFlight the next is refused at once (503), before any
// API call; static files are not counted.
func TestPagesInFlightBounded(t *testing.T) {
	h, api, _ := newTestUI(t, 1000)
	hold, held := make(chan struct{}), make(chan struct{}, maxInFlight)
	api.mu.Lock()
	api.hold, api.held = hold, held
	api.mu.Unlock()
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Go(func() { post(h, "/namespaces/team-a", url.Values{"token": {userToken}}) })
	}
	for range maxInFlight {
		<-held
	}
	if rec := post(h, "/namespaces/team-a", url.Values{"token": {userToken}}); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("page %d: %d, want 503", maxInFlight+1, rec.Code)
	}
	css := httptest.NewRecorder()
	h.ServeHTTP(css, newRequest(http.MethodGet, "/static/style.css", nil))
	if css.Code != http.StatusOK {
		t.Errorf("style.css while busy: %d", css.Code)
	}
	api.mu.Lock()
	api.hold = nil
	api.mu.Unlock()
	close(hold)
	wg.Wait()
}
