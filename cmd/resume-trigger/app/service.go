package app

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/argocontroller/resume-trigger/internal/access"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/report"
	"github.com/argocontroller/resume-trigger/internal/resume"
)

// rightsReviewTimeout bounds the review of the server's rights at start: an API server that does not
// answer leaves every namespace permitted (the real calls then tell), and the server starts anyway.
const rightsReviewTimeout = 10 * time.Second

// buildService wires the resume flow: lookup, release, report, the review of the server's rights and
// the revisits of Pending Resumes.
func (a *App) buildService(cl *clients) error {
	c := a.opts
	host, _ := os.Hostname()
	finder := &lookup.Finder{Workflows: lookup.RESTWorkflows{Client: cl.workflows.ArgoprojV1alpha1().RESTClient()}, Pods: cl.kube}
	if c.Resume.ArgoServerURL != "" {
		finder.Offloaded = &lookup.ArgoServer{URL: c.Resume.ArgoServerURL, TokenFile: c.Resume.ArgoServerToken, Client: &http.Client{Timeout: c.Resume.ExecTimeout}}
	}
	resumes := resume.APIResumes{Client: cl.resumes}
	releaser, err := release.New(release.Config{
		Exec:           &release.APIExecutor{Config: cl.config, Client: cl.kube},
		Pods:           cl.kube,
		Timeout:        c.Resume.ExecTimeout,
		EphemeralImage: c.Resume.EphemeralImage,
	})
	if err != nil {
		return err
	}
	events, err := report.NewEvents(report.EventsConfig{Client: cl.kube, Log: a.log})
	if err != nil {
		return err
	}
	a.events = events
	if err := a.reviewRights(cl); err != nil {
		return err
	}
	svcCfg := resume.Config{
		Namespaces: resume.NewNamespaces(c.namespaces...),
		// Direct (webhook) requests: "*" means every served namespace, since the Service checks Namespaces first.
		WebhookNamespaces: resume.NewNamespaces(c.webhookNamespaces...),
		Resumes:           resumes,
		Finder:            finder,
		Releaser:          releaser,
		Events:            events,
		Metrics:           report.NewMetrics(a.reg),
		Log:               a.log,
		Timeout:           c.Server.RequestTimeout,
		Deadline:          c.Resume.Deadline,
		Active:            a.leading.Load,
		Rights:            a.Rights,
	}
	if c.Revisits.Enabled {
		if a.Requeue, err = resume.NewRequeue(resume.RequeueConfig{
			Lister:     resumes,
			Namespaces: c.namespaces,
			Interval:   c.Revisits.Interval,
			Resync:     c.Revisits.Resync,
			Rate:       c.Revisits.Rate,
			Log:        a.log,
		}); err != nil {
			return err
		}
		svcCfg.Revisits = a.Requeue
	}
	if c.Resume.ResultSink != "" {
		sink, err := report.NewSink(c.Resume.ResultSink, "resume-trigger/"+host)
		if err != nil {
			return err
		}
		svcCfg.Notifier = sink
	}
	a.Service, err = resume.New(svcCfg)
	return err
}

// reviewRights builds the review of the server's rights and runs it once before the server serves: a
// Resume in a namespace whose binding is missing ends NotPermitted from the first request on, not with a
// 403 from the middle of its release.
func (a *App) reviewRights(cl *clients) error {
	var err error
	if a.Rights, err = access.New(access.Config{
		Reviews:    cl.kube.AuthorizationV1(),
		Identity:   cl.kube.AuthenticationV1(),
		Namespaces: a.opts.namespaces,
		Ephemeral:  a.opts.Resume.EphemeralImage != "",
		Registerer: a.reg,
		Log:        a.log,
	}); err != nil {
		return err
	}
	review, cancel := context.WithTimeout(context.Background(), rightsReviewTimeout)
	defer cancel()
	a.Rights.Check(review)
	return nil
}
