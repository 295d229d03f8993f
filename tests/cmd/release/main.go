// Command release makes a release's assets into one folder (make release VERSION=vX.Y.Z → dist/), all
// without Docker: the server's image as an OCI layout (linux/amd64 and linux/arm64, built with
// go-containerregistry from the static binaries) and its digest, kubectl-resume's archive for every krew
// platform and the krew manifest resume.yaml pointing at them, the Helm chart packaged (when
// charts/resume-trigger exists), one install file per kustomize overlay, and checksums.txt. Before it
// ends it checks that every URI of the krew manifest and every image of the install files and the chart
// is something this release produced, and that the repository's .krew.yaml (the template krew's release
// bot renders) renders to the release's resume.yaml; .github/workflows/release.yaml uploads the folder as
// it is and pushes the image layout.
//
// Parts: -only plugin makes the archives and resume.yaml (make krew-manifest), -only install the install
// files alone (make release-manifests); -krew-template writes .krew.yaml and nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/argocontroller/resume-trigger/tests/internal/release"
	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// config is one release.
type config struct {
	version string
	commit  string
	image   string
	// repo is the project's web address: the image's source label, and the base of the download URIs.
	repo string
	out  string
	root string
	// only limits the release to one part ("plugin": the archives and the krew manifest; "install": the
	// install files).
	only string
	// krewTemplate writes .krew.yaml at root for repo, and nothing else.
	krewTemplate bool
	build        builder
}

// binary is one Go program to build for one platform.
type binary struct {
	root, pkg       string // the module's root, the package's path under it
	goos, goarch    string
	version, commit string
	out             string
}

// builder builds b; goBuild is the real one, tests use a stand-in that writes a few bytes.
type builder func(ctx context.Context, b binary) error

func main() {
	c := config{build: goBuild}
	flag.StringVar(&c.version, "version", "", "release version, e.g. v0.2.0: the image tag, the chart's appVersion, the download path")
	flag.StringVar(&c.commit, "commit", "", "commit the release is built from (stamped into the binaries, the image's revision label)")
	flag.StringVar(&c.image, "image", release.ShippedImage, "image repository the release pushes to and the manifests name")
	flag.StringVar(&c.repo, "repo", "https://github.com/argocontroller/resume-trigger", "project address: GitHub release downloads are under <repo>/releases/download/<version>/")
	flag.StringVar(&c.out, "out", "dist", "folder that receives the assets; must not exist or be empty")
	flag.StringVar(&c.only, "only", "", `"plugin": build only the plugin's archives and resume.yaml; "install": render only the install files`)
	flag.BoolVar(&c.krewTemplate, "krew-template", false, "write .krew.yaml, the krew manifest template for krew-release-bot, at the repository root for -repo, and nothing else")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.root == "" {
		root, err := rig.RepoRoot()
		if err != nil {
			return err
		}
		c.root = root
	}
	if c.krewTemplate {
		path := filepath.Join(c.root, krewTemplateFile)
		if err := os.WriteFile(path, []byte(krewTemplate(c.repo)), 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: krew manifest template for %s\n", path, c.repo)
		return nil
	}
	if err := release.CheckVersion(c.version); err != nil {
		return err
	}
	if err := release.CheckImage(c.image); err != nil {
		return err
	}
	if c.only != "" && c.only != "plugin" && c.only != "install" {
		return fmt.Errorf("-only %q: want plugin or install", c.only)
	}
	if c.commit == "" && c.only != "install" {
		return errors.New("-commit is required: it is stamped into the binaries and labels the image")
	}
	if !filepath.IsAbs(c.out) {
		c.out = filepath.Join(c.root, c.out)
	}
	// A folder holding only this release's assets is what the workflow uploads, as it is.
	if entries, err := os.ReadDir(c.out); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: remove it first (make release does)", c.out)
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "release-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	download := downloadBase(c.repo, c.version)

	if c.only != "install" {
		if err := plugin(ctx, c, work); err != nil {
			return err
		}
	}
	if c.only == "plugin" {
		if err := checksums(c.out); err != nil {
			return err
		}
		return verifyKrewTemplate(c.root, c.out, c.version, download)
	}
	if c.only == "" {
		if err := serverImage(ctx, c, work); err != nil {
			return err
		}
		if err := chart(c); err != nil {
			return err
		}
	}
	if err := installFiles(c); err != nil {
		return err
	}
	if err := checksums(c.out); err != nil {
		return err
	}
	if c.only == "install" {
		return errors.Join(verifyInstallImages(c.out, c.version, c.image)...)
	}
	if err := errors.Join(verify(c.out, c.version, c.image, download), verifyKrewTemplate(c.root, c.out, c.version, download)); err != nil {
		return fmt.Errorf("the release in %s does not hold together: %w", c.out, err)
	}
	fmt.Printf("release %s in %s\n", c.version, c.out)
	return nil
}

// installFiles renders one install file per kustomize overlay, its image set to the release's.
func installFiles(c config) error {
	for _, overlay := range release.Overlays {
		b, n, err := release.InstallFile(c.root, overlay, c.image, c.version)
		if err != nil {
			return err
		}
		name := filepath.Base(overlay) + ".yaml"
		if err := os.WriteFile(filepath.Join(c.out, name), b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d objects\n", name, n)
	}
	return nil
}

// downloadBase is where a GitHub release's assets are downloaded from.
func downloadBase(repo, version string) string {
	return strings.TrimSuffix(repo, "/") + "/releases/download/" + version
}

// goBuild is the build the Makefile and the Dockerfile do: static, trimmed, the version stamped in.
func goBuild(ctx context.Context, b binary) error {
	ldflags := "-s -w -X github.com/argocontroller/resume-trigger/internal/version.Version=" + b.version +
		" -X github.com/argocontroller/resume-trigger/internal/version.Commit=" + b.commit
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", b.out, "./"+b.pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+b.goos, "GOARCH="+b.goarch)
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", b.pkg, b.goos, b.goarch, err, out)
	}
	return nil
}

// binaryFor is pkg built for goos/goarch into dir, named name.
func (c config) binaryFor(pkg, goos, goarch, dir, name string) binary {
	return binary{root: c.root, pkg: pkg, goos: goos, goarch: goarch, version: c.version, commit: c.commit, out: filepath.Join(dir, name)}
}
