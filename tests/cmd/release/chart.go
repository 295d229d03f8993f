package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// chartDir is the Helm chart's folder; a release packages it when it exists.
const chartDir = "charts/resume-trigger"

// chartVersion is the chart's version for a release: the version without its v (SemVer, as Helm wants).
func chartVersion(version string) string { return strings.TrimPrefix(version, "v") }

// chartArchive is the packaged chart's file name, as helm package names it.
func chartArchive(version string) string { return "resume-trigger-" + chartVersion(version) + ".tgz" }

// chart packages chartDir with the release's version and appVersion (the image tag); without the folder
// it says so and packages nothing.
func chart(c config) error {
	dir := filepath.Join(c.root, chartDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("no %s: no chart in this release\n", chartDir)
		return nil
	}
	path, err := packageChart(dir, c.version, c.image, c.out)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", filepath.Base(path))
	return nil
}

// packageChart writes the chart in dir into out as resume-trigger-X.Y.Z.tgz, with version X.Y.Z and
// appVersion vX.Y.Z. The chart must be called resume-trigger and its image.repository must be image:
// the chart takes its image tag from appVersion, so that is the release's own image.
func packageChart(dir, version, image, out string) (string, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return "", fmt.Errorf("load chart %s: %w", dir, err)
	}
	if ch.Name() != "resume-trigger" {
		return "", fmt.Errorf("chart %s is called %q, want resume-trigger", dir, ch.Name())
	}
	if repo := chartImage(ch.Values); repo != image {
		return "", fmt.Errorf("chart %s: values image.repository is %q, but the release pushes %s", dir, repo, image)
	}
	ch.Metadata.Version = chartVersion(version)
	ch.Metadata.AppVersion = version
	path, err := chartutil.Save(ch, out)
	if err != nil {
		return "", fmt.Errorf("package chart %s: %w", dir, err)
	}
	if filepath.Base(path) != chartArchive(version) {
		return "", fmt.Errorf("helm named the chart %s, want %s", filepath.Base(path), chartArchive(version))
	}
	return path, nil
}

// chartImage is values' image.repository, "" when it has none.
func chartImage(values map[string]any) string {
	img, _ := values["image"].(map[string]any)
	repo, _ := img["repository"].(string)
	return repo
}
