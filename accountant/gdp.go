package accountant

import (
	"fmt"
	"math"
)

// GDP is the exact accountant for compositions of non-subsampled Gaussian
// mechanisms (Gaussian differential privacy, Dong, Roth and Su, "Gaussian
// Differential Privacy", JRSS-B 2022, arXiv 1905.02383). Any adaptive
// composition of Gaussian releases with noise multipliers z_j is exactly one
// Gaussian mechanism with μ = √(Σ_j 1/z_j²), whose privacy profile is
//
//	δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2)
//
// (Balle and Wang, "Improving the Gaussian Mechanism for Differential
// Privacy", ICML 2018). GDP evaluates it in log space, so δ is accurate far
// below the smallest double (see LogDelta), and inverts it by safeguarded
// Newton iteration; its ε is the true ε up to rounding, rounded up.
//
// GDP accepts Gaussian, Composed and Repeated events, PoissonSampled with
// Rate 1 and SampledWithoutReplacement with BatchSize = N (both are full
// batches). Other subsampled events return an error wrapping ErrUnsupported.
// Its name is "exact". The zero value is ready to use.
type GDP struct{}

var _ Accountant = GDP{}

// Name returns "exact".
func (GDP) Name() string { return "exact" }

// Mu returns the GDP parameter μ = √(Σ_j 1/z_j²) of an event made only of
// full-batch Gaussian releases (see GDP), or an error wrapping ErrUnsupported.
func Mu(e Event) (float64, error) {
	if e == nil {
		return 0, nilParam("Event")
	}
	if err := e.Validate(); err != nil {
		return 0, err
	}
	s, err := muSquared(e)
	if err != nil {
		return 0, err
	}
	return math.Sqrt(s), nil
}

// muSquared returns Σ 1/z² over the Gaussian releases of e (validated).
func muSquared(e Event) (float64, error) {
	switch e := e.(type) {
	case Gaussian:
		return 1 / (e.NoiseMultiplier * e.NoiseMultiplier), nil
	case PoissonSampled:
		if e.Rate == 1 {
			return muSquared(e.Event)
		}
	case SampledWithoutReplacement:
		if e.BatchSize == e.N {
			return muSquared(e.Event)
		}
	case Composed:
		s := 0.0
		for _, c := range e.Events {
			v, err := muSquared(c)
			if err != nil {
				return 0, err
			}
			s += v
		}
		return s, nil
	case Repeated:
		v, err := muSquared(e.Event)
		if err != nil {
			return 0, err
		}
		return float64(e.Count) * v, nil
	}
	return 0, fmt.Errorf("accountant: exact: %T with subsampling: %w", e, ErrUnsupported)
}

// Epsilon implements Accountant: the exact ε of e at delta, rounded up.
func (GDP) Epsilon(e Event, delta float64) (float64, error) {
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	mu, err := Mu(e)
	if err != nil {
		return 0, err
	}
	return GaussianEpsilon(mu, delta)
}

// Delta implements Accountant: the exact δ of e at epsilon.
func (GDP) Delta(e Event, epsilon float64) (float64, error) {
	l, err := GDP{}.LogDelta(e, epsilon)
	return math.Exp(l), err
}

// LogDelta returns log δ(epsilon) of e, finite even where δ underflows.
func (GDP) LogDelta(e Event, epsilon float64) (float64, error) {
	if err := checkEpsilon(epsilon); err != nil {
		return 0, err
	}
	mu, err := Mu(e)
	if err != nil {
		return 0, err
	}
	return GaussianLogDelta(mu, epsilon)
}

func checkMu(mu float64) error {
	if !(mu > 0) || math.IsNaN(mu) {
		return &ParamError{Param: "Mu", Value: mu, Reason: "must be positive"}
	}
	return nil
}

func checkDelta(delta float64) error {
	if !(delta > 0 && delta < 1) {
		return &ParamError{Param: "Delta", Value: delta, Reason: "must be in (0, 1)"}
	}
	return nil
}

func checkEpsilon(epsilon float64) error {
	if !(epsilon >= 0) {
		return &ParamError{Param: "Epsilon", Value: epsilon, Reason: "must be non-negative"}
	}
	return nil
}

// GaussianLogDelta returns log δ(epsilon) of a μ-GDP mechanism (one Gaussian
// release with noise multiplier 1/mu). It is accurate for μ from 1e-4 to 1e3
// and ε up to 100 and beyond, including where δ is far below 1e-300.
func GaussianLogDelta(mu, epsilon float64) (float64, error) {
	if err := checkMu(mu); err != nil {
		return 0, err
	}
	if err := checkEpsilon(epsilon); err != nil {
		return 0, err
	}
	if math.IsInf(mu, 1) {
		return 0, nil
	}
	l, _ := gaussianLogDelta(mu, epsilon)
	return math.Min(l, 0), nil
}

// GaussianDelta returns δ(epsilon) of a μ-GDP mechanism; see GaussianLogDelta.
func GaussianDelta(mu, epsilon float64) (float64, error) {
	l, err := GaussianLogDelta(mu, epsilon)
	return math.Exp(l), err
}

// GaussianEpsilon returns the smallest ε with δ(ε) ≤ delta for a μ-GDP
// mechanism, rounded up: δ(ε) ≤ delta holds at the returned ε as computed.
func GaussianEpsilon(mu, delta float64) (float64, error) {
	if err := checkMu(mu); err != nil {
		return 0, err
	}
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	if math.IsInf(mu, 1) {
		return math.Inf(1), nil
	}
	target := math.Log(delta)
	h := func(eps float64) (float64, float64) {
		l, s := gaussianLogDelta(mu, eps)
		return l - target, s
	}
	if f0, _ := h(0); f0 <= 0 {
		return 0, nil
	}
	// δ(ε) ≤ Φ(μ/2 − ε/μ) ≤ exp(−(ε/μ − μ/2)²/2) for ε ≥ μ²/2, so this
	// upper end already satisfies δ(hi) ≤ delta; double it if rounding says
	// otherwise.
	hi := mu*mu/2 + mu*math.Sqrt(-2*target) + 1e-300
	lo := 0.0
	for i := 0; ; i++ {
		if f, _ := h(hi); f <= 0 {
			break
		}
		if i == 100 || math.IsInf(hi, 1) {
			return math.Inf(1), nil
		}
		lo, hi = hi, 2*hi
	}
	// Safeguarded Newton on log δ(ε) − log(delta), which is decreasing in ε;
	// invariant h(lo) > 0 ≥ h(hi).
	x := hi
	for i := 0; i < 100 && hi-lo > 4e-16*hi; i++ {
		f, s := h(x)
		if f > 0 {
			lo = x
		} else {
			hi = x
		}
		nx := x - f/s
		if !(nx > lo && nx < hi) || s == 0 {
			nx = lo + (hi-lo)/2
		} else if math.Abs(nx-x) <= 1e-15*x {
			// Converged: step just above the root so that δ ≤ delta there.
			for k := 0; k < 8; k++ {
				nx = math.Nextafter(nx, math.Inf(1))
				if f, _ := h(nx); f <= 0 {
					return math.Min(nx, hi), nil
				}
			}
		}
		if nx == x {
			break
		}
		x = nx
	}
	return hi, nil
}

// GaussianMu returns the largest μ for which a μ-GDP mechanism is
// (epsilon, delta)-DP, rounded down: δ_μ(epsilon) ≤ delta at the returned μ.
// One Gaussian release is (ε, δ)-DP iff its noise multiplier is at least 1/μ.
func GaussianMu(epsilon, delta float64) (float64, error) {
	if err := checkEpsilon(epsilon); err != nil {
		return 0, err
	}
	if math.IsInf(epsilon, 1) {
		return 0, &ParamError{Param: "Epsilon", Value: epsilon, Reason: "must be finite"}
	}
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	target := math.Log(delta)
	f := func(mu float64) float64 { l, _ := gaussianLogDelta(mu, epsilon); return l - target }
	// f increases with μ. Bracket in log μ.
	lo, hi := 1.0, 1.0
	for f(lo) > 0 {
		lo /= 4
		if lo < 1e-300 {
			return 0, fmt.Errorf("accountant: GaussianMu(%v, %v): %w", epsilon, delta, ErrUnreachable)
		}
		hi = lo * 4
	}
	for f(hi) <= 0 {
		lo = hi
		hi *= 4
		if hi > 1e300 {
			return lo, nil
		}
	}
	for i := 0; i < 200 && hi-lo > 2e-16*hi; i++ {
		m := lo + (hi-lo)/2
		if m == lo || m == hi {
			break
		}
		if f(m) <= 0 {
			lo = m
		} else {
			hi = m
		}
	}
	return lo, nil
}
