package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// withProductRevisits turns revisits on at the server's defaults (--revisit-interval, --revisit-rate), the
// budget the fairness has to hold within.
func withProductRevisits() serverOption {
	return func(o *app.Options) { o.Revisits = app.NewOptions().Revisits }
}

// createResumes creates n Resumes named prefix-0000… in e's namespace, a few at a time.
func (e *env) createResumes(prefix string, n int, spec map[string]any) {
	e.t.Helper()
	const parallel = 8
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := e.tryCreateResume(fmt.Sprintf("%s-%04d", prefix, i), spec); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		e.t.Fatalf("create %d Resumes: %v", n, first)
	}
}

// One namespace's 2,000 Resumes wait for a Workflow that never comes (a day's deadline): a Resume of
// another namespace, made before its step runs, is still released within 5 s of the step pausing, at
// the product's revisit rate (5/s, 2 workers). With one FIFO for all, it waited behind the 2,000
// (~400 s a round). The server starts after the 2,000 exist, as after a restart or a takeover: its first
// resync queues them all at once.
func TestRevisitsAreFairPerNamespace(t *testing.T) {
	r := rig.Get(t)
	crowd, other := newEnvOn(t, r), newEnvOn(t, r)
	const crowded = 2000
	start := time.Now()
	crowd.createResumes("wait", crowded, map[string]any{"Workflow-ID": "never-created", "TemplateName": "pause", "activeDeadlineSeconds": int64(86400)})
	t.Logf("created %d Resumes in %s in %v", crowded, crowd.ns, time.Since(start).Round(time.Millisecond))

	srv := startServer(t, r.AdminConfig(), []string{crowd.ns, other.ns}, withProductRevisits())
	crowd.srv, other.srv = srv, srv
	// The revisits are busy with the crowd: its first Resumes get their Pending status from them.
	crowd.waitResume("wait-0000", 30*time.Second, isPhase(v1alpha1.PhasePending))

	wf := other.createWorkflow(fixture.HelloWorld(other.ns))
	u := other.createResume("early", map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"})
	expectPending(t, srv.fireResume(t, u), "has no pod yet")
	// Past the Sensor's call: from here only the revisits can release it.
	time.Sleep(2 * productRevisits)
	other.expectNoCalls()

	pod := other.runPod(wf, fixture.HelloNodeID, fixture.HelloPodV2, mainContainer(fixture.PauseAfter))
	running := time.Now()
	calls := other.waitCalls(1, 30*time.Second)
	took := calls[0].Time.Sub(running)
	t.Logf("beside %d waiting Resumes of %s: step paused (pod %s running) -> marker exec at the kubelet: %v", crowded, crowd.ns, pod.Name, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("released %v after the step paused, want within 5s", took)
	}
	other.expectCalls(rig.Call{Pod: fixture.HelloPodV2, Container: "main", Argv: touchMainAfter, Outcome: "exit 0"})
	res := other.waitResume("early", 10*time.Second, isPhase(v1alpha1.PhaseSucceeded))
	expectSucceeded(t, res, helloReleased)

	// The crowd kept its share meanwhile: more of its Resumes were looked at than the first.
	looked := 0
	for i := range 20 {
		if res, _ := crowd.resume(fmt.Sprintf("wait-%04d", i)); res.Status.Phase == v1alpha1.PhasePending {
			looked++
		}
	}
	if looked < 10 {
		t.Errorf("%d of the crowd's first 20 Resumes were looked at, want its share of the revisits to go on", looked)
	}
}

// examples/quota on the real API server: with the quota in force, the Resume beyond its count is refused.
// No controller-manager runs here, so the test writes the quota's status as its quota controller would
// (hard from spec, used = the Resumes that exist); from then on the API server's own ResourceQuota
// admission counts each new Resume and refuses the one over.
func TestExampleResourceQuotaRefusesResumesBeyondIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var quota corev1.ResourceQuota
	strict(t, example(t, exampleDocs(t), "quota/resourcequota.yaml", "ResourceQuota"), &quota)
	key := corev1.ResourceName("count/" + v1alpha1.Resource.GroupResource().String())
	hard, ok := quota.Spec.Hard[key]
	if !ok || hard.Value() < 1 {
		t.Fatalf("examples/quota bounds %v, want %s", quota.Spec.Hard, key)
	}
	ctx := rig.Context(t, 2*time.Minute)
	quotas := e.r.Client().CoreV1().ResourceQuotas(e.ns)
	if _, err := quotas.Create(ctx, &quota, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the example's ResourceQuota: %v", err)
	}
	resumes := e.r.Dynamic().Resource(v1alpha1.Resource).Namespace(e.ns)
	spec := map[string]any{"Workflow-ID": fixture.HelloWorkflow, "TemplateName": "pause"}
	// The admission plugin reads quotas through an informer: until it has the status, a Resume goes
	// uncounted, and the next status written counts it.
	probes := 0
	err := rig.Eventually(ctx, func() error {
		list, err := resumes.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		q, err := quotas.Get(context.Background(), quota.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		exist := int64(len(list.Items))
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{key: *resource.NewQuantity(exist, resource.DecimalSI)}}
		if _, err := quotas.UpdateStatus(context.Background(), q, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if _, err := e.tryCreateResume(fmt.Sprintf("probe-%d", probes), spec); err != nil {
			return err
		}
		probes++
		if q, err = quotas.Get(context.Background(), quota.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if used := q.Status.Used[key]; used.Value() != exist+1 {
			return fmt.Errorf("the quota counts %d Resumes of %d", used.Value(), exist+1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.createResumes("r", int(hard.Value())-probes, spec)
	_, err = e.tryCreateResume("one-too-many", spec)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("the Resume beyond the quota's %d: %v, want refused (Forbidden, exceeded quota)", hard.Value(), err)
	}
	t.Logf("refused: %v", err)
	q, err := quotas.Get(ctx, quota.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if used := q.Status.Used[key]; used.Cmp(hard) != 0 {
		t.Errorf("quota status used %s, want %s", used.String(), hard.String())
	}
}
