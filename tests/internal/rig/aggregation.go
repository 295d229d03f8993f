package rig

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// StartClusterRoleAggregation runs Kubernetes' own ClusterRole aggregation controller against the rig's
// API server, as admin: ClusterRoles labelled rbac.authorization.k8s.io/aggregate-to-edit (and -admin,
// -view) are then folded into edit, admin and view as on a real cluster. The rig runs no
// controller-manager, so without this the API server's default roles never change. The binary is
// kube-controller-manager's controller package at the rig's Kubernetes version (hack/tools.sh
// clusterrole-aggregation). stop ends it; it also ends with the rig.
func (r *Rig) StartClusterRoleAggregation() (stop func(), err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	paths, err := Tools(root, "clusterrole-aggregation")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(paths[0], "--kubeconfig", r.kubeconfig) //nolint:noctx // long-lived: stopped by stop and reaped by the rig's reaper, never by a context
	cmd.Dir = r.dir
	p, err := StartProcess("clusterrole-aggregation", filepath.Join(r.dir, fmt.Sprintf("clusterrole-aggregation-%d.log", time.Now().UnixNano())), cmd)
	if err != nil {
		return nil, err
	}
	if err := r.reaper.Watch(p); err != nil {
		p.Stop(syscall.SIGKILL, 0)
		return nil, err
	}
	return func() { p.Stop(syscall.SIGTERM, 5*time.Second) }, nil
}
