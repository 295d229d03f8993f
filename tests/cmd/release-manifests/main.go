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
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// shippedImage is the image name the manifests use.
const shippedImage = "ghcr.io/argocontroller/resume-trigger"

// version is what a release may be called: a tag (v1.2.3, v1.2.3-rc.1), never "latest".
var version = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?$`)

// untagged matches what git describe says of a commit that is not a tag (v1.2.3-4-gabc1234) or of a
// checkout with changes (-dirty): no image of that name is ever published.
var untagged = regexp.MustCompile(`(-[0-9]+-g[0-9a-f]{4,}|-dirty)($|[-.+])`)

func main() {
	ver := flag.String("version", "", "release version, e.g. v0.2.0: the image tag and the output folder")
	image := flag.String("image", shippedImage, "image repository the manifests point at")
	out := flag.String("out", "dist", "folder that receives <version>/<overlay>/install.yaml")
	flag.Parse()
	if err := run(*ver, *image, *out); err != nil {
		fmt.Fprintln(os.Stderr, "release-manifests:", err)
		os.Exit(1)
	}
}

func run(ver, image, out string) error {
	if !version.MatchString(ver) {
		return fmt.Errorf("version %q is not a release version like v0.2.0 (set VERSION=...)", ver)
	}
	if untagged.MatchString(ver) {
		return fmt.Errorf("version %q is git describe of an untagged or changed checkout, not a release: tag the commit, or set VERSION to the release's tag", ver)
	}
	if strings.Contains(image, ":") || strings.Contains(image, "@") {
		return fmt.Errorf("image %q: give the repository only; the tag is the version", image)
	}
	root, err := rig.RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	for _, overlay := range []string{rig.NamespaceInstallDir, rig.ClusterInstallDir} {
		objs, err := rig.RenderImage(root, overlay, shippedImage, image, ver)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# resume-trigger %s: %s rendered with kustomize (make release-manifests).\n", ver, overlay)
		fmt.Fprintf(&b, "# Install namespace and served namespaces are the overlay's defaults; see docs/install.md to change them.\n")
		for _, u := range objs {
			y, err := yaml.Marshal(u.Object)
			if err != nil {
				return err
			}
			b.WriteString("---\n")
			b.Write(y)
		}
		if bytes.Contains(b.Bytes(), []byte(":latest")) {
			return errors.New(overlay + " still names an image :latest")
		}
		if !bytes.Contains(b.Bytes(), []byte(image+":"+ver)) {
			return fmt.Errorf("%s does not name %s:%s", overlay, image, ver)
		}
		path := filepath.Join(out, ver, filepath.Base(overlay), "install.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d objects\n", path, len(objs))
	}
	return nil
}
