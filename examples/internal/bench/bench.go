// Package bench runs the privacy–utility tables of dpopt's examples: every
// method at every ε, next to its non-private ceiling. It uses only the
// exported API of dpopt and holds the settings the examples share, so that
// examples/mnist, examples/cifar and examples/imagenet report the same thing.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

// Methods are the solvers of a default table, in table order. "ls" is DP-LS
// with its defaults, which pick the form from the shape
// (optim.LS.UsesPerClass).
var Methods = []string{"ls", "sgd", "fc", "newton"}

// AllMethods are the solvers a table can hold: Methods and DP-LS forced into
// its global ("ls-global") or per-class ("ls-pc") form.
var AllMethods = []string{"ls", "ls-global", "ls-pc", "sgd", "fc", "newton"}

// DefaultNewtonLimit is the default of Config.NewtonLimit. It lets DP-Newton
// run on MNIST pixels (K·d²·(n+d) ≈ 3·10¹¹: about 30 s a run on two busy
// cores, pure Go), MNIST rf2048 (2·10¹²: 2–4 minutes a run), CIFAR-10 at
// d ≤ 1664 and CIFAR-100 at d = 768 (3·10¹²), and skips it on ImageNet.
const DefaultNewtonLimit = 4e12

// Config says what to run.
type Config struct {
	Methods  []string  // subset of AllMethods; nil means Methods
	Epsilons []float64 // target ε values
	Delta    float64   // target δ
	// Seeds is the number of runs per method and ε; zero means 1. Run r uses
	// dp.NewSeededSource(Seed + r), so a table replays exactly: the seeded
	// source is for research, not for releasing models.
	Seeds int
	Seed  uint64
	// NewtonLimit skips DP-Newton when K·d²·(n + d), the multiply-adds of
	// one step (K weighted Grams and K eigendecompositions), exceeds it.
	// Zero means DefaultNewtonLimit; negative means no limit.
	NewtonLimit float64
	// Log, if set, receives one line per run as it finishes.
	Log io.Writer
}

// Solver returns the solver of the examples for method at target (ε, δ)
// (ε = +Inf: non-private) on n examples: rows clipped to norm 1 (the
// features are L2-normalised), gradients clipped to 1, every other field at
// its default; DP-SGD takes 300 steps of Poisson batches of expected size
// n/10 — the defaults of `dpopt train`.
func Solver(method string, eps, delta float64, n int) (optim.Solver, error) {
	p := optim.Privacy{Epsilon: eps, Delta: delta}
	switch method {
	case "ls":
		return &optim.LS{Privacy: p, ClipNorm: 1}, nil
	case "ls-global":
		return &optim.LS{Privacy: p, ClipNorm: 1, Global: true}, nil
	case "ls-pc":
		return &optim.LS{Privacy: p, ClipNorm: 1, PerClass: true}, nil
	case "sgd":
		return &optim.SGD{Privacy: p, Steps: 300, BatchSize: max(1, n/10), GradClipNorm: 1}, nil
	case "fc":
		return &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1}, nil
	case "newton":
		return &optim.Newton{Privacy: p, ClipNorm: 1}, nil
	}
	return nil, fmt.Errorf("bench: unknown method %q (want %s)", method, strings.Join(AllMethods, ", "))
}

// Row is one method's results.
type Row struct {
	Method     string
	Accuracy   []float64 // mean test accuracy at each ε of the table
	NonPrivate float64   // test accuracy without noise
	Seconds    float64   // wall time of all the method's runs
	Skipped    string    // why the method was not run, or ""
}

// Table is a privacy–utility table.
type Table struct {
	Name                  string
	Epsilons              []float64
	Delta                 float64
	Seeds                 int
	NTrain, NTest, Dim, K int
	Rows                  []Row
	Seconds               float64
}

// Run trains every method of cfg at every ε, and once without noise, on
// train, and evaluates on test, which is used for nothing else.
func Run(ctx context.Context, name string, train, test *optim.Data, cfg Config) (*Table, error) {
	start := time.Now()
	ms := cfg.Methods
	if ms == nil {
		ms = Methods
	}
	seeds := max(cfg.Seeds, 1)
	limit := cfg.NewtonLimit
	if limit == 0 {
		limit = DefaultNewtonLimit
	}
	n, d, k := train.X.Rows, train.X.Cols, train.Classes
	t := &Table{Name: name, Epsilons: cfg.Epsilons, Delta: cfg.Delta, Seeds: seeds,
		NTrain: n, NTest: test.X.Rows, Dim: d, K: k}
	for _, m := range ms {
		row := Row{Method: m}
		if cost := float64(k) * float64(d) * float64(d) * float64(n+d); m == "newton" && limit > 0 && cost > limit {
			row.Skipped = fmt.Sprintf("K·d²·(n+d) = %.2g > %.2g", cost, limit)
			t.Rows = append(t.Rows, row)
			continue
		}
		mStart := time.Now()
		fit := func(eps float64, seed uint64) (float64, error) {
			s, err := Solver(m, eps, cfg.Delta, n)
			if err != nil {
				return 0, err
			}
			runStart := time.Now()
			res, err := s.Solve(ctx, train, nil, dp.NewSeededSource(seed))
			if err != nil {
				return 0, fmt.Errorf("bench: %s at ε = %g: %w", m, eps, err)
			}
			acc, err := res.Model.Accuracy(test, 0)
			if err != nil {
				return 0, err
			}
			if cfg.Log != nil {
				fmt.Fprintf(cfg.Log, "%-6s ε = %-5g seed %d: test accuracy %.4f (%.1f s)\n",
					m, eps, seed, acc, time.Since(runStart).Seconds())
			}
			return acc, nil
		}
		var err error
		if row.NonPrivate, err = fit(math.Inf(1), cfg.Seed); err != nil {
			return nil, err
		}
		for _, eps := range cfg.Epsilons {
			sum := 0.0
			for r := range seeds {
				acc, err := fit(eps, cfg.Seed+uint64(r))
				if err != nil {
					return nil, err
				}
				sum += acc
			}
			row.Accuracy = append(row.Accuracy, sum/float64(seeds))
		}
		row.Seconds = time.Since(mStart).Seconds()
		t.Rows = append(t.Rows, row)
	}
	t.Seconds = time.Since(start).Seconds()
	return t, nil
}

// Print writes the table: one row per method, test accuracy in percent at
// each ε, the non-private ceiling and the method's time.
func (t *Table) Print(w io.Writer) {
	runs := "one run"
	if t.Seeds > 1 {
		runs = fmt.Sprintf("mean of %d runs", t.Seeds)
	}
	fmt.Fprintf(w, "%s: n = %d train, %d test, d = %d, K = %d; δ = %g; test accuracy (%%), %s\n",
		t.Name, t.NTrain, t.NTest, t.Dim, t.K, t.Delta, runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "method\t")
	for _, e := range t.Epsilons {
		fmt.Fprintf(tw, "ε = %g\t", e)
	}
	fmt.Fprint(tw, "non-private\ttime\t\n")
	for _, r := range t.Rows {
		fmt.Fprintf(tw, "%s\t", r.Method)
		if r.Skipped != "" {
			for range t.Epsilons {
				fmt.Fprint(tw, "–\t")
			}
			fmt.Fprintf(tw, "–\tskipped\t\n")
			continue
		}
		for _, a := range r.Accuracy {
			fmt.Fprintf(tw, "%.1f\t", 100*a)
		}
		fmt.Fprintf(tw, "%.1f\t%.0f s\t\n", 100*r.NonPrivate, r.Seconds)
	}
	tw.Flush()
	for _, r := range t.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%s skipped: %s (set -newton-limit to run it)\n", r.Method, r.Skipped)
		}
	}
	fmt.Fprintf(w, "total %.0f s\n", t.Seconds)
}

// Prepare applies the optional feature map (nil for none) to both sets and
// L2-normalises every row, as `dpopt train` does; both are row-wise and
// data-independent, so they cost no privacy.
func Prepare(xtr, xte *linalg.Matrix32, fmap *features.RandomReLU) (*linalg.Matrix32, *linalg.Matrix32, error) {
	xtr, err := features.MapAndNormalize(xtr, fmap)
	if err != nil {
		return nil, nil, err
	}
	if xte, err = features.MapAndNormalize(xte, fmap); err != nil {
		return nil, nil, err
	}
	return xtr, xte, nil
}

// ParseEpsilons parses a comma-separated list of positive, finite ε values.
func ParseEpsilons(s string) ([]float64, error) {
	var eps []float64
	for _, f := range strings.Split(s, ",") {
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("ε %q: want a positive, finite number", f)
		}
		eps = append(eps, v)
	}
	return eps, nil
}

// ParseMethods parses a comma-separated list of methods.
func ParseMethods(s string) ([]string, error) {
	var ms []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		ok := false
		for _, known := range AllMethods {
			ok = ok || m == known
		}
		if !ok {
			return nil, fmt.Errorf("unknown method %q (want %s)", m, strings.Join(AllMethods, ", "))
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// LoadFiles reads a training and a test feature file (.npz, .npy, TFRecord —
// sharded globs such as "train.tfr*" allowed — or CSV) with opts,
// L2-normalises their rows and returns them as optim.Data. The number of
// classes is the largest label plus one. The test file must have the
// training file's dimension.
func LoadFiles(trainPath, testPath string, opts features.Options) (train, test *optim.Data, err error) {
	xtr, ytr, err := features.Load(trainPath, opts)
	if err != nil {
		return nil, nil, err
	}
	xte, yte, err := features.Load(testPath, opts)
	if err != nil {
		return nil, nil, err
	}
	if ytr == nil || yte == nil {
		return nil, nil, fmt.Errorf("bench: feature files must hold labels")
	}
	if xtr.Cols != xte.Cols {
		return nil, nil, fmt.Errorf("bench: training features have dimension %d, test features %d: %w",
			xtr.Cols, xte.Cols, linalg.ErrShape)
	}
	if xtr, xte, err = Prepare(xtr, xte, nil); err != nil {
		return nil, nil, err
	}
	k := 0
	for _, ys := range [][]int{ytr, yte} {
		for _, y := range ys {
			k = max(k, y+1)
		}
	}
	train = &optim.Data{X: xtr, Labels: ytr, Classes: k}
	test = &optim.Data{X: xte, Labels: yte, Classes: k}
	if err := train.Validate(); err != nil {
		return nil, nil, err
	}
	return train, test, test.Validate()
}

// FilesMain is the main function of the examples that read feature files
// (cifar, imagenet): it parses args (the program's flags), loads the files,
// runs the table and prints it on stdout, with one line per run on stderr.
// It returns the exit status: 2 for bad flags, 1 for bad data.
func FilesMain(name string, defaultDelta float64, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	trainPath := fs.String("train", "", "training features (.npz, .npy, TFRecord or CSV; globs like train.tfr* allowed). Required.")
	testPath := fs.String("test", "", "test features, used only for evaluation. Required.")
	featName := fs.String("features", "", "name of the features array (.npz) or float_list (TFRecord); default features/x or repr")
	labelName := fs.String("labels", "", "name of the labels array (.npz) or int64_list (TFRecord); default labels/y or label")
	delta := fs.Float64("delta", defaultDelta, "target δ")
	epsList := fs.String("epsilons", "0.1,1,8", "comma-separated target ε values")
	methodList := fs.String("methods", strings.Join(Methods, ","), "comma-separated methods")
	seeds := fs.Int("seeds", 1, "runs per method and ε (seeded sources Seed, Seed+1, …)")
	seed := fs.Uint64("seed", 1, "first seed")
	newtonLimit := fs.Float64("newton-limit", DefaultNewtonLimit, "skip DP-Newton when K·d²·(n+d) exceeds this; negative: never skip")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, a...))
		return 2
	}
	if *trainPath == "" || *testPath == "" {
		return usage("-train and -test are required (see -h)")
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if !(*delta > 0 && *delta < 1) {
		return usage("-delta %v: must be in (0, 1)", *delta)
	}
	if *seeds < 1 {
		return usage("-seeds %d: must be at least 1", *seeds)
	}
	eps, err := ParseEpsilons(*epsList)
	if err != nil {
		return usage("-epsilons: %v", err)
	}
	ms, err := ParseMethods(*methodList)
	if err != nil {
		return usage("-methods: %v", err)
	}
	train, test, err := LoadFiles(*trainPath, *testPath, features.Options{Features: *featName, Labels: *labelName})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := Run(ctx, name, train, test, Config{Methods: ms, Epsilons: eps, Delta: *delta,
		Seeds: *seeds, Seed: *seed, NewtonLimit: *newtonLimit, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	t.Print(stdout)
	return 0
}
