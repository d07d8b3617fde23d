package audit_test

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/dpopt/dpopt/audit"
)

// TestClopperPearsonUpper checks the bound against its definition: the
// binomial CDF at p_U is exactly 1 − confidence. Deterministic.
func TestClopperPearsonUpper(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		conf float64
	}{
		{0, 1, 0.95}, {0, 10, 0.95}, {0, 1_000_000, 0.975}, {1, 10, 0.95}, {5, 100, 0.99},
		{59, 1_000_000, 0.975}, {500, 1_000_000, 0.9995}, {999_000, 1_000_000, 0.975}, {9, 10, 0.95},
	} {
		p, err := audit.ClopperPearsonUpper(tc.k, tc.n, tc.conf)
		if err != nil {
			t.Fatalf("ClopperPearsonUpper(%d, %d, %v): %v", tc.k, tc.n, tc.conf, err)
		}
		if p <= float64(tc.k)/float64(tc.n) || p >= 1 {
			t.Errorf("ClopperPearsonUpper(%d, %d, %v) = %v, want in (k/n, 1)", tc.k, tc.n, tc.conf, p)
			continue
		}
		// Tolerance: InvRegIncBeta and the binomial CDF agree to ~1e-10 at these sizes.
		cdf := distuv.Binomial{N: float64(tc.n), P: p}.CDF(float64(tc.k))
		if math.Abs(cdf-(1-tc.conf)) > 1e-8*(1-tc.conf)+1e-12 {
			t.Errorf("k=%d n=%d: P(X ≤ k | p_U = %v) = %v, want %v", tc.k, tc.n, p, cdf, 1-tc.conf)
		}
	}
	if p, _ := audit.ClopperPearsonUpper(0, 100, 0.95); math.Abs(p-(1-math.Pow(0.05, 0.01))) > 1e-15 {
		t.Errorf("k=0: got %v, want 1 − 0.05^(1/100) = %v", p, 1-math.Pow(0.05, 0.01))
	}
	if p, _ := audit.ClopperPearsonUpper(7, 7, 0.95); p != 1 {
		t.Errorf("k=n: got %v, want 1", p)
	}
	for _, bad := range []struct {
		k, n int
		conf float64
	}{{0, 0, 0.95}, {-1, 10, 0.95}, {11, 10, 0.95}, {1, 10, 0}, {1, 10, 1}, {1, 10, math.NaN()}} {
		var pe *audit.ParamError
		if _, err := audit.ClopperPearsonUpper(bad.k, bad.n, bad.conf); !errors.As(err, &pe) {
			t.Errorf("ClopperPearsonUpper(%d, %d, %v): got %v, want a *ParamError", bad.k, bad.n, bad.conf, err)
		}
	}
}

// TestEpsilonLower checks the bound against a hand computation and its
// monotonicity. Deterministic.
func TestEpsilonLower(t *testing.T) {
	c := audit.Counts{FP: 0, Negatives: 1000, FN: 0, Positives: 1000}
	eps, a, b, err := audit.EpsilonLower(c, 1e-5, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 - math.Pow(0.025, 1.0/1000) // each bound at 97.5%
	if math.Abs(a-want) > 1e-15 || math.Abs(b-want) > 1e-15 {
		t.Errorf("upper bounds = %v, %v, want %v", a, b, want)
	}
	if w := math.Log((1 - 1e-5 - want) / want); math.Abs(eps-w) > 1e-12 {
		t.Errorf("ε = %v, want %v", eps, w)
	}
	// Indistinguishable worlds: no bound.
	if eps, _, _, _ := audit.EpsilonLower(audit.Counts{FP: 500, Negatives: 1000, FN: 500, Positives: 1000}, 1e-5, 0.95); eps != 0 {
		t.Errorf("coin-flip test: ε = %v, want 0", eps)
	}
	// More errors, smaller bound; higher confidence, smaller bound.
	e1, _, _, _ := audit.EpsilonLower(audit.Counts{FP: 10, Negatives: 1000, FN: 900, Positives: 1000}, 1e-5, 0.95)
	e2, _, _, _ := audit.EpsilonLower(audit.Counts{FP: 20, Negatives: 1000, FN: 900, Positives: 1000}, 1e-5, 0.95)
	e3, _, _, _ := audit.EpsilonLower(audit.Counts{FP: 10, Negatives: 1000, FN: 900, Positives: 1000}, 1e-5, 0.999)
	if !(e1 > e2 && e1 > e3 && e2 > 0 && e3 > 0) {
		t.Errorf("ε(10 FP) = %v, ε(20 FP) = %v, ε(10 FP, 99.9%%) = %v: want the first largest, all positive", e1, e2, e3)
	}
	for _, bad := range []audit.Counts{
		{FP: 0, Negatives: 0, FN: 0, Positives: 1}, {FP: 0, Negatives: 1, FN: 0, Positives: 0},
		{FP: 2, Negatives: 1, FN: 0, Positives: 1}, {FP: 0, Negatives: 1, FN: -1, Positives: 1},
	} {
		var pe *audit.ParamError
		if _, _, _, err := audit.EpsilonLower(bad, 1e-5, 0.95); !errors.As(err, &pe) {
			t.Errorf("EpsilonLower(%+v): got %v, want a *ParamError", bad, err)
		}
	}
	for _, d := range []float64{0, 1, -1, math.NaN()} {
		var pe *audit.ParamError
		if _, _, _, err := audit.EpsilonLower(c, d, 0.95); !errors.As(err, &pe) {
			t.Errorf("δ = %v: got %v, want a *ParamError", d, err)
		}
	}
}
