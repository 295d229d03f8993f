// Command bench measures resume-trigger beside the exec floor on a local control plane (the test rig: a
// real etcd and kube-apiserver with the rig's kubelet serving exec), in one run:
//
//   - the floor: a bare client-go exec (release.APIExecutor, the server's own exec client) of the same
//     touch into the same paused pod, sequentially and with 4, 16 and 64 callers;
//   - resume-trigger: the real server binary, built from this checkout and run at its default flags,
//     released through gRPC Execute with one Resume per call, the same way; plus the server's CPU time per
//     resume (utime+stime of /proc/<pid>/stat) and its peak RSS (VmHWM of /proc/<pid>/status);
//   - flatness: a second server, started on a namespace that also holds 10,000 Workflows and 15,000
//     completed pods of them, against the first one on an empty namespace: sequential p50 and peak RSS;
//   - a loop of 100 paused iterations released by one Resume against 100 bare execs one after another
//     (the server releases a step's targets one after another).
//
// It prints a Markdown table with the ratios against the goals and writes a PNG plot of p50 latency
// against concurrency. Figures are wall-clock on whatever else the machine runs: on a shared machine they
// are noisy.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/api/v1alpha1"
	"github.com/argocontroller/resume-trigger/internal/argo"
	"github.com/argocontroller/resume-trigger/internal/fixture"
	"github.com/argocontroller/resume-trigger/internal/release"
	"github.com/argocontroller/resume-trigger/internal/request"
	"github.com/argocontroller/resume-trigger/internal/triggerpb"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The scene: the original example's Workflow (fixture.HelloWorld), whose step "pause" is paused after its
// command.
const (
	workflow  = fixture.HelloWorkflow
	template  = fixture.HelloTemplate
	container = fixture.HelloContainer
)

var touch = []string{"touch", "/var/run/argo/ctr/main/after"}

type config struct {
	sequential  int
	perCaller   int
	callers     []int
	workflows   int
	pods        int
	loop        int
	plot        string
	out         string
	serverFlags string
	keep        bool
	cpuProfile  string
	profileFor  time.Duration
}

func main() {
	var c config
	var callers string
	flag.IntVar(&c.sequential, "sequential", 200, "operations measured one after another")
	flag.IntVar(&c.perCaller, "per-caller", 0, "operations per caller in a throughput run; 0 means enough for about 400 in all (at least 4 each)")
	flag.StringVar(&callers, "callers", "4,16,64", "concurrent callers of the throughput runs")
	flag.IntVar(&c.workflows, "workflows", 10000, "Workflows in the loaded namespace of the flatness check")
	flag.IntVar(&c.pods, "pods", 15000, "completed pods in the loaded namespace of the flatness check")
	flag.IntVar(&c.loop, "loop", 100, "iterations of the loop released by one Resume")
	flag.StringVar(&c.plot, "plot", "", "write the latency plot (PNG) here")
	flag.StringVar(&c.out, "out", "", "also write the Markdown table here")
	flag.BoolVar(&c.keep, "keep", false, "keep the run's directory (server binary and logs) and print its path")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "run the empty-namespace server with --profiling and write its CPU profile, taken from the start of the sequential run, here")
	flag.DurationVar(&c.profileFor, "profile-for", 20*time.Second, "length of the -cpuprofile profile")
	flag.StringVar(&c.serverFlags, "server-flags", "", "extra flags for the server, space-separated (default: none, the server's defaults)")
	flag.Parse()
	for _, s := range strings.Split(callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -callers %q: want positive integers\n", callers)
			os.Exit(2)
		}
		c.callers = append(c.callers, n)
	}
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// bench is one run's rig, clients and server binary.
type bench struct {
	cfg    config
	rig    *rig.Rig
	rest   *rest.Config
	kube   kubernetes.Interface
	wf     wfclient.Interface
	dyn    dynamic.Interface
	exec   *release.APIExecutor
	binary string
	dir    string
}

func run(ctx context.Context, c config) error {
	began := time.Now()
	root, err := rig.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "resume-trigger-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if c.keep {
			step("kept " + dir)
			return
		}
		_ = os.RemoveAll(dir) // a temporary directory; nothing to report if it stays
	}()
	step("building the server (go build ./cmd/resume-trigger)")
	bin := filepath.Join(dir, "resume-trigger")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/resume-trigger")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/resume-trigger: %w\n%s", err, out)
	}
	step("starting the control plane")
	r, err := rig.Start(ctx, rig.Options{})
	if err != nil {
		return err
	}
	defer r.Stop()
	// The bench's own clients are not limited client-side: only the server's defaults are under test.
	cfg := r.AdminConfig()
	cfg.QPS = -1
	b := &bench{cfg: c, rig: r, rest: cfg, binary: bin, dir: dir}
	if b.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if b.wf, err = wfclient.NewForConfig(cfg); err != nil {
		return err
	}
	if b.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	if b.exec, err = rig.Executor(cfg); err != nil {
		return err
	}
	res, err := b.measure(ctx)
	if err != nil {
		return err
	}
	res.took = time.Since(began)
	table := res.markdown()
	fmt.Println()
	fmt.Print(table)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if c.plot != "" {
		if err := plotLatency(c.plot, res); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		step("wrote " + c.plot)
	}
	return nil
}

func step(msg string) { fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), msg) }

// results is everything one run measured.
type results struct {
	machine string
	floor   series
	server  series
	// serverCPU is the server's CPU time over every Execute of the empty-namespace server.
	serverCPU time.Duration
	resumes   int
	// peakRSS is the empty-namespace server's VmHWM at the end, after every run.
	peakRSS int64
	// flatness: sequential p50 and VmHWM after the sequential run, empty and loaded namespace.
	emptyP50, loadedP50 time.Duration
	emptyRSS, loadedRSS int64
	loadTook            time.Duration
	loadedObjects       string
	// loop: one Resume releasing loop pods against loop bare execs.
	loop               int
	loopFloor, loopRTR time.Duration
	took               time.Duration
	serverFlags        string
	// calls are the p50 of single API requests a release makes, timed from the bench's own client.
	calls []call
}

type call struct {
	what string
	p50  time.Duration
}

// series is one side's figures.
type series struct {
	seq []time.Duration
	// runs by number of callers: p50 of the calls and operations per second.
	runs map[int]throughput
}

type throughput struct {
	p50     time.Duration
	perSec  float64
	callers int
	// peakRSS is the server's VmHWM right after this run.
	peakRSS int64
}

// rounds is how many alternating batches a comparison is split into, so that the machine's other load
// falls on both sides alike.
const rounds = 10

func (b *bench) measure(ctx context.Context) (*results, error) {
	res := &results{machine: machine(), serverFlags: b.cfg.serverFlags}
	step("setting the scene in namespaces bench and bench-full")
	for _, ns := range []string{"bench", "bench-full"} {
		if err := b.namespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	pod, err := b.scene(ctx, "bench")
	if err != nil {
		return nil, err
	}
	if _, err := b.scene(ctx, "bench-full"); err != nil {
		return nil, err
	}
	loopPods, err := b.loopScene(ctx, "bench", b.cfg.loop)
	if err != nil {
		return nil, err
	}
	step(fmt.Sprintf("loading namespace bench-full with %d Workflows and %d completed pods", b.cfg.workflows, b.cfg.pods))
	start := time.Now()
	if err := b.load(ctx, "bench-full", b.cfg.workflows, b.cfg.pods); err != nil {
		return nil, err
	}
	res.loadTook = time.Since(start)
	res.loadedObjects = fmt.Sprintf("%d Workflows, %d completed pods", b.cfg.workflows, b.cfg.pods)

	srv, err := b.startServer(ctx, "empty", "bench")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	full, err := b.startServer(ctx, "loaded", "bench-full")
	if err != nil {
		return nil, err
	}
	defer full.stop()

	// Warm every path up (connections, TLS, the API server's caches), unmeasured.
	if _, err := b.floorRun(ctx, "bench", pod, 1, 20); err != nil {
		return nil, err
	}
	for _, s := range []*server{srv, full} {
		if _, err := b.serverRun(ctx, s, s.ns, "warm", 20); err != nil {
			return nil, err
		}
	}

	// Flatness: the same sequential Executes on both servers, in alternating batches; then each one's
	// peak RSS, after the same work.
	step(fmt.Sprintf("flatness: %d Executes each on the empty and the loaded namespace, alternating", b.cfg.sequential))
	var empty, loaded []time.Duration
	for i := range rounds {
		lat, err := b.serverRun(ctx, srv, "bench", fmt.Sprintf("flat%d", i), max(1, b.cfg.sequential/rounds))
		if err != nil {
			return nil, err
		}
		empty = append(empty, lat...)
		if lat, err = b.serverRun(ctx, full, "bench-full", fmt.Sprintf("flat%d", i), max(1, b.cfg.sequential/rounds)); err != nil {
			return nil, err
		}
		loaded = append(loaded, lat...)
	}
	res.emptyP50, res.loadedP50 = percentile(empty, 50), percentile(loaded, 50)
	if res.emptyRSS, err = peakRSS(srv.pid()); err != nil {
		return nil, err
	}
	if res.loadedRSS, err = peakRSS(full.pid()); err != nil {
		return nil, err
	}
	full.stop()

	profiled := make(chan error, 1)
	if b.cfg.cpuProfile != "" {
		go func() { profiled <- srv.profile(ctx, b.cfg.cpuProfile, b.cfg.profileFor) }()
	} else {
		profiled <- nil
	}
	defer func() {
		if err := <-profiled; err != nil {
			step("cpu profile: " + err.Error())
		}
	}()
	// measured runs fn on the empty-namespace server and adds its CPU time and resumes to the totals.
	measured := func(fn func() ([]time.Duration, error)) ([]time.Duration, error) {
		cpu0, err := cpuTime(srv.pid())
		if err != nil {
			return nil, err
		}
		lat, err := fn()
		if err != nil {
			return nil, err
		}
		cpu1, err := cpuTime(srv.pid())
		if err != nil {
			return nil, err
		}
		res.serverCPU += cpu1 - cpu0
		res.resumes += len(lat)
		return lat, nil
	}

	step(fmt.Sprintf("sequential: %d bare execs and %d Executes, alternating", b.cfg.sequential, b.cfg.sequential))
	for i := range rounds {
		lat, err := b.floorRun(ctx, "bench", pod, 1, max(1, b.cfg.sequential/rounds))
		if err != nil {
			return nil, err
		}
		res.floor.seq = append(res.floor.seq, lat...)
		if lat, err = measured(func() ([]time.Duration, error) {
			return b.serverRun(ctx, srv, "bench", fmt.Sprintf("seq%d", i), max(1, b.cfg.sequential/rounds))
		}); err != nil {
			return nil, err
		}
		res.server.seq = append(res.server.seq, lat...)
	}

	res.floor.runs, res.server.runs = map[int]throughput{}, map[int]throughput{}
	for _, n := range b.cfg.callers {
		per := b.cfg.perCaller
		if per == 0 {
			per = max(4, 400/n)
		}
		// Two alternating halves each, so both sides meet the same load.
		step(fmt.Sprintf("%d callers: %d bare execs and %d Executes, in two alternating halves", n, n*per, n*per))
		var fl, sl []time.Duration
		var ft, st time.Duration
		for half := range 2 {
			t0 := time.Now()
			lat, err := b.floorRun(ctx, "bench", pod, n, n*per/2)
			if err != nil {
				return nil, err
			}
			ft += time.Since(t0)
			fl = append(fl, lat...)
			var took time.Duration
			if lat, err = measured(func() ([]time.Duration, error) {
				lat, t, err := b.serverRunTimed(ctx, srv, "bench", fmt.Sprintf("c%d-%d", n, half), n, n*per/2)
				took = t
				return lat, err
			}); err != nil {
				return nil, err
			}
			st += took
			sl = append(sl, lat...)
		}
		res.floor.runs[n] = throughput{p50: percentile(fl, 50), perSec: float64(len(fl)) / ft.Seconds(), callers: n}
		rss, err := peakRSS(srv.pid())
		if err != nil {
			return nil, err
		}
		res.server.runs[n] = throughput{p50: percentile(sl, 50), perSec: float64(len(sl)) / st.Seconds(), callers: n, peakRSS: rss}
	}

	step("single API requests of a release, from the bench's client")
	if res.calls, err = b.apiCalls(ctx, "bench", pod, 50); err != nil {
		return nil, err
	}

	step(fmt.Sprintf("loop: %d bare execs one after another, then one Resume releasing %d pods", b.cfg.loop, b.cfg.loop))
	start = time.Now()
	for _, p := range loopPods {
		if err := b.exec.Exec(ctx, "bench", p, container, touch); err != nil {
			return nil, fmt.Errorf("exec into %s: %w", p, err)
		}
	}
	res.loop, res.loopFloor = len(loopPods), time.Since(start)
	if res.loopRTR, err = b.releaseLoop(ctx, srv, "bench", len(loopPods)); err != nil {
		return nil, err
	}
	if res.peakRSS, err = peakRSS(srv.pid()); err != nil {
		return nil, err
	}
	return res, nil
}

// namespace creates ns with its default ServiceAccount (no controller-manager runs).
func (b *bench) namespace(ctx context.Context, ns string) error {
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := b.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	return err
}

// scene creates the original example's Workflow and its paused pod in ns, and returns the pod's name. The
// rig's emissary emulation is off for it, so the same pod can be released again and again.
func (b *bench) scene(ctx context.Context, ns string) (string, error) {
	wf := fixture.HelloWorld(ns)
	return b.runWorkflow(ctx, wf, []wfv1.NodeStatus{wf.Status.Nodes[fixture.HelloNodeID]})
}

// loopScene creates workflow "loop" whose step runs n iterations of template "item", each paused, and
// returns their pods' names.
func (b *bench) loopScene(ctx context.Context, ns string, n int) ([]string, error) {
	group := fixture.Node("loop", "loop[0]", "[0]", wfv1.NodeTypeStepGroup, "")
	var items []wfv1.NodeStatus
	for i := range n {
		item := fixture.PodNode("loop", fmt.Sprintf("loop[0].item(%d:%d)", i, i), fmt.Sprintf("item(%d:%d)", i, i), "item")
		group.Children = append(group.Children, item.ID)
		items = append(items, item)
	}
	wf := fixture.Workflow(ns, "loop", append([]wfv1.NodeStatus{group}, items...)...)
	if _, err := b.runWorkflow(ctx, wf, items); err != nil {
		return nil, err
	}
	var pods []string
	for _, item := range items {
		pods = append(pods, argo.PodName(fixture.Lean(wf), fixture.LeanNode(item)))
	}
	return pods, nil
}

// runWorkflow creates wf and runs the pod of each of nodes, Argo-shaped and controlled by wf, with main
// paused after its command; it returns the first pod's name.
func (b *bench) runWorkflow(ctx context.Context, wf *wfv1.Workflow, nodes []wfv1.NodeStatus) (string, error) {
	wf.UID = ""
	created, err := b.wf.ArgoprojV1alpha1().Workflows(wf.Namespace).Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create workflow %s: %w", wf.Name, err)
	}
	names := make([]string, len(nodes))
	err = parallel(16, len(nodes), func(i int) error {
		names[i] = argo.PodName(fixture.Lean(created), fixture.LeanNode(nodes[i]))
		pod := fixture.Pod(created, nodes[i], names[i], fixture.Container(container, fixture.PauseAfter))
		pod.UID = ""
		fixture.Own(pod, created)
		b.rig.Kubelet().SetEmissary(wf.Namespace, names[i], false)
		_, err := b.rig.RunPod(ctx, pod)
		return err
	})
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// load fills ns with workflows finished Workflows and pods completed pods of them, as a namespace looks
// after a while of use: Argo labels a pod it is done with workflows.argoproj.io/completed=true.
func (b *bench) load(ctx context.Context, ns string, workflows, pods int) error {
	var done atomic.Int64
	progress := func(what string, total int) func() {
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					step(fmt.Sprintf("  %s: %d of %d", what, done.Load(), total))
				}
			}
		}()
		return func() { close(stop); done.Store(0) }
	}
	stop := progress("workflows", workflows)
	err := parallel(32, workflows, func(i int) error {
		name := fmt.Sprintf("done-%05d", i)
		wf := fixture.Workflow(ns, name, fixture.PodNode(name, name+"[0].step", "step", "step"))
		wf.UID = ""
		wf.Status.Phase = wfv1.WorkflowSucceeded
		wf.Labels["workflows.argoproj.io/phase"] = "Succeeded"
		wf.Labels[argo.LabelCompleted] = "true"
		_, err := b.wf.ArgoprojV1alpha1().Workflows(ns).Create(ctx, wf, metav1.CreateOptions{})
		done.Add(1)
		return err
	})
	stop()
	if err != nil {
		return fmt.Errorf("create workflows: %w", err)
	}
	stop = progress("pods", pods)
	err = parallel(32, pods, func(i int) error {
		wfName := fmt.Sprintf("done-%05d", i%max(workflows, 1))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("%s-step-%d", wfName, i),
				Labels:      map[string]string{argo.LabelWorkflow: wfName, argo.LabelCompleted: "true"},
				Annotations: map[string]string{argo.AnnotationNodeID: fmt.Sprintf("%s-%d", wfName, i)},
			},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{fixture.Container("main")},
				Volumes:       []corev1.Volume{{Name: "var-run-argo", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
		_, err := b.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		done.Add(1)
		return err
	})
	stop()
	if err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	return nil
}

// apiCalls times, n times each and one after another, the requests a release makes besides the exec: the
// reads (Resume, Workflow, pod) and the two writes (the Resume's status, an Event), which etcd must commit.
// The Resume and its Events live in a namespace no server serves: a served one would be taken up by a
// server's resync, whose status write races the timed PUTs (a 409 Conflict ended a run).
func (b *bench) apiCalls(ctx context.Context, ns, pod string, n int) ([]call, error) {
	const unserved = "bench-api"
	if err := b.namespace(ctx, unserved); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", unserved, err)
	}
	u, err := b.createResume(ctx, unserved, "api-calls", workflow, template)
	if err != nil {
		return nil, err
	}
	resumes := b.dyn.Resource(v1alpha1.Resource).Namespace(unserved)
	calls := []struct {
		what string
		do   func(i int) error
	}{
		{"GET Resume", func(int) error { _, err := resumes.Get(ctx, u.GetName(), metav1.GetOptions{}); return err }},
		{"GET Workflow", func(int) error {
			_, err := b.wf.ArgoprojV1alpha1().Workflows(ns).Get(ctx, workflow, metav1.GetOptions{})
			return err
		}},
		{"GET pod", func(int) error { _, err := b.kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); return err }},
		{"PUT Resume status", func(i int) error {
			if err := unstructured.SetNestedField(u.Object, fmt.Sprintf("look %d", i), "status", "message"); err != nil {
				return err
			}
			u, err = resumes.UpdateStatus(ctx, u, metav1.UpdateOptions{})
			return err
		}},
		{"POST Event", func(i int) error {
			_, err := b.kube.CoreV1().Events(unserved).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("api-calls.%d", i)},
				InvolvedObject: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Namespace: unserved, Name: u.GetName(), UID: u.GetUID()},
				Reason:         "Bench", Message: "bench", Type: corev1.EventTypeNormal,
			}, metav1.CreateOptions{})
			return err
		}},
	}
	var out []call
	for _, c := range calls {
		lat := make([]time.Duration, n)
		for i := range n {
			start := time.Now()
			if err := c.do(i); err != nil {
				return nil, fmt.Errorf("%s: %w", c.what, err)
			}
			lat[i] = time.Since(start)
		}
		out = append(out, call{what: c.what, p50: percentile(lat, 50)})
	}
	return out, nil
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// floorRun makes total bare execs of the touch into pod with callers at once and returns each one's time.
func (b *bench) floorRun(ctx context.Context, ns, pod string, callers, total int) ([]time.Duration, error) {
	lat := make([]time.Duration, total)
	err := parallel(callers, total, func(i int) error {
		start := time.Now()
		if err := b.exec.Exec(ctx, ns, pod, container, touch); err != nil {
			return fmt.Errorf("bare exec: %w", err)
		}
		lat[i] = time.Since(start)
		return nil
	})
	return lat, err
}

// serverRun is serverRunTimed with one caller, without the wall time.
func (b *bench) serverRun(ctx context.Context, srv *server, ns, tag string, total int) ([]time.Duration, error) {
	lat, _, err := b.serverRunTimed(ctx, srv, ns, tag, 1, total)
	return lat, err
}

// serverRunTimed creates total Resumes of the scene's step (unmeasured), then has callers callers send
// one Execute each, as the Sensor does for a Resume's ADD event, and returns each call's time and the
// wall time of all of them.
func (b *bench) serverRunTimed(ctx context.Context, srv *server, ns, tag string, callers, total int) ([]time.Duration, time.Duration, error) {
	reqs := make([]*triggerpb.ExecuteRequest, total)
	err := parallel(16, total, func(i int) error {
		u, err := b.createResume(ctx, ns, fmt.Sprintf("%s-%s-%d", srv.name, tag, i), workflow, template)
		if err != nil {
			return err
		}
		reqs[i], err = executeRequest(u)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	lat := make([]time.Duration, total)
	start := time.Now()
	err = parallel(callers, total, func(i int) error {
		t0 := time.Now()
		if err := srv.execute(ctx, reqs[i], 1); err != nil {
			return err
		}
		lat[i] = time.Since(t0)
		return nil
	})
	return lat, time.Since(start), err
}

// releaseLoop releases the loop's n pods with one Resume and returns the Execute's time.
func (b *bench) releaseLoop(ctx context.Context, srv *server, ns string, n int) (time.Duration, error) {
	u, err := b.createResume(ctx, ns, "loop", "loop", "item")
	if err != nil {
		return 0, err
	}
	req, err := executeRequest(u)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := srv.execute(ctx, req, n); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (b *bench) createResume(ctx context.Context, ns, name, wf, tmpl string) (*unstructured.Unstructured, error) {
	u, err := b.dyn.Resource(v1alpha1.Resource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.Kind,
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"Workflow-ID": wf, "TemplateName": tmpl},
	}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create resume %s: %w", name, err)
	}
	return u, nil
}

// executeRequest is what the shipped Sensor sends for a Resume's ADD event: the request's keys with the
// parameters applied, and the CloudEvent whose data is the object.
func executeRequest(u *unstructured.Unstructured) (*triggerpb.ExecuteRequest, error) {
	params := map[string]string{}
	for _, k := range request.Keys {
		params[k] = ""
	}
	spec, _, _ := unstructured.NestedStringMap(u.Object, "spec")
	params["namespace"], params["resume"], params["resumeUID"] = u.GetNamespace(), u.GetName(), string(u.GetUID())
	params["workflow"], params["template"] = spec["Workflow-ID"], spec["TemplateName"]
	resource, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(map[string]any{
		"id": string(u.GetUID()), "source": "resume-resource", "specversion": "1.0", "type": "resource",
		"subject": "resumes", "time": time.Now().UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json",
		"data": json.RawMessage(data),
	})
	if err != nil {
		return nil, err
	}
	return &triggerpb.ExecuteRequest{Resource: resource, Payload: payload}, nil
}

// server is the real resume-trigger binary running against the rig.
type server struct {
	name    string
	ns      string
	metrics string
	cmd     *exec.Cmd
	log     string
	conn    *grpc.ClientConn
	client  triggerpb.TriggerClient
	stopped sync.Once
}

func (b *bench) startServer(ctx context.Context, name string, namespaces ...string) (*server, error) {
	grpcPort, err := rig.FreePort(ctx, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	metricsPort, err := rig.FreePort(ctx, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	grpcAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort))
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort))
	args := []string{"--kubeconfig", b.rig.KubeconfigFile(), "--namespaces", strings.Join(namespaces, ","),
		"--grpc-address", grpcAddr, "--metrics-address", metricsAddr}
	args = append(args, strings.Fields(b.cfg.serverFlags)...)
	if b.cfg.cpuProfile != "" && name == "empty" {
		args = append(args, "--profiling")
	}
	s := &server{name: name, ns: namespaces[0], log: filepath.Join(b.dir, "server-"+name+".log"), metrics: metricsAddr}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	// The child holds its own descriptor: ours is closed once it started (or failed to).
	defer func() { _ = logFile.Close() }()
	s.cmd = exec.CommandContext(ctx, b.binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("server %q: pid %d, %s", name, s.cmd.Process.Pid, strings.Join(args[2:], " ")))
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
	}
	if !ready {
		s.stop()
		return nil, fmt.Errorf("server %s not ready within 30s:\n%s", name, rig.Tail(s.log, 20))
	}
	if s.conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		s.stop()
		return nil, err
	}
	s.client = triggerpb.NewTriggerClient(s.conn)
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// profile writes the server's CPU profile over the next d to path.
func (s *server) profile(ctx context.Context, path string, d time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.metrics, int(d.Seconds())), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	step("wrote the server's CPU profile to " + path)
	return f.Close()
}

// execute sends one Execute and checks that it released want containers.
func (s *server) execute(ctx context.Context, req *triggerpb.ExecuteRequest, want int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := s.client.Execute(ctx, req)
	if err != nil {
		return fmt.Errorf("execute: %w\n%s", err, rig.Tail(s.log, 10))
	}
	var out struct {
		Phase    v1alpha1.Phase `json:"phase"`
		Message  string         `json:"message"`
		Released []any          `json:"released"`
	}
	if err := json.Unmarshal(resp.GetResponse(), &out); err != nil {
		return fmt.Errorf("execute answered %s: %w", resp.GetResponse(), err)
	}
	if out.Phase != v1alpha1.PhaseSucceeded || len(out.Released) != want {
		return fmt.Errorf("execute: phase %s, %d released (%s), want Succeeded with %d", out.Phase, len(out.Released), out.Message, want)
	}
	return nil
}

func (s *server) stop() {
	s.stopped.Do(func() {
		if s.conn != nil {
			_ = s.conn.Close()
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	})
}

// cpuTime is the user and system CPU time of process pid so far (fields 14 and 15 of /proc/<pid>/stat, in
// clock ticks of 1/100 s on Linux).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after it.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// peakRSS is the process's peak resident set size (VmHWM of /proc/<pid>/status) in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

// machine describes the machine the run is on: CPUs, model and Go version.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
