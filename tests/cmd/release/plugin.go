package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// platform is an OS and architecture.
type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

// krewPlatforms are the platforms kubectl-resume is released for, each an archive and an entry of the
// krew manifest.
var krewPlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}}

// pluginArchive is the archive's file name for p: a zip for Windows (what its users open), a tar.gz
// elsewhere; krew takes both.
func pluginArchive(p platform) string {
	if p.os == "windows" {
		return "kubectl-resume_" + p.os + "_" + p.arch + ".zip"
	}
	return "kubectl-resume_" + p.os + "_" + p.arch + ".tar.gz"
}

func pluginBinary(p platform) string {
	if p.os == "windows" {
		return "kubectl-resume.exe"
	}
	return "kubectl-resume"
}

// archiveTime is every archive entry's time: archives of the same tree and toolchain are the same bytes.
var archiveTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// plugin builds kubectl-resume for every krew platform, archives each with the LICENSE, and writes the
// krew manifest resume.yaml whose URIs are the release's downloads of these archives.
func plugin(ctx context.Context, c config, work string) error {
	license, err := os.ReadFile(filepath.Join(c.root, "LICENSE"))
	if err != nil {
		return err
	}
	sums := map[platform]string{}
	for _, p := range krewPlatforms {
		dir := filepath.Join(work, "plugin-"+p.os+"-"+p.arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		b := c.binaryFor("cmd/kubectl-resume", p.os, p.arch, dir, pluginBinary(p))
		if err := c.build(ctx, b); err != nil {
			return err
		}
		bin, err := os.ReadFile(b.out)
		if err != nil {
			return err
		}
		files := []archiveFile{{name: pluginBinary(p), mode: 0o755, data: bin}, {name: "LICENSE", mode: 0o644, data: license}}
		var data []byte
		if p.os == "windows" {
			data, err = zipArchive(files)
		} else {
			data, err = tarGzArchive(files)
		}
		if err != nil {
			return err
		}
		name := pluginArchive(p)
		if err := os.WriteFile(filepath.Join(c.out, name), data, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		sums[p] = hex.EncodeToString(sum[:])
		fmt.Printf("%s: %d bytes\n", name, len(data))
	}
	header := "# krew plugin manifest for kubectl-resume " + c.version + ", written by make release: each uri is an\n" +
		"# archive of this release. Install: kubectl krew install --manifest-url=<this file's download URL>\n"
	manifest := krewManifestText(header, c.repo, c.version, func(p platform) string {
		return fmt.Sprintf("uri: %s/%s\n    sha256: %s", downloadBase(c.repo, c.version), pluginArchive(p), sums[p])
	})
	return os.WriteFile(filepath.Join(c.out, krewManifest), []byte(manifest), 0o644)
}

// krewManifest is the krew plugin manifest's file name among the assets.
const krewManifest = "resume.yaml"

// krewTemplateFile is the krew manifest as a template at the repository's root, where krew's release bot
// (krew-release-bot) looks for it: on a release it renders the template for the tag, its addURIAndSha
// downloading each archive for its sha256, and proposes the result to krew-index. A committed manifest
// could never hold a release's sums (the archives stamp the commit that would hold them), so the root has
// the template, and a release checks that it renders to the release's own resume.yaml (verifyKrewTemplate).
const krewTemplateFile = ".krew.yaml"

// krewTemplate is the text of .krew.yaml for the project at repo (make krew-manifest writes it).
func krewTemplate(repo string) string {
	header := "# krew plugin manifest template for krew-release-bot, written by make krew-manifest from the release\n" +
		"# tool's platforms; a release checks that it renders to its own resume.yaml. Do not edit.\n"
	return krewManifestText(header, repo, "{{ .TagName }}", func(p platform) string {
		return fmt.Sprintf(`{{addURIAndSha "%s/%s" .TagName }}`, downloadBase(repo, "{{ .TagName }}"), pluginArchive(p))
	})
}

// krewManifestText is a krew manifest of kubectl-resume: homepage repo, spec.version version and, for each
// platform, what uriAndSha gives: the uri and sha256 lines, the sha256 line indented by four spaces (as
// krew-release-bot's addURIAndSha writes it, so the template and the manifest share this layout).
func krewManifestText(header, repo, version string, uriAndSha func(platform) string) string {
	var b strings.Builder
	b.WriteString(header)
	fmt.Fprintf(&b, `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: resume
spec:
  version: %s
  homepage: %s
  shortDescription: Release debug-paused Argo Workflows steps
  description: |
    Release a step of an Argo Workflow that is debug-paused (ARGO_DEBUG_PAUSE_BEFORE/AFTER) by creating a
    resume-trigger Resume with your own credentials, and follow it with --wait; list the debug-paused
    containers of a namespace or of all; explain why a step would or would not be released. Needs
    resume-trigger installed in the cluster.
  caveats: |
    Needs rights to create and get Resumes, get and list Workflows and list pods in the namespace.
    resume-trigger (the server) must serve the namespace.
  platforms:
`, version, repo)
	for _, p := range krewPlatforms {
		fmt.Fprintf(&b, `  - selector:
      matchLabels:
        os: %s
        arch: %s
    %s
    bin: %s
`, p.os, p.arch, uriAndSha(p), pluginBinary(p))
	}
	return b.String()
}

// archiveFile is one file of an archive.
type archiveFile struct {
	name string
	mode int64
	data []byte
}

func tarGzArchive(files []archiveFile) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: archiveTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func zipArchive(files []archiveFile) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: archiveTime}
		h.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
