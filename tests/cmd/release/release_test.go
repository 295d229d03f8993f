package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

const (
	testVersion = "v1.2.3"
	testImage   = "registry.example/team/rt"
	testRepo    = "https://example.com/team/rt"
)

// fakeBuild stands in for go build: the "binary" says what it was built from, so a test can tell which
// platform's build landed where.
func fakeBuild(_ context.Context, b binary) error {
	return os.WriteFile(b.out, []byte(fakeBinary(b.pkg, b.goos, b.goarch, b.version, b.commit)), 0o755)
}

func fakeBinary(pkg, goos, goarch, version, commit string) string {
	return fmt.Sprintf("%s for %s/%s, %s (%s)", pkg, goos, goarch, version, commit)
}

// testRoot is a copy of what a release reads from the repository (manifests, the Argo Events YAML, the
// image's files, LICENSE), with the tiny chart chartYAML/values when chartYAML is not empty.
func testRoot(t *testing.T, chartYAML, values string) string {
	t.Helper()
	repo, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, dir := range []string{"manifests", "eventsource", "sensor", imageRoot} {
		copyTree(t, filepath.Join(repo, dir), filepath.Join(root, dir))
	}
	copyFile(t, filepath.Join(repo, "LICENSE"), filepath.Join(root, "LICENSE"))
	if err := os.WriteFile(filepath.Join(root, krewTemplateFile), []byte(krewTemplate(testRepo)), 0o644); err != nil {
		t.Fatal(err)
	}
	if chartYAML != "" {
		dir := filepath.Join(root, chartDir)
		for name, content := range map[string]string{
			"Chart.yaml":                chartYAML,
			"values.yaml":               values,
			"templates/deployment.yaml": "# {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\n",
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

const tinyChart = "apiVersion: v2\nname: resume-trigger\nversion: 0.0.1\nappVersion: v0.0.1\n"
const tinyValues = "image:\n  repository: " + testImage + "\n  tag: \"\"\n"

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, path, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testConfig(root string) config {
	return config{version: testVersion, commit: "abc1234", image: testImage, repo: testRepo, root: root, out: filepath.Join(root, "dist"), build: fakeBuild}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// The assets of a release, all of them and nothing else, hold together: what the krew manifest, the
// install files and the chart point at is in the folder with the checksum it is listed with.
func TestReleaseAssets(t *testing.T) {
	for name, tc := range map[string]struct {
		chart bool
		exp   []string
	}{
		"with the chart": {chart: true, exp: []string{
			"checksums.txt", "cluster-install.yaml",
			"kubectl-resume_darwin_amd64.tar.gz", "kubectl-resume_darwin_arm64.tar.gz",
			"kubectl-resume_linux_amd64.tar.gz", "kubectl-resume_linux_arm64.tar.gz", "kubectl-resume_windows_amd64.zip",
			"namespace-install.yaml", "resume-trigger-1.2.3.tgz", "resume-trigger-image.digest", "resume-trigger-image.oci.tar", "resume.yaml",
		}},
		"before the chart exists": {exp: []string{
			"checksums.txt", "cluster-install.yaml",
			"kubectl-resume_darwin_amd64.tar.gz", "kubectl-resume_darwin_arm64.tar.gz",
			"kubectl-resume_linux_amd64.tar.gz", "kubectl-resume_linux_arm64.tar.gz", "kubectl-resume_windows_amd64.zip",
			"namespace-install.yaml", "resume-trigger-image.digest", "resume-trigger-image.oci.tar", "resume.yaml",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			root := testRoot(t, map[bool]string{true: tinyChart}[tc.chart], tinyValues)
			c := testConfig(root)
			if err := run(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			if got := files(t, c.out); !slices.Equal(got, tc.exp) {
				t.Errorf("dist holds %v, want %v", got, tc.exp)
			}
			if err := verify(c.out, testVersion, testImage, downloadBase(testRepo, testVersion)); err != nil {
				t.Errorf("verify: %v", err)
			}
			krew, _ := os.ReadFile(filepath.Join(c.out, krewManifest))
			if !strings.Contains(string(krew), "uri: https://example.com/team/rt/releases/download/v1.2.3/kubectl-resume_windows_amd64.zip") {
				t.Errorf("resume.yaml has no Windows zip under the release's downloads:\n%s", krew)
			}
			for _, name := range []string{"namespace-install.yaml", "cluster-install.yaml"} {
				b, _ := os.ReadFile(filepath.Join(c.out, name))
				if !strings.Contains(string(b), "image: "+testImage+":"+testVersion) {
					t.Errorf("%s does not name %s:%s", name, testImage, testVersion)
				}
			}
			if tc.chart {
				ch, err := loader.Load(filepath.Join(c.out, "resume-trigger-1.2.3.tgz"))
				if err != nil {
					t.Fatal(err)
				}
				if ch.Metadata.Version != "1.2.3" || ch.Metadata.AppVersion != testVersion || len(ch.Templates) != 1 {
					t.Errorf("chart version %s appVersion %s, %d templates; want 1.2.3, %s, 1", ch.Metadata.Version, ch.Metadata.AppVersion, len(ch.Templates), testVersion)
				}
			}
			if err := run(t.Context(), c); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Errorf("a second release into the same folder: %v, want refused", err)
			}
		})
	}
}

// Each plugin archive holds that platform's build and the LICENSE, executable where it should be.
func TestPluginArchives(t *testing.T) {
	c := testConfig(testRoot(t, "", ""))
	c.only = "plugin"
	if err := run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for _, p := range krewPlatforms {
		data, err := os.ReadFile(filepath.Join(c.out, pluginArchive(p)))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		modes := map[string]fs.FileMode{}
		if p.os == "windows" {
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range zr.File {
				rc, _ := f.Open()
				b, _ := io.ReadAll(rc)
				got[f.Name], modes[f.Name] = string(b), f.Mode()
			}
		} else {
			gz, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(gz)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(tr)
				got[h.Name], modes[h.Name] = string(b), fs.FileMode(h.Mode)
			}
		}
		bin := pluginBinary(p)
		if want := fakeBinary("cmd/kubectl-resume", p.os, p.arch, testVersion, "abc1234"); got[bin] != want || modes[bin]&0o111 == 0 {
			t.Errorf("%s: %s is %q mode %v, want %q executable", pluginArchive(p), bin, got[bin], modes[bin], want)
		}
		if !strings.Contains(got["LICENSE"], "Apache License") || len(got) != 2 {
			t.Errorf("%s holds %d files, want %s and LICENSE", pluginArchive(p), len(got), bin)
		}
	}
	if got := files(t, c.out); slices.Contains(got, imageTarball) || slices.Contains(got, "namespace-install.yaml") {
		t.Errorf("-only plugin made %v", got)
	}
}

// verify fails a release whose parts point at what it does not hold. Each row breaks one thing in a
// good release (and writes checksums.txt again where the row is not about it).
func TestVerifyRefusesWhatTheReleaseDoesNotProduce(t *testing.T) {
	root := testRoot(t, tinyChart, tinyValues)
	good := testConfig(root)
	if err := run(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	replace := func(file, old, new string) func(string) error {
		return func(dir string) error {
			path := filepath.Join(dir, file)
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !bytes.Contains(b, []byte(old)) {
				return fmt.Errorf("%s has no %q", file, old)
			}
			return os.WriteFile(path, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644)
		}
	}
	for name, tc := range map[string]struct {
		breakIt  func(dir string) error
		keepSums bool
		exp      string
	}{
		"an archive the krew manifest names is missing": {
			breakIt: func(dir string) error { return os.Remove(filepath.Join(dir, "kubectl-resume_darwin_arm64.tar.gz")) },
			exp:     "kubectl-resume_darwin_arm64.tar.gz is not an asset of this release",
		},
		"a krew uri of another release": {
			breakIt: replace(krewManifest, "/download/v1.2.3/kubectl-resume_linux_arm64", "/download/v1.2.2/kubectl-resume_linux_arm64"),
			exp:     "is not under this release's downloads",
		},
		"a krew sha256 that is not the archive's": {
			breakIt: func(dir string) error {
				return os.WriteFile(filepath.Join(dir, "kubectl-resume_linux_amd64.tar.gz"), []byte("other"), 0o644)
			},
			exp: "linux/amd64's sha256",
		},
		"a platform missing from the krew manifest": {
			breakIt: replace(krewManifest, "os: darwin", "os: plan9"),
			exp:     "has platforms",
		},
		"an install file names an image of another version": {
			breakIt: replace("cluster-install.yaml", testImage+":"+testVersion, testImage+":v1.2.2"),
			exp:     "cluster-install.yaml names image registry.example/team/rt:v1.2.2, which this release does not produce",
		},
		"an install file names an image of another repository": {
			breakIt: replace("namespace-install.yaml", testImage+":"+testVersion, "busybox:1.37.0"),
			exp:     "namespace-install.yaml names image busybox:1.37.0",
		},
		"the digest is not the image's": {
			breakIt: func(dir string) error {
				return os.WriteFile(filepath.Join(dir, imageDigest), []byte("sha256:"+strings.Repeat("0", 64)+"\n"), 0o644)
			},
			exp: "resume-trigger-image.digest says sha256:000",
		},
		"a file the checksums do not list": {
			breakIt:  func(dir string) error { return os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644) },
			keepSums: true,
			exp:      "notes.txt is not in checksums.txt",
		},
		"a file changed after its checksum": {
			breakIt:  replace("cluster-install.yaml", "kind: Deployment", "kind: Deployment "),
			keepSums: true,
			exp:      "cluster-install.yaml has sha256",
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, good.out, dir)
			if err := tc.breakIt(dir); err != nil {
				t.Fatal(err)
			}
			if !tc.keepSums {
				if err := checksums(dir); err != nil {
					t.Fatal(err)
				}
			}
			err := verify(dir, testVersion, testImage, downloadBase(testRepo, testVersion))
			if err == nil || !strings.Contains(err.Error(), tc.exp) {
				t.Errorf("verify: %v, want %q", err, tc.exp)
			}
		})
	}
}

func TestRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*config)
		values string
		exp    string
	}{
		"an untagged version":            {change: func(c *config) { c.version = "v1.2.3-4-gabc1234" }, exp: "untagged"},
		"latest":                         {change: func(c *config) { c.version = "latest" }, exp: "not a release version"},
		"an image with a tag":            {change: func(c *config) { c.image = testImage + ":latest" }, exp: "repository only"},
		"no commit":                      {change: func(c *config) { c.commit = "" }, exp: "-commit is required"},
		"a chart naming another image":   {values: "image:\n  repository: ghcr.io/someone/else\n", exp: `values image.repository is "ghcr.io/someone/else"`},
		"an unknown part":                {change: func(c *config) { c.only = "image" }, exp: "want plugin or install"},
		"a chart without image settings": {values: "replicas: 1\n", exp: `values image.repository is ""`},
	} {
		t.Run(name, func(t *testing.T) {
			values := tinyValues
			if tc.values != "" {
				values = tc.values
			}
			c := testConfig(testRoot(t, tinyChart, values))
			if tc.change != nil {
				tc.change(&c)
			}
			err := run(t.Context(), c)
			if err == nil || !strings.Contains(err.Error(), tc.exp) {
				t.Errorf("run: %v, want %q", err, tc.exp)
			}
		})
	}
}

// The repository's own chart packages for a release: named resume-trigger, its image the one the
// release pushes, version and appVersion set from the release.
func TestRepositoryChartPackages(t *testing.T) {
	repo, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path, err := packageChart(filepath.Join(repo, chartDir), testVersion, "ghcr.io/argocontroller/resume-trigger", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "resume-trigger-1.2.3.tgz" || ch.Metadata.Version != "1.2.3" || ch.Metadata.AppVersion != testVersion || ch.Schema == nil {
		t.Errorf("packaged %s: version %s appVersion %s, schema %v", filepath.Base(path), ch.Metadata.Version, ch.Metadata.AppVersion, ch.Schema != nil)
	}
}

// The repository's .krew.yaml is the template the release tool writes for the project's address
// (make krew-manifest): a platform added to the release tool is one krew-release-bot proposes too.
func TestKrewTemplateIsCurrent(t *testing.T) {
	repo, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repo, krewTemplateFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := krewTemplate("https://github.com/argocontroller/resume-trigger"); string(got) != want {
		t.Errorf("%s is not what make krew-manifest writes; run it. Want:\n%s", krewTemplateFile, want)
	}
}

// A release refuses a .krew.yaml that krew-release-bot would render into another manifest than the
// release's resume.yaml: what the bot proposes to krew-index must be what the release publishes.
func TestReleaseRefusesAKrewTemplateThatDisagrees(t *testing.T) {
	template := krewTemplate(testRepo)
	for name, tc := range map[string]struct {
		krew string
		exp  string
	}{
		"no template": {exp: "make krew-manifest writes it"},
		"a platform fewer": {
			krew: strings.Replace(template, "os: darwin\n        arch: arm64", "os: darwin\n        arch: amd64", 1),
			exp:  "is not the release's resume.yaml",
		},
		"an archive the release does not make": {
			krew: strings.Replace(template, "kubectl-resume_windows_amd64.zip", "kubectl-resume_windows_amd64.tar.gz", 1),
			exp:  "kubectl-resume_windows_amd64.tar.gz is not an asset of this release",
		},
		"a fixed version": {
			krew: strings.Replace(template, "version: {{ .TagName }}", "version: v0.1.0", 1),
			exp:  "is not the release's resume.yaml",
		},
		"another project's downloads": {
			krew: krewTemplate("https://example.com/someone/else"),
			exp:  "is not under this release's downloads",
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := testRoot(t, tinyChart, tinyValues)
			path := filepath.Join(root, krewTemplateFile)
			if tc.krew == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, []byte(tc.krew), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, only := range []string{"", "plugin"} {
				c := testConfig(root)
				c.only, c.out = only, filepath.Join(t.TempDir(), "dist")
				err := run(t.Context(), c)
				if err == nil || !strings.Contains(err.Error(), tc.exp) {
					t.Errorf("release (-only %q): %v, want %q", only, err, tc.exp)
				}
			}
		})
	}
}

// -only install renders one install file per overlay pointing at the release's image, as the release
// names them, and nothing else; it needs no commit (nothing is built).
func TestOnlyInstallFiles(t *testing.T) {
	c := testConfig(testRoot(t, "", ""))
	c.only, c.commit = "install", ""
	if err := run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, c.out), []string{"checksums.txt", "cluster-install.yaml", "namespace-install.yaml"}; !slices.Equal(got, want) {
		t.Errorf("-only install made %v, want %v", got, want)
	}
	for _, name := range []string{"namespace-install.yaml", "cluster-install.yaml"} {
		b, err := os.ReadFile(filepath.Join(c.out, name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "image: "+testImage+":"+testVersion) || strings.Contains(s, "ghcr.io/argocontroller/resume-trigger") {
			t.Errorf("%s does not point at %s:%s only", name, testImage, testVersion)
		}
		for _, kind := range []string{"kind: CustomResourceDefinition", "kind: Deployment", "kind: Sensor", "kind: NetworkPolicy", "name: resume-trigger-edit"} {
			if !strings.Contains(s, kind) {
				t.Errorf("%s lacks %q", name, kind)
			}
		}
	}
}
