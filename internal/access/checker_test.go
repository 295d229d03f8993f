package access

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// authorizer answers SelfSubjectAccessReviews from a set of denied "namespace verb resource" keys, and
// records what it was asked.
type authorizer struct {
	mu     sync.Mutex
	denied map[string]bool
	fail   error
	asked  []string
}

func key(ns string, r Right) string { return ns + " " + r.String() }

func (a *authorizer) deny(ns string, rs ...Right) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		a.denied[key(ns, r)] = true
	}
}

func (a *authorizer) grant(ns string, rs ...Right) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		delete(a.denied, key(ns, r))
	}
}

func newClient(a *authorizer, user string) *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		r := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attr := r.Spec.ResourceAttributes
		k := key(attr.Namespace, Right{Group: attr.Group, Resource: attr.Resource, Subresource: attr.Subresource, Verb: attr.Verb})
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.fail != nil {
			return true, nil, a.fail
		}
		a.asked = append(a.asked, k)
		out := r.DeepCopy()
		out.Status.Allowed = !a.denied[k]
		return true, out, nil
	})
	c.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		if user == "" {
			return true, nil, errors.New("no SelfSubjectReview here")
		}
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{Username: user}}}, nil
	})
	return c
}

var (
	execCreate   = Right{Resource: "pods", Subresource: "exec", Verb: "create"}
	statusUpdate = Right{Group: "argocontroller.io", Resource: "resumes", Subresource: "status", Verb: "update"}
	workflowGet  = Right{Group: "argoproj.io", Resource: "workflows", Verb: "get"}
)

const serverSA = "system:serviceaccount:argo-resume:resume-trigger"

func TestCheck(t *testing.T) {
	tests := map[string]struct {
		namespaces []string
		ephemeral  bool
		user       string
		denied     map[string][]Right
		fail       error
		// exp are the gauge's values by served_namespace; absent means no series.
		exp        map[string]float64
		expAsked   int // reviews sent
		expAdvice  map[string]string
		expRecord  map[string]bool // Permitted's canRecord, for namespaces not permitted
		expLog     []string
		expNoLog   []string
		expUnknown []string // namespaces still permitted for lack of an answer
	}{
		"every right everywhere: every namespace ready": {
			namespaces: []string{"team-a", "team-b"}, user: serverSA,
			exp:      map[string]float64{"team-a": 1, "team-b": 1},
			expAsked: 2 * len(Needed),
			expNoLog: []string{"level=error"},
		},
		"a RoleBinding missing in one namespace: that one not ready, the log names the binding": {
			namespaces: []string{"team-a", "team-b"}, user: serverSA,
			denied:    map[string][]Right{"team-b": Needed},
			exp:       map[string]float64{"team-a": 1, "team-b": 0},
			expAsked:  2 * len(Needed),
			expAdvice: map[string]string{"team-b": "create RoleBinding resume-trigger in namespace team-b (roleRef ClusterRole resume-trigger, subject ServiceAccount argo-resume/resume-trigger)"},
			expRecord: map[string]bool{"team-b": false},
			expLog:    []string{`level=error msg="resume-trigger may not get pods, list pods, create pods/exec`, "served_namespace=team-b"},
		},
		"only exec missing: not ready, but the Resume can still be told": {
			namespaces: []string{"team-a"}, user: serverSA,
			denied:    map[string][]Right{"team-a": {execCreate, workflowGet}},
			exp:       map[string]float64{"team-a": 0},
			expAsked:  len(Needed),
			expAdvice: map[string]string{"team-a": "may not create pods/exec, get workflows.argoproj.io in namespace team-a"},
			expRecord: map[string]bool{"team-a": true},
		},
		"no status update: the Resume cannot be told": {
			namespaces: []string{"team-a"}, user: serverSA,
			denied:    map[string][]Right{"team-a": {statusUpdate}},
			exp:       map[string]float64{"team-a": 0},
			expAsked:  len(Needed),
			expRecord: map[string]bool{"team-a": false},
		},
		"serving all: reviewed once cluster-wide, a ClusterRoleBinding advised": {
			namespaces: []string{"*"}, user: serverSA,
			denied:    map[string][]Right{"": {execCreate}},
			exp:       map[string]float64{"*": 0},
			expAsked:  len(Needed),
			expAdvice: map[string]string{"some-namespace": "create ClusterRoleBinding resume-trigger (roleRef ClusterRole resume-trigger, subject ServiceAccount argo-resume/resume-trigger)"},
			expRecord: map[string]bool{"some-namespace": true},
		},
		"the ServiceAccount's own name is the binding's": {
			namespaces: []string{"team-a"}, user: "system:serviceaccount:ops:rt",
			denied:    map[string][]Right{"team-a": {execCreate}},
			exp:       map[string]float64{"team-a": 0},
			expAsked:  len(Needed),
			expAdvice: map[string]string{"team-a": "create RoleBinding rt in namespace team-a (roleRef ClusterRole rt, subject ServiceAccount ops/rt)"},
		},
		"identity unknown: the install's names": {
			namespaces: []string{"team-a"},
			denied:     map[string][]Right{"team-a": {execCreate}},
			exp:        map[string]float64{"team-a": 0},
			expAsked:   len(Needed),
			expAdvice:  map[string]string{"team-a": "create RoleBinding resume-trigger in namespace team-a (roleRef ClusterRole resume-trigger, subject the server's ServiceAccount"},
		},
		"the ephemeral fallback's right missing: a warning, still ready": {
			namespaces: []string{"team-a"}, ephemeral: true, user: serverSA,
			denied:   map[string][]Right{"team-a": {EphemeralFallback}},
			exp:      map[string]float64{"team-a": 1},
			expAsked: len(Needed) + 1,
			expLog:   []string{"level=warning", "manifests/ephemeral-fallback"},
			expNoLog: []string{"level=error"},
		},
		"reviews failing: no verdict, every namespace still permitted": {
			namespaces: []string{"team-a"}, user: serverSA,
			fail:       errors.New("connection refused"),
			exp:        map[string]float64{},
			expLog:     []string{"could not review the server's rights", "connection refused"},
			expUnknown: []string{"team-a"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := &authorizer{denied: map[string]bool{}, fail: tc.fail}
			for ns, rs := range tc.denied {
				a.deny(ns, rs...)
			}
			client := newClient(a, tc.user)
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			log := logrus.New()
			log.SetOutput(&logs)
			log.SetFormatter(&logrus.TextFormatter{DisableColors: true, DisableTimestamp: true})
			c, err := New(Config{Reviews: client.AuthorizationV1(), Identity: client.AuthenticationV1(), Namespaces: tc.namespaces, Ephemeral: tc.ephemeral, Registerer: reg, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			c.Check(t.Context())

			if got := len(a.asked); got != tc.expAsked {
				t.Errorf("%d reviews, want %d: %v", got, tc.expAsked, a.asked)
			}
			if got := testutil.CollectAndCount(c.gauge); got != len(tc.exp) {
				t.Errorf("%d gauge series, want %d", got, len(tc.exp))
			}
			for ns, want := range tc.exp {
				if got := testutil.ToFloat64(c.gauge.WithLabelValues(ns)); got != want {
					t.Errorf("resume_trigger_namespace_ready{served_namespace=%q} = %v, want %v", ns, got, want)
				}
			}
			for ns, want := range tc.expAdvice {
				_, err := c.Permitted(ns)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Permitted(%s) = %v, want it to say %q", ns, err, want)
				}
			}
			for ns, want := range tc.expRecord {
				if got, err := c.Permitted(ns); err == nil || got != want {
					t.Errorf("Permitted(%s) = %v, %v; want canRecord %v and an error", ns, got, err, want)
				}
			}
			for ns, v := range tc.exp {
				if v == 1 {
					if ok, err := c.Permitted(ns); !ok || err != nil {
						t.Errorf("Permitted(%s) = %v, %v in a ready namespace", ns, ok, err)
					}
				}
			}
			for _, ns := range tc.expUnknown {
				if ok, err := c.Permitted(ns); !ok || err != nil {
					t.Errorf("Permitted(%s) = %v, %v before any verdict; want permitted", ns, ok, err)
				}
				if _, known := c.Ready(ns); known {
					t.Errorf("Ready(%s) known without an answer", ns)
				}
			}
			for _, want := range tc.expLog {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
			for _, bad := range tc.expNoLog {
				if strings.Contains(logs.String(), bad) {
					t.Errorf("log has %q:\n%s", bad, logs.String())
				}
			}
		})
	}
}

// A binding created later turns the namespace ready at the next check, with one line saying so; a
// namespace stays as it was while the reviews fail; and a missing right is logged once, not every check.
func TestCheckFollowsGrants(t *testing.T) {
	a := &authorizer{denied: map[string]bool{}}
	a.deny("team-b", execCreate)
	client := newClient(a, serverSA)
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	c, err := New(Config{Reviews: client.AuthorizationV1(), Identity: client.AuthenticationV1(), Namespaces: []string{"team-a", "team-b", "team-a"}, Registerer: prometheus.NewRegistry(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ready := func() string {
		var out []string
		for _, ns := range []string{"team-a", "team-b"} {
			out = append(out, fmt.Sprintf("%s=%v", ns, testutil.ToFloat64(c.gauge.WithLabelValues(ns))))
		}
		return strings.Join(out, " ")
	}
	c.Check(t.Context())
	c.Check(t.Context())
	if got := ready(); got != "team-a=1 team-b=0" {
		t.Fatalf("gauge %s, want team-a=1 team-b=0", got)
	}
	if n := strings.Count(logs.String(), "create RoleBinding"); n != 1 {
		t.Errorf("the missing binding is logged %d times over two checks, want once:\n%s", n, logs.String())
	}

	a.mu.Lock()
	a.fail = errors.New("etcd is away")
	a.mu.Unlock()
	c.Check(t.Context())
	if got := ready(); got != "team-a=1 team-b=0" {
		t.Fatalf("gauge %s after failed reviews, want the last verdict team-a=1 team-b=0", got)
	}
	if _, err := c.Permitted("team-b"); err == nil {
		t.Error("team-b permitted after failed reviews; want the last verdict")
	}

	a.mu.Lock()
	a.fail = nil
	a.mu.Unlock()
	a.grant("team-b", execCreate)
	c.Check(t.Context())
	if got := ready(); got != "team-a=1 team-b=1" {
		t.Fatalf("gauge %s after the grant, want team-a=1 team-b=1", got)
	}
	if ok, err := c.Permitted("team-b"); !ok || err != nil {
		t.Errorf("Permitted(team-b) = %v, %v after the grant", ok, err)
	}
	if !strings.Contains(logs.String(), "now holds every right") {
		t.Errorf("no line says team-b turned ready:\n%s", logs.String())
	}
}

// A namespace that is not ready is reviewed again within seconds, not only every period: a binding
// applied together with the server is seen without waiting for the resync.
func TestStartReviewsSoonerWhileNotReady(t *testing.T) {
	a := &authorizer{denied: map[string]bool{}}
	a.deny("team-b", execCreate)
	client := newClient(a, serverSA)
	c, err := New(Config{Reviews: client.AuthorizationV1(), Namespaces: []string{"team-a", "team-b"}, Log: logrus.New()})
	if err != nil {
		t.Fatal(err)
	}
	c.Check(t.Context())
	go c.Run(t.Context(), time.Hour)
	if ready, known := c.Ready("team-b"); ready || !known {
		t.Fatalf("team-b ready %v known %v after Check, want reviewed and not ready", ready, known)
	}
	a.grant("team-b", execCreate)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ready, _ := c.Ready("team-b"); ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("team-b not ready 10s after the grant, with a resync period of an hour")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.mu.Lock()
	n := len(a.asked)
	a.mu.Unlock()
	if n > 3*2*len(Needed) {
		t.Errorf("%d reviews before team-b turned ready, want a few rounds", n)
	}
}
