package report

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
)

// Resumes reads Resume objects and writes their status subresource.
type Resumes struct {
	Client dynamic.Interface
}

// Get reads one Resume.
func (r *Resumes) Get(ctx context.Context, namespace, name string) (*v1alpha1.Resume, error) {
	u, err := r.Client.Resource(v1alpha1.Resource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured(u)
}

// UpdateStatus writes res.Status with optimistic concurrency: it fails with a Conflict if the object
// changed since res was read, so a stale writer never overwrites a newer status.
func (r *Resumes) UpdateStatus(ctx context.Context, res *v1alpha1.Resume) (*v1alpha1.Resume, error) {
	res = res.DeepCopy()
	res.APIVersion, res.Kind = v1alpha1.GroupVersion.String(), v1alpha1.Kind
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(res)
	if err != nil {
		return nil, fmt.Errorf("encode resume %s/%s: %w", res.Namespace, res.Name, err)
	}
	u, err := r.Client.Resource(v1alpha1.Resource).Namespace(res.Namespace).UpdateStatus(ctx, &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager})
	if err != nil {
		return nil, err
	}
	return fromUnstructured(u)
}

// Delete deletes a Resume, only if it still has uid: a Resume created again under the same name is left.
func (r *Resumes) Delete(ctx context.Context, namespace, name string, uid types.UID) error {
	return r.Client.Resource(v1alpha1.Resource).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
}

// listPage bounds one LIST answer, so a namespace with many Resumes is read in pieces.
const listPage = 250

// List calls visit for every Resume of namespace ("" for all namespaces), reading them a page at a time
// so memory does not grow with their number.
func (r *Resumes) List(ctx context.Context, namespace string, visit func(*v1alpha1.Resume)) error {
	opts := metav1.ListOptions{Limit: listPage}
	for {
		page, err := r.Client.Resource(v1alpha1.Resource).Namespace(namespace).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list resumes in namespace %q: %w", namespace, err)
		}
		for i := range page.Items {
			res, err := fromUnstructured(&page.Items[i])
			if err != nil {
				return err
			}
			visit(res)
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

func fromUnstructured(u *unstructured.Unstructured) (*v1alpha1.Resume, error) {
	var res v1alpha1.Resume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &res); err != nil {
		return nil, fmt.Errorf("decode resume %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &res, nil
}
