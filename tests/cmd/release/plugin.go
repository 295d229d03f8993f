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
	var entries strings.Builder
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
		fmt.Fprintf(&entries, `    - selector:
        matchLabels:
          os: %s
          arch: %s
      uri: %s/%s
      sha256: %s
      bin: %s
`, p.os, p.arch, downloadBase(c.repo, c.version), name, hex.EncodeToString(sum[:]), pluginBinary(p))
		fmt.Printf("%s: %d bytes\n", name, len(data))
	}
	return os.WriteFile(filepath.Join(c.out, krewManifest), []byte(fmt.Sprintf(krewTemplate, c.version, c.version, c.repo, entries.String())), 0o644)
}

// krewManifest is the krew plugin manifest's file name among the assets.
const krewManifest = "resume.yaml"

const krewTemplate = `# krew plugin manifest for kubectl-resume %s, written by make release: each uri is an archive of this
# release. Install: kubectl krew install --manifest-url=<this file's download URL>
apiVersion: krew.googlecontainertools.github.com/v1alpha2
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
%s`

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
