package optim_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
)

// DP-LS on the built-in digits data at (ε, δ) = (1, 1e-5): noisy XᵀX and XᵀY,
// released once, then a ridge solve. The seeded source makes the run
// replayable; use dp.NewSecureSource for a release.
func ExampleLS() {
	trainX, trainY, testX, testY, err := digits.Split()
	if err != nil {
		log.Fatal(err)
	}
	train := &optim.Data{X: trainX, Labels: trainY, Classes: digits.Classes}
	test := &optim.Data{X: testX, Labels: testY, Classes: digits.Classes}

	s := &optim.LS{
		Privacy:  optim.Privacy{Epsilon: 1, Delta: 1e-5},
		ClipNorm: 1, // the rows are L2-normalised
	}
	res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(1))
	if err != nil {
		log.Fatal(err)
	}
	acc, err := res.Model.Accuracy(test, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("test accuracy %.3f\n", acc)
	fmt.Printf("ε spent %.3f at δ = %g (%s accountant)\n", res.Report.Spent, res.Report.Delta, res.Report.Accountant)
	for _, r := range res.Report.Releases {
		fmt.Printf("release %s: noise multiplier %.3f, σ %.3f\n", r.Label, r.NoiseMultiplier, r.Sigma)
	}
	// Output:
	// test accuracy 0.806
	// ε spent 1.000 at δ = 1e-05 (exact accountant)
	// release gram: noise multiplier 5.276, σ 5.276
	// release class_sums: noise multiplier 5.276, σ 5.276
}

// Plan says what a run will spend before any data is read, so a Ledger that
// holds a total budget across runs can refuse a run up front. Here each DP-LS
// run targets ε = 0.5 and the ledger allows ε = 1 in all, at δ = 1e-5. Under
// the exact (GDP) accountant ε composes sub-additively: three runs fit, a
// fourth does not.
func ExampleLS_plan() {
	budget := accountant.Budget{Epsilon: 1, Delta: 1e-5}
	ledger, err := accountant.NewLedger(budget, accountant.GDP{})
	if err != nil {
		log.Fatal(err)
	}
	s := &optim.LS{Privacy: optim.Privacy{Epsilon: 0.5, Delta: 1e-5}, ClipNorm: 1}
	const n = 1200 // the number of examples is public
	plan, err := s.Plan(n)
	if err != nil {
		log.Fatal(err)
	}
	mu, err := accountant.Mu(plan)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("each run: μ = %.4f (GDP), ε = 0.5\n", mu)

	for run := 1; ; run++ {
		total, err := ledger.Check(plan) // no data read yet
		if errors.Is(err, accountant.ErrBudgetExceeded) {
			fmt.Printf("run %d refused: the total would be ε = %.3f > %g\n", run, total, budget.Epsilon)
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		// Only now read the data and train; Solve records its releases in the ledger.
		trainX, trainY, _, _, err := digits.Split()
		if err != nil {
			log.Fatal(err)
		}
		train := &optim.Data{X: trainX, Labels: trainY, Classes: digits.Classes}
		if _, err := s.Solve(context.Background(), train, ledger, dp.NewSeededSource(uint64(run))); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("run %d: ledger spent ε = %.3f (planned %.3f), %d releases\n", run, ledger.Epsilon(), total, len(ledger.Entries()))
	}
	// Output:
	// each run: μ = 0.1422 (GDP), ε = 0.5
	// run 1: ledger spent ε = 0.500 (planned 0.500), 2 releases
	// run 2: ledger spent ε = 0.730 (planned 0.730), 4 releases
	// run 3: ledger spent ε = 0.911 (planned 0.911), 6 releases
	// run 4 refused: the total would be ε = 1.067 > 1
}
