// Command release-manifests renders each shipped install overlay into one install.yaml for a release,
// with the server's image set to that release (make release-manifests VERSION=...):
//
//	dist/<version>/namespace-install/install.yaml
//	dist/<version>/cluster-install/install.yaml
//
// It uses kustomize's Go API, as `kustomize build` would, so no kubectl or kustomize binary is needed.
// The rendered files carry install.yaml's defaults (install namespace argo-resume, serving argo); for other
// namespaces, edit the overlay's install.yaml and build it (docs/install.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/argocontroller/resume-trigger/tests/internal/release"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func main() {
	ver := flag.String("version", "", "release version, e.g. v0.2.0: the image tag and the output folder")
	image := flag.String("image", release.ShippedImage, "image repository the manifests point at")
	out := flag.String("out", "dist", "folder that receives <version>/<overlay>/install.yaml")
	flag.Parse()
	if err := run(*ver, *image, *out); err != nil {
		fmt.Fprintln(os.Stderr, "release-manifests:", err)
		os.Exit(1)
	}
}

func run(ver, image, out string) error {
	if err := release.CheckVersion(ver); err != nil {
		return err
	}
	if err := release.CheckImage(image); err != nil {
		return err
	}
	root, err := rig.RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	for _, overlay := range release.Overlays {
		b, n, err := release.InstallFile(root, overlay, image, ver)
		if err != nil {
			return err
		}
		path := filepath.Join(out, ver, filepath.Base(overlay), "install.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d objects\n", path, n)
	}
	return nil
}
