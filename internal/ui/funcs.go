package ui

import (
	"html/template"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// navForm is a button that posts the token to a page: how the UI moves between pages without a cookie.
type navForm struct {
	Token, Action, Label, Class string
}

var funcs = template.FuncMap{
	"nav": func(token, action, label, class string) navForm {
		return navForm{Token: token, Action: action, Label: label, Class: class}
	},
	"nsPath": func(ns string) string { return "/namespaces/" + ns },
	"wfPath": func(ns, wf, node string) string {
		u := url.URL{Path: "/namespaces/" + ns + "/workflows/" + wf}
		if node != "" {
			u.RawQuery = url.Values{"node": {node}}.Encode()
			u.Fragment = "node-" + node
		}
		return u.String()
	},
	"releasePath": func(ns, wf string) string { return "/namespaces/" + ns + "/workflows/" + wf + "/release" },
	"resumePath":  func(ns, name string) string { return "/namespaces/" + ns + "/resumes/" + name },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "?"
		}
		return duration.HumanDuration(now.Sub(t))
	},
	"rfc3339": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
}
