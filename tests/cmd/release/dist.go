package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/template"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/yaml"
)

const checksumFile = "checksums.txt"

// checksums writes checksums.txt: the sha256 of every other file in out, as sha256sum prints them
// (`sha256sum -c checksums.txt` checks a download).
func checksums(out string) error {
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range entries {
		if e.IsDir() || e.Name() == checksumFile {
			continue
		}
		sum, err := fileSum(filepath.Join(out, e.Name()))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, e.Name())
	}
	return os.WriteFile(filepath.Join(out, checksumFile), []byte(b.String()), 0o644)
}

func fileSum(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// verify checks that the release in out holds together: checksums.txt lists every asset with its sum;
// every URI of the krew manifest is an archive of this release (download base, name, sha256) for every
// krew platform; every image the install files and the chart name is image:version, and the image
// tarball's index has the digest written beside it. It returns every problem found.
func verify(out, version, image, download string) error {
	var errs []error
	sums, err := readChecksums(out)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == checksumFile {
			continue
		}
		if e.IsDir() {
			errs = append(errs, fmt.Errorf("%s is a folder: a release uploads files only", e.Name()))
			continue
		}
		got, err := fileSum(filepath.Join(out, e.Name()))
		if err != nil {
			return err
		}
		if want, ok := sums[e.Name()]; !ok {
			errs = append(errs, fmt.Errorf("%s is not in %s", e.Name(), checksumFile))
		} else if got != want {
			errs = append(errs, fmt.Errorf("%s has sha256 %s, %s says %s", e.Name(), got, checksumFile, want))
		}
	}
	for name := range sums {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			errs = append(errs, fmt.Errorf("%s lists %s, which the release does not hold", checksumFile, name))
		}
	}
	errs = append(errs, verifyKrew(out, version, download, sums)...)
	errs = append(errs, verifyImages(out, version, image)...)
	return errors.Join(errs...)
}

func readChecksums(out string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(out, checksumFile))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			return nil, fmt.Errorf("%s: line %q is not <sha256>  <file>", checksumFile, sc.Text())
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// krewPlugin is the part of a krew manifest a release must agree with.
type krewPlugin struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

func verifyKrew(out, version, download string, sums map[string]string) []error {
	data, err := os.ReadFile(filepath.Join(out, krewManifest))
	if err != nil {
		return []error{err}
	}
	var m krewPlugin
	if err := yaml.Unmarshal(data, &m); err != nil {
		return []error{fmt.Errorf("%s: %w", krewManifest, err)}
	}
	var errs []error
	if m.Spec.Version != version {
		errs = append(errs, fmt.Errorf("%s is version %q, the release %s", krewManifest, m.Spec.Version, version))
	}
	var seen []string
	for _, p := range m.Spec.Platforms {
		plat := platform{p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]}
		seen = append(seen, plat.String())
		name, ok := strings.CutPrefix(p.URI, download+"/")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: %s's uri %s is not under this release's downloads %s/", krewManifest, plat, p.URI, download))
		case name != pluginArchive(plat):
			errs = append(errs, fmt.Errorf("%s: %s's uri names %s, want %s", krewManifest, plat, name, pluginArchive(plat)))
		case sums[name] == "":
			errs = append(errs, fmt.Errorf("%s: %s's uri %s is not an asset of this release", krewManifest, plat, p.URI))
		case sums[name] != p.SHA256:
			errs = append(errs, fmt.Errorf("%s: %s's sha256 %s is not that of %s (%s)", krewManifest, plat, p.SHA256, name, sums[name]))
		}
		if p.Bin != pluginBinary(plat) {
			errs = append(errs, fmt.Errorf("%s: %s's bin %q, want %q", krewManifest, plat, p.Bin, pluginBinary(plat)))
		}
	}
	var want []string
	for _, p := range krewPlatforms {
		want = append(want, p.String())
	}
	sort.Strings(seen)
	sort.Strings(want)
	if !slices.Equal(seen, want) {
		errs = append(errs, fmt.Errorf("%s has platforms %v, want %v", krewManifest, seen, want))
	}
	return errs
}

// verifyInstallImages checks that every image the install files name is image:version.
func verifyInstallImages(out, version, image string) []error {
	var errs []error
	want := image + ":" + version
	for _, name := range []string{"namespace-install.yaml", "cluster-install.yaml"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		images, err := imagesIn(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		if len(images) == 0 {
			errs = append(errs, fmt.Errorf("%s names no image", name))
		}
		for _, img := range images {
			if img != want {
				errs = append(errs, fmt.Errorf("%s names image %s, which this release does not produce (it pushes %s)", name, img, want))
			}
		}
	}
	return errs
}

// verifyImages checks every image the install files and the chart name, and the image tarball.
func verifyImages(out, version, image string) []error {
	errs := verifyInstallImages(out, version, image)
	if path := filepath.Join(out, chartArchive(version)); exists(path) {
		ch, err := loader.Load(path)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ch.Metadata.Version != chartVersion(version) || ch.Metadata.AppVersion != version:
			errs = append(errs, fmt.Errorf("%s is version %s, appVersion %s; want %s, %s", filepath.Base(path), ch.Metadata.Version, ch.Metadata.AppVersion, chartVersion(version), version))
		case chartImage(ch.Values) != image:
			errs = append(errs, fmt.Errorf("%s names image repository %s, the release pushes %s", filepath.Base(path), chartImage(ch.Values), image))
		}
	}
	digest, err := os.ReadFile(filepath.Join(out, imageDigest))
	if err != nil {
		return append(errs, err)
	}
	dir, err := os.MkdirTemp("", "release-layout-")
	if err != nil {
		return append(errs, err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	idx, err := readLayout(filepath.Join(out, imageTarball), dir)
	if err != nil {
		return append(errs, err)
	}
	if got, err := idx.Digest(); err != nil || got.String() != strings.TrimSpace(string(digest)) {
		errs = append(errs, fmt.Errorf("%s holds index %s (%v), %s says %s", imageTarball, got, err, imageDigest, strings.TrimSpace(string(digest))))
	}
	return errs
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// imagesIn is every container image a multi-document YAML file names: the value of each "image" key of
// an entry of containers, initContainers or ephemeralContainers anywhere in each object.
func imagesIn(data []byte) ([]string, error) {
	var images []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, err
		}
		walkContainers(obj, false, &images)
	}
	return images, nil
}

func walkContainers(v any, inContainers bool, images *[]string) {
	switch t := v.(type) {
	case map[string]any:
		if inContainers {
			if img, ok := t["image"].(string); ok {
				*images = append(*images, img)
			}
		}
		for k, child := range t {
			walkContainers(child, k == "containers" || k == "initContainers" || k == "ephemeralContainers", images)
		}
	case []any:
		for _, child := range t {
			walkContainers(child, inContainers, images)
		}
	}
}

// verifyKrewTemplate renders the repository's .krew.yaml as krew-release-bot does for the tag version,
// with addURIAndSha answering from this release's checksums instead of downloads, and requires the
// plugin it describes to be the release's own resume.yaml: what the bot proposes to krew-index for this
// tag is then what the release publishes.
func verifyKrewTemplate(root, out, version, download string) error {
	text, err := os.ReadFile(filepath.Join(root, krewTemplateFile))
	if err != nil {
		return fmt.Errorf("%w (make krew-manifest writes it)", err)
	}
	sums, err := readChecksums(out)
	if err != nil {
		return err
	}
	type tag struct{ TagName, Version string }
	data := tag{TagName: version, Version: strings.TrimPrefix(version, "v")}
	var uriErr error
	t, err := template.New(krewTemplateFile).Option("missingkey=error").Funcs(template.FuncMap{
		"addURIAndSha": func(uri, tagName string) string {
			u, err := template.New("uri").Option("missingkey=error").Parse(uri)
			var b strings.Builder
			if err == nil {
				err = u.Execute(&b, tag{TagName: tagName, Version: strings.TrimPrefix(tagName, "v")})
			}
			name, under := strings.CutPrefix(b.String(), download+"/")
			switch {
			case err != nil:
				uriErr = errors.Join(uriErr, fmt.Errorf("uri %q: %w", uri, err))
			case !under:
				uriErr = errors.Join(uriErr, fmt.Errorf("uri %s is not under this release's downloads %s/", b.String(), download))
			case sums[name] == "":
				uriErr = errors.Join(uriErr, fmt.Errorf("uri %s is not an asset of this release", b.String()))
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", b.String(), sums[name])
		},
	}).Parse(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", krewTemplateFile, err)
	}
	var rendered strings.Builder
	if err := t.Execute(&rendered, data); err != nil {
		return fmt.Errorf("%s: %w", krewTemplateFile, err)
	}
	if uriErr != nil {
		return fmt.Errorf("%s rendered for %s: %w", krewTemplateFile, version, uriErr)
	}
	manifest, err := os.ReadFile(filepath.Join(out, krewManifest))
	if err != nil {
		return err
	}
	var got, want any
	if err := yaml.Unmarshal([]byte(rendered.String()), &got); err != nil {
		return fmt.Errorf("%s rendered for %s is no YAML: %w", krewTemplateFile, version, err)
	}
	if err := yaml.Unmarshal(manifest, &want); err != nil {
		return fmt.Errorf("%s: %w", krewManifest, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(want)
		return fmt.Errorf("%s rendered for %s is not the release's %s (make krew-manifest rewrites it):\n%s", krewTemplateFile, version, krewManifest, firstDifference(string(g), string(w)))
	}
	return nil
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: template gives %q, the release has %q", i+1, gl, wl)
		}
	}
	return "(equal text)"
}
