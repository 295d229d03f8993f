package resume

import (
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/internal/fault"
)

// Namespaces is the allow-list of namespaces the server acts in. It guards the webhook path, whose request
// names its namespace itself, and keeps a cluster-wide Sensor from reaching namespaces the server is not
// installed for.
type Namespaces struct {
	all   bool
	names map[string]bool
}

// AllNamespaces allows every namespace.
const AllNamespaces = "*"

// NewNamespaces builds the allow-list from names; "*" alone allows every namespace.
func NewNamespaces(names ...string) Namespaces {
	n := Namespaces{names: map[string]bool{}}
	for _, name := range names {
		name = strings.TrimSpace(name)
		switch name {
		case "":
		case AllNamespaces:
			n.all = true
		default:
			n.names[name] = true
		}
	}
	return n
}

// Listed are names as the API server lists them: AllNamespaces is "" (every namespace), the others stay.
func Listed(names []string) []string {
	out := make([]string, 0, len(names))
	for _, ns := range names {
		if ns == AllNamespaces {
			ns = metav1.NamespaceAll
		}
		out = append(out, ns)
	}
	return out
}

// Check returns an error unless ns is allowed.
func (n Namespaces) Check(ns string) error {
	if n.all || n.names[ns] {
		return nil
	}
	return fault.Deniedf("namespace %s is not served by this resume-trigger (it serves %s): install it for that namespace or add it to --namespaces", ns, n)
}

// CheckWebhook returns an error unless ns is allowed for a webhook (direct) request. The webhook has no
// object and no RBAC of its own behind it: whoever holds its token names the namespace, so it gets its own,
// usually shorter, list.
func (n Namespaces) CheckWebhook(ns string) error {
	if n.all || n.names[ns] {
		return nil
	}
	return fault.Deniedf("namespace %s is not open to webhook requests on this resume-trigger (webhook namespaces: %s): add it to --webhook-namespaces, or create a Resume there instead", ns, n)
}

func (n Namespaces) String() string {
	if n.all {
		return AllNamespaces
	}
	if len(n.names) == 0 {
		return "no namespace"
	}
	list := make([]string, 0, len(n.names))
	for name := range n.names {
		list = append(list, name)
	}
	sort.Strings(list)
	return strings.Join(list, ", ")
}
