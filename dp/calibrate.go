package dp

import (
	"math"
)

// Analytic calibration of the Gaussian mechanism (Balle and Wang, "Improving
// the Gaussian mechanism for differential privacy: analytical calibration and
// optimal denoising", ICML 2018, arXiv 1805.06530, Theorem 8). With μ = Δ/σ,
// one release is (ε, δ)-DP exactly for
//
//	δ(ε) = Φ(μ/2 − ε/μ) − e^ε·Φ(−μ/2 − ε/μ).
//
// Writing a = μ/2 − ε/μ, b = −μ/2 − ε/μ and Φ(x) = erfcx(−x/√2)·e^{−x²/2}/2
// for x < 0, the two terms share the factor e^{−a²/2} (since
// ε − b²/2 = −a²/2), so
//
//	δ = e^{−a²/2}·(erfcx(−a/√2) − erfcx(−b/√2))/2,
//
// which is evaluated in log space and stays accurate when δ underflows.

// DeltaForGaussian returns the smallest δ for which one release of the
// Gaussian mechanism with standard deviation sigma, on a statistic of L2
// sensitivity sensitivity, is (eps, δ)-DP (add/remove-one or whatever
// adjacency the sensitivity was computed for). It is exact up to rounding: the
// relative error is about 1e-15·(1 + ε/μ²) with μ = sensitivity/sigma (below
// 1e-12 for every case of the reference vectors), and it returns 0 where δ
// underflows; LogDeltaForGaussian then still gives ln δ.
//
// eps = 0 is allowed (δ is then the total variation distance). It returns a
// *ParamError if sigma or sensitivity is not positive and finite or eps is
// negative, +Inf or NaN.
func DeltaForGaussian(sigma, eps, sensitivity float64) (float64, error) {
	l, err := LogDeltaForGaussian(sigma, eps, sensitivity)
	if err != nil {
		return 0, err
	}
	return math.Exp(l), nil
}

// LogDeltaForGaussian returns ln δ for DeltaForGaussian's δ, with the same
// relative accuracy in δ (so about 1e-15·(1 + ε/μ²) absolute in ln δ), also
// when δ is far below the smallest float64: ln δ is −Inf only when
// sensitivity/sigma underflows. Errors are as for DeltaForGaussian.
func LogDeltaForGaussian(sigma, eps, sensitivity float64) (float64, error) {
	if err := checkPositive("Sigma", sigma); err != nil {
		return 0, err
	}
	if err := checkPositive("Sensitivity", sensitivity); err != nil {
		return 0, err
	}
	if !(eps >= 0) || math.IsInf(eps, 1) {
		return 0, paramError("Epsilon", eps, "must be non-negative and finite")
	}
	return logDeltaMu(sensitivity/sigma, eps), nil
}

// logDeltaMu returns ln δ(ε) of the μ-GDP Gaussian mechanism, μ ≥ 0, ε ≥ 0.
func logDeltaMu(mu, eps float64) float64 {
	if mu == 0 {
		return math.Inf(-1)
	}
	if math.IsInf(mu, 1) {
		return 0
	}
	a := mu/2 - eps/mu
	b := -mu/2 - eps/mu // < 0
	v := -b / math.Sqrt2
	if a >= 0 {
		// ε ≤ μ²/2. δ = (Φ(a) − Φ(b)) − (e^ε − 1)·Φ(b), where
		// Φ(a) − Φ(b) = (erf(a/√2) − erf(b/√2))/2 adds two non-negative terms
		// (exact even for tiny μ) and the subtracted term is the smaller.
		width := (math.Erf(a/math.Sqrt2) - math.Erf(b/math.Sqrt2)) / 2
		// (e^ε − 1)·Φ(b) = (1 − e^−ε)·e^{−a²/2}·erfcx(v)/2, bounded for any μ.
		return math.Log(width + math.Expm1(-eps)*math.Exp(-a*a/2)*erfcx(v)/2)
	}
	u := -a / math.Sqrt2 // 0 < u < v
	return -a*a/2 + math.Log((erfcx(u)-erfcx(v))/2)
}

// erfcx returns the scaled complementary error function e^{x²}·erfc(x), for
// x ≥ −26 (it overflows below).
func erfcx(x float64) float64 {
	if x < 25 {
		// e^{x²} with x² split exactly into hi + lo, so the exponent carries
		// no rounding error: e^{x²} = e^{hi}·e^{lo}, |lo| ≤ ulp(hi)/2.
		hi := x * x
		lo := math.FMA(x, x, -hi)
		return math.Exp(hi) * (1 + lo) * math.Erfc(x)
	}
	// Laplace's continued fraction, erfcx(x) = 1/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))),
	// evaluated bottom-up; 40 levels are far more than enough at x ≥ 25.
	f := x
	for k := 40; k >= 1; k-- {
		f = x + float64(k)/2/f
	}
	return 1 / (math.Sqrt(math.Pi) * f)
}

// SigmaForGaussian returns the smallest standard deviation σ (to within
// about 1e-14 relative, never below the exact value) for which one release of
// the Gaussian mechanism on a statistic of L2 sensitivity sensitivity is
// (eps, delta)-DP, by the analytic calibration of Balle and Wang (2018): it
// solves δ(σ) = delta by bisection on DeltaForGaussian's log-space
// formula. It is not rounded up as Google's noise.SigmaForGaussian is (≤ 0.1%
// high).
//
// It returns a *ParamError if eps or sensitivity is not positive and finite
// or delta is not in (0, 1).
func SigmaForGaussian(eps, delta, sensitivity float64) (float64, error) {
	if err := checkPositive("Epsilon", eps); err != nil {
		return 0, err
	}
	if !(delta > 0 && delta < 1) {
		return 0, paramError("Delta", delta, "must be in (0, 1)")
	}
	if err := checkPositive("Sensitivity", sensitivity); err != nil {
		return 0, err
	}
	// Solve in s = σ/Δ (δ depends on μ = 1/s only); ln δ falls as s grows.
	// Compare δ itself, as DeltaForGaussian returns it, so that
	// DeltaForGaussian(σ, ε, Δ) ≤ delta holds exactly for the result.
	tooSmall := func(s float64) bool { return math.Exp(logDeltaMu(1/s, eps)) > delta }
	lo, hi := 1.0, 1.0
	for tooSmall(hi) {
		lo, hi = hi, hi*2
	}
	for lo == hi || !tooSmall(lo) {
		lo /= 2
	}
	// Invariant: tooSmall(lo) && !tooSmall(hi).
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if tooSmall(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	sigma := hi * sensitivity
	// Rounding of the product must not land below the threshold.
	for math.Exp(logDeltaMu(sensitivity/sigma, eps)) > delta {
		sigma = math.Nextafter(sigma, math.Inf(1))
	}
	if math.IsInf(sigma, 1) {
		return 0, paramError("Sensitivity", sensitivity, "too large: sigma overflows")
	}
	return sigma, nil
}
