package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// doc is one Markdown file, split into what the checks look at.
type doc struct {
	path     string // relative to root, with slashes
	lines    []string
	anchors  map[string]bool
	units    []unit // commands and code spans, each with the binary a bare flag belongs to
	links    []link
	fullText string
}

// unit is a command line of a code block or an inline code span.
type unit struct {
	line    int
	text    string
	bareBin binary // whose flags a unit that starts with a flag names
	code    bool   // a line of a shell code block (not a span)
}

type link struct {
	line   int
	target string
}

type binary int

const (
	serverBin binary = iota
	pluginBin
)

var (
	fenceRE   = regexp.MustCompile("^\\s*(```|~~~)\\s*([A-Za-z0-9_-]*)")
	spanRE    = regexp.MustCompile("`([^`]+)`")
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// docFiles are the Markdown files users and contributors read; CHANGELOG.md is history and may name what
// is gone.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "DEVELOPMENT.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(filepath.Join(root, "examples"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			more = append(more, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// readDocs parses every doc file.
func readDocs(t *testing.T) map[string]*doc {
	t.Helper()
	out := map[string]*doc{}
	for _, f := range docFiles(t) {
		d, err := readDoc(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = d
	}
	return out
}

func readDoc(rel string) (*doc, error) {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	d := &doc{path: rel, lines: strings.Split(string(b), "\n"), anchors: map[string]bool{}, fullText: string(b)}
	// A bare flag (a span or a line that starts with one) is the plugin's in its own page and under a
	// heading that names it, the server's everywhere else.
	fileBin := serverBin
	if rel == "docs/kubectl-resume.md" {
		fileBin = pluginBin
	}
	sectionBin := fileBin
	inFence, lang := false, ""
	pending := "" // a shell line continued with a backslash
	seen := map[string]int{}
	for i, line := range d.lines {
		n := i + 1
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			if inFence {
				inFence = false
			} else {
				inFence, lang = true, m[2]
			}
			continue
		}
		if inFence {
			switch lang {
			case "sh", "bash", "shell", "console", "":
				text := line
				if lang == "console" {
					if !strings.HasPrefix(text, "$ ") {
						continue // output
					}
					text = strings.TrimPrefix(text, "$ ")
				}
				if strings.HasSuffix(text, "\\") {
					pending += strings.TrimSuffix(text, "\\") + " "
					continue
				}
				d.units = append(d.units, unit{line: n, text: pending + text, bareBin: sectionBin, code: true})
				pending = ""
			}
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			slug := slugOf(m[2])
			if k := seen[slug]; k > 0 {
				d.anchors[slug+"-"+strconv.Itoa(k)] = true
			} else {
				d.anchors[slug] = true
			}
			seen[slug]++
			sectionBin = fileBin
			if h := strings.ToLower(m[2]); strings.Contains(h, "kubectl resume") || strings.Contains(h, "kubectl-resume") {
				sectionBin = pluginBin
			}
			continue
		}
		for _, m := range spanRE.FindAllStringSubmatch(line, -1) {
			d.units = append(d.units, unit{line: n, text: m[1], bareBin: sectionBin})
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			d.links = append(d.links, link{line: n, target: m[1]})
		}
	}
	return d, nil
}

// slugOf is GitHub's anchor for a heading: markup dropped, lower case, spaces to hyphens, punctuation
// other than hyphens and underscores removed.
func slugOf(heading string) string {
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	heading = strings.NewReplacer("`", "", "*", "").Replace(heading)
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// segment is one simple command: its words, quotes removed.
type segment []string

// segments splits a shell line into simple commands at |, &&, ||, ;, ( and ), dropping comments.
func segments(line string) []segment {
	var out []segment
	var cur segment
	var word strings.Builder
	inWord := false
	quote := rune(0)
	flush := func() {
		if inWord {
			cur = append(cur, word.String())
			word.Reset()
			inWord = false
		}
	}
	end := func() {
		flush()
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '#' && !inWord:
			end()
			return out
		case r == ' ' || r == '\t':
			flush()
		case r == '|' || r == ';' || r == '&' || r == '(' || r == ')':
			end()
		case (r == '<' || r == '>') && (!inWord || (i+1 < len(rs) && rs[i+1] == '(')):
			// A redirection or a process substitution; inside a word, a placeholder (<os>).
			end()
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	end()
	return out
}

var assignRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// command is what a segment runs: the binary (server, plugin, make, or another tool) and its arguments.
type command struct {
	name string // "resume-trigger", "kubectl-resume", "make", "" for a bare flag list, or the tool's name
	args []string
}

func commandOf(seg segment) command {
	for len(seg) > 0 && (assignRE.MatchString(seg[0]) || seg[0] == "sudo" || seg[0] == "exec" || seg[0] == "source") {
		seg = seg[1:]
	}
	if len(seg) == 0 {
		return command{name: "-"}
	}
	w := seg[0]
	switch {
	case strings.HasPrefix(w, "-"):
		return command{name: "", args: seg}
	case w == "kubectl" && len(seg) > 1 && seg[1] == "resume":
		return command{name: "kubectl-resume", args: seg[2:]}
	case w == "kubectl-resume" || strings.HasSuffix(w, "/kubectl-resume"):
		return command{name: "kubectl-resume", args: seg[1:]}
	case w == "resume-trigger" || strings.HasSuffix(w, "/resume-trigger"):
		return command{name: "resume-trigger", args: seg[1:]}
	}
	return command{name: w, args: seg[1:]}
}

// flagName returns the flag a word names: "--name" or "--name=v" gives ("name", false), a single-dash
// word gives its name and true. Numbers (-1) and a lone dash are not flags.
func flagName(w string) (string, bool, bool) {
	switch {
	case strings.HasPrefix(w, "--") && len(w) > 2:
		name, _, _ := strings.Cut(w[2:], "=")
		return name, false, true
	case strings.HasPrefix(w, "-") && len(w) > 1 && !unicode.IsDigit(rune(w[1])):
		name, _, _ := strings.Cut(w[1:], "=")
		return name, true, true
	}
	return "", false, false
}
