package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"time"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/datasets/mnist"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

// rfSeed is the fixed seed of the --features rf2048 projection. The map is
// data-independent, so the seed is public and the same on every run.
const rfSeed = 2026

// rfDim is the output dimension of --features rf2048.
const rfDim = 2048

// DP-SGD's defaults when --steps and --batch-size are not given: 300 steps
// of Poisson-sampled batches at rate 1/10 (expected batch size n/10),
// accounted with PLD. On digits this is within 1.5 points of full-batch DP-GD
// at every ε (optim's TestSGDDigits); on MNIST it is as accurate as full
// batches at a tenth of the cost.
const (
	sgdDefaultSteps     = 300
	sgdDefaultBatchFrac = 10 // expected batch size n/sgdDefaultBatchFrac
)

// dataFlags are the flags that choose the data, shared by train and sweep.
type dataFlags struct {
	train, test, dataset, features string
}

func (df *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&df.train, "train", "", "training feature file (.npz, .npy, .tfrecord (globs allowed), .csv)")
	fs.StringVar(&df.test, "test", "", "test feature file, used only for evaluation (required with --train)")
	fs.StringVar(&df.dataset, "dataset", "", "built-in data: digits (default without --train) or mnist")
	fs.StringVar(&df.features, "features", "pixels", "pixels (the rows as read) or rf2048 (fixed random ReLU features, 2048 dims)")
}

// check validates the data flags without reading anything.
func (df *dataFlags) check() error {
	switch {
	case df.train != "" && df.dataset != "":
		return usagef("--train and --dataset cannot be combined")
	case (df.train == "") != (df.test == ""):
		return usagef("--train and --test must be given together")
	}
	switch df.dataset {
	case "", "digits", "mnist":
	default:
		return usagef("--dataset %q: want digits or mnist", df.dataset)
	}
	switch df.features {
	case "pixels", "rf2048":
	default:
		return usagef("--features %q: want pixels or rf2048", df.features)
	}
	return nil
}

// name describes the data in reports.
func (df *dataFlags) name() string {
	if df.train != "" {
		return df.train
	}
	if df.dataset == "" {
		return "digits"
	}
	return df.dataset
}

// load reads the training and test sets, applies the feature map and
// L2-normalises every row. Errors are bad data: exit status 1.
func (df *dataFlags) load() (train, test *optim.Data, err error) {
	var xtr, xte *linalg.Matrix32
	var ytr, yte []int
	switch {
	case df.train != "":
		if xtr, ytr, err = features.Load(df.train, features.Options{}); err != nil {
			return nil, nil, fmt.Errorf("--train: %w", err)
		}
		if xte, yte, err = features.Load(df.test, features.Options{}); err != nil {
			return nil, nil, fmt.Errorf("--test: %w", err)
		}
		if ytr == nil || yte == nil {
			return nil, nil, errors.New("feature files must hold labels")
		}
		if xtr.Cols != xte.Cols {
			return nil, nil, fmt.Errorf("training features have dimension %d, test features %d: %w",
				xtr.Cols, xte.Cols, linalg.ErrShape)
		}
	case df.dataset == "mnist":
		d, err := mnist.Load()
		if err != nil {
			return nil, nil, err
		}
		xtr, ytr, xte, yte = d.Train.X, d.Train.Y, d.Test.X, d.Test.Y
	default:
		if xtr, ytr, xte, yte, err = digits.Split(); err != nil {
			return nil, nil, err
		}
	}
	var fmap *features.RandomReLU
	if df.features == "rf2048" {
		fmap = &features.RandomReLU{Dim: rfDim, Seed: rfSeed}
	}
	if xtr, err = features.MapAndNormalize(xtr, fmap); err != nil {
		return nil, nil, err
	}
	if xte, err = features.MapAndNormalize(xte, fmap); err != nil {
		return nil, nil, err
	}
	// The number of classes is public: the largest label in either set, plus one.
	k := 0
	for _, ys := range [][]int{ytr, yte} {
		for _, y := range ys {
			k = max(k, y+1)
		}
	}
	if k < 2 {
		return nil, nil, fmt.Errorf("labels name %d class(es), need at least 2: %w", k, linalg.ErrLabel)
	}
	train = &optim.Data{X: xtr, Labels: ytr, Classes: k}
	test = &optim.Data{X: xte, Labels: yte, Classes: k}
	if err := train.Validate(); err != nil {
		return nil, nil, fmt.Errorf("training data: %w", err)
	}
	if err := test.Validate(); err != nil {
		return nil, nil, fmt.Errorf("test data: %w", err)
	}
	return train, test, nil
}

// methods are the solvers train and sweep know, in table order.
var methods = []string{"ls", "sgd", "fc", "newton"}

// solverConfig holds the solver flags; zero means the solver's default.
type solverConfig struct {
	method       string
	epsilon      float64 // +Inf: non-private
	delta        float64
	clip         float64
	reg, lr      float64
	steps, batch int
}

// check validates the flags of c; set says which flags were given.
func (c solverConfig) check(set map[string]bool) error {
	switch c.method {
	case "ls", "sgd", "fc", "newton":
	default:
		return usagef("--method %q: want ls, sgd, fc or newton", c.method)
	}
	if !math.IsInf(c.epsilon, 1) {
		if !(c.epsilon > 0) || math.IsInf(c.epsilon, 0) {
			return usagef("--epsilon %v: must be positive and finite", c.epsilon)
		}
		if !(c.delta > 0 && c.delta < 1) {
			return usagef("--delta %v: must be in (0, 1)", c.delta)
		}
	}
	if !(c.clip > 0) || math.IsInf(c.clip, 0) {
		return usagef("--clip %v: must be positive and finite", c.clip)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"reg", c.reg}, {"lr", c.lr}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			return usagef("--%s %v: must be non-negative and finite (0 = default)", f.name, f.v)
		}
	}
	if c.steps < 0 {
		return usagef("--steps %d: must be non-negative (0 = default)", c.steps)
	}
	if c.batch < 0 {
		return usagef("--batch-size %d: must be non-negative (0 = default n/10)", c.batch)
	}
	if c.method == "ls" && (set["lr"] || set["steps"]) {
		return usagef("--lr and --steps do not apply to --method ls (one release, no steps)")
	}
	if c.method != "sgd" && set["batch-size"] {
		return usagef("--batch-size applies only to --method sgd")
	}
	return nil
}

// solver returns the configured solver for n training examples.
func (c solverConfig) solver(n int) (optim.Solver, error) {
	p := optim.Privacy{Epsilon: c.epsilon, Delta: c.delta}
	if math.IsInf(c.epsilon, 1) {
		p.Delta = 0
	}
	switch c.method {
	case "ls":
		return &optim.LS{Privacy: p, ClipNorm: c.clip, Ridge: c.reg}, nil
	case "fc":
		return &optim.FC{Privacy: p, ClipNorm: c.clip, GradClipNorm: c.clip, Steps: c.steps, LearningRate: c.lr, Ridge: c.reg}, nil
	case "newton":
		return &optim.Newton{Privacy: p, ClipNorm: c.clip, Steps: c.steps, LearningRate: c.lr, Ridge: c.reg}, nil
	case "sgd":
		steps, batch := c.steps, c.batch
		if steps == 0 {
			steps = sgdDefaultSteps
		}
		if batch == 0 {
			batch = max(1, n/sgdDefaultBatchFrac)
		}
		if batch > n {
			return nil, usagef("--batch-size %d: more than the %d training examples", batch, n)
		}
		return &optim.SGD{Privacy: p, Steps: steps, BatchSize: batch, GradClipNorm: c.clip, LearningRate: c.lr, L2: c.reg}, nil
	}
	return nil, usagef("--method %q: want ls, sgd, fc or newton", c.method)
}

// fitted is one trained model with its report and accuracies.
type fitted struct {
	res           *optim.Result
	trainAcc, acc float64 // accuracy on the training and the test set
}

// fit trains c on train with src and evaluates on both sets.
func fit(ctx context.Context, c solverConfig, train, test *optim.Data, src dp.Source) (*fitted, error) {
	s, err := c.solver(train.X.Rows)
	if err != nil {
		return nil, err
	}
	res, err := s.Solve(ctx, train, nil, src)
	if err != nil {
		return nil, err
	}
	f := &fitted{res: res}
	if f.trainAcc, err = res.Model.Accuracy(train, 0); err != nil {
		return nil, err
	}
	if f.acc, err = res.Model.Accuracy(test, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// trainOutput is the stable JSON of `dpopt train --json`.
type trainOutput struct {
	Method           string          `json:"method"`
	Epsilon          jsonFloat       `json:"epsilon"` // target ε; "+Inf" with --non-private
	Delta            float64         `json:"delta"`
	Accountant       string          `json:"accountant"` // "none" with --non-private
	NoiseMultipliers []float64       `json:"noise_multipliers"`
	EpsilonSpent     jsonFloat       `json:"epsilon_spent"`
	Releases         []optim.Release `json:"releases"`
	TestAccuracy     float64         `json:"test_accuracy"`
	TrainAccuracy    float64         `json:"train_accuracy"`
	NTrain           int             `json:"n_train"`
	NTest            int             `json:"n_test"`
	Dim              int             `json:"dim"`
	Classes          int             `json:"classes"`
	Seconds          float64         `json:"seconds"`       // wall time of the whole command
	SolveSeconds     float64         `json:"solve_seconds"` // time in Solve
	Source           string          `json:"source"`        // "seeded" or "hardened"
	Seed             *uint64         `json:"seed"`          // null unless --seed
	Data             string          `json:"data"`
	Features         string          `json:"features"`
	Clip             float64         `json:"clip"`
	Model            string          `json:"model,omitempty"`
	Report           string          `json:"report,omitempty"`
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	var df dataFlags
	df.register(fs)
	var c solverConfig
	fs.StringVar(&c.method, "method", "fc", "ls, sgd, fc or newton")
	fs.Float64Var(&c.epsilon, "epsilon", 1, "target ε > 0")
	fs.Float64Var(&c.delta, "delta", 1e-5, "target δ in (0, 1)")
	fs.Float64Var(&c.clip, "clip", 1, "L2 clip norm of the (L2-normalised) feature rows and of per-example gradients")
	fs.Float64Var(&c.reg, "reg", 0, "ridge λ (ls, fc, newton) or weight decay (sgd); 0 = the solver's default")
	fs.Float64Var(&c.lr, "lr", 0, "learning rate (sgd, fc, newton); 0 = the solver's default")
	fs.IntVar(&c.steps, "steps", 0, "steps (sgd: default 300; fc: 10; newton: 1)")
	fs.IntVar(&c.batch, "batch-size", 0, "sgd: expected Poisson batch size B (sampling rate B/n); B = n is full batch; 0 = n/10")
	seed := fs.Uint64("seed", 0, "seed a replayable noise source (research); without it the noise source is the hardened, unseeded one")
	nonPrivate := fs.Bool("non-private", false, "train without noise (ε = ∞): the accuracy ceiling")
	out := fs.String("out", "", "write the model to this .npz file (arrays W and bias)")
	report := fs.String("report", "", "write the privacy report to this JSON file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if math.IsInf(c.epsilon, 1) {
		return usagef("--epsilon %v: must be finite (use --non-private for a run without noise)", c.epsilon)
	}
	if *nonPrivate {
		if set["epsilon"] || set["delta"] {
			return usagef("--non-private cannot be combined with --epsilon or --delta")
		}
		c.epsilon = math.Inf(1)
	}
	if err := df.check(); err != nil {
		return err
	}
	if err := c.check(set); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	prog := startProgress(progressWriter(stderr, *asJSON), 0, "loading "+df.name())
	defer prog.finish()
	ctx = prog.watch(ctx)

	train, test, err := df.load()
	if err != nil {
		return err
	}
	if c.method == "sgd" && c.batch > train.X.Rows {
		return usagef("--batch-size %d: more than the %d training examples", c.batch, train.X.Rows)
	}
	src := dp.NewSecureSource()
	if set["seed"] {
		src = dp.NewSeededSource(*seed)
	}
	prog.describe("training " + c.method)
	f, err := fit(ctx, c, train, test, src)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	rep := f.res.Report
	prog.describe("saving")
	if *out != "" {
		if err := f.res.Model.Save(*out); err != nil {
			return err
		}
	}
	if *report != "" {
		if err := rep.Save(*report); err != nil {
			return err
		}
	}
	prog.finish()

	o := trainOutput{
		Method: rep.Method, Epsilon: jsonFloat(rep.Epsilon), Delta: rep.Delta, Accountant: rep.Accountant,
		NoiseMultipliers: []float64{}, EpsilonSpent: jsonFloat(rep.Spent), Releases: rep.Releases,
		TestAccuracy: f.acc, TrainAccuracy: f.trainAcc,
		NTrain: train.X.Rows, NTest: test.X.Rows, Dim: train.X.Cols, Classes: train.Classes,
		SolveSeconds: rep.Seconds, Source: rep.Source, Seed: rep.Seed,
		Data: df.name(), Features: df.features, Clip: c.clip, Model: *out, Report: *report,
	}
	if !*nonPrivate {
		o.NoiseMultipliers = rep.NoiseMultipliers()
	}
	o.Seconds = time.Since(start).Seconds()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(o)
	}
	privacy := fmt.Sprintf("(ε = %g, δ = %g)-DP under add/remove adjacency (accountant %s)", rep.Epsilon, rep.Delta, rep.Accountant)
	if *nonPrivate {
		privacy = "non-private (no noise: not differentially private)"
	}
	fmt.Fprintf(stdout, "%s on %s (%s): %d training and %d test examples, %d features, %d classes\n",
		rep.Method, o.Data, o.Features, o.NTrain, o.NTest, o.Dim, o.Classes)
	fmt.Fprintf(stdout, "privacy: %s\n", privacy)
	for _, r := range rep.Releases {
		if *nonPrivate {
			break
		}
		fmt.Fprintf(stdout, "  release %-12s ×%-4d noise multiplier %.4g, σ = %.4g, sampling rate %g\n",
			r.Label, r.Count, r.NoiseMultiplier, r.Sigma, r.SamplingRate)
	}
	if rep.Seed != nil {
		fmt.Fprintf(stdout, "noise: seeded source, seed %d (replayable; research use)\n", *rep.Seed)
	} else {
		fmt.Fprintf(stdout, "noise: %s source (unseeded)\n", rep.Source)
	}
	fmt.Fprintf(stdout, "test accuracy %.4f, train accuracy %.4f (%.2f s)\n", o.TestAccuracy, o.TrainAccuracy, o.Seconds)
	if *out != "" {
		fmt.Fprintf(stdout, "model written to %s\n", *out)
	}
	if *report != "" {
		fmt.Fprintf(stdout, "report written to %s\n", *report)
	}
	return nil
}
