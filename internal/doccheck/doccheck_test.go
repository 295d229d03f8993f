package doccheck

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/argocontroller/resume-trigger/cmd/resume-trigger/app"
	"github.com/argocontroller/resume-trigger/internal/plugin"
)

// pending are things the docs name that another branch brings (the Helm chart, the release pipeline).
// Until they exist they are not reported; once they exist, the test fails until they are removed from
// here, so that the list never hides a real mistake for long.
var pending = map[string]string{}

// serverFlags are resume-trigger's flags, as main registers them.
func serverFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("resume-trigger", flag.ContinueOnError)
	app.NewOptions().AddFlags(fs)
	// main adds --version itself.
	fs.Bool("version", false, "")
	return fs
}

// pluginCommand is kubectl-resume's command tree.
func pluginCommand() *cobra.Command {
	return plugin.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
}

// pluginSub is the subcommand of the plugin that args run: the first argument that names one, else the
// root (whose argument is a workflow).
func pluginSub(root *cobra.Command, args []string) *cobra.Command {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, c := range root.Commands() {
			if c.Name() == a {
				return c
			}
		}
		if a == "completion" || a == "help" || a == "__complete" {
			return nil // cobra's own, added when the plugin runs
		}
	}
	return root
}

// pluginHas reports whether cmd (or its root's persistent flags) has the flag.
func pluginHas(root, cmd *cobra.Command, name string, short bool) bool {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), root.PersistentFlags()} {
		if short && len(name) == 1 && fs.ShorthandLookup(name) != nil {
			return true
		}
		if !short && fs.Lookup(name) != nil {
			return true
		}
	}
	return name == "help" || (short && name == "h")
}

// Every flag the docs show belongs to the binary the text names: in a command line the command's (the
// server, or the plugin's subcommand), in a span that starts with a flag the server's, or the plugin's
// in its page and under headings that name it. Other tools' flags (kubectl, helm, go) are not judged.
func TestDocumentedFlagsExist(t *testing.T) {
	sfs := serverFlags()
	root := pluginCommand()
	for _, d := range readDocs(t) {
		for _, u := range d.units {
			for _, seg := range segments(u.text) {
				cmd := commandOf(seg)
				bin := u.bareBin
				switch cmd.name {
				case "":
				case "resume-trigger":
					bin = serverBin
				case "kubectl-resume":
					bin = pluginBin
				default:
					continue
				}
				sub := root
				if bin == pluginBin {
					if sub = pluginSub(root, cmd.args); sub == nil {
						continue
					}
				}
				for _, w := range cmd.args {
					name, single, ok := flagName(w)
					if !ok {
						continue
					}
					switch bin {
					case serverBin:
						if sfs.Lookup(name) == nil {
							t.Errorf("%s:%d: `%s`: resume-trigger has no flag %q", d.path, u.line, u.text, name)
						}
					case pluginBin:
						if !pluginHas(root, sub, name, single) {
							t.Errorf("%s:%d: `%s`: %q has no flag %s", d.path, u.line, u.text, sub.CommandPath(), w)
						}
					}
				}
			}
		}
	}
}

var targetRE = regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+):([^=]|$)`)

// Every `make X` the docs show is a target of the Makefile.
func TestDocumentedMakeTargetsExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range targetRE.FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	for _, d := range readDocs(t) {
		for _, u := range d.units {
			for _, seg := range segments(u.text) {
				cmd := commandOf(seg)
				if cmd.name != "make" {
					continue
				}
				for _, a := range cmd.args {
					if strings.HasPrefix(a, "-") || strings.Contains(a, "=") || a == "…" {
						continue
					}
					if !targets[a] {
						t.Errorf("%s:%d: `%s`: the Makefile has no target %q", d.path, u.line, u.text, a)
					}
				}
			}
		}
	}
}

// pathWordRE is a word that may be a repository path: a relative path with at least one slash.
var pathWordRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.@-]*)+$`)

// generated are top-level folders made by builds, named in the docs but not in the repository.
var generated = map[string]bool{"bin": true, "dist": true}

// Every repository path the docs name in code exists. A word is taken for a path when its first element
// is an entry of the repository's root; placeholders (<os>, *) are not judged.
func TestDocumentedPathsExist(t *testing.T) {
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	top := map[string]bool{"charts": true}
	for _, e := range entries {
		top[e.Name()] = true
	}
	for _, d := range readDocs(t) {
		for _, u := range d.units {
			for _, seg := range segments(u.text) {
				for _, w := range seg {
					if i := strings.LastIndex(w, "="); i >= 0 {
						w = w[i+1:] // --flag=path, KEY=path
					}
					w = strings.TrimRight(w, ".,:")
					if !pathWordRE.MatchString(w) {
						continue
					}
					first, _, _ := strings.Cut(w, "/")
					if !top[first] || generated[first] {
						continue
					}
					p := strings.TrimSuffix(w, "/")
					if exists(p) {
						if _, ok := pending[p]; ok {
							t.Errorf("%s exists now: remove it from pending", p)
						}
						continue
					}
					if _, ok := pending[p]; !ok {
						t.Errorf("%s:%d: `%s`: no such path %s in the repository", d.path, u.line, u.text, p)
					}
				}
			}
		}
	}
}

func exists(rel string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	return err == nil
}

// metricInfo is one metric the server registers: its name and variable labels.
type metricInfo struct {
	name   string
	labels []string
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// servedMetrics are the metrics of the registry the server builds, with every optional collector on.
func servedMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	opts := app.NewOptions()
	opts.Server.Namespaces = "argo"
	opts.Server.GRPCAddress, opts.Metrics.Address = "127.0.0.1:0", "127.0.0.1:0"
	opts.Metrics.Paused = true
	opts.Revisits.Enabled = false
	completed, err := opts.Complete()
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	// Nothing listens there: building the server contacts no API server.
	a, err := app.NewWithConfig(t.Context(), completed, &rest.Config{Host: "https://127.0.0.1:1"}, log)
	if err != nil {
		t.Fatal(err)
	}
	// Run with an ended context shuts the server down at once and closes its listeners.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc)
	go func() { a.Registry().Describe(ch); close(ch) }()
	out := map[string]metricInfo{}
	for desc := range ch {
		m := descRE.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read %s", desc)
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		sort.Strings(labels)
		out[m[1]] = metricInfo{name: m[1], labels: labels}
	}
	if len(out) == 0 {
		t.Fatal("the server's registry describes no metric")
	}
	return out
}

var metricRE = regexp.MustCompile(`\bresume_trigger_[a-z0-9_]*[a-z0-9]`)

// Every resume_trigger_* name in the docs is served (a histogram's _bucket, _sum and _count too).
func TestDocumentedMetricsAreServed(t *testing.T) {
	served := servedMetrics(t)
	for _, d := range readDocs(t) {
		for i, line := range d.lines {
			for _, name := range metricRE.FindAllString(line, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok {
						if _, ok := served[b]; ok {
							base = b
						}
					}
				}
				if _, ok := served[base]; !ok {
					if _, ok := pending[base]; !ok {
						t.Errorf("%s:%d: the server serves no metric %s", d.path, i+1, name)
					}
				} else if _, ok := pending[base]; ok {
					t.Errorf("%s is served now: remove it from pending", base)
				}
			}
		}
	}
}

// tableRows returns the rows of the first table after the heading (its first two lines, header and
// rule, left out), as cells.
func tableRows(t *testing.T, d *doc, heading string) [][]string {
	t.Helper()
	start := -1
	for i, l := range d.lines {
		if strings.TrimSpace(l) == heading {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s has no heading %q", d.path, heading)
	}
	var rows [][]string
	header := 0
	for _, l := range d.lines[start+1:] {
		if strings.HasPrefix(l, "#") {
			break
		}
		if !strings.HasPrefix(l, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		if header < 2 {
			header++
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table under %q", d.path, heading)
	}
	return rows
}

// spans returns the code spans of a table cell.
func spans(cell string) []string {
	var out []string
	for _, m := range spanRE.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// sameDefault compares a documented default with a flag's: durations by value ("1m" is "1m0s").
func sameDefault(doc, def string) bool {
	if doc == def {
		return true
	}
	a, err1 := time.ParseDuration(doc)
	b, err2 := time.ParseDuration(def)
	return err1 == nil && err2 == nil && a == b
}

// checkFlagTable holds a table whose rows are a flag (first cell), its default (second cell: a span, or
// nothing for an empty default) and what it does, to the flags it documents: every flag of want has a
// row, and every row's default is the flag's.
func checkFlagTable(t *testing.T, d *doc, heading string, lookup func(string) *pflag.Flag, want []string) {
	t.Helper()
	rows := tableRows(t, d, heading)
	listed := map[string]bool{}
	for _, r := range rows {
		if len(r) < 3 {
			t.Errorf("%s %q: row %q has fewer than 3 cells", d.path, heading, strings.Join(r, "|"))
			continue
		}
		var names []string
		for _, s := range spans(r[0]) {
			if name, short, ok := flagName(s); ok && !short {
				names = append(names, name)
			}
		}
		if len(names) != 1 {
			t.Errorf("%s %q: row %q: want one --flag in the first cell", d.path, heading, strings.TrimSpace(r[0]))
			continue
		}
		name := names[0]
		listed[name] = true
		f := lookup(name)
		if f == nil {
			t.Errorf("%s %q: --%s is no flag", d.path, heading, name)
			continue
		}
		def := spans(r[1])
		switch {
		case len(def) == 0 && f.DefValue != "":
			t.Errorf("%s %q: --%s: no default documented, the flag's is %q", d.path, heading, name, f.DefValue)
		case len(def) > 0 && !sameDefault(def[0], f.DefValue):
			t.Errorf("%s %q: --%s: documented default %q, the flag's is %q", d.path, heading, name, def[0], f.DefValue)
		}
	}
	for _, name := range want {
		if !listed[name] {
			t.Errorf("%s %q lacks a row for --%s (%s)", d.path, heading, name, lookup(name).Usage)
		}
	}
}

// The server's flag table lists every flag with the binary's default.
func TestServerFlagTable(t *testing.T) {
	d, err := readDoc("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := serverFlags()
	var all []string
	fs.VisitAll(func(f *flag.Flag) { all = append(all, f.Name) })
	checkFlagTable(t, d, "## Server flags", func(name string) *pflag.Flag {
		f := fs.Lookup(name)
		if f == nil {
			return nil
		}
		return &pflag.Flag{Name: f.Name, DefValue: f.DefValue, Usage: f.Usage}
	}, all)
}

// The plugin's flag table lists every flag of `kubectl resume WORKFLOW` (kubectl's own connection flags
// aside) with its default.
func TestPluginFlagTable(t *testing.T) {
	d, err := readDoc("docs/kubectl-resume.md")
	if err != nil {
		t.Fatal(err)
	}
	root := pluginCommand()
	var own []string
	root.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) { own = append(own, f.Name) })
	own = append(own, "output")
	checkFlagTable(t, d, "## Release a step", func(name string) *pflag.Flag {
		if f := root.Flags().Lookup(name); f != nil {
			return f
		}
		return root.PersistentFlags().Lookup(name)
	}, own)
}

// The metrics table has a row for every resume_trigger_* metric the server registers, with its labels.
func TestMetricTable(t *testing.T) {
	d, err := readDoc("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	served := servedMetrics(t)
	listed := map[string]bool{}
	for _, r := range tableRows(t, d, "## Metrics") {
		if len(r) < 4 {
			t.Errorf("metrics table: row %q has fewer than 4 cells", strings.Join(r, "|"))
			continue
		}
		names := spans(r[0])
		if len(names) != 1 {
			t.Errorf("metrics table: row %q: want one metric in the first cell", strings.TrimSpace(r[0]))
			continue
		}
		m, ok := served[names[0]]
		if !ok {
			continue // reported by TestDocumentedMetricsAreServed
		}
		listed[m.name] = true
		labels := spans(r[2])
		sort.Strings(labels)
		if !slices.Equal(labels, m.labels) {
			t.Errorf("metrics table: %s has labels %v, documented %v", m.name, m.labels, labels)
		}
	}
	for name := range served {
		if strings.HasPrefix(name, "resume_trigger_") && !listed[name] {
			t.Errorf("docs/operations.md: the metrics table lacks %s", name)
		}
	}
}

// Every relative link between the docs reaches a file, and every #anchor a heading of it.
func TestLinksResolve(t *testing.T) {
	docs := readDocs(t)
	for _, d := range docs {
		for _, l := range d.links {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(l.target, "#")
			target := d.path
			if file != "" {
				target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(d.path), file)))
			}
			if _, ok := pending[target]; ok {
				if exists(target) {
					t.Errorf("%s exists now: remove it from pending", target)
				}
				continue
			}
			if !exists(target) {
				t.Errorf("%s:%d: link %s: no such file %s", d.path, l.line, l.target, target)
				continue
			}
			if anchor == "" {
				continue
			}
			td, ok := docs[target]
			if !ok {
				if !strings.HasSuffix(target, ".md") {
					t.Errorf("%s:%d: link %s: an anchor into a file that is not Markdown", d.path, l.line, l.target)
					continue
				}
				var err error
				if td, err = readDoc(target); err != nil {
					t.Fatal(err)
				}
			}
			if !td.anchors[anchor] {
				t.Errorf("%s:%d: link %s: %s has no heading for #%s", d.path, l.line, l.target, target, anchor)
			}
		}
	}
}

// The README stays a page a stranger reads in a few minutes.
func TestREADMEIsShort(t *testing.T) {
	d, err := readDoc("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.lines); n > 201 {
		t.Errorf("README.md has %d lines; keep it to 200 and move the rest into docs/", n-1)
	}
}

// labelRE finds the labels of docs/images/*.dot (each \n a line of its own in the rendering).
var labelRE = regexp.MustCompile(`label="((?:[^"\\]|\\.)*)"`)

// Each diagram was rendered from its current source: every text of the .dot is in the .svg beside it
// (make diagrams renders it; Graphviz is not needed to check).
func TestDiagramsRendered(t *testing.T) {
	dots, err := filepath.Glob(filepath.Join(root, "docs", "images", "*.dot"))
	if err != nil || len(dots) == 0 {
		t.Fatalf("no docs/images/*.dot (%v)", err)
	}
	for _, dot := range dots {
		src, err := os.ReadFile(dot)
		if err != nil {
			t.Fatal(err)
		}
		svg, err := os.ReadFile(strings.TrimSuffix(dot, ".dot") + ".svg")
		if err != nil {
			t.Fatalf("%v: run make diagrams", err)
		}
		// Graphviz writes these as character references.
		esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "-", "&#45;", "'", "&#39;")
		for _, m := range labelRE.FindAllStringSubmatch(string(src), -1) {
			for _, part := range strings.Split(m[1], `\n`) {
				part = strings.ReplaceAll(part, `\"`, `"`)
				if part == "" {
					continue
				}
				if !strings.Contains(string(svg), ">"+esc.Replace(part)+"</text>") {
					t.Errorf("%s: %q is not in the SVG: run make diagrams", filepath.Base(dot), part)
				}
			}
		}
	}
}

func TestSlugOf(t *testing.T) {
	for in, exp := range map[string]string{
		"TLS between the Sensor and the server":  "tls-between-the-sensor-and-the-server",
		"Several pods: loops, retries, fan-out":  "several-pods-loops-retries-fan-out",
		"`kubectl resume`":                       "kubectl-resume",
		"What the Sensor is answered":            "what-the-sensor-is-answered",
		"[Install](docs/install.md) and upgrade": "install-and-upgrade",
	} {
		if got := slugOf(in); got != exp {
			t.Errorf("slugOf(%q) = %q, want %q", in, got, exp)
		}
	}
}

func TestSegments(t *testing.T) {
	got := fmt.Sprint(segments(`source <(kubectl-resume completion bash) && make bench BENCH_FLAGS="-cpuprofile cpu.pprof" # note`))
	if exp := "[[source] [kubectl-resume completion bash] [make bench BENCH_FLAGS=-cpuprofile cpu.pprof]]"; got != exp {
		t.Errorf("segments = %s, want %s", got, exp)
	}
}
