package ui

import (
	"context"
	"fmt"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

// userAgent names the UI's requests in the API server's audit log; the user is the person.
const userAgent = "resume-trigger-ui"

// userBase is api without any credential of the server's (token, token file, client certificate, exec
// or auth provider, impersonation, custom transport), and without its shared client-side rate limit: what
// is left says only where the API server is and how to trust it.
func userBase(api *rest.Config) *rest.Config {
	cfg := rest.AnonymousClientConfig(api)
	cfg.RateLimiter = nil
	// One page makes a handful of calls; the API server's priority and fairness limits the person.
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = userAgent
	cfg.Timeout = apiTimeout
	return cfg
}

// user is a person's API clients, each carrying their token.
type user struct {
	kube      kubernetes.Interface
	resumes   versioned.Interface
	metadata  metadata.Interface
	workflows wfclient.Interface
}

func (h *Handler) userFor(token string) (*user, error) {
	cfg := rest.CopyConfig(h.api)
	cfg.BearerToken = token
	u := &user{}
	var err error
	if u.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if u.resumes, err = versioned.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("resume client: %w", err)
	}
	if u.metadata, err = metadata.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	if u.workflows, err = wfclient.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("workflow client: %w", err)
	}
	return u, nil
}

func (u *user) finder() *lookup.Finder {
	return &lookup.Finder{Workflows: lookup.RESTWorkflows{Client: u.workflows.ArgoprojV1alpha1().RESTClient()}, Pods: u.kube}
}

// whoami is the name the API server knows the token by (a SelfSubjectReview, which every authenticated
// user may create): the page says whose rights it acts with. It is also the first call of every page, so a
// token the API server rejects is told at once.
func (u *user) whoami(ctx context.Context) (string, error) {
	r, err := u.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}
