package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

// The image of a release is distroless-like: per platform the static binary as entrypoint, run as
// 65532, the OCI labels, the nonroot user's /etc files and nothing else (no shell); built twice, it is
// the same image.
func TestImage(t *testing.T) {
	root := testRoot(t, "", "")
	c := testConfig(root)
	if err := run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	idx, err := readLayout(filepath.Join(c.out, imageTarball), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			t.Fatalf("index entry %s has no platform", d.Digest)
		}
		p := platform{d.Platform.OS, d.Platform.Architecture}
		plats = append(plats, p.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != p.os || cf.Architecture != p.arch {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/resume-trigger"}) || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: user %q entrypoint %q cmd %q, want 65532:65532 and [/resume-trigger] alone", p, cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  testVersion,
			"org.opencontainers.image.revision": "abc1234",
			"org.opencontainers.image.source":   testRepo,
		} {
			if got := cf.Config.Labels[k]; got != want {
				t.Errorf("%s: label %s = %q, want %q", p, k, got, want)
			}
		}
		if got := slices.Sorted(maps.Keys(cf.Config.ExposedPorts)); !slices.Equal(got, []string{"8080/tcp", "9000/tcp"}) {
			t.Errorf("%s: exposes %v", p, got)
		}
		fs := filesOf(t, img)
		if got := slices.Sorted(maps.Keys(fs)); !slices.Equal(got, []string{"etc", "etc/group", "etc/passwd", "resume-trigger"}) {
			t.Errorf("%s: the image holds %v, want /etc/group, /etc/passwd and /resume-trigger", p, got)
		}
		if _, ok := fs["bin/sh"]; ok {
			t.Errorf("%s: the image has a shell", p)
		}
		bin := fs["resume-trigger"]
		if bin.content != fakeBinary("cmd/resume-trigger", p.os, p.arch, testVersion, "abc1234") || bin.mode&0o111 == 0 {
			t.Errorf("%s: /resume-trigger is %q (mode %o), want that platform's build, executable", p, bin.content, bin.mode)
		}
		if !strings.Contains(fs["etc/passwd"].content, "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd has no nonroot 65532: %q", p, fs["etc/passwd"].content)
		}
	}
	if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("the index holds %v, want linux/amd64 and linux/arm64", plats)
	}

	again := testConfig(root)
	again.out = filepath.Join(root, "again")
	if err := run(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(c.out, imageDigest))
	second, _ := os.ReadFile(filepath.Join(again.out, imageDigest))
	if string(first) != string(second) {
		t.Errorf("the same tree gave images %s and %s", first, second)
	}
}

type imageFile struct {
	content string
	mode    int64
}

// filesOf is the image's flattened filesystem: path → content and mode.
func filesOf(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	out := map[string]imageFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = imageFile{content: string(b), mode: h.Mode}
	}
}

// The Dockerfile's image (make image, for CI) is the same as make release's: FROM scratch, the same
// files, user, entrypoint, ports and label keys, no RUN (a shell would be needed for it).
func TestDockerfileAgrees(t *testing.T) {
	repo, err := rig.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	if last < 0 || lines[last] != "FROM scratch" {
		t.Fatalf("the Dockerfile's last stage is not FROM scratch: %v", lines[max(last, 0):])
	}
	var copies, labels []string
	for _, l := range lines[last+1:] {
		instr, rest, _ := strings.Cut(l, " ")
		switch instr {
		case "ARG":
		case "COPY":
			copies = append(copies, rest)
		case "USER":
			if rest != imageUser {
				t.Errorf("Dockerfile USER %s, make release %s", rest, imageUser)
			}
		case "EXPOSE":
			var ports []string
			for _, p := range strings.Fields(rest) {
				ports = append(ports, p+"/tcp")
			}
			if !slices.Equal(ports, imagePorts) {
				t.Errorf("Dockerfile EXPOSE %v, make release %v", ports, imagePorts)
			}
		case "ENTRYPOINT":
			var ep []string
			if err := json.Unmarshal([]byte(rest), &ep); err != nil || !slices.Equal(ep, []string{imageBinary}) {
				t.Errorf("Dockerfile ENTRYPOINT %s, make release [%s] (exec form)", rest, imageBinary)
			}
		case "LABEL":
			for _, kv := range strings.Fields(rest) {
				k, _, _ := strings.Cut(kv, "=")
				labels = append(labels, k)
			}
		default:
			t.Errorf("the Dockerfile's last stage has %s, which make release's image does not do", l)
		}
	}
	wantCopies := []string{imageRoot + "/ /", "--from=build /out/resume-trigger " + imageBinary}
	if !slices.Equal(copies, wantCopies) {
		t.Errorf("the Dockerfile copies %q, make release %q", copies, wantCopies)
	}
	sort.Strings(labels)
	if want := slices.Sorted(maps.Keys(imageLabels(config{}))); !slices.Equal(labels, want) {
		t.Errorf("Dockerfile labels %v, make release %v", labels, want)
	}
	ignore, err := os.ReadFile(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ignore), "\n!"+imageRoot+"\n") {
		t.Errorf(".dockerignore keeps %s out of the build context, which the Dockerfile copies", imageRoot)
	}
}
