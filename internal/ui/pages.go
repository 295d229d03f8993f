package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/inspect"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/request"
)

// maxResumes bounds the Resumes a workflow page reads (one page of a LIST).
const maxResumes = 500

// view is what a page shows; Page names the template that draws it.
type view struct {
	Page  string
	Title string
	// Token is the person's, put back into every form of the page so the next page acts as them too;
	// empty when an auth proxy sends it (it sends it again with the next request).
	Token string
	// Signed: the page acts with a token (pasted or from the proxy).
	Signed    bool
	User      string
	Namespace string
	// Action is where the sign-in form posts (the page asked for); Notice says why it is shown.
	Action string
	Notice string
	// Error is the API server's answer when it refused or failed a read or the release.
	Error string
	Now   time.Time

	Paused   []inspect.Paused
	Workflow *workflowView
	Resume   *resumeView
}

type workflowView struct {
	Name     string
	Selected string
	Steps    []step
	Resumes  []resumeView
	// Notes are reads the person may not make (the page shows what it can without them).
	Notes []string
}

// step is one candidate of the lookup, with its pause and the releases the page offers for it.
type step struct {
	inspect.Candidate
	Display  string
	Paused   []inspect.Paused
	Releases []releaseButton
	Selected bool
}

type releaseButton struct {
	Node, Container, Stage string
}

type resumeView struct {
	Name     string
	Workflow string
	Created  time.Time
	Status   v1alpha1.ResumeStatus
	Spec     string
	Final    bool
}

func (h *Handler) render(w http.ResponseWriter, code int, v *view) {
	if v.Now.IsZero() {
		v.Now = h.conf.Now()
	}
	var b strings.Builder
	if err := h.pages.ExecuteTemplate(&b, "layout", v); err != nil {
		h.conf.Log.WithError(err).WithField("page", v.Page).Error("ui: render")
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// home asks for a namespace and a token, and sends both on to the namespace page.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		// Behind an auth proxy the token comes with every request: ask only for the namespace.
		_, proxied := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		h.render(w, http.StatusOK, &view{Page: "home", Title: "resume-trigger", Signed: proxied})
		return
	}
	if _, err := credentialOf(r); err != nil && !errors.Is(err, errNoToken) {
		h.render(w, http.StatusBadRequest, &view{Page: "home", Title: "resume-trigger", Notice: err.Error()})
		return
	}
	ns := strings.TrimSpace(r.PostForm.Get("namespace"))
	if len(validation.IsDNS1123Label(ns)) != 0 {
		h.render(w, http.StatusBadRequest, &view{Page: "home", Title: "resume-trigger", Notice: "that is not a namespace name"})
		return
	}
	// 307 keeps the method and the body: the token goes on to the namespace page, never into a URL.
	http.Redirect(w, r, "/namespaces/"+ns, http.StatusTemporaryRedirect)
}

// names checks the names in the path; a bad one is answered here.
func (h *Handler) names(w http.ResponseWriter, r *http.Request) (string, bool) {
	ns := r.PathValue("ns")
	bad := ""
	switch {
	case len(validation.IsDNS1123Label(ns)) != 0:
		bad = "namespace"
	case r.PathValue("wf") != "" && len(validation.IsDNS1123Subdomain(r.PathValue("wf"))) != 0:
		bad = "workflow"
	case r.PathValue("pod") != "" && len(validation.IsDNS1123Subdomain(r.PathValue("pod"))) != 0:
		bad = "pod"
	case r.PathValue("name") != "" && len(validation.IsDNS1123Subdomain(r.PathValue("name"))) != 0:
		bad = "Resume"
	}
	if bad != "" {
		h.render(w, http.StatusBadRequest, &view{Page: "error", Title: "Not a name", Error: "the " + bad + " in the address is not a valid name"})
		return "", false
	}
	return ns, true
}

// begin reads the token and makes the person's clients; when it cannot, it has answered.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, title string) (context.Context, context.CancelFunc, *user, *view, bool) {
	ns, ok := h.names(w, r)
	if !ok {
		return nil, nil, nil, nil, false
	}
	cred, err := credentialOf(r)
	switch {
	case errors.Is(err, errNoToken) && r.Method == http.MethodGet:
		// The Argo UI's links are GETs: ask for the token, then post it back to the same page.
		h.render(w, http.StatusOK, &view{Page: "signin", Title: "Sign in", Action: pathOf(r), Namespace: ns})
		return nil, nil, nil, nil, false
	case errors.Is(err, errCrossSite):
		h.render(w, http.StatusForbidden, &view{Page: "error", Title: title, Error: err.Error()})
		return nil, nil, nil, nil, false
	case err != nil:
		h.render(w, http.StatusBadRequest, &view{Page: "signin", Title: "Sign in", Action: pathOf(r), Namespace: ns, Notice: err.Error()})
		return nil, nil, nil, nil, false
	}
	u, err := h.userFor(cred.token)
	if err != nil {
		h.render(w, http.StatusInternalServerError, &view{Page: "error", Title: title, Error: err.Error()})
		return nil, nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	v := &view{Title: title, Signed: true, Namespace: ns}
	if !cred.fromHeader {
		v.Token = cred.token
	}
	who, err := u.whoami(ctx)
	switch {
	case apierrors.IsUnauthorized(err):
		cancel()
		if cred.fromHeader {
			h.render(w, http.StatusUnauthorized, &view{Page: "error", Title: title, Error: "the API server did not accept the token the auth proxy sent (expired? sign in again at the proxy)"})
			return nil, nil, nil, nil, false
		}
		h.render(w, http.StatusUnauthorized, &view{Page: "signin", Title: "Sign in", Action: pathOf(r), Namespace: ns, Notice: "the API server did not accept that token (expired, or not one of this cluster's)"})
		return nil, nil, nil, nil, false
	case err == nil:
		v.User = who
	}
	return ctx, cancel, u, v, true
}

// namespace shows what is paused now in the namespace, oldest first.
func (h *Handler) namespace(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, u, v, ok := h.begin(w, r, "Paused in "+r.PathValue("ns"))
	if !ok {
		return
	}
	defer cancel()
	v.Page = "namespace"
	items, err := inspect.ListPaused(ctx, u.kube, u.resumes, u.metadata, v.Namespace)
	if err != nil {
		v.Error = err.Error()
		h.render(w, codeOf(err), v)
		return
	}
	slices.SortStableFunc(items, func(a, b inspect.Paused) int { return a.Since.Compare(b.Since.Time) })
	v.Paused = items
	h.render(w, http.StatusOK, v)
}

// workflow shows the workflow's steps with the lookup's verdicts, their pauses and the Resumes acting on
// it; ?node= selects a step.
func (h *Handler) workflow(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, u, v, ok := h.begin(w, r, r.PathValue("wf"))
	if !ok {
		return
	}
	defer cancel()
	v.Page = "workflow"
	wf := &workflowView{Name: r.PathValue("wf"), Selected: r.URL.Query().Get("node")}
	v.Workflow = wf
	ex, err := inspect.Explain(ctx, u.finder(), v.Namespace, request.Step{Workflow: wf.Name})
	if err != nil {
		v.Error = err.Error()
		code := codeOf(err)
		if lookup.IsNoWorkflow(err) {
			code = http.StatusNotFound
		}
		h.render(w, code, v)
		return
	}
	var paused []inspect.Paused
	if all, err := inspect.ListPaused(ctx, u.kube, u.resumes, u.metadata, v.Namespace); err != nil {
		wf.Notes = append(wf.Notes, "pauses not shown: "+err.Error())
	} else {
		for _, p := range all {
			if p.Workflow == wf.Name {
				paused = append(paused, p)
			}
		}
	}
	wf.Steps = steps(ex, paused, wf.Selected)
	var more bool
	if wf.Resumes, more, err = resumesOf(ctx, u, v.Namespace, wf.Name); err != nil {
		wf.Notes = append(wf.Notes, "Resumes not shown: "+err.Error())
	} else if more {
		wf.Notes = append(wf.Notes, fmt.Sprintf("the namespace has more than %d Resumes: only those among the first %d are shown", maxResumes, maxResumes))
	}
	h.render(w, http.StatusOK, v)
}

// steps joins the lookup's candidates with the pauses: a releasable candidate gets its Release button; a
// container that pauses both before and after its command (the lookup asks for a stage) gets one per
// stage still paused.
func steps(ex inspect.Explanation, paused []inspect.Paused, selected string) []step {
	display := map[string]string{}
	for _, p := range paused {
		display[p.NodeID] = p.Node
	}
	var out []step
	for _, c := range ex.Candidates {
		s := step{Candidate: c, Display: display[c.Node], Selected: c.Node != "" && c.Node == selected}
		if s.Display == "" && c.NodeName != "" {
			s.Display = argo.DisplayName(c.NodeName)
		}
		for _, p := range paused {
			if p.Pod == c.Pod && (c.Container == "" || c.Container == p.Container) {
				s.Paused = append(s.Paused, p)
			}
		}
		switch c.Verdict {
		case inspect.VerdictReleasable:
			s.Releases = append(s.Releases, releaseButton{Node: c.Node, Container: c.Container, Stage: c.Stage})
		case inspect.VerdictNarrow:
			for _, p := range s.Paused {
				for _, st := range strings.Split(p.Stage, ",") {
					s.Releases = append(s.Releases, releaseButton{Node: p.NodeID, Container: p.Container, Stage: st})
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// resumesOf lists the Resumes whose spec names the workflow, newest first, among the first maxResumes of
// the namespace; more says there were others.
func resumesOf(ctx context.Context, u *user, ns, wf string) (_ []resumeView, more bool, _ error) {
	list, err := u.resumes.ArgocontrollerV1alpha1().Resumes(ns).List(ctx, metav1.ListOptions{Limit: maxResumes})
	if err != nil {
		return nil, false, err
	}
	var out []resumeView
	for i := range list.Items {
		if res := &list.Items[i]; res.Spec.WorkflowID == wf {
			out = append(out, viewOf(res))
		}
	}
	slices.SortStableFunc(out, func(a, b resumeView) int { return b.Created.Compare(a.Created) })
	return out, list.GetContinue() != "", nil
}

func viewOf(res *v1alpha1.Resume) resumeView {
	return resumeView{
		Name: res.Name, Workflow: res.Spec.WorkflowID, Created: res.CreationTimestamp.Time,
		Status: res.Status, Spec: request.StepOf(res.Spec).String(), Final: res.Status.Phase.Final(),
	}
}

// pod is the Argo UI's pod link: it sends the person on to the pod's workflow page with its step
// selected. 307 keeps the method and the body, so the token goes along and never into a URL.
func (h *Handler) pod(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, u, v, ok := h.begin(w, r, "Pod "+r.PathValue("pod"))
	if !ok {
		return
	}
	defer cancel()
	pod, err := u.kube.CoreV1().Pods(v.Namespace).Get(ctx, r.PathValue("pod"), metav1.GetOptions{})
	if err != nil {
		v.Page, v.Error = "error", err.Error()
		h.render(w, codeOf(err), v)
		return
	}
	owner := argo.WorkflowController(pod)
	if owner == nil {
		v.Page, v.Error = "error", "pod "+pod.Name+" is not controlled by an Argo Workflow"
		h.render(w, http.StatusNotFound, v)
		return
	}
	node := pod.Annotations[argo.AnnotationNodeID]
	target := url.URL{Path: "/namespaces/" + v.Namespace + "/workflows/" + owner.Name}
	if node != "" {
		target.RawQuery = url.Values{"node": {node}}.Encode()
		target.Fragment = "node-" + node
	}
	http.Redirect(w, r, target.String(), http.StatusTemporaryRedirect)
}

// release creates a Resume for one container and stage, in the person's name, and follows it to its end
// (at most ReleaseWait, which is also its activeDeadlineSeconds).
func (h *Handler) release(w http.ResponseWriter, r *http.Request) {
	_, cancel, u, v, ok := h.begin(w, r, "Release in "+r.PathValue("wf"))
	if !ok {
		return
	}
	cancel() // the release has a deadline of its own
	v.Page = "resume"
	stp := request.Step{
		Workflow:  r.PathValue("wf"),
		NodeID:    r.PostForm.Get("node"),
		Container: r.PostForm.Get("container"),
		Stage:     v1alpha1.Stage(r.PostForm.Get("stage")),
	}
	v.Workflow = &workflowView{Name: stp.Workflow, Selected: stp.NodeID}
	// ValidateStep refuses a step that names no node; the page's buttons always name one.
	if err := request.ValidateStep(stp); err != nil {
		v.Error = err.Error()
		h.render(w, http.StatusBadRequest, v)
		return
	}
	select {
	case h.waits <- struct{}{}:
		defer func() { <-h.waits }()
	default:
		w.Header().Set("Retry-After", "5")
		v.Error = "too many releases are being followed right now; try again in a few seconds"
		h.render(w, http.StatusServiceUnavailable, v)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.conf.ReleaseWait)
	defer cancel()
	resumes := u.resumes.ArgocontrollerV1alpha1().Resumes(v.Namespace)
	created, err := resumes.Create(ctx, request.NewResume(v.Namespace, stp, h.conf.ReleaseWait), metav1.CreateOptions{})
	if err != nil {
		v.Error = "create Resume: " + err.Error()
		h.render(w, codeOf(err), v)
		return
	}
	h.conf.Log.WithFields(map[string]any{"namespace": v.Namespace, "resume": created.GetName(), "workflow": stp.Workflow, "node": stp.NodeID, "container": stp.Container, "stage": stp.Stage, "user": v.User}).Info("ui: Resume created")
	last := created
	for !last.Status.Phase.Final() {
		select {
		case <-ctx.Done():
			rv := viewOf(last)
			v.Resume = &rv
			h.render(w, http.StatusOK, v)
			return
		case <-time.After(pollInterval):
		}
		got, err := resumes.Get(ctx, created.GetName(), metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			v.Error = "read Resume " + created.GetName() + ": " + err.Error()
			h.render(w, codeOf(err), v)
			return
		}
		last = got
	}
	rv := viewOf(last)
	v.Resume = &rv
	h.render(w, http.StatusOK, v)
}

// resume shows one Resume (a release still Pending when its page gave up is looked at again here).
func (h *Handler) resume(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, u, v, ok := h.begin(w, r, "Resume "+r.PathValue("name"))
	if !ok {
		return
	}
	defer cancel()
	v.Page = "resume"
	res, err := u.resumes.ArgocontrollerV1alpha1().Resumes(v.Namespace).Get(ctx, r.PathValue("name"), metav1.GetOptions{})
	if err != nil {
		v.Error = err.Error()
		h.render(w, codeOf(err), v)
		return
	}
	rv := viewOf(res)
	v.Resume = &rv
	v.Workflow = &workflowView{Name: res.Spec.WorkflowID}
	h.render(w, http.StatusOK, v)
}

// codeOf is the status of a page whose main read or write failed: the API server's own, else 502.
func codeOf(err error) int {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 {
		return int(status.Status().Code)
	}
	return http.StatusBadGateway
}
