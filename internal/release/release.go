package release

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fault"
	"github.com/argocontroller/resume-trigger/internal/lookup"
)

// Argv returns the only command resume-trigger ever runs: touch of the marker that ends container's pause
// at stage. Both parts are checked, so nothing else can reach the argv.
func Argv(container string, stage v1alpha1.Stage) ([]string, error) {
	if errs := validation.IsDNS1123Label(container); len(errs) > 0 {
		return nil, fault.Invalidf("container %q is not a container name: %s", container, strings.Join(errs, "; "))
	}
	if stage != v1alpha1.StageBefore && stage != v1alpha1.StageAfter {
		return nil, fault.Invalidf("stage %q is neither before nor after", stage)
	}
	return []string{"touch", argo.MarkerPath(container, string(stage))}, nil
}

// Outcome says how a target was released.
type Outcome struct {
	// Via is the container the marker was created from: the target's own, another of the pod, or the
	// ephemeral container's name.
	Via       string
	Ephemeral bool
	// Attempts lists, in order, why earlier ways did not work.
	Attempts []string
	// ExitCode is set when the exec's answer was lost (its stream failed) but the container was found
	// ended right after: the touch ran, and this is the exit code the released container ended with.
	ExitCode *int32
}

// Releaser releases targets.
type Releaser struct {
	cfg Config
}

// Config is what a Releaser works with. New checks it and fills in the defaults.
type Config struct {
	// Exec runs the touch (required).
	Exec Executor
	// Pods tells a vanished pod from a broken transport after a failed exec, and runs the ephemeral
	// fallback; nil leaves a failed exec unexplained (and needs EphemeralImage empty).
	Pods kubernetes.Interface
	// Timeout bounds one exec (and the ephemeral container's run); 10s by default.
	Timeout time.Duration
	// EphemeralImage, when set, enables the last-resort fallback: an ephemeral container of this image that
	// mounts only /var/run/argo and runs touch. It needs pods/ephemeralcontainers rights.
	EphemeralImage string
}

// New returns a Releaser for c.
func New(c Config) (*Releaser, error) {
	switch {
	case c.Exec == nil:
		return nil, errors.New("release: Config.Exec is required")
	case c.EphemeralImage != "" && c.Pods == nil:
		return nil, errors.New("release: Config.EphemeralImage needs Config.Pods")
	case c.Timeout < 0:
		return nil, errors.New("release: Config.Timeout cannot be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return &Releaser{cfg: c}, nil
}

// DefaultTimeout bounds one exec when Config.Timeout is zero (and is the server's --exec-timeout default).
const DefaultTimeout = 10 * time.Second

// Release creates the marker of t. It tries t's container, then the pod's other user containers that mount
// /var/run/argo, then the ephemeral container if enabled. The next container is tried only when the
// container has no touch: the exec exits 126 or 127, or the runtime reports that the executable is not
// found. Any other failure (another exit code, a broken transport) ends the attempt and is retried later.
func (r *Releaser) Release(ctx context.Context, t lookup.Target) (Outcome, error) {
	argv, err := Argv(t.Container, t.Stage)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	for _, via := range append([]string{t.Container}, t.Others...) {
		err := r.execOnce(ctx, t, via, argv)
		if err == nil {
			out.Via = via
			return out, nil
		}
		if !fallThrough(err) {
			if via != t.Container && r.ended(ctx, t, via) {
				// An exited sibling (normal in a containerSet) cannot exec anything: try the next one.
				out.Attempts = append(out.Attempts, fmt.Sprintf("container %s has ended: %v", via, err))
				continue
			}
			err := r.classify(ctx, t, via, err)
			var ended *endedError
			if errors.As(err, &ended) {
				// The target was running and paused when the exec started, and has ended since: the exec's
				// answer was lost, not the touch, whose marker is what ends a paused container.
				out.Via, out.ExitCode = via, ended.code
				out.Attempts = append(out.Attempts, ended.Error())
				return out, nil
			}
			return out, err
		}
		out.Attempts = append(out.Attempts, fmt.Sprintf("container %s: %v", via, err))
	}
	if r.cfg.EphemeralImage == "" {
		return out, fault.Preconditionf("no container of pod %s can create %s (%s): give the step's image a touch, or enable the ephemeral-container fallback (--ephemeral-image)", t.Pod, argv[1], strings.Join(out.Attempts, "; "))
	}
	name, err := r.ephemeral(ctx, t, argv)
	if err != nil {
		return out, err
	}
	out.Via, out.Ephemeral = name, true
	return out, nil
}

func (r *Releaser) execOnce(ctx context.Context, t lookup.Target, container string, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	err := r.cfg.Exec.Exec(ctx, t.Namespace, t.Pod, container, argv)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("exec did not finish within %s: %w", r.timeout(), ctx.Err())
	}
	return err
}

func (r *Releaser) timeout() time.Duration {
	if r.cfg.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.cfg.Timeout
}

var notFoundText = regexp.MustCompile(`(?i)executable file not found|not found in \$PATH|exit (status|code) 12[67]\b`)

// fallThrough reports whether err means "this container has no touch, try another": the shell-less exit
// codes for a command that cannot run (126) or is not there (127), or the runtime saying so itself.
func fallThrough(err error) bool {
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code == 126 || exit.Code == 127
	}
	return notFoundText.MatchString(err.Error())
}

// classify turns an exec failure that is not about the container's tools into a fault: if the pod or the
// container has gone meanwhile, nothing can be released any more; otherwise the transport failed and a
// retry may work.
func (r *Releaser) classify(ctx context.Context, t lookup.Target, via string, err error) error {
	if apierrors.IsForbidden(err) {
		return fault.Transientf("exec into pod %s container %s was refused: %w (the server needs pods/exec create and get in namespace %s)", t.Pod, via, err, t.Namespace)
	}
	if r.cfg.Pods != nil {
		pod, gerr := r.cfg.Pods.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			return fault.NotFoundf("pod %s was deleted while releasing it: %v", t.Pod, err)
		case gerr == nil && pod.UID != t.PodUID:
			return fault.Preconditionf("pod %s was replaced while releasing it: %v", t.Pod, err)
		case gerr == nil && terminated(pod, t.Container) && errors.As(err, new(*ExitError)):
			// The command answered, and not with success: the touch did not create the marker.
			return fault.Preconditionf("container %s in pod %s terminated while releasing it: %v", t.Container, t.Pod, err)
		case gerr == nil && terminated(pod, t.Container):
			return &endedError{container: t.Container, pod: t.Pod, code: exitCode(pod, t.Container), err: err}
		}
	}
	var exit *ExitError
	if errors.As(err, &exit) && exit.Code == 1 && strings.Contains(exit.Output, "No such file or directory") {
		// Argo's emissary makes its directory under /var/run/argo/ctr as it starts: a container the kubelet
		// reports running may not have got that far yet (seen on the real argoexec under load). Not a fault.
		return fault.Transientf("exec into pod %s container %s: %w: Argo's emissary has not made %s yet (its container started moments ago); retried", t.Pod, via, err, path.Dir(argo.MarkerPath(t.Container, string(t.Stage))))
	}
	return fault.Transientf("exec into pod %s container %s failed: %w", t.Pod, via, err)
}

// endedError is an exec that failed while its target container ended: the release it was made for.
type endedError struct {
	container, pod string
	code           *int32
	err            error
}

func (e *endedError) Error() string {
	code := "unknown"
	if e.code != nil {
		code = fmt.Sprint(*e.code)
	}
	return fmt.Sprintf("the exec failed (%v), but container %s in pod %s ended right after it (exit %s): released", e.err, e.container, e.pod, code)
}

// exitCode is the exit code of container in pod, when it has terminated.
func exitCode(pod *corev1.Pod, container string) *int32 {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container && s.State.Terminated != nil {
			code := s.State.Terminated.ExitCode
			return &code
		}
	}
	return nil
}

// Fate is what became of a container after a release was started for it.
type Fate int

const (
	// FateRunning means the container still runs. Whether the touch ran is not known; touching again is safe.
	FateRunning Fate = iota
	// FateEnded means the container has ended. It was running and paused when its release started, and a
	// paused container ends only once its marker exists: the release happened.
	FateEnded
	// FateGone means the pod is gone. It was running and paused when its release started; Argo deletes a
	// finished pod (podGC) seconds after the release let it end.
	FateGone
	// FateReplaced means another pod has the name now: the release never reached it.
	FateReplaced
)

// Confirmation is what Confirm found.
type Confirmation struct {
	Fate Fate
	// ExitCode is the ended container's exit code (FateEnded).
	ExitCode *int32
}

// Confirm reads t's pod to tell what became of t's container after a release was started for it and its
// outcome was lost (the status write after it failed, the server stopped mid-release).
func (r *Releaser) Confirm(ctx context.Context, t lookup.Target) (Confirmation, error) {
	if r.cfg.Pods == nil {
		return Confirmation{}, fault.Transientf("cannot confirm the release of pod %s container %s: no pod client", t.Pod, t.Container)
	}
	pod, err := r.cfg.Pods.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Confirmation{Fate: FateGone}, nil
	case err != nil:
		return Confirmation{}, fault.Transientf("confirm the release of pod %s container %s: %w", t.Pod, t.Container, err)
	case pod.UID != t.PodUID:
		return Confirmation{Fate: FateReplaced}, nil
	case terminated(pod, t.Container):
		return Confirmation{Fate: FateEnded, ExitCode: exitCode(pod, t.Container)}, nil
	}
	return Confirmation{Fate: FateRunning}, nil
}

// ended reports whether container (another than the target) of t's pod has terminated, by a fresh read;
// without a pod client it cannot tell and says no.
func (r *Releaser) ended(ctx context.Context, t lookup.Target, container string) bool {
	if r.cfg.Pods == nil {
		return false
	}
	pod, err := r.cfg.Pods.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	return err == nil && pod.UID == t.PodUID && terminated(pod, container)
}

// terminated reports whether container in pod has terminated: its own state says so, or the pod ended.
func terminated(pod *corev1.Pod, container string) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container {
			return s.State.Terminated != nil
		}
	}
	return false
}

// ephemeral adds an ephemeral container that mounts only /var/run/argo and runs the argv, then waits for it
// to exit 0. It copies none of the target's mounts: Argo's input-artifact subPath mounts are not allowed in
// ephemeral containers.
func (r *Releaser) ephemeral(ctx context.Context, t lookup.Target, argv []string) (string, error) {
	pods := r.cfg.Pods.CoreV1().Pods(t.Namespace)
	pod, err := pods.Get(ctx, t.Pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fault.NotFoundf("pod %s was deleted before the ephemeral fallback ran", t.Pod)
	}
	if err != nil {
		return "", fault.Transientf("get pod %s for the ephemeral fallback: %w", t.Pod, err)
	}
	if pod.UID != t.PodUID {
		return "", fault.Preconditionf("pod %s was replaced before the ephemeral fallback ran", t.Pod)
	}
	hasVolume := false
	for _, v := range pod.Spec.Volumes {
		hasVolume = hasVolume || v.Name == argo.VolumeVarRunArgo
	}
	if !hasVolume {
		return "", fault.Preconditionf("pod %s has no %s volume: it is not an Argo emissary pod", t.Pod, argo.VolumeVarRunArgo)
	}
	name := EphemeralName(t.Container, t.Stage)
	if slices.ContainsFunc(pod.Spec.EphemeralContainers, func(e corev1.EphemeralContainer) bool { return e.Name == name }) {
		// An earlier attempt added it (ephemeral containers can never be removed): wait for that one.
		return r.waitEphemeral(ctx, t, name)
	}
	nonRoot, uid, no := true, int64(65532), false
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:                     name,
			Image:                    r.cfg.EphemeralImage,
			Command:                  argv,
			VolumeMounts:             []corev1.VolumeMount{{Name: argo.VolumeVarRunArgo, MountPath: argo.VarRunArgo}},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot:             &nonRoot,
				RunAsUser:                &uid,
				AllowPrivilegeEscalation: &no,
				ReadOnlyRootFilesystem:   &nonRoot,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		},
	})
	if _, err := pods.UpdateEphemeralContainers(ctx, pod.Name, pod, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager}); err != nil {
		if apierrors.IsForbidden(err) {
			return "", fault.Transientf("add ephemeral container to pod %s: %w (the server needs pods/ephemeralcontainers update: apply the ephemeral-fallback overlay)", t.Pod, err)
		}
		return "", fault.Transientf("add ephemeral container to pod %s: %w", t.Pod, err)
	}
	return r.waitEphemeral(ctx, t, name)
}

// EphemeralName is the name of the ephemeral container that releases container at stage. It is the same
// on every attempt, so a retry finds the container an earlier attempt added instead of adding another.
func EphemeralName(container string, stage v1alpha1.Stage) string {
	name := "resume-" + string(stage) + "-" + container
	if len(name) <= validation.DNS1123LabelMaxLength {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%s-%08x", strings.TrimRight(name[:validation.DNS1123LabelMaxLength-9], "-"), h.Sum32())
}

// waitEphemeral waits for the ephemeral container name to exit 0. It looks at once, then every 250ms: a
// container an earlier attempt added may have finished already.
func (r *Releaser) waitEphemeral(ctx context.Context, t lookup.Target, name string) (string, error) {
	pods := r.cfg.Pods.CoreV1().Pods(t.Namespace)
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if pod, err := pods.Get(ctx, t.Pod, metav1.GetOptions{}); err == nil {
			for _, s := range pod.Status.EphemeralContainerStatuses {
				if s.Name != name || s.State.Terminated == nil {
					continue
				}
				if code := s.State.Terminated.ExitCode; code != 0 {
					return "", fault.Preconditionf("ephemeral container %s in pod %s exited %d: %s", name, t.Pod, code, s.State.Terminated.Message)
				}
				return name, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fault.Transientf("ephemeral container %s in pod %s did not finish within %s", name, t.Pod, r.timeout())
		case <-tick.C:
		}
	}
}
