// Package stattest holds the helpers of dpopt's statistical tests: seeded
// Sources, Kolmogorov–Smirnov distances and tolerances whose false-positive
// probability is stated.
//
// Every check of a statistical test names its false-positive probability α (the
// chance that a correct implementation fails it for a given seed) and the test
// states their sum. With the default seed the tests are deterministic; α is
// the price of each new seed, chosen with -dpopt.seed:
//
//	go test ./dp/ -args -dpopt.seed=7   # another fixed seed
//	go test ./dp/ -args -dpopt.seed=0   # a fresh seed, logged for replay
package stattest

import (
	crand "crypto/rand"
	"encoding/binary"
	"flag"
	"math"
	"slices"
	"testing"

	"github.com/dpopt/dpopt/dp"
	"gonum.org/v1/gonum/stat/distuv"
)

var seedFlag = flag.Uint64("dpopt.seed", 1, "seed of the statistical tests (0: draw a fresh one and log it)")

// fresh is the seed drawn once per test binary when -dpopt.seed=0.
var fresh uint64

// Seed returns the seed of the statistical tests: 1, or the value of the
// -dpopt.seed flag; with -dpopt.seed=0 a fresh random seed, drawn once per
// test binary and logged with t.Log so that a failure can be replayed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		for fresh == 0 {
			var b [8]byte
			_, _ = crand.Read(b[:])
			fresh = binary.LittleEndian.Uint64(b[:])
		}
		s = fresh
	}
	if s != 1 {
		t.Logf("stattest: seed %d (replay with -dpopt.seed=%d)", s, s)
	}
	return s
}

// Source returns dp.NewSeededSource(Seed(t)). Each call starts the same
// stream; use Stream for more independent sources in one test.
func Source(t testing.TB) dp.Source {
	t.Helper()
	return dp.NewSeededSource(Seed(t))
}

// Stream returns the k-th independent seeded source of the test: stream 0 is
// Source(t), stream k is seeded with Seed(t) + k·0x9E3779B97F4A7C15.
func Stream(t testing.TB, k uint64) dp.Source {
	t.Helper()
	return dp.NewSeededSource(Seed(t) + k*0x9E3779B97F4A7C15)
}

// KS returns the one-sample Kolmogorov–Smirnov distance
// sup_x |F_n(x) − cdf(x)| between the empirical distribution of x and cdf.
// x is not modified. It returns NaN for an empty x.
func KS(x []float64, cdf func(float64) float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	slices.Sort(s)
	n := float64(len(s))
	var d float64
	for i, v := range s {
		f := cdf(v)
		// F_n jumps from i/n to (i+1)/n at v (ties: the jumps collapse, and
		// taking the extremes over them is still exact).
		d = max(d, f-float64(i)/n, float64(i+1)/n-f)
	}
	return d
}

// KS2 returns the two-sample Kolmogorov–Smirnov distance sup_t |F_x(t) − F_y(t)|.
// x and y are not modified. It returns NaN if either is empty.
func KS2(x, y []float64) float64 {
	if len(x) == 0 || len(y) == 0 {
		return math.NaN()
	}
	a, b := slices.Clone(x), slices.Clone(y)
	slices.Sort(a)
	slices.Sort(b)
	na, nb := float64(len(a)), float64(len(b))
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		t := min(a[i], b[j])
		for i < len(a) && a[i] == t {
			i++
		}
		for j < len(b) && b[j] == t {
			j++
		}
		d = max(d, math.Abs(float64(i)/na-float64(j)/nb))
	}
	return d
}

// DKW returns the tolerance t with P(KS(x, F) > t) ≤ alpha for n iid draws x
// of a continuous F, by the Dvoretzky–Kiefer–Wolfowitz inequality with
// Massart's constant: t = √(ln(2/α)/(2n)). For a discrete F the probability is
// no larger.
func DKW(n int, alpha float64) float64 {
	return math.Sqrt(math.Log(2/alpha) / (2 * float64(n)))
}

// KS2Tol returns a tolerance t with P(KS2(x, y) > t) ≤ alpha for independent
// samples of sizes n and m from one distribution: by the triangle inequality
// through the common F and DKW at alpha/2 for each sample.
func KS2Tol(n, m int, alpha float64) float64 {
	return DKW(n, alpha/2) + DKW(m, alpha/2)
}

// MeanTol returns the two-sided tolerance on the mean of n iid N(·, sigma²)
// draws at false-positive probability alpha: z_{1−α/2}·σ/√n (exact for
// normal data, by the CLT otherwise).
func MeanTol(sigma float64, n int, alpha float64) float64 {
	return distuv.UnitNormal.Quantile(1-alpha/2) * sigma / math.Sqrt(float64(n))
}

// VarianceRange returns the interval [lo, hi] that the sample variance
// s² = Σ(x−x̄)²/(n−1) of n iid N(·, sigma²) draws falls outside with
// probability alpha: (n−1)s²/σ² ~ χ²(n−1), cut at α/2 in each tail.
func VarianceRange(sigma float64, n int, alpha float64) (lo, hi float64) {
	chi := distuv.ChiSquared{K: float64(n - 1)}
	v := sigma * sigma / float64(n-1)
	return chi.Quantile(alpha/2) * v, chi.Quantile(1-alpha/2) * v
}

// CorrTol returns the tolerance on |r|, Pearson's correlation of n pairs of
// independent normal draws, at false-positive probability alpha: under
// independence r√(n−2)/√(1−r²) ~ Student t(n−2), so |r| ≤ t/√(n−2+t²) with
// t = t_{n−2, 1−α/2}.
func CorrTol(n int, alpha float64) float64 {
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 2)}.Quantile(1 - alpha/2)
	return t / math.Sqrt(float64(n-2)+t*t)
}

// Corr returns Pearson's correlation of x and y (equal lengths).
func Corr(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}

// NormalChecks is the number of checks CheckNormal makes, each at its alpha.
const NormalChecks = 3

// CheckNormal tests that x are iid N(0, sigma²) draws with three checks, each
// at false-positive probability alpha (3α in all): the mean within MeanTol,
// the sample variance within VarianceRange, and KS(x, N(0, σ²)) within
// DKW(n, α) + slack. slack accounts for a known deviation of the sampler from
// the continuous normal (for a grid sampler, the mass of one grid point), and
// is 0 for a continuous sampler. Failures are reported with t.Errorf, prefixed
// by name; it returns false if any check failed.
func CheckNormal(t testing.TB, name string, x []float64, sigma, alpha, slack float64) bool {
	t.Helper()
	n := len(x)
	mean, variance := meanVar(x)
	ok := true
	if tol := MeanTol(sigma, n, alpha); math.Abs(mean) > tol {
		t.Errorf("%s: mean = %.6g, want |mean| ≤ %.6g (n = %d, σ = %g, α = %g)", name, mean, tol, n, sigma, alpha)
		ok = false
	}
	if lo, hi := VarianceRange(sigma, n, alpha); variance < lo || variance > hi {
		t.Errorf("%s: variance = %.6g, want in [%.6g, %.6g] (σ² = %g, α = %g)", name, variance, lo, hi, sigma*sigma, alpha)
		ok = false
	}
	tol := DKW(n, alpha) + slack
	if d := KS(x, distuv.Normal{Sigma: sigma}.CDF); d > tol {
		t.Errorf("%s: KS distance to N(0, %g²) = %.6g, want ≤ %.6g (α = %g)", name, sigma, d, tol, alpha)
		ok = false
	}
	return ok
}

// RejectsSigma reports whether the KS test of CheckNormal, at the same alpha
// and slack, rejects N(0, wrongSigma²) for x. It is the power check of a
// test: a sampler check that cannot reject a wrong σ proves nothing. Accepting
// the wrong σ is not a false positive of a correct sampler; its probability
// is bounded by DKW as well and is negligible at the sizes used.
func RejectsSigma(x []float64, wrongSigma, alpha, slack float64) bool {
	return KS(x, distuv.Normal{Sigma: wrongSigma}.CDF) > DKW(len(x), alpha)+slack
}

func meanVar(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	return mean, variance / float64(len(x)-1)
}
