package optim_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
)

// ExampleFC trains DP-FC on the built-in digits data set (L2-normalised
// features) at (ε, δ) = (1, 1e-5): one noisy feature covariance, then ten
// preconditioned full-batch gradient steps.
func ExampleFC() {
	xtr, ytr, xte, yte, err := digits.Split()
	if err != nil {
		log.Fatal(err)
	}
	train := &optim.Data{X: xtr, Labels: ytr, Classes: 10}
	test := &optim.Data{X: xte, Labels: yte, Classes: 10}

	s := &optim.FC{
		Privacy:      optim.Privacy{Epsilon: 1, Delta: 1e-5},
		ClipNorm:     1, // feature rows are clipped to norm 1 (a no-op on normalised rows)
		GradClipNorm: 1, // per-example gradients are clipped to norm 1
	}
	res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(1))
	if err != nil {
		log.Fatal(err)
	}
	acc, err := res.Model.Accuracy(test, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ε spent: %.3f\n", res.Report.Spent)
	for _, r := range res.Report.Releases {
		fmt.Printf("%s: %d release(s), noise multiplier %.3f\n", r.Label, r.Count, r.NoiseMultiplier)
	}
	fmt.Printf("test accuracy: %.3f\n", acc)
	// Output:
	// ε spent: 1.000
	// gram: 1 release(s), noise multiplier 12.373
	// gradient: 10 release(s), noise multiplier 12.373
	// test accuracy: 0.874
}

// ExampleNewton trains DP-Newton (one step) on the digits data set at
// (ε, δ) = (8, 1e-5).
func ExampleNewton() {
	xtr, ytr, xte, yte, err := digits.Split()
	if err != nil {
		log.Fatal(err)
	}
	train := &optim.Data{X: xtr, Labels: ytr, Classes: 10}
	test := &optim.Data{X: xte, Labels: yte, Classes: 10}

	s := &optim.Newton{Privacy: optim.Privacy{Epsilon: 8, Delta: 1e-5}, ClipNorm: 1}
	res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(1))
	if err != nil {
		log.Fatal(err)
	}
	acc, err := res.Model.Accuracy(test, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Report.Releases {
		fmt.Printf("%s: sensitivity %.3f, σ %.3f\n", r.Label, r.Sensitivity, r.Sigma)
	}
	fmt.Printf("test accuracy: %.3f\n", acc)
	// Output:
	// gradients: sensitivity 3.162, σ 2.684
	// hessians: sensitivity 0.791, σ 0.671
	// test accuracy: 0.868
}
