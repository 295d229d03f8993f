package lookup

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkReadWorkflow reads a Workflow's nodes from the JSON the API server sends, the way a lookup
// does, and reports the heap's high-water mark above what was live before (peak-heap-MiB) besides
// -benchmem's totals. Run with -benchtime=3x: one read of the bomb takes seconds on the typed decoder.
func BenchmarkReadWorkflow(b *testing.B) {
	for _, tc := range []struct {
		name string
		wf   func(testing.TB) []byte
	}{
		{"bomb", bombWorkflow},
		{"nodes-1000-plain", func(t testing.TB) []byte { return realWorkflow(t, 1000, false) }},
		{"nodes-1000-compressed", func(t testing.TB) []byte { return realWorkflow(t, 1000, true) }},
		{"nodes-10000-plain", func(t testing.TB) []byte { return realWorkflow(t, 10000, false) }},
		{"nodes-10000-compressed", func(t testing.TB) []byte { return realWorkflow(t, 10000, true) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := tc.wf(b)
			var peak uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				stop := sampleHeap()
				b.StartTimer()
				n, err := readNodesForBench(data)
				b.StopTimer()
				if p := stop(); p > peak {
					peak = p
				}
				b.StartTimer()
				if tc.name != "bomb" && (err != nil || n == 0) {
					b.Fatalf("read %d nodes: %v", n, err)
				}
				if tc.name == "bomb" {
					b.Logf("bomb: %d nodes, %v", n, err)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(len(data))/(1<<10), "object-KiB")
		})
	}
}

var heapObjects = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// sampleHeap samples the bytes of heap objects (live and not yet swept) until the returned function is
// called, which answers the highest sample above the first one.
func sampleHeap() func() uint64 {
	read := func() uint64 {
		s := make([]metrics.Sample, 1)
		copy(s, heapObjects)
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	peak.Store(base)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Microsecond):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		if v := read(); v > peak.Load() {
			peak.Store(v)
		}
		return peak.Load() - base
	}
}

// bombWorkflow is a Workflow whose status.compressedNodes holds one node with an inputs.artifacts list
// of empty objects, just under the 16 MiB decompressed cap: about 21 KiB of base64.
func bombWorkflow(t testing.TB) []byte {
	var inflated bytes.Buffer
	inflated.WriteString(`{"n":{"id":"n","inputs":{"artifacts":[{}`)
	for inflated.Len() < maxNodesSize-16 {
		inflated.WriteString(`,{}`)
	}
	inflated.WriteString(`]}}}`)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(inflated.Bytes())
	_ = zw.Close()
	wf := benchWorkflow("bomb")
	wf.Status.CompressedNodes = base64.StdEncoding.EncodeToString(buf.Bytes())
	data, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func benchWorkflow(name string) *wfv1.Workflow {
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "argo", Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{"workflows.argoproj.io/pod-name-format": "v2"}},
		Spec: wfv1.WorkflowSpec{Entrypoint: "main", Templates: []wfv1.Template{
			{Name: "main", Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{Name: "item", Template: "item", WithParam: "{{workflow.parameters.items}}"}}}}},
			{Name: "item", Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{{Name: "x"}}}, Container: nil, Script: &wfv1.ScriptTemplate{Source: "echo {{inputs.parameters.x}}"}},
		}},
		Status: wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning},
	}
}

// realWorkflow is a loop of n-2 iterations as Argo records it: the root Steps node, its step group and
// one Pod node per item, each with what Argo writes for a finished item (times, inputs, outputs with the
// exit code and the main-logs artifact, resource durations, host). compressed moves the nodes into
// status.compressedNodes.
func realWorkflow(t testing.TB, n int, compressed bool) []byte {
	wf := benchWorkflow(fmt.Sprintf("loop-%d", n))
	nodes := wfv1.Nodes{}
	start := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	root := wfv1.NodeStatus{ID: wf.Name, Name: wf.Name, DisplayName: wf.Name, Type: wfv1.NodeTypeSteps, TemplateName: "main", TemplateScope: "local/" + wf.Name, Phase: wfv1.NodeRunning, StartedAt: start, Progress: "0/1"}
	group := wfv1.NodeStatus{ID: wf.Name + "-1", Name: wf.Name + "[0]", DisplayName: "[0]", Type: wfv1.NodeTypeStepGroup, TemplateScope: "local/" + wf.Name, Phase: wfv1.NodeRunning, BoundaryID: wf.Name, StartedAt: start, Progress: "0/1"}
	root.Children = []string{group.ID}
	exit := "0"
	for i := range n - 2 {
		name := fmt.Sprintf("%s[0].item(%d:item-%d)", wf.Name, i, i)
		id := fmt.Sprintf("%s-%d", wf.Name, 1000000000+i)
		node := wfv1.NodeStatus{
			ID: id, Name: name, DisplayName: fmt.Sprintf("item(%d:item-%d)", i, i), Type: wfv1.NodeTypePod, TemplateName: "item",
			TemplateScope: "local/" + wf.Name, Phase: wfv1.NodeSucceeded, BoundaryID: wf.Name, StartedAt: start, FinishedAt: start,
			Progress: "1/1", ResourcesDuration: wfv1.ResourcesDuration{"cpu": 1, "memory": 3}, HostNodeName: "worker-node-17",
			Inputs:  &wfv1.Inputs{Parameters: []wfv1.Parameter{{Name: "x", Value: wfv1.AnyStringPtr(fmt.Sprintf("item-%d", i))}}},
			Outputs: &wfv1.Outputs{ExitCode: &exit, Artifacts: []wfv1.Artifact{{Name: "main-logs", ArtifactLocation: wfv1.ArtifactLocation{S3: &wfv1.S3Artifact{Key: fmt.Sprintf("%s/%s/main.log", wf.Name, id)}}}}},
		}
		nodes[id] = node
		group.Children = append(group.Children, id)
	}
	nodes[root.ID], nodes[group.ID] = root, group
	if compressed {
		s, err := CompressNodes(nodes)
		if err != nil {
			t.Fatal(err)
		}
		wf.Status.CompressedNodes = s
	} else {
		wf.Status.Nodes = nodes
	}
	data, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
