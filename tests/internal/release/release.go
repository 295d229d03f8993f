package release

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// ShippedImage is the image repository the manifests and the chart name.
const ShippedImage = "ghcr.io/argocontroller/resume-trigger"

// version is what a release may be called: a tag (v1.2.3, v1.2.3-rc.1), never "latest".
var version = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?$`)

// untagged matches what git describe says of a commit that is not a tag (v1.2.3-4-gabc1234) or of a
// checkout with changes (-dirty): no image of that name is ever published.
var untagged = regexp.MustCompile(`(-[0-9]+-g[0-9a-f]{4,}|-dirty)($|[-.+])`)

// CheckVersion refuses what is not a release's tag.
func CheckVersion(ver string) error {
	if !version.MatchString(ver) {
		return fmt.Errorf("version %q is not a release version like v0.2.0 (set VERSION=...)", ver)
	}
	if untagged.MatchString(ver) {
		return fmt.Errorf("version %q is git describe of an untagged or changed checkout, not a release: tag the commit, or set VERSION to the release's tag", ver)
	}
	return nil
}

// CheckImage refuses an image repository that carries a tag or digest: the tag is the version.
func CheckImage(image string) error {
	if image == "" || strings.Contains(image, "@") || strings.Contains(image[strings.LastIndex(image, "/")+1:], ":") {
		return fmt.Errorf("image %q: give the repository only; the tag is the version", image)
	}
	return nil
}

// Overlays are the kustomize overlays a release renders, one install file each, named after the overlay.
var Overlays = []string{rig.NamespaceInstallDir, rig.ClusterInstallDir}

// InstallFile renders overlay (a path under the repository root) with the server's image set to
// image:ver, as one multi-document YAML file, and the number of objects in it.
func InstallFile(root, overlay, image, ver string) ([]byte, int, error) {
	objs, err := rig.RenderImage(root, overlay, ShippedImage, image, ver)
	if err != nil {
		return nil, 0, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# resume-trigger %s: %s rendered with kustomize (make release).\n", ver, overlay)
	fmt.Fprintf(&b, "# Install namespace and served namespaces are the overlay's defaults; see docs/install.md to change them.\n")
	for _, u := range objs {
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, 0, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	if bytes.Contains(b.Bytes(), []byte(":latest")) {
		return nil, 0, errors.New(overlay + " still names an image :latest")
	}
	if !bytes.Contains(b.Bytes(), []byte(image+":"+ver)) {
		return nil, 0, fmt.Errorf("%s does not name %s:%s", overlay, image, ver)
	}
	return b.Bytes(), len(objs), nil
}
