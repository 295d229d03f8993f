package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of Resume.
var GroupVersion = schema.GroupVersion{Group: "argocontroller.io", Version: "v1alpha1"}

// SchemeGroupVersion is GroupVersion under the name the generated client (k8s.io/code-generator) uses.
var SchemeGroupVersion = GroupVersion

// Resource is the plural resource name that clients address.
var Resource = GroupVersion.WithResource("resumes")

// Kind is the object kind of Resume.
const Kind = "Resume"

// FieldManager is the name resume-trigger gives every write it makes (Resume status, Events, ephemeral
// containers), so managedFields say who changed what.
const FieldManager = "resume-trigger"

var (
	// SchemeBuilder registers the Resume types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the Resume types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Resume{}, &ResumeList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
