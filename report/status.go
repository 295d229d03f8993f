package report

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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
	u, err := r.Client.Resource(v1alpha1.Resource).Namespace(res.Namespace).UpdateStatus(ctx, &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured(u)
}

func fromUnstructured(u *unstructured.Unstructured) (*v1alpha1.Resume, error) {
	var res v1alpha1.Resume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &res); err != nil {
		return nil, fmt.Errorf("decode resume %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &res, nil
}
