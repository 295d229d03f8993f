package release_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/lookup"
	"github.com/argocontroller/resume-trigger/internal/release"
)

const (
	ns      = "argo"
	podName = "hello-world-pause-4183098892"
)

// call is one exec the Releaser asked for.
type call struct {
	Namespace, Pod, Container string
	Argv                      []string
}

// recorder is an Executor that records every call and answers per container: the scripted error, or
// success. A container listed in hang blocks until the call's context ends.
type recorder struct {
	mu      sync.Mutex
	calls   []call
	results map[string]error
	hang    map[string]bool
}

func (r *recorder) Exec(ctx context.Context, namespace, pod, container string, argv []string) error {
	r.mu.Lock()
	r.calls = append(r.calls, call{namespace, pod, container, slices.Clone(argv)})
	err, hang := r.results[container], r.hang[container]
	r.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (r *recorder) containers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.Container)
	}
	return out
}

// stepPod is a paused step's pod: main pauses before; tools and sidecar are other user containers.
func stepPod() *corev1.Pod {
	node := fixture.PodNode("hello-world", "hello-world[0].pause", "pause", "pause")
	wf := fixture.Workflow(ns, "hello-world", node)
	return fixture.Pod(wf, node, podName,
		fixture.Container("main", fixture.PauseBefore), fixture.Container("tools"), fixture.Container("sidecar"))
}

func targetOf(pod *corev1.Pod) lookup.Target {
	return lookup.Target{
		Namespace: ns,
		Workflow:  "hello-world",
		Node:      "hello-world-4183098892",
		NodeName:  "hello-world[0].pause",
		Pod:       pod.Name,
		PodUID:    pod.UID,
		Container: "main",
		Stage:     v1alpha1.StageBefore,
		Others:    []string{"tools", "sidecar"},
	}
}

var touchMain = []string{"touch", "/var/run/argo/ctr/main/before"}

func TestArgv(t *testing.T) {
	tests := map[string]struct {
		container string
		stage     v1alpha1.Stage
		exp       []string
	}{
		"main before":                      {container: "main", stage: v1alpha1.StageBefore, exp: []string{"touch", "/var/run/argo/ctr/main/before"}},
		"containerSet container after":     {container: "lint-2", stage: v1alpha1.StageAfter, exp: []string{"touch", "/var/run/argo/ctr/lint-2/after"}},
		"shell injection in the name":      {container: "main; rm -rf /", stage: v1alpha1.StageBefore},
		"path traversal in the name":       {container: "../x", stage: v1alpha1.StageBefore},
		"command substitution in name":     {container: "$(id)", stage: v1alpha1.StageBefore},
		"slash in the name":                {container: "main/../../etc", stage: v1alpha1.StageBefore},
		"empty name":                       {container: "", stage: v1alpha1.StageBefore},
		"upper case name":                  {container: "Main", stage: v1alpha1.StageBefore},
		"name longer than 63 characters":   {container: strings.Repeat("a", 64), stage: v1alpha1.StageBefore},
		"empty stage":                      {container: "main"},
		"upper case stage":                 {container: "main", stage: "Before"},
		"stage with a path":                {container: "main", stage: "before/../../x"},
		"stage other than before or after": {container: "main", stage: "exitcode"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := release.Argv(tc.container, tc.stage)
			if tc.exp == nil {
				if err == nil || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Argv(%q, %q) = %q, %v; want an Invalid error", tc.container, tc.stage, got, err)
				}
				if got != nil {
					t.Errorf("Argv returned %q with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(got, tc.exp) {
				t.Errorf("Argv = %q, want %q", got, tc.exp)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods/exec"}, podName, errors.New("denied"))
	noTouch := &release.ExitError{Code: 127, Output: "touch: not found"}
	tests := map[string]struct {
		// target changes the default target; pod changes the pod the fake API server holds (nil: none).
		target  func(*lookup.Target)
		pod     func(*corev1.Pod) *corev1.Pod
		results map[string]error
		// expCalls are the containers exec'd into, in order; each call must carry touchMain.
		expCalls    []string
		expVia      string
		expAttempts int
		expExit     *int32
		expKind     fault.Kind
		expErr      []string
		// expPodGets is how many times the pod was read.
		expPodGets int
	}{
		"paused container creates the marker": {
			expCalls: []string{"main"},
			expVia:   "main",
		},
		"exit 127 falls back to the next container": {
			results:     map[string]error{"main": noTouch},
			expCalls:    []string{"main", "tools"},
			expVia:      "tools",
			expAttempts: 1,
		},
		"exit 126 falls back to the next container": {
			results:     map[string]error{"main": &release.ExitError{Code: 126}},
			expCalls:    []string{"main", "tools"},
			expVia:      "tools",
			expAttempts: 1,
		},
		"executable file not found from the API server falls back": {
			results:     map[string]error{"main": errors.New(`OCI runtime exec failed: exec failed: unable to start container process: exec: "touch": executable file not found in $PATH: unknown`)},
			expCalls:    []string{"main", "tools"},
			expVia:      "tools",
			expAttempts: 1,
		},
		"another non-zero exit is no reason to try elsewhere: retried later": {
			results:  map[string]error{"main": &release.ExitError{Code: 1, Output: "touch: /var/run/argo/ctr/main/before: No such file or directory"}},
			expCalls: []string{"main"},
			expKind:  fault.Transient,
			expErr:   []string{"exit status 1", "No such file or directory", "Argo's emissary has not made /var/run/argo/ctr/main yet"},
		},
		"a runtime error that is not about the executable is no reason to try elsewhere": {
			results:  map[string]error{"main": errors.New("chdir to cwd: no such file or directory")},
			expCalls: []string{"main"},
			expKind:  fault.Transient,
		},
		"an error status saying exit status 127, with the reason only on stderr, falls back": {
			results:     map[string]error{"main": errors.New(`command terminated with non-zero exit code: exit status 127 (output: sh: touch: executable file not found)`)},
			expCalls:    []string{"main", "tools"},
			expVia:      "tools",
			expAttempts: 1,
		},
		"a sibling that has exited is passed over, not retried": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				fixture.SetTerminated(p, "tools", 0)
				return p
			},
			results:     map[string]error{"main": noTouch, "tools": errors.New("container not found (\"tools\")")},
			expCalls:    []string{"main", "tools", "sidecar"},
			expVia:      "sidecar",
			expAttempts: 2,
			expPodGets:  1,
		},
		"falls back through every other container in order": {
			results:     map[string]error{"main": noTouch, "tools": &release.ExitError{Code: 126}},
			expCalls:    []string{"main", "tools", "sidecar"},
			expVia:      "sidecar",
			expAttempts: 2,
		},
		"no container with touch and no ephemeral image is Precondition": {
			results:     map[string]error{"main": noTouch, "tools": noTouch, "sidecar": errors.New("executable file not found in $PATH")},
			expCalls:    []string{"main", "tools", "sidecar"},
			expAttempts: 3,
			expKind:     fault.Precondition,
			expErr:      []string{"/var/run/argo/ctr/main/before", "--ephemeral-image", "container main: exit status 127", "container sidecar"},
		},
		"transport error without a pod client is Transient": {
			results:  map[string]error{"main": errors.New("error dialing backend: connection reset")},
			expCalls: []string{"main"},
			expKind:  fault.Transient,
			expErr:   []string{"exec into pod " + podName + " container main failed", "connection reset"},
		},
		"transport error while the pod still runs is Transient": {
			pod:        func(p *corev1.Pod) *corev1.Pod { return p },
			results:    map[string]error{"main": errors.New("error dialing backend: connection reset")},
			expCalls:   []string{"main"},
			expKind:    fault.Transient,
			expErr:     []string{"exec into pod " + podName + " container main failed", "connection reset"},
			expPodGets: 1,
		},
		"transport error after the pod was deleted is NotFound": {
			pod:        func(*corev1.Pod) *corev1.Pod { return nil },
			results:    map[string]error{"main": errors.New("error dialing backend: EOF")},
			expCalls:   []string{"main"},
			expKind:    fault.NotFound,
			expErr:     []string{"pod " + podName + " was deleted"},
			expPodGets: 1,
		},
		"transport error after the pod was replaced is Precondition": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				p.UID = "new-uid"
				return p
			},
			results:    map[string]error{"main": errors.New("error dialing backend: EOF")},
			expCalls:   []string{"main"},
			expKind:    fault.Precondition,
			expErr:     []string{"was replaced"},
			expPodGets: 1,
		},
		"a stream cut after the touch, the container ended since: released, with its exit code": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				fixture.SetTerminated(p, "main", 4)
				return p
			},
			results:     map[string]error{"main": errors.New("next reader: websocket: close 1006 (abnormal closure): unexpected EOF")},
			expCalls:    []string{"main"},
			expVia:      "main",
			expExit:     ptr(int32(4)),
			expAttempts: 1,
			expPodGets:  1,
		},
		"touch exited non-zero and the container ended since: Precondition (the command answered)": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				fixture.SetTerminated(p, "main", 137)
				return p
			},
			results:    map[string]error{"main": &release.ExitError{Code: 137}},
			expCalls:   []string{"main"},
			expKind:    fault.Precondition,
			expErr:     []string{"container main in pod " + podName + " terminated while releasing it", "exit status 137"},
			expPodGets: 1,
		},
		"a stream cut after the touch, the pod succeeded since: released": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				p.Status.Phase = corev1.PodSucceeded
				return p
			},
			results:     map[string]error{"main": errors.New("stream error: stream ID 3; INTERNAL_ERROR")},
			expCalls:    []string{"main"},
			expVia:      "main",
			expAttempts: 1,
			expPodGets:  1,
		},
		"a stream cut after a sibling's touch, the target ended since: released via the sibling": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				fixture.SetTerminated(p, "main", 0)
				return p
			},
			results:     map[string]error{"main": noTouch, "tools": errors.New("unexpected EOF")},
			expCalls:    []string{"main", "tools"},
			expVia:      "tools",
			expExit:     ptr(int32(0)),
			expAttempts: 2,
			expPodGets:  2, // is tools still running (yes), then what became of main
		},
		"transport error in a fallback container is Transient": {
			pod:         func(p *corev1.Pod) *corev1.Pod { return p },
			results:     map[string]error{"main": noTouch, "tools": errors.New("stream reset")},
			expCalls:    []string{"main", "tools"},
			expKind:     fault.Transient,
			expErr:      []string{"container tools failed", "stream reset"},
			expPodGets:  2, // is tools still running (yes: retry later), then what became of the pod
			expAttempts: 1,
		},
		"forbidden exec is Transient with an RBAC hint": {
			pod:      func(p *corev1.Pod) *corev1.Pod { return p },
			results:  map[string]error{"main": forbidden},
			expCalls: []string{"main"},
			expKind:  fault.Transient,
			expErr:   []string{"was refused", "pods/exec create and get in namespace argo"},
		},
		"injected container name never reaches the executor": {
			target:  func(t *lookup.Target) { t.Container = "main; rm -rf /" },
			expKind: fault.Invalid,
		},
		"bad stage never reaches the executor": {
			target:  func(t *lookup.Target) { t.Stage = "during" },
			expKind: fault.Invalid,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := stepPod()
			target := targetOf(pod)
			if tc.target != nil {
				tc.target(&target)
			}
			exec := &recorder{results: tc.results}
			cfg := release.Config{Exec: exec, Timeout: time.Second}
			var kube *k8sfake.Clientset
			if tc.pod != nil {
				kube = k8sfake.NewClientset()
				if p := tc.pod(stepPod()); p != nil {
					kube = k8sfake.NewClientset(p)
				}
				cfg.Pods = kube
			}
			r := newReleaser(t, cfg)
			out, err := r.Release(t.Context(), target)
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			if got := exec.containers(); !slices.Equal(got, tc.expCalls) {
				t.Errorf("exec'd into %v, want %v", got, tc.expCalls)
			}
			for _, c := range exec.calls {
				if c.Namespace != ns || c.Pod != podName || !slices.Equal(c.Argv, touchMain) {
					t.Errorf("exec call = %+v, want namespace %s pod %s argv %q", c, ns, podName, touchMain)
				}
			}
			if out.Via != tc.expVia || out.Ephemeral {
				t.Errorf("outcome via %q (ephemeral %v), want via %q", out.Via, out.Ephemeral, tc.expVia)
			}
			if (out.ExitCode == nil) != (tc.expExit == nil) || (out.ExitCode != nil && *out.ExitCode != *tc.expExit) {
				t.Errorf("exit code %v, want %v", out.ExitCode, tc.expExit)
			}
			if len(out.Attempts) != tc.expAttempts {
				t.Errorf("attempts = %q, want %d", out.Attempts, tc.expAttempts)
			}
			if kube != nil {
				gets := 0
				for _, a := range kube.Actions() {
					if !a.Matches("get", "pods") {
						t.Errorf("unexpected action %v", a)
					}
					gets++
				}
				if gets != tc.expPodGets {
					t.Errorf("pod gets = %d, want %d", gets, tc.expPodGets)
				}
			}
		})
	}
}

func TestReleaseHangingExecTimesOut(t *testing.T) {
	tests := map[string]struct {
		withPods bool
	}{
		"without a pod client":     {},
		"with the pod still there": {withPods: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := stepPod()
			exec := &recorder{hang: map[string]bool{"main": true}}
			cfg := release.Config{Exec: exec, Timeout: 100 * time.Millisecond}
			if tc.withPods {
				cfg.Pods = k8sfake.NewClientset(pod)
			}
			r := newReleaser(t, cfg)
			start := time.Now()
			_, err := r.Release(t.Context(), targetOf(pod))
			elapsed := time.Since(start)
			fixture.CheckFault(t, err, fault.Transient, []string{"did not finish within 100ms"})
			if elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
				t.Errorf("Release returned after %s, want about the 100ms timeout", elapsed)
			}
			if got := exec.containers(); !slices.Equal(got, []string{"main"}) {
				t.Errorf("exec'd into %v, want only main", got)
			}
		})
	}
}

// ephemeralExit makes the fake API server report the ephemeral container as terminated with code once it
// exists; a nil code leaves it running for ever.
func ephemeralExit(kube *k8sfake.Clientset, code *int32) {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	kube.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := kube.Tracker().Get(gvr, a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return false, nil, nil
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		if code == nil || len(pod.Spec.EphemeralContainers) == 0 {
			return true, pod, nil
		}
		for _, e := range pod.Spec.EphemeralContainers {
			pod.Status.EphemeralContainerStatuses = append(pod.Status.EphemeralContainerStatuses, corev1.ContainerStatus{
				Name:  e.Name,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: *code, Message: "touch said so"}},
			})
		}
		return true, pod, nil
	})
}

func TestEphemeralName(t *testing.T) {
	tests := map[string]struct {
		container string
		stage     v1alpha1.Stage
		exp       string
	}{
		"short names are readable":    {container: "main", stage: v1alpha1.StageAfter, exp: "resume-after-main"},
		"the stage is part of it":     {container: "main", stage: v1alpha1.StageBefore, exp: "resume-before-main"},
		"long names keep 63 and hash": {container: strings.Repeat("c", 63), stage: v1alpha1.StageBefore},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := release.EphemeralName(tc.container, tc.stage)
			if tc.exp != "" && got != tc.exp {
				t.Fatalf("EphemeralName = %q, want %q", got, tc.exp)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Fatalf("EphemeralName = %q is not a container name: %v", got, errs)
			}
			if again := release.EphemeralName(tc.container, tc.stage); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
	if release.EphemeralName(strings.Repeat("c", 63), v1alpha1.StageBefore) == release.EphemeralName(strings.Repeat("c", 62)+"d", v1alpha1.StageBefore) {
		t.Error("two long container names share an ephemeral name")
	}
}

func TestReleaseEphemeralFallback(t *testing.T) {
	zero, one := int32(0), int32(1)
	noTouch := &release.ExitError{Code: 127}
	tests := map[string]struct {
		pod      func(*corev1.Pod) *corev1.Pod
		exit     *int32
		updErr   error
		expKind  fault.Kind
		expErr   []string
		expAdded bool
	}{
		"ephemeral container exiting 0 releases": {
			exit:     &zero,
			expAdded: true,
		},
		"ephemeral container exiting 1 is Precondition": {
			exit:     &one,
			expAdded: true,
			expKind:  fault.Precondition,
			expErr:   []string{"exited 1", "touch said so"},
		},
		"ephemeral container that never terminates is Transient at the timeout": {
			expAdded: true,
			expKind:  fault.Transient,
			expErr:   []string{"did not finish within"},
		},
		"an ephemeral container from an earlier attempt is waited for, not added again": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "resume-before-main", Image: "busybox:1.36"}}}
				p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "resume-before-main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
				return p
			},
		},
		"pod without the var-run-argo volume is Precondition": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				p.Spec.Volumes = []corev1.Volume{{Name: "other", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				return p
			},
			exit:    &zero,
			expKind: fault.Precondition,
			expErr:  []string{"has no var-run-argo volume"},
		},
		"pod replaced before the fallback is Precondition": {
			pod: func(p *corev1.Pod) *corev1.Pod {
				p.UID = "new-uid"
				return p
			},
			exit:    &zero,
			expKind: fault.Precondition,
			expErr:  []string{"was replaced"},
		},
		"pod gone before the fallback is NotFound": {
			pod:     func(*corev1.Pod) *corev1.Pod { return nil },
			exit:    &zero,
			expKind: fault.NotFound,
			expErr:  []string{"deleted before the ephemeral fallback ran"},
		},
		"forbidden ephemeral update is Transient naming the overlay": {
			exit:     &zero,
			updErr:   apierrors.NewForbidden(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, podName, errors.New("denied")),
			expAdded: true,
			expKind:  fault.Transient,
			expErr:   []string{"pods/ephemeralcontainers update", "ephemeral-fallback overlay"},
		},
		"failed ephemeral update is Transient": {
			exit:     &zero,
			updErr:   apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, podName, errors.New("changed")),
			expAdded: true,
			expKind:  fault.Transient,
			expErr:   []string{"add ephemeral container to pod " + podName},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := stepPod()
			kube := k8sfake.NewClientset()
			stored := pod.DeepCopy()
			if tc.pod != nil {
				stored = tc.pod(stored)
			}
			if stored != nil {
				kube = k8sfake.NewClientset(stored)
			}
			ephemeralExit(kube, tc.exit)
			if tc.updErr != nil {
				kube.PrependReactor("update", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.updErr })
			}
			exec := &recorder{results: map[string]error{"main": noTouch, "tools": noTouch, "sidecar": noTouch}}
			// The container's outcome is in the pod's status as soon as it is added (ephemeralExit), and
			// waitEphemeral looks at once: no outcome depends on the 250ms poll or a slow machine, so the
			// timeout is generous, except where running into it is the case.
			timeout := 30 * time.Second
			if tc.exit == nil && tc.expAdded {
				timeout = 300 * time.Millisecond
			}
			r := newReleaser(t, release.Config{Exec: exec, Pods: kube, Timeout: timeout, EphemeralImage: "busybox:1.36"})
			out, err := r.Release(t.Context(), targetOf(pod))
			fixture.CheckFault(t, err, tc.expKind, tc.expErr)
			if got := exec.containers(); !slices.Equal(got, []string{"main", "tools", "sidecar"}) {
				t.Errorf("exec'd into %v before the ephemeral container, want main, tools, sidecar", got)
			}

			var updates []*corev1.Pod
			for _, a := range kube.Actions() {
				switch {
				case a.Matches("get", "pods"):
				case a.Matches("update", "pods") && a.GetSubresource() == "ephemeralcontainers":
					updates = append(updates, a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod))
					if fm := a.(k8stesting.UpdateActionImpl).UpdateOptions.FieldManager; fm != v1alpha1.FieldManager {
						t.Errorf("field manager %q, want %q", fm, v1alpha1.FieldManager)
					}
				default:
					t.Errorf("unexpected action %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
				}
			}
			if !tc.expAdded {
				if len(updates) != 0 {
					t.Errorf("ephemeral containers were updated %d times, want never", len(updates))
				}
				return
			}
			if len(updates) != 1 {
				t.Fatalf("ephemeral containers were updated %d times, want once", len(updates))
			}
			checkEphemeral(t, updates[0])
			name := updates[0].Spec.EphemeralContainers[0].Name
			if tc.expKind == fault.Unknown {
				if out.Via != name || !out.Ephemeral {
					t.Errorf("outcome via %q (ephemeral %v), want via %q ephemeral", out.Via, out.Ephemeral, name)
				}
				if len(out.Attempts) != 3 {
					t.Errorf("attempts = %q, want one per container", out.Attempts)
				}
			}
		})
	}
}

// checkEphemeral asserts that the update adds exactly one ephemeral container that runs the touch argv,
// mounts only var-run-argo and runs as non-root with nothing extra.
func checkEphemeral(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if pod.Name != podName || pod.Namespace != ns {
		t.Errorf("updated pod %s/%s, want %s/%s", pod.Namespace, pod.Name, ns, podName)
	}
	if len(pod.Spec.EphemeralContainers) != 1 {
		t.Fatalf("ephemeral containers = %v, want exactly one", pod.Spec.EphemeralContainers)
	}
	e := pod.Spec.EphemeralContainers[0]
	if !strings.HasPrefix(e.Name, "resume-before-") {
		t.Errorf("ephemeral container name = %q, want resume-before-*", e.Name)
	}
	if e.Image != "busybox:1.36" {
		t.Errorf("image = %q, want busybox:1.36", e.Image)
	}
	if !slices.Equal(e.Command, touchMain) || len(e.Args) != 0 {
		t.Errorf("command = %q args %q, want %q", e.Command, e.Args, touchMain)
	}
	if len(e.VolumeMounts) != 1 || !equality.Semantic.DeepEqual(e.VolumeMounts[0], corev1.VolumeMount{Name: "var-run-argo", MountPath: "/var/run/argo"}) {
		t.Errorf("volume mounts = %+v, want only var-run-argo at /var/run/argo", e.VolumeMounts)
	}
	if e.TargetContainerName != "" || len(e.Env) != 0 || len(e.EnvFrom) != 0 || len(e.VolumeDevices) != 0 {
		t.Errorf("ephemeral container has extras: target %q env %v envFrom %v devices %v", e.TargetContainerName, e.Env, e.EnvFrom, e.VolumeDevices)
	}
	sc := e.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no security context")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("runAsUser is root or unset")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities = %+v, want drop ALL and add none", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccomp = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	// The rest of the pod is sent back unchanged.
	want := stepPod()
	if !slices.EqualFunc(pod.Spec.Containers, want.Spec.Containers, func(a, b corev1.Container) bool { return a.Name == b.Name }) {
		t.Errorf("containers changed: %v", pod.Spec.Containers)
	}
}

func newReleaser(t *testing.T, c release.Config) *release.Releaser {
	t.Helper()
	r, err := release.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewChecksItsConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg release.Config
		exp string
	}{
		"no executor":                     {cfg: release.Config{}, exp: "Config.Exec is required"},
		"ephemeral fallback without pods": {cfg: release.Config{Exec: &recorder{}, EphemeralImage: "busybox"}, exp: "needs Config.Pods"},
		"negative timeout":                {cfg: release.Config{Exec: &recorder{}, Timeout: -1}, exp: "cannot be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := release.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.exp) {
				t.Errorf("New = %v, want %q", err, tc.exp)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Confirm tells what became of a container a release was started for, from one read of its pod.
func TestConfirm(t *testing.T) {
	tests := map[string]struct {
		pod     func(*corev1.Pod) *corev1.Pod
		getErr  error
		expFate release.Fate
		expExit *int32
		expKind fault.Kind
	}{
		"still running":             {pod: func(p *corev1.Pod) *corev1.Pod { return p }, expFate: release.FateRunning},
		"ended, with its exit code": {pod: func(p *corev1.Pod) *corev1.Pod { fixture.SetTerminated(p, "main", 2); return p }, expFate: release.FateEnded, expExit: ptr(int32(2))},
		"the pod ended":             {pod: func(p *corev1.Pod) *corev1.Pod { p.Status.Phase = corev1.PodFailed; return p }, expFate: release.FateEnded},
		"another container ended":   {pod: func(p *corev1.Pod) *corev1.Pod { fixture.SetTerminated(p, "tools", 0); return p }, expFate: release.FateRunning},
		"the pod is gone":           {pod: func(*corev1.Pod) *corev1.Pod { return nil }, expFate: release.FateGone},
		"the pod was replaced":      {pod: func(p *corev1.Pod) *corev1.Pod { fixture.SetTerminated(p, "main", 0); p.UID = "new"; return p }, expFate: release.FateReplaced},
		"the pod cannot be read":    {pod: func(p *corev1.Pod) *corev1.Pod { return p }, getErr: errors.New("connection refused"), expKind: fault.Transient},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := k8sfake.NewClientset()
			if p := tc.pod(stepPod()); p != nil {
				kube = k8sfake.NewClientset(p)
			}
			if tc.getErr != nil {
				kube.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.getErr })
			}
			r := newReleaser(t, release.Config{Exec: &recorder{}, Pods: kube})
			got, err := r.Confirm(t.Context(), targetOf(stepPod()))
			fixture.CheckFault(t, err, tc.expKind, nil)
			if err != nil {
				return
			}
			if got.Fate != tc.expFate || (got.ExitCode == nil) != (tc.expExit == nil) || (got.ExitCode != nil && *got.ExitCode != *tc.expExit) {
				t.Fatalf("Confirm = %+v (exit %v), want fate %d exit %v", got, got.ExitCode, tc.expFate, tc.expExit)
			}
		})
	}
}
