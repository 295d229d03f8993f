package fault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/tests/internal/chain"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The faults run one after another on the suite's chain, each round on a Workflow of its own; the table
// of their counts is printed when the binary ends (main_test.go).
func TestFaults(t *testing.T) {
	t.Run("APIServerKilledDuringAnExec", s.repeat("API server killed (SIGKILL) during an exec, restarted", 3, s.apiServerKilled))
	t.Run("PodDeletedDuringItsExec", s.repeat("pod deleted during its exec", 3, s.podDeleted))
	t.Run("ServerSIGTERMWithAReleaseInFlight", s.repeat("resume-trigger SIGTERM with a release in flight", 3, s.serverTerminated))
	t.Run("ServerSIGKILLWithAReleaseInFlight", s.repeat("resume-trigger SIGKILL with a release in flight", 3, s.serverKilled))
	t.Run("NATSKilledAndRestarted", s.repeat("NATS killed (SIGKILL) and restarted, Resumes created while it is down", 2, s.natsRestarted))
	t.Run("SensorLinkCutAndRestored", s.repeat("Sensor's network link down for 5 s, Resumes created meanwhile", 3, s.linkCut))
	t.Run("HundredConcurrentDeliveries", s.repeat("100 concurrent deliveries of one Resume", 3, s.concurrent))
	t.Run("LeaderKilledDuringABurstOf200", s.repeat("leader of 2 replicas killed (SIGKILL) during a burst of 200 Resumes", 1, s.leaderKilled))
	t.Run("NoExecOutsideTheTargetsOverTheRun", s.noStrayExec)
}

// repeat runs a fault rounds times, one round after the other, and records the sum of their counts as
// the fault's row.
func (s *suite) repeat(fault string, rounds int, f func(t *testing.T, round int) row) func(*testing.T) {
	return func(t *testing.T) {
		sum := row{Fault: fault}
		for i := range rounds {
			r := f(t, i)
			t.Logf("round %d: injected %d, %d Resumes, released %d, wrong execs %d, lost %d, duplicates %d, in %v",
				i+1, r.Injected, r.Resumes, r.Released, r.WrongExecs, r.LostResumes, r.Duplicate, r.Took.Round(time.Millisecond))
			sum.add(r)
			if t.Failed() {
				break
			}
		}
		s.record(sum)
	}
}

// The API server is killed (SIGKILL) while it proxies a release's exec, and started again on the same
// etcd: the exec breaks, the server's request fails transiently and is taken up again once the API is
// back.
func (s *suite) apiServerKilled(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("apiserver-%d", round), 3)
	w := s.begin(t)
	g := s.gate(ts[0].Pod, nil)
	s.createResumes(t, ts, 1)
	g.wait(t)
	down := time.Now()
	if err := s.c.Rig.RestartAPIServer(rig.Context(t, 2*time.Minute), syscall.SIGKILL, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver killed with an exec in flight and back in %v", time.Since(down).Round(time.Millisecond))
	g.open()
	r := s.judge(t, 1, ts, w)
	return r
}

// A pod is deleted (grace 0) while the exec that releases it runs; the container is gone with it, so the
// exec ends with 137. The Resume must end (there is nothing left to release), the others must be
// released, and nothing may be exec'd anywhere else.
func (s *suite) podDeleted(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("poddelete-%d", round), 3)
	w := s.begin(t)
	g := s.gate(ts[0].Pod, utilexec.CodeExitError{Err: errors.New("exit status 137"), Code: 137})
	ts[0].anyFinal = true
	s.createResumes(t, ts, 1)
	g.wait(t)
	pods := s.c.Client().CoreV1().Pods(namespace)
	ctx := rig.Context(t, time.Minute)
	if err := pods.Delete(ctx, ts[0].Pod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if err := rig.Eventually(ctx, func() error {
		if _, err := pods.Get(ctx, ts[0].Pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s still there: %v", ts[0].Pod, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g.open()
	r := s.judge(t, 1, ts, w)
	res, err := s.resumes(ctx)
	if err == nil {
		if r := res[ts[0].Resume]; r != nil {
			t.Logf("%s (pod deleted): %s/%s: %s", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Message)
		}
	}
	return r
}

// resume-trigger gets SIGTERM while an exec of a release is in flight: it stops serving at once (not
// ready), finishes and records the release in flight, and exits; restarted, it serves the rest.
func (s *suite) serverTerminated(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("sigterm-%d", round), 3)
	w := s.begin(t)
	g := s.gate(ts[0].Pod, nil)
	s.createResumes(t, ts, 1)
	g.wait(t)
	stopped := make(chan error, 1)
	go func() { stopped <- s.c.Kill(chain.Server, syscall.SIGTERM) }()
	ctx := rig.Context(t, time.Minute)
	if err := rig.Eventually(ctx, func() error {
		if ready(s.server) {
			return errors.New("resume-trigger still ready after SIGTERM")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g.open() // the release in flight may finish now
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if log, _ := chain.ReadLog(s.c.LogFile(chain.Server)); strings.Contains(log, "in-flight requests did not finish in time") {
		t.Errorf("resume-trigger did not drain within its shutdown timeout (log %s)", s.c.LogFile(chain.Server))
	}
	// The release in flight at SIGTERM was carried out and recorded before the process ended.
	res, err := s.resumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := res[ts[0].Resume]; r == nil || r.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("the Resume in flight at SIGTERM is %+v after the drain, want Succeeded", r)
	}
	if err := s.c.StartComponent(rig.Context(t, 90*time.Second), chain.Server); err != nil {
		t.Fatal(err)
	}
	r := s.judge(t, 1, ts, w)
	return r
}

// resume-trigger is killed (SIGKILL) while an exec of a release is in flight: nothing is recorded of it;
// restarted, the server lists the Resumes again and releases every one.
func (s *suite) serverKilled(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("sigkill-%d", round), 3)
	w := s.begin(t)
	g := s.gate(ts[0].Pod, nil)
	// The exec in flight may still run after its caller died (then the step ends before the restarted
	// server looks, and the Resume ends Failed: nothing is paused any more) or not (then it is released).
	ts[0].anyFinal = true
	s.createResumes(t, ts, 1)
	g.wait(t)
	if err := s.c.Kill(chain.Server, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.open() // if the exec outlived its client, it runs now, as a command whose caller died does
	if err := s.c.StartComponent(rig.Context(t, 90*time.Second), chain.Server); err != nil {
		t.Fatal(err)
	}
	r := s.judge(t, 1, ts, w)
	return r
}

// nats-server (the EventBus) is killed with Resume events in its stream and started again on the same
// JetStream store; Resumes are created while it is down too (the resource EventSource cannot publish
// them then).
func (s *suite) natsRestarted(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("nats-%d", round), 4)
	w := s.begin(t)
	s.createResumes(t, ts[:2], 1)
	if err := s.c.RestartNATS(rig.Context(t, 2*time.Minute), syscall.SIGKILL, func() error {
		for _, tg := range ts[2:] {
			if err := s.createResume(rig.Context(t, 30*time.Second), tg); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := s.judge(t, 1, ts, w)
	// Observed with argo-events v1.9.11: after nats-server comes back the Sensor resubscribes one trigger
	// but may leave the other (release-resume) without a subscription until it restarts. The judge above
	// counts what the server made of that (its resync takes the Resumes up); the Sensor is restarted here,
	// as an operator would, so that the faults after this one test the Sensor's path.
	if err := s.c.Restart(rig.Context(t, 90*time.Second), chain.Sensor); err != nil {
		t.Fatal(err)
	}
	return r
}

// linkDown is how long the Sensor's link stays cut: shorter than the Sensor's retry budget for one event,
// so a delivery it was retrying is not given up.
const linkDown = 5 * time.Second

// The Sensor's network link goes down (its namespace's veth) right after two Resumes were created, two
// more are created while it is down, and it comes back after linkDown.
func (s *suite) linkCut(t *testing.T, round int) row {
	ts := s.fan(t, fmt.Sprintf("link-%d", round), 4)
	w := s.begin(t)
	s.createResumes(t, ts[:2], 1)
	if err := s.c.SetLink(rig.Context(t, 10*time.Second), chain.Sensor, false); err != nil {
		t.Fatal(err)
	}
	restore := sync.OnceFunc(func() {
		if err := s.c.SetLink(context.Background(), chain.Sensor, true); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(restore)
	s.createResumes(t, ts[2:], 1)
	time.Sleep(linkDown) // the fault's length, not an assertion
	restore()
	r := s.judge(t, 1, ts, w)
	return r
}

// A hundred deliveries of one Resume's event reach resume-trigger at once (besides the Sensor's own): the
// step is released exactly once and every delivery is answered.
func (s *suite) concurrent(t *testing.T, round int) row {
	const n = 100
	ts := s.fan(t, fmt.Sprintf("concurrent-%d", round), 1)
	w := s.begin(t)
	s.createResumes(t, ts, 1)
	conn, err := grpc.NewClient(s.c.ServerAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := triggerpb.NewTriggerClient(conn)
	ctx := rig.Context(t, 2*time.Minute)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resource, payload, err := resumeEvent(ts[0], i)
			if err == nil {
				_, err = client.Execute(ctx, &triggerpb.ExecuteRequest{Resource: resource, Payload: payload})
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("deliveries answered with errors: %v", err)
	}
	r := s.judge(t, n, ts, w)
	if got := len(successfulMarkers(s.c.Calls(), ts[0].Pod)); got != 1 {
		t.Errorf("%d releases of %s, want exactly 1", got, ts[0].Pod)
	}
	return r
}

// Two replicas with --leader-elect behind the front; the leader is killed (SIGKILL) during a burst of
// 200 Resumes, once it has released some of them. The standby takes the Lease when it expires and
// carries out the rest.
func (s *suite) leaderKilled(t *testing.T, round int) row {
	const n, killAfter = 200, 20
	ts := s.fan(t, fmt.Sprintf("burst-%d", round), n)
	w := s.begin(t)
	if err := s.c.Kill(chain.Server, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx := rig.Context(t, 5*time.Minute)
	var replicas []backend
	procs := map[string]*rig.Process{}
	for _, name := range []string{"replica-a", "replica-b"} {
		grpcPort, err := rig.FreePort(ctx, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		httpPort, err := rig.FreePort(ctx, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		b := backend{name: name, grpc: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)), http: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
		p, err := s.c.StartServerReplica(ctx, name, b.grpc, strings.TrimPrefix(b.http, "http://"),
			// The Lease in the install namespace, where the overlay grants the server its leases rights.
			"--leader-elect", "--leader-election-namespace", s.c.InstallNamespace, "--leader-election-id", "fault-replicas")
		if err != nil {
			t.Fatal(err)
		}
		procs[name] = p
		replicas = append(replicas, b)
	}
	s.front.setBackends(replicas...)
	// Afterwards the chain's own server serves again, as before this fault.
	t.Cleanup(func() {
		for _, p := range procs {
			p.Stop(syscall.SIGTERM, 10*time.Second)
		}
		s.front.setBackends(s.server)
		if err := s.c.StartComponent(context.Background(), chain.Server); err != nil {
			t.Error(err)
		}
	})
	var leader backend
	if err := rig.Eventually(ctx, func() error {
		for _, b := range replicas {
			if ready(b) {
				leader = b
				return nil
			}
		}
		return errors.New("no replica leads")
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s leads", leader.name)

	burst := make(chan struct{})
	go func() {
		defer close(burst)
		s.createResumes(t, ts, 20)
	}()
	if err := rig.Eventually(ctx, func() error {
		if got := len(successfulMarkersSince(s.c.Calls(), w.calls)); got < killAfter {
			return fmt.Errorf("%d of %d released", got, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	procs[leader.name].Stop(syscall.SIGKILL, 0)
	killed := time.Now()
	t.Logf("%s killed (SIGKILL) with %d of %d released", leader.name, len(successfulMarkersSince(s.c.Calls(), w.calls)), n)
	// A step the killed leader released but whose Resume it had not yet recorded went on: the next
	// leader finds its node done and its pod perhaps gone, with nothing left to release, so any final
	// phase is right for that Resume (as for a SIGKILL mid-exec). Every other Resume is judged in full,
	// those already Succeeded included: a later leader must never turn them.
	inFlight, err := s.releasedNotRecorded(ctx, ts, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d released but not yet recorded when the leader died", inFlight)
	<-burst
	for _, b := range replicas {
		if b != leader {
			if err := rig.Eventually(ctx, func() error {
				if !ready(b) {
					return fmt.Errorf("%s does not lead", b.name)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s leads %v after the kill", b.name, time.Since(killed).Round(time.Millisecond))
		}
	}
	r := s.judge(t, 1, ts, w)
	return r
}

// Every exec resume-trigger asked for over the whole run, including any after its fault was judged, is the
// marker of a targeted pod's main, and no marker reached another pod.
func (s *suite) noStrayExec(t *testing.T) {
	wrong, err := s.wrongExecs(window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(wrong) > 0 {
		t.Errorf("wrong execs over the run:\n%s", strings.Join(wrong, "\n"))
	}
	execs, err := s.serverExecs(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resume-trigger asked for %d execs over the run, each a target's marker", len(execs))
}

func successfulMarkers(calls []rig.Call, pod string) []rig.Call {
	var out []rig.Call
	for _, c := range calls {
		if c.Pod == pod && slices.Equal(c.Argv, marker) && c.Outcome == "exit 0" {
			out = append(out, c)
		}
	}
	return out
}

// releasedNotRecorded marks anyFinal every target whose pod got its marker since w began but whose
// Resume is not Succeeded now, and returns how many.
func (s *suite) releasedNotRecorded(ctx context.Context, ts []*target, w window) (int, error) {
	released := map[string]bool{}
	for _, c := range successfulMarkersSince(s.c.Calls(), w.calls) {
		released[c.Pod] = true
	}
	var got map[string]*v1alpha1.Resume
	err := rig.Eventually(ctx, func() (err error) {
		got, err = s.resumes(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tg := range ts {
		if r := got[tg.Resume]; released[tg.Pod] && (r == nil || r.Status.Phase != v1alpha1.PhaseSucceeded) {
			tg.anyFinal = true
			n++
		}
	}
	return n, nil
}

func successfulMarkersSince(calls []rig.Call, from int) []rig.Call {
	var out []rig.Call
	for _, c := range calls[min(from, len(calls)):] {
		if slices.Equal(c.Argv, marker) && c.Outcome == "exit 0" {
			out = append(out, c)
		}
	}
	return out
}
