package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image, as the Dockerfile's last stage also builds it (TestDockerfileAgrees): FROM scratch, the
// files of imageRoot, the static binary at imageBinary, run as 65532:65532. No shell, no package
// manager, no CA bundle (the binary carries its roots).
const (
	imageRoot    = "hack/image"
	imageBinary  = "/resume-trigger"
	imageUser    = "65532:65532"
	imageTarball = "resume-trigger-image.oci.tar"
	imageDigest  = "resume-trigger-image.digest"
)

// imagePorts are the ports the Dockerfile EXPOSEs: 9000 gRPC, 8080 metrics and probes.
var imagePorts = []string{"9000/tcp", "8080/tcp"}

// imagePlatforms are the image's platforms, as the release workflow built them with buildx before.
var imagePlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}}

// imageTime is the image's creation time and every file's: the same tree and toolchain give the same
// digest.
var imageTime = time.Unix(0, 0).UTC()

// imageLabels are the OCI annotations the image carries as labels.
func imageLabels(c config) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "resume-trigger",
		"org.opencontainers.image.version":  c.version,
		"org.opencontainers.image.revision": c.commit,
		"org.opencontainers.image.source":   c.repo,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
}

// serverImage builds the server for each image platform and writes the multi-platform image as an OCI
// layout in a tarball, with the index's digest beside it.
func serverImage(ctx context.Context, c config, work string) error {
	bins := map[platform]string{}
	for _, p := range imagePlatforms {
		dir := filepath.Join(work, "server-"+p.os+"-"+p.arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		b := c.binaryFor("cmd/resume-trigger", p.os, p.arch, dir, "resume-trigger")
		if err := c.build(ctx, b); err != nil {
			return err
		}
		bins[p] = b.out
	}
	idx, err := buildImage(filepath.Join(c.root, imageRoot), bins, imageLabels(c))
	if err != nil {
		return err
	}
	digest, err := writeLayout(idx, filepath.Join(work, "layout"), filepath.Join(c.out, imageTarball))
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s\n", imageTarball, digest)
	return os.WriteFile(filepath.Join(c.out, imageDigest), []byte(digest.String()+"\n"), 0o644)
}

// buildImage is one image per platform of bins (the static server binary for it), under one index.
func buildImage(rootfs string, bins map[platform]string, labels map[string]string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	plats := make([]platform, 0, len(bins))
	for p := range bins {
		plats = append(plats, p)
	}
	sort.Slice(plats, func(i, j int) bool { return plats[i].String() < plats[j].String() })
	for _, p := range plats {
		layer, err := imageLayer(rootfs, bins[p])
		if err != nil {
			return nil, err
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: imageTime}, CreatedBy: "make release: " + imageRoot + " and " + imageBinary}}); err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = p.os, p.arch
		cf.Created = v1.Time{Time: imageTime}
		cf.Config.User = imageUser
		cf.Config.Entrypoint = []string{imageBinary}
		cf.Config.WorkingDir = "/"
		cf.Config.Labels = labels
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range imagePorts {
			cf.Config.ExposedPorts[port] = struct{}{}
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.os, Architecture: p.arch}}})
	}
	return idx, nil
}

// imageLayer is the image's one layer: every file under rootfs at its path, and the binary.
func imageLayer(rootfs, binary string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == rootfs {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: imageTime, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
			return tw.WriteHeader(h)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(imageBinary, "/"), Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data)), ModTime: imageTime, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerTar := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil }, tarball.WithMediaType(types.OCILayer))
}

// writeLayout writes idx as the one entry of an OCI layout in dir, tars the layout into file (what
// `crane push <dir> <ref>` pushes once unpacked), and returns the index's digest.
func writeLayout(idx v1.ImageIndex, dir, file string) (v1.Hash, error) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx); err != nil {
		return v1.Hash{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	return digest, tarDir(dir, file)
}

// tarDir writes the files under dir into a tarball at file, sorted, with fixed metadata.
func tarDir(dir, file string) error {
	var paths []string
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != dir {
			paths = append(paths, path)
		}
		return err
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, path := range paths {
		rel, _ := filepath.Rel(dir, path)
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: imageTime, Format: tar.FormatPAX, Mode: 0o644}
		if info.IsDir() {
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// readLayout unpacks an image tarball written by writeLayout into dir and returns its one index.
func readLayout(file, dir string) (v1.ImageIndex, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
			return nil, fmt.Errorf("%s: entry %q leaves the layout", file, h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return nil, err
		}
	}
	l, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := l.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("%s: the layout holds %d entries, want one image index", file, len(m.Manifests))
	}
	return l.ImageIndex(m.Manifests[0].Digest)
}
