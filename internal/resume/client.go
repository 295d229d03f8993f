package resume

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/client/clientset/versioned"
)

// APIResumes are the Resumes and the Lister on the API server, through the generated typed client.
type APIResumes struct {
	Client versioned.Interface
}

var (
	_ Resumes = APIResumes{}
	_ Lister  = APIResumes{}
)

// Get reads one Resume.
func (r APIResumes) Get(ctx context.Context, namespace, name string) (*v1alpha1.Resume, error) {
	return r.Client.ArgocontrollerV1alpha1().Resumes(namespace).Get(ctx, name, metav1.GetOptions{})
}

// UpdateStatus writes res.Status with optimistic concurrency: it fails with a Conflict if the object
// changed since res was read, so a stale writer never overwrites a newer status.
func (r APIResumes) UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error) {
	return r.Client.ArgocontrollerV1alpha1().Resumes(res.Namespace).UpdateStatus(ctx, res, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager})
}

// Delete deletes a Resume, only if it still has uid: a Resume created again under the same name is left.
func (r APIResumes) Delete(ctx context.Context, namespace, name string, uid types.UID) error {
	return r.Client.ArgocontrollerV1alpha1().Resumes(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
}

// listPage bounds one LIST answer, so a namespace with many Resumes is read in pieces.
const listPage = 250

// List calls visit for every Resume of namespace ("" for all namespaces), reading them a page at a time
// so memory does not grow with their number.
func (r APIResumes) List(ctx context.Context, namespace string, visit func(*v1alpha1.Resume)) error {
	opts := metav1.ListOptions{Limit: listPage}
	for {
		page, err := r.Client.ArgocontrollerV1alpha1().Resumes(namespace).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list resumes in namespace %q: %w", namespace, err)
		}
		for i := range page.Items {
			visit(&page.Items[i])
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			return nil
		}
	}
}
