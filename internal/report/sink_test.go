package report

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one request as the sink's server saw it.
type received struct {
	header http.Header
	method string
	body   []byte
}

// sinkServer answers every request with status and records it.
type sinkServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newSinkServer(t *testing.T, status int) *sinkServer {
	s := &sinkServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, received{header: r.Header.Clone(), method: r.Method, body: body})
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sinkServer) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

type resultData struct {
	Phase    string   `json:"phase"`
	Released []string `json:"released,omitempty"`
	Message  string   `json:"message"`
}

func TestSinkSendDelivers(t *testing.T) {
	tests := map[string]struct {
		status   int
		outcome  string
		subject  string
		data     any
		wantType string
		wantBody string
	}{
		"a Succeeded outcome with a struct": {
			status: http.StatusOK, outcome: "Succeeded", subject: "team-a/rsm-1",
			data:     resultData{Phase: "Succeeded", Released: []string{"p/main"}, Message: "released 1"},
			wantType: "io.argocontroller.resume.Succeeded",
			wantBody: `{"phase":"Succeeded","released":["p/main"],"message":"released 1"}`,
		},
		"a Failed outcome with a map, the sink answering 202": {
			status: http.StatusAccepted, outcome: "Failed", subject: "team-b/wf-xyz",
			data:     map[string]any{"phase": "Failed", "reason": "NotFound"},
			wantType: "io.argocontroller.resume.Failed",
			wantBody: `{"phase":"Failed","reason":"NotFound"}`,
		},
		"an AlreadyFinal outcome, the sink answering 204": {
			status: http.StatusNoContent, outcome: "AlreadyFinal", subject: "ns/r",
			data:     []int{1, 2},
			wantType: "io.argocontroller.resume.AlreadyFinal",
			wantBody: `[1,2]`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newSinkServer(t, tc.status)
			sink, err := NewSink(srv.URL, "resume-trigger/pod-1")
			if err != nil {
				t.Fatalf("NewSink: %v", err)
			}
			if err := sink.Send(t.Context(), tc.outcome, tc.subject, tc.data); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost {
				t.Errorf("method %s, want POST", r.method)
			}
			want := map[string]string{
				"Ce-Specversion": "1.0",
				"Ce-Type":        tc.wantType,
				"Ce-Source":      "resume-trigger/pod-1",
				"Ce-Subject":     tc.subject,
				"Content-Type":   "application/json",
			}
			for h, v := range want {
				if got := r.header.Get(h); got != v {
					t.Errorf("header %s = %q, want %q", h, got, v)
				}
			}
			if r.header.Get("Ce-Id") == "" {
				t.Error("header Ce-Id is empty")
			}
			if r.header.Get("Ce-Datacontenttype") != "" {
				t.Errorf("Ce-Datacontenttype %q in binary mode, want it in Content-Type only", r.header.Get("Ce-Datacontenttype"))
			}
			var got, wantJSON any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", r.body, err)
			}
			_ = json.Unmarshal([]byte(tc.wantBody), &wantJSON)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(wantJSON)
			if string(gb) != string(wb) {
				t.Errorf("body %s, want %s", r.body, tc.wantBody)
			}
		})
	}
}

// Each Send is its own event: the ids differ.
func TestSinkSendIDsDiffer(t *testing.T) {
	srv := newSinkServer(t, http.StatusOK)
	sink, err := NewSink(srv.URL, "resume-trigger/pod-1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := sink.Send(t.Context(), "Succeeded", "ns/r", map[string]string{}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[0].header.Get("Ce-Id") == reqs[1].header.Get("Ce-Id") {
		t.Errorf("ids of %d requests: %q, want 2 different", len(reqs), []string{reqs[0].header.Get("Ce-Id"), reqs[len(reqs)-1].header.Get("Ce-Id")})
	}
}

func TestSinkSendFails(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + l.Addr().String()
	l.Close()

	tests := map[string]struct {
		status   int // the sink's answer; 0: nothing listens at the URL
		ctx      func(t *testing.T) context.Context
		data     any
		errText  string
		requests int // requests the sink should have seen
	}{
		"a 500 answer is an error": {
			status:   http.StatusInternalServerError,
			errText:  "send result event to sink",
			requests: 1,
		},
		"a 400 answer is an error": {
			status:   http.StatusBadRequest,
			errText:  "send result event to sink",
			requests: 1,
		},
		"an unreachable URL is an error": {
			errText: "send result event to sink",
		},
		"a cancelled context is an error": {
			status: http.StatusOK,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			errText: "send result event to sink",
		},
		"an expired deadline is an error": {
			status: http.StatusOK,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx
			},
			errText: "send result event to sink",
		},
		"data that is not JSON-encodable is an error before sending": {
			status:  http.StatusOK,
			data:    map[string]any{"ch": make(chan int)},
			errText: "encode result event",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := unreachable
			var srv *sinkServer
			if tc.status != 0 {
				srv = newSinkServer(t, tc.status)
				url = srv.URL
			}
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			data := tc.data
			if data == nil {
				data = resultData{Phase: "Failed"}
			}
			sink, err := NewSink(url, "resume-trigger/pod-1")
			if err != nil {
				t.Fatalf("NewSink: %v", err)
			}
			err = sink.Send(ctx, "Failed", "ns/r", data)
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("Send error = %v, want one containing %q", err, tc.errText)
			}
			if srv != nil {
				if n := len(srv.requests()); n != tc.requests {
					t.Errorf("the sink saw %d requests, want %d", n, tc.requests)
				}
			}
		})
	}
}

func TestNewSinkBadURL(t *testing.T) {
	tests := map[string]struct {
		url string
	}{
		"a URL that does not parse": {url: "http://[::1"},
		"a control character":       {url: "http://sink\x7f/"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sink, err := NewSink(tc.url, "src")
			if err == nil || !strings.Contains(err.Error(), "result sink") {
				t.Fatalf("NewSink(%q) = %v, %v; want an error naming the result sink", tc.url, sink, err)
			}
			if sink != nil {
				t.Errorf("NewSink returned a sink with the error")
			}
		})
	}
}
