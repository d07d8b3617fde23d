package stattest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

func TestKS(t *testing.T) {
	uniform := func(x float64) float64 { return min(1, max(0, x)) }
	cases := []struct {
		name string
		x    []float64
		cdf  func(float64) float64
		want float64
	}{
		// F_n steps at 0.5 from 0 to 1; the largest gap is 0.5 on either side.
		{"one point", []float64{0.5}, uniform, 0.5},
		// Points at 1/4, 3/4: F_n − F is ±1/4 at each step.
		{"two points", []float64{0.75, 0.25}, uniform, 0.25},
		// All mass at 0.9: F(0.9) = 0.9 while F_n(0.9−) = 0.
		{"wrong place", []float64{0.9, 0.9, 0.9}, uniform, 0.9},
		{"normal at 0", []float64{0}, distuv.UnitNormal.CDF, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := append([]float64(nil), c.x...)
			if got := KS(c.x, c.cdf); math.Abs(got-c.want) > 1e-15 {
				t.Errorf("KS = %v, want %v", got, c.want)
			}
			require.Equal(t, x, c.x, "KS modified its input")
		})
	}
	if !math.IsNaN(KS(nil, uniform)) {
		t.Error("KS(nil) is not NaN")
	}
}

func TestKS2(t *testing.T) {
	cases := []struct {
		name string
		x, y []float64
		want float64
	}{
		{"equal", []float64{1, 2, 3}, []float64{3, 2, 1}, 0},
		{"disjoint", []float64{1, 2}, []float64{3, 4, 5}, 1},
		{"shifted", []float64{1, 2, 3, 4}, []float64{2, 3, 4, 5}, 0.25},
		{"ties", []float64{1, 1, 2}, []float64{1, 2, 2}, 1.0 / 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := KS2(c.x, c.y); math.Abs(got-c.want) > 1e-15 {
				t.Errorf("KS2 = %v, want %v", got, c.want)
			}
		})
	}
}

// TestTolerances checks the tolerance helpers against closed forms and known
// quantiles.
func TestTolerances(t *testing.T) {
	// DKW: √(ln(2/α)/(2n)).
	if got, want := DKW(400_000, 1e-6), math.Sqrt(math.Log(2e6)/800_000); math.Abs(got-want) > 1e-15 {
		t.Errorf("DKW = %v, want %v", got, want)
	}
	if got, want := KS2Tol(100, 400, 1e-6), DKW(100, 5e-7)+DKW(400, 5e-7); got != want {
		t.Errorf("KS2Tol = %v, want %v", got, want)
	}
	// z_{0.975} = 1.959963984540054.
	if got, want := MeanTol(2, 100, 0.05), 1.959963984540054*2/10; math.Abs(got-want) > 1e-12 {
		t.Errorf("MeanTol = %v, want %v", got, want)
	}
	// χ²(9) quantiles 0.025 / 0.975: 2.70039, 19.0228.
	lo, hi := VarianceRange(1, 10, 0.05)
	if math.Abs(lo*9-2.700389499) > 1e-6 || math.Abs(hi*9-19.02276780) > 1e-6 {
		t.Errorf("VarianceRange(1, 10, 0.05) = [%v, %v], want [2.70039/9, 19.0228/9]", lo, hi)
	}
	// t(8) 0.975 quantile 2.306004: |r| ≤ 2.306/√(8 + 2.306²).
	if got, want := CorrTol(10, 0.05), 2.306004135/math.Sqrt(8+2.306004135*2.306004135); math.Abs(got-want) > 1e-8 {
		t.Errorf("CorrTol = %v, want %v", got, want)
	}
}

// TestCheckNormal checks that CheckNormal accepts a correct sampler and that
// RejectsSigma has power. One CheckNormal at α = 1e-6: false failure ≤ 3e-6
// per seed (power check: < 1e-100 by DKW at this n).
func TestCheckNormal(t *testing.T) {
	const n, sigma, alpha = 100_000, 3.0, 1e-6
	x := make([]float64, n)
	Source(t).Normal(x)
	for i := range x {
		x[i] *= sigma
	}
	CheckNormal(t, "seeded normal", x, sigma, alpha, 0)
	if !RejectsSigma(x, 1.1*sigma, alpha, 0) {
		t.Error("no power: N(0, (1.1σ)²) not rejected")
	}
	if RejectsSigma(x, sigma, alpha, 0) {
		t.Error("RejectsSigma rejects the right σ")
	}
}

func TestStreams(t *testing.T) {
	a, b, c := Source(t), Stream(t, 0), Stream(t, 1)
	x, y, z := a.Uint64(), b.Uint64(), c.Uint64()
	if x != y {
		t.Errorf("Stream(t, 0) differs from Source(t): %x vs %x", y, x)
	}
	if x == z {
		t.Errorf("Stream(t, 1) repeats Source(t)")
	}
}
