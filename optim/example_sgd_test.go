package optim_test

import (
	"context"
	"fmt"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
)

// ExampleSGD trains a softmax classifier on the built-in digits data with
// full-batch DP-GD at (ε, δ) = (1, 1e-5): 100 steps, gradients clipped to
// norm 1, the default learning rate. The noise multiplier is calibrated with
// the exact (GDP) accountant.
func ExampleSGD() {
	trainX, trainY, testX, testY, err := digits.Split()
	if err != nil {
		panic(err)
	}
	train := &optim.Data{X: trainX, Labels: trainY, Classes: digits.Classes}
	test := &optim.Data{X: testX, Labels: testY, Classes: digits.Classes}

	s := &optim.SGD{
		Privacy:      optim.Privacy{Epsilon: 1, Delta: 1e-5},
		Steps:        100,
		BatchSize:    train.X.Rows, // full batch: q = 1
		GradClipNorm: 1,
	}
	res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(1))
	if err != nil {
		panic(err)
	}
	acc, err := res.Model.Accuracy(test, 0)
	if err != nil {
		panic(err)
	}
	rel := res.Report.Releases[0]
	fmt.Printf("%d releases of %q, noise multiplier %.3f\n", rel.Count, rel.Label, rel.NoiseMultiplier)
	fmt.Printf("ε spent %.3f (%s)\n", res.Report.Spent, res.Report.Accountant)
	fmt.Printf("test accuracy %.3f\n", acc)
	// Output:
	// 100 releases of "gradient", noise multiplier 37.306
	// ε spent 1.000 (exact)
	// test accuracy 0.854
}
