package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/internal/atomicfile"
)

// sweepCell is the result of one method at one ε, over every seed.
type sweepCell struct {
	Method           string    `json:"method"`
	Epsilon          float64   `json:"epsilon"`
	Accuracies       []float64 `json:"accuracies"`    // test accuracy of each run
	MeanAccuracy     float64   `json:"mean_accuracy"` // their mean
	NoiseMultipliers []float64 `json:"noise_multipliers"`
}

// sweepCeiling is the non-private test accuracy of one method.
type sweepCeiling struct {
	Method   string  `json:"method"`
	Accuracy float64 `json:"accuracy"`
}

// sweepOutput is the stable JSON of `dpopt sweep --json`.
type sweepOutput struct {
	Delta      float64        `json:"delta"`
	Epsilons   []float64      `json:"epsilons"`
	Methods    []string       `json:"methods"`
	Seeds      int            `json:"seeds"`
	Seed       *uint64        `json:"seed"`   // first seed, or null for the hardened source
	Source     string         `json:"source"` // "seeded" or "hardened"
	Data       string         `json:"data"`
	Features   string         `json:"features"`
	Clip       float64        `json:"clip"`
	NTrain     int            `json:"n_train"`
	NTest      int            `json:"n_test"`
	Dim        int            `json:"dim"`
	Classes    int            `json:"classes"`
	Results    []sweepCell    `json:"results"`     // method-major, ε ascending
	NonPrivate []sweepCeiling `json:"non_private"` // one per method
	Plot       string         `json:"plot,omitempty"`
	Seconds    float64        `json:"seconds"`
}

func runSweep(args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	var df dataFlags
	df.register(fs)
	epsList := fs.String("epsilons", "0.1,1,8", "comma-separated target ε values")
	methodList := fs.String("methods", strings.Join(methods, ","), "comma-separated methods: ls, sgd, fc, newton")
	delta := fs.Float64("delta", 1e-5, "target δ in (0, 1)")
	clip := fs.Float64("clip", 1, "L2 clip norm of the (L2-normalised) feature rows and of per-example gradients")
	seeds := fs.Int("seeds", 1, "runs per method and ε; the table shows their mean")
	seed := fs.Uint64("seed", 0, "use seeded sources with seeds S, S+1, …, S+N−1 (replayable); default: hardened, unseeded")
	plotPath := fs.String("plot", "", "write a PNG plot of test accuracy against ε to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := df.check(); err != nil {
		return err
	}
	eps, err := parseEpsilons(*epsList)
	if err != nil {
		return err
	}
	ms, err := parseMethods(*methodList)
	if err != nil {
		return err
	}
	if !(*delta > 0 && *delta < 1) {
		return usagef("--delta %v: must be in (0, 1)", *delta)
	}
	if !(*clip > 0) || math.IsInf(*clip, 0) {
		return usagef("--clip %v: must be positive and finite", *clip)
	}
	if *seeds < 1 || *seeds > 1000 {
		return usagef("--seeds %d: must be in [1, 1000]", *seeds)
	}
	if *plotPath != "" {
		if fi, err := os.Stat(filepath.Dir(*plotPath)); err != nil || !fi.IsDir() {
			return fmt.Errorf("--plot %s: no such directory %s", *plotPath, filepath.Dir(*plotPath))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	total := len(ms) * (len(eps)**seeds + 1)
	prog := startProgress(progressWriter(stderr, *asJSON), total, "loading "+df.name())
	defer prog.finish()
	ctx = prog.watch(ctx)
	train, test, err := df.load()
	if err != nil {
		return err
	}
	source := func(run int) dp.Source {
		if set["seed"] {
			return dp.NewSeededSource(*seed + uint64(run))
		}
		return dp.NewSecureSource()
	}

	out := sweepOutput{
		Delta: *delta, Epsilons: eps, Methods: ms, Seeds: *seeds, Source: "hardened",
		Data: df.name(), Features: df.features, Clip: *clip,
		NTrain: train.X.Rows, NTest: test.X.Rows, Dim: train.X.Cols, Classes: train.Classes,
		Plot: *plotPath,
	}
	if set["seed"] {
		out.Seed, out.Source = seed, "seeded"
	}
	for _, m := range ms {
		c := solverConfig{method: m, epsilon: math.Inf(1), clip: *clip}
		prog.describe(m + " non-private")
		f, err := fit(ctx, c, train, test, source(0))
		if err != nil {
			return fmt.Errorf("sweep: %s non-private: %w", m, err)
		}
		prog.runDone()
		out.NonPrivate = append(out.NonPrivate, sweepCeiling{Method: m, Accuracy: f.acc})
		for _, e := range eps {
			c.epsilon, c.delta = e, *delta
			cell := sweepCell{Method: m, Epsilon: e}
			prog.describe(fmt.Sprintf("%s ε=%g", m, e))
			for r := range *seeds {
				f, err := fit(ctx, c, train, test, source(r))
				if err != nil {
					return fmt.Errorf("sweep: %s at ε = %g: %w", m, e, err)
				}
				prog.runDone()
				cell.Accuracies = append(cell.Accuracies, f.acc)
				cell.NoiseMultipliers = f.res.Report.NoiseMultipliers()
			}
			cell.MeanAccuracy = mean(cell.Accuracies)
			out.Results = append(out.Results, cell)
		}
	}
	if *plotPath != "" {
		prog.describe("plotting")
		if err := writePlot(*plotPath, &out); err != nil {
			return err
		}
	}
	prog.finish()
	out.Seconds = time.Since(start).Seconds()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	writeSweepTable(stdout, &out)
	if *plotPath != "" {
		fmt.Fprintf(stdout, "plot written to %s\n", *plotPath)
	}
	return nil
}

// parseEpsilons parses a comma-separated list of distinct positive, finite ε
// values and returns them in ascending order.
func parseEpsilons(s string) ([]float64, error) {
	var eps []float64
	for _, f := range strings.Split(s, ",") {
		v, err := parseFloat(f)
		if err != nil {
			return nil, usagef("--epsilons: %v", err)
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, usagef("--epsilons: %v: each ε must be positive and finite", v)
		}
		if slices.Contains(eps, v) {
			return nil, usagef("--epsilons: %v given twice", v)
		}
		eps = append(eps, v)
	}
	slices.Sort(eps)
	return eps, nil
}

// parseMethods parses a comma-separated list of distinct method names.
func parseMethods(s string) ([]string, error) {
	var ms []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(methods, m) {
			return nil, usagef("--methods: unknown method %q (want ls, sgd, fc or newton)", m)
		}
		if slices.Contains(ms, m) {
			return nil, usagef("--methods: %s given twice", m)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// writeSweepTable prints one row per method: mean test accuracy at each ε,
// then the non-private ceiling.
func writeSweepTable(w io.Writer, o *sweepOutput) {
	runs := "1 run"
	if o.Seeds > 1 {
		runs = fmt.Sprintf("mean of %d runs", o.Seeds)
	}
	fmt.Fprintf(w, "test accuracy on %s (%s): %d train / %d test, d = %d, K = %d, δ = %g, clip %g, %s\n",
		o.Data, o.Features, o.NTrain, o.NTest, o.Dim, o.Classes, o.Delta, o.Clip, runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "method\t")
	for _, e := range o.Epsilons {
		fmt.Fprintf(tw, "ε=%g\t", e)
	}
	fmt.Fprint(tw, "non-private\t\n")
	for i, m := range o.Methods {
		fmt.Fprintf(tw, "%s\t", m)
		for j := range o.Epsilons {
			fmt.Fprintf(tw, "%.3f\t", o.Results[i*len(o.Epsilons)+j].MeanAccuracy)
		}
		fmt.Fprintf(tw, "%.3f\t\n", o.NonPrivate[i].Accuracy)
	}
	tw.Flush()
}

// writePlot draws test accuracy against ε (log scale), one line per method,
// with its non-private ceiling dashed, and writes it as PNG to path through a
// temporary file.
func writePlot(path string, o *sweepOutput) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%s), δ = %g", o.Data, o.Features, o.Delta)
	p.X.Label.Text = "ε"
	p.Y.Label.Text = "test accuracy"
	p.X.Scale = plot.LogScale{}
	ticks := make([]plot.Tick, len(o.Epsilons))
	for i, e := range o.Epsilons {
		ticks[i] = plot.Tick{Value: e, Label: fmt.Sprintf("%g", e)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	lo, hi := o.Epsilons[0], o.Epsilons[len(o.Epsilons)-1]
	if lo == hi {
		lo, hi = lo/2, hi*2
	}
	for i, m := range o.Methods {
		pts := make(plotter.XYs, len(o.Epsilons))
		for j, e := range o.Epsilons {
			pts[j] = plotter.XY{X: e, Y: o.Results[i*len(o.Epsilons)+j].MeanAccuracy}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		col := plotutil.Color(i)
		line.Color, points.Color = col, col
		points.Shape = plotutil.Shape(i)
		ceil, err := plotter.NewLine(plotter.XYs{{X: lo, Y: o.NonPrivate[i].Accuracy}, {X: hi, Y: o.NonPrivate[i].Accuracy}})
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		ceil.Color = fade(col)
		ceil.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line, points, ceil)
		p.Legend.Add(m, line, points)
		p.Legend.Add(m+" non-private", ceil)
	}
	p.Add(plotter.NewGrid())
	wt, err := p.WriterTo(16*vg.Centimeter, 11*vg.Centimeter, "png")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}

// fade returns c with some transparency, for the ceiling lines.
func fade(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 160}
}
