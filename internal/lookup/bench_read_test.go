package lookup

import (
	"bytes"

	"github.com/argocontroller/resume-trigger/internal/argo"
)

// readNodesForBench is the lookup's read of a Workflow the API server sent: the lean Workflow, then its
// nodes.
func readNodesForBench(data []byte) (int, error) {
	wf, err := argo.DecodeWorkflow(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	nodes, _, err := statusNodes(wf)
	return len(nodes), err
}
