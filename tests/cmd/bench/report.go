package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Goals of issue 13, as ratios against the floor or absolute bounds.
const (
	goalP50         = 1.3  // sequential p50 at most this times the floor's
	goalThroughput  = 0.8  // 16-caller throughput at least this times the floor's
	goalLoop        = 1.5  // a loop released by one Resume at most this times its bare execs
	goalCPU         = 2.0  // ms of server CPU per resume
	goalRSS         = 64.0 // MiB
	goalFlat        = 0.10 // loaded namespace moves p50 and RSS by at most this
	goalCallers     = 16
	mib             = 1 << 20
	notMeasuredNote = "not measured (no run with 16 callers: see -callers)"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// atMost says whether got ≤ goal and by how much it misses.
func atMost(got, goal float64) string {
	if got <= goal {
		return "met"
	}
	return fmt.Sprintf("**missed** by %.0f%%", (got/goal-1)*100)
}

func atLeast(got, goal float64) string {
	if got >= goal {
		return "met"
	}
	return fmt.Sprintf("**missed** by %.0f%%", (1-got/goal)*100)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.Inf(1)
	}
	return a / b
}

func (r *results) markdown() string {
	var b strings.Builder
	row := func(cells ...string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	row("", "floor (bare exec)", "resume-trigger Execute", "ratio", "goal", "")
	row("---", "---", "---", "---", "---", "---")
	fp50, sp50 := percentile(r.floor.seq, 50), percentile(r.server.seq, 50)
	row("sequential p50", ms(fp50), ms(sp50), fmt.Sprintf("%.2f×", ratio(float64(sp50), float64(fp50))), fmt.Sprintf("≤ %.1f×", goalP50), atMost(ratio(float64(sp50), float64(fp50)), goalP50))
	fp90, sp90 := percentile(r.floor.seq, 90), percentile(r.server.seq, 90)
	row("sequential p90", ms(fp90), ms(sp90), fmt.Sprintf("%.2f×", ratio(float64(sp90), float64(fp90))), "", "")
	callers := make([]int, 0, len(r.floor.runs))
	for n := range r.floor.runs {
		callers = append(callers, n)
	}
	slices.Sort(callers)
	for _, n := range callers {
		f, s := r.floor.runs[n], r.server.runs[n]
		q := ratio(s.perSec, f.perSec)
		goal, verdict := "", ""
		if n == goalCallers {
			goal, verdict = fmt.Sprintf("≥ %.1f×", goalThroughput), atLeast(q, goalThroughput)
		}
		row(fmt.Sprintf("throughput, %d callers", n), fmt.Sprintf("%.0f/s (p50 %s)", f.perSec, ms(f.p50)), fmt.Sprintf("%.0f/s (p50 %s)", s.perSec, ms(s.p50)), fmt.Sprintf("%.2f×", q), goal, verdict)
	}
	if _, ok := r.floor.runs[goalCallers]; !ok {
		row(fmt.Sprintf("throughput, %d callers", goalCallers), "", "", "", fmt.Sprintf("≥ %.1f×", goalThroughput), notMeasuredNote)
	}
	lq := ratio(float64(r.loopRTR), float64(r.loopFloor))
	row(fmt.Sprintf("loop of %d released by one Resume", r.loop), fmt.Sprintf("%s (%d execs one after another)", ms(r.loopFloor), r.loop), ms(r.loopRTR), fmt.Sprintf("%.2f×", lq), fmt.Sprintf("≤ %.1f×", goalLoop), atMost(lq, goalLoop))
	cpu := float64(r.serverCPU.Microseconds()) / 1000 / float64(max(r.resumes, 1))
	row("server CPU per resume", "–", fmt.Sprintf("%.2f ms (%s over %d resumes)", cpu, r.serverCPU.Round(10*time.Millisecond), r.resumes), "", fmt.Sprintf("≤ %.0f ms", goalCPU), atMost(cpu, goalCPU))
	rss := float64(r.peakRSS) / mib
	var steps []string
	for _, n := range callers {
		steps = append(steps, fmt.Sprintf("%.1f after %d callers", float64(r.server.runs[n].peakRSS)/mib, n))
	}
	row("server peak RSS (VmHWM)", "–", fmt.Sprintf("%.1f MiB (%s)", rss, strings.Join(steps, ", ")), "", fmt.Sprintf("≤ %.0f MiB", goalRSS), atMost(rss, goalRSS))
	fp := ratio(float64(r.loadedP50), float64(r.emptyP50))
	row("flat: sequential p50, empty → loaded namespace", ms(r.emptyP50), ms(r.loadedP50), fmt.Sprintf("%.2f×", fp), fmt.Sprintf("within ±%.0f%%", goalFlat*100), atMost(math.Abs(fp-1), goalFlat))
	fr := ratio(float64(r.loadedRSS), float64(r.emptyRSS))
	row("flat: peak RSS after it, empty → loaded", fmt.Sprintf("%.1f MiB", float64(r.emptyRSS)/mib), fmt.Sprintf("%.1f MiB", float64(r.loadedRSS)/mib), fmt.Sprintf("%.2f×", fr), fmt.Sprintf("within ±%.0f%%", goalFlat*100), atMost(math.Abs(fr-1), goalFlat))
	if len(r.calls) > 0 {
		var parts []string
		for _, c := range r.calls {
			parts = append(parts, fmt.Sprintf("%s %s", c.what, ms(c.p50)))
		}
		fmt.Fprintf(&b, "\nSingle API requests on this control plane (p50, one after another): %s.\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\nMachine: %s. Run took %s (loading the namespace: %s). Loaded namespace: %s. Server flags: %s.\n",
		r.machine, r.took.Round(time.Second), r.loadTook.Round(time.Second), r.loadedObjects, flagsOrDefault(r.serverFlags))
	return b.String()
}

func flagsOrDefault(f string) string {
	if f == "" {
		return "defaults"
	}
	return "`" + f + "`"
}

// plotLatency draws p50 latency against concurrent callers for both sides.
func plotLatency(path string, r *results) error {
	p := plot.New()
	p.Title.Text = "p50 latency against concurrent callers"
	p.X.Label.Text = "concurrent callers"
	p.Y.Label.Text = "p50 latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	points := func(s series) plotter.XYs {
		xy := plotter.XYs{{X: 1, Y: float64(percentile(s.seq, 50).Microseconds()) / 1000}}
		var callers []int
		for n := range s.runs {
			callers = append(callers, n)
		}
		slices.Sort(callers)
		for _, n := range callers {
			xy = append(xy, plotter.XY{X: float64(n), Y: float64(s.runs[n].p50.Microseconds()) / 1000})
		}
		return xy
	}
	for i, side := range []struct {
		name  string
		s     series
		color color.Color
	}{
		{"floor: bare exec", r.floor, color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff}},
		{"resume-trigger Execute", r.server, color.RGBA{R: 0xdd, G: 0x55, B: 0x22, A: 0xff}},
	} {
		line, pts, err := plotter.NewLinePoints(points(side.s))
		if err != nil {
			return err
		}
		line.Color, pts.Color = side.color, side.color
		line.Width = vg.Points(1.5)
		pts.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}}[i]
		p.Add(line, pts)
		p.Legend.Add(side.name, line, pts)
	}
	p.Add(plotter.NewGrid())
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}
