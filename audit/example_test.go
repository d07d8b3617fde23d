package audit_test

import (
	"fmt"

	"github.com/dpopt/dpopt/audit"
)

// ExampleRun audits the Gaussian mechanism on per-class sums, calibrated to
// (ε, δ) = (2, 1e-5), and the same mechanism with its noise halved.
func ExampleRun() {
	for _, br := range []audit.Break{audit.None, audit.HalfNoise} {
		m, err := audit.Gaussian(audit.Setup{Epsilon: 2, Delta: 1e-5, Break: br})
		if err != nil {
			fmt.Println(err)
			return
		}
		r, err := audit.Run(m, audit.Config{Trials: 100_000, Delta: 1e-5, Seed: 1})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-10s claimed ε = 2, ε ≥ %.2f at %.0f%% confidence (caught: %t)\n",
			br, r.EpsilonLower, 100*r.Confidence, r.EpsilonLower > 2)
	}
	// Output:
	// none       claimed ε = 2, ε ≥ 1.33 at 95% confidence (caught: false)
	// half-noise claimed ε = 2, ε ≥ 2.45 at 95% confidence (caught: true)
}
