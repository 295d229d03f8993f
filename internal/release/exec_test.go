package release

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestCappedKeepsTheFirstBytes(t *testing.T) {
	tests := map[string]struct {
		writes []string
		exp    string
	}{
		"short output is kept":          {writes: []string{"ab", "cd"}, exp: "abcd"},
		"output is cut at max":          {writes: []string{"abc", "def"}, exp: "abcd"},
		"writes past max are dropped":   {writes: []string{"abcd", "ef", "g"}, exp: "abcd"},
		"one write longer than max":     {writes: []string{"abcdefgh"}, exp: "abcd"},
		"nothing written is empty text": {exp: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &capped{max: 4}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Errorf("Write(%q) = %d, %v; want %d, nil (the stream must not stall)", w, n, err, len(w))
				}
			}
			if got := c.String(); got != tc.exp {
				t.Errorf("kept %q, want %q", got, tc.exp)
			}
		})
	}
}

func TestAPIExecutorSendsTheArgvToPodsExec(t *testing.T) {
	var mu sync.Mutex
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"pods \"p\" is forbidden"}`))
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{"touch", "/var/run/argo/ctr/main/before"}
	err = (&APIExecutor{Config: cfg, Client: client}).Exec(t.Context(), "argo", "p", "main", argv)
	if err == nil {
		t.Fatal("exec against a refusing API server succeeded")
	}
	if exit := new(ExitError); errors.As(err, &exit) {
		t.Errorf("a refused exec is reported as a command exit: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) == 0 {
		t.Fatal("no request reached the API server")
	}
	for _, r := range reqs {
		if r.URL.Path != "/api/v1/namespaces/argo/pods/p/exec" {
			t.Errorf("request path = %s, want /api/v1/namespaces/argo/pods/p/exec", r.URL.Path)
		}
		q := r.URL.Query()
		if q.Get("container") != "main" || !slices.Equal(q["command"], argv) || q.Get("stdout") != "true" || q.Get("stderr") != "true" || q.Get("stdin") == "true" || q.Get("tty") == "true" {
			t.Errorf("query = %v, want container main, command %q, stdout and stderr only", q, argv)
		}
		if strings.Contains(r.URL.RawQuery, "sh") {
			t.Errorf("query %q mentions a shell", r.URL.RawQuery)
		}
	}
	if reqs[0].Method != http.MethodGet {
		t.Errorf("first attempt = %s, want GET (WebSocket)", reqs[0].Method)
	}
}
