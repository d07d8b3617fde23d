package accountant_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// DP-FC on CIFAR-sized data: one covariance release and 100 full-batch
// gradient steps, recorded in a ledger with a budget of (1, 1e-5).
func ExampleLedger() {
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: 1, Delta: 1e-5}, accountant.GDP{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := l.Spend("gram", accountant.Gaussian{NoiseMultiplier: 40}); err != nil {
		fmt.Println(err)
		return
	}
	for t := 0; t < 100; t++ {
		if err := l.Spend(fmt.Sprint("step ", t), accountant.Gaussian{NoiseMultiplier: 40}); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Printf("spent ε = %.3f of %.3f\n", l.Epsilon(), l.Budget().Epsilon)
	// A release that would exceed the budget is refused and not recorded.
	err = l.Spend("extra", accountant.Gaussian{NoiseMultiplier: 1})
	fmt.Println(errors.Is(err, accountant.ErrBudgetExceeded), len(l.Entries()))
	// Output:
	// spent ε = 0.931 of 1.000
	// true 101
}

// The noise multiplier for DP-SGD on MNIST: batch 256 of 60000, 10000 steps,
// (3, 1e-5) under RDP, and for 100 full-batch steps under the exact accountant.
func ExampleCalibrate() {
	z, err := accountant.Calibrate(accountant.RDP{}, accountant.PoissonSteps(256.0/60000.0, 10000), 3, 1e-5)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("DP-SGD: z = %.3f\n", z)
	z, err = accountant.Calibrate(accountant.GDP{}, accountant.FullBatch(100), 3, 1e-5)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("full batch: z = %.3f\n", z)
	// Output:
	// DP-SGD: z = 0.925
	// full batch: z = 13.906
}

// The exact accountant: ten releases at z = 5 are one Gaussian with
// μ = √10/5, whose δ at ε = 16 is far below what doubles hold directly.
func ExampleGDP() {
	e := accountant.Repeated{Event: accountant.Gaussian{NoiseMultiplier: 5}, Count: 10}
	mu, _ := accountant.Mu(e)
	eps, _ := accountant.GDP{}.Epsilon(e, 1e-5)
	logDelta, _ := accountant.GDP{}.LogDelta(e, 16)
	fmt.Printf("μ = %.3f, ε(1e-5) = %.3f, log10 δ(16) = %.3f\n", mu, eps, logDelta/math.Ln10)
	// Output:
	// μ = 0.632, ε(1e-5) = 2.594, log10 δ(16) = -138.928
}

// How loose each accountant is on a full-batch run.
func ExampleCompare() {
	e := accountant.Repeated{Event: accountant.Gaussian{NoiseMultiplier: 10}, Count: 100}
	cs, err := accountant.Compare(e, 1e-5, accountant.GDP{}, accountant.RDP{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Printf("%s: ε = %.3f\n", c.Accountant, c.Epsilon)
	}
	// Output:
	// exact: ε = 4.377
	// rdp: ε = 4.729
}
