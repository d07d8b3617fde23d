package accountant

import (
	"errors"
	"fmt"
	"math"
)

// Search range and precision of Calibrate.
const (
	// CalibrateMinNoise and CalibrateMaxNoise bound the noise multipliers
	// Calibrate considers.
	CalibrateMinNoise = 1e-6
	CalibrateMaxNoise = 1e9
	// calibrateRelTol is the relative width of the final bracket: far below
	// the 1e-3 at which ε visibly moves, so the result is within 0.1 % of the
	// smallest admissible noise.
	calibrateRelTol  = 1e-10
	calibrateMaxIter = 400
)

// Calibrate returns the smallest noise multiplier z, to a relative precision
// of 1e-10, such that the event build(z) is (epsilon, delta)-DP under acc:
// acc.Epsilon(build(z), delta) ≤ epsilon. The returned z always meets the
// target as acc computes it (it never overshoots the budget), while
// z·(1 − 1e-3) does not.
//
// build must give events whose privacy improves as z grows (for example
// FullBatch, PoissonSteps, CovarianceAndSteps); Calibrate brackets the answer
// by geometric steps from a starting guess and then bisects, with a bounded
// number of evaluations. When build(z) is a full-batch Gaussian composition,
// the exact GDP answer is the starting guess (and, for GDP, the answer up to
// rounding). A target that no z ≤ CalibrateMaxNoise meets (for example an ε
// below what RDP can certify at this δ) returns an error wrapping
// ErrUnreachable; errors of build and ErrUnsupported from acc are returned
// wrapped.
func Calibrate(acc Accountant, build func(z float64) (Event, error), epsilon, delta float64) (float64, error) {
	if acc == nil {
		return 0, nilParam("Accountant")
	}
	if build == nil {
		return 0, nilParam("build")
	}
	if !(epsilon > 0) || math.IsInf(epsilon, 1) {
		return 0, &ParamError{Param: "Epsilon", Value: epsilon, Reason: "target must be positive and finite"}
	}
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	if p, ok := acc.(PLD); ok && p.ValueDiscretization == 0 && !p.pilot {
		// Search with the PLD's cheap pilot pass first (a valid upper bound,
		// never below the full answer), then tighten with the full accountant
		// from there: the full ε at the pilot's z is at most the target.
		pilot := p
		pilot.pilot = true
		if zp, err := Calibrate(pilot, build, epsilon, delta); err == nil {
			if z, ok := refineCalibration(acc, build, epsilon, delta, zp); ok {
				return z, nil
			}
		}
	}
	var lastErr error
	// g is log(ε(z)/epsilon) where known (NaN otherwise), for the secant steps.
	var gz float64
	meets := func(z float64) (bool, error) {
		gz = math.NaN()
		e, err := build(z)
		if err != nil {
			return false, fmt.Errorf("accountant: calibrate: building the event at z = %g: %w", z, err)
		}
		if e == nil {
			return false, fmt.Errorf("accountant: calibrate: builder returned a nil event at z = %g", z)
		}
		eps, err := acc.Epsilon(e, delta)
		if err != nil {
			var pe *ParamError
			if errors.Is(err, ErrUnsupported) || errors.As(err, &pe) {
				return false, fmt.Errorf("accountant: calibrate: %s at z = %g: %w", acc.Name(), z, err)
			}
			// Any other failure (say a grid too large at tiny z) counts as
			// not meeting the target: that can only make z larger.
			lastErr = err
			return false, nil
		}
		gz = math.Log(eps / epsilon)
		return eps <= epsilon, nil
	}

	z0, step := 1.0, 2.0
	if g := calibrationGuess(build, epsilon, delta); g > 0 {
		z0, step = g, 1.0001
	}
	z0 = math.Min(math.Max(z0, CalibrateMinNoise), CalibrateMaxNoise)
	ok, err := meets(z0)
	if err != nil {
		return 0, err
	}
	var lo, hi float64 // invariant: !meets(lo), meets(hi)
	var glo, ghi float64
	n := 1
	if ok {
		hi, ghi = z0, gz
		for {
			lo = math.Max(hi/step, CalibrateMinNoise)
			ok, err := meets(lo)
			if err != nil {
				return 0, err
			}
			n++
			if !ok {
				glo = gz
				break
			}
			if lo == CalibrateMinNoise {
				return lo, nil // even the least noise considered meets the target
			}
			hi, ghi, step = lo, gz, step*step
		}
	} else {
		lo, glo = z0, gz
		for {
			hi = math.Min(lo*step, CalibrateMaxNoise)
			ok, err := meets(hi)
			if err != nil {
				return 0, err
			}
			n++
			if ok {
				ghi = gz
				break
			}
			if hi == CalibrateMaxNoise {
				if lastErr != nil {
					return 0, fmt.Errorf("accountant: calibrate: (ε, δ) = (%g, %g) under %s: %w (last failure: %w)",
						epsilon, delta, acc.Name(), ErrUnreachable, lastErr)
				}
				return 0, fmt.Errorf("accountant: calibrate: (ε, δ) = (%g, %g) not met under %s even at z = %g: %w",
					epsilon, delta, acc.Name(), hi, ErrUnreachable)
			}
			lo, glo, step = hi, gz, step*step
		}
	}
	// Illinois (modified regula falsi) on log ε against log z, which is
	// close to linear; bisection in log z whenever a secant step is not
	// available or would land too close to an end.
	side := 0
	for ; hi/lo-1 > calibrateRelTol && n < calibrateMaxIter; n++ {
		llo, lhi := math.Log(lo), math.Log(hi)
		t := 0.5
		if glo > 0 && ghi <= 0 && !math.IsInf(glo, 0) && !math.IsInf(ghi, 0) {
			t = glo / (glo - ghi)
			// Keep away from the ends by at least the final tolerance, and
			// fall back to bisection when the secant is stuck.
			tmin := calibrateRelTol / 4 / (lhi - llo)
			t = math.Min(math.Max(t, tmin), 1-tmin)
		}
		mid := math.Exp(llo + t*(lhi-llo))
		if mid <= lo || mid >= hi {
			mid = math.Sqrt(lo) * math.Sqrt(hi)
			if mid <= lo || mid >= hi {
				break
			}
		}
		ok, err := meets(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi, ghi = mid, gz
			if side == 1 {
				glo /= 2
			}
			side = 1
		} else {
			lo, glo = mid, gz
			if side == -1 {
				ghi /= 2
			}
			side = -1
		}
	}
	return hi, nil
}

// calibrationGuess returns the exact GDP noise multiplier when build gives
// full-batch Gaussian events whose μ scales as 1/z, or 0.
func calibrationGuess(build func(float64) (Event, error), epsilon, delta float64) float64 {
	e1, err1 := build(1)
	e2, err2 := build(2)
	if err1 != nil || err2 != nil || e1 == nil || e2 == nil {
		return 0
	}
	mu1, err1 := Mu(e1)
	mu2, err2 := Mu(e2)
	if err1 != nil || err2 != nil || math.Abs(mu1/mu2-2) > 1e-12 {
		return 0
	}
	mu, err := GaussianMu(epsilon, delta)
	if err != nil || !(mu > 0) {
		return 0
	}
	return mu1 / mu
}

// refineCalibration lowers a noise multiplier hi that meets the target under
// a looser accountant to within calibrateRefineTol of the smallest one that
// meets it under acc, checking every candidate with acc. It returns false if
// hi itself does not meet the target under acc or anything fails, and then
// the caller runs the full search.
func refineCalibration(acc Accountant, build func(z float64) (Event, error), epsilon, delta, hi float64) (float64, bool) {
	meets := func(z float64) (bool, bool) {
		e, err := build(z)
		if err != nil || e == nil {
			return false, false
		}
		eps, err := acc.Epsilon(e, delta)
		if err != nil {
			return false, false
		}
		return eps <= epsilon, true
	}
	if ok, fine := meets(hi); !ok || !fine {
		return 0, false
	}
	// Bracket from below: the pilot is within a few per cent of the answer.
	lo, step := hi, 0.02
	for i := 0; ; i++ {
		if i == 20 {
			return 0, false
		}
		lo = math.Max(hi*(1-step), CalibrateMinNoise)
		ok, fine := meets(lo)
		if !fine {
			return 0, false
		}
		if !ok {
			break
		}
		if lo == CalibrateMinNoise {
			return lo, true
		}
		hi, step = lo, math.Min(2*step, 0.5)
	}
	for hi/lo-1 > calibrateRefineTol {
		mid := lo + (hi-lo)/2
		ok, fine := meets(mid)
		if !fine {
			return 0, false
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, true
}

// calibrateRefineTol is the relative width of the final bracket of the PLD
// refinement: ε moves by about as much, far inside the 0.1 % promised.
const calibrateRefineTol = 1e-5

// FullBatch returns a builder for steps full-batch Gaussian releases with
// noise multiplier z, as in full-batch DP-GD: Repeated{Gaussian{z}, steps}.
func FullBatch(steps int) func(z float64) (Event, error) {
	return func(z float64) (Event, error) {
		e := Repeated{Event: Gaussian{NoiseMultiplier: z}, Count: steps}
		if err := e.Validate(); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// PoissonSteps returns a builder for DP-SGD: steps Poisson-sampled Gaussian
// releases at sampling rate q and noise multiplier z. Rate 1 is full batch.
func PoissonSteps(q float64, steps int) func(z float64) (Event, error) {
	return func(z float64) (Event, error) {
		e := Repeated{Event: PoissonSampled{Rate: q, Event: Gaussian{NoiseMultiplier: z}}, Count: steps}
		if err := e.Validate(); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// CovarianceAndSteps returns a builder for DP-FC: one release of the feature
// covariance with noise multiplier ratio·z, then steps gradient releases with
// noise multiplier z, Poisson-sampled at rate q (q = 1: full batch, the
// paper's setting, where the whole event is one Gaussian). The paper uses
// ratio = 1 (equal noise multipliers).
func CovarianceAndSteps(ratio, q float64, steps int) func(z float64) (Event, error) {
	return func(z float64) (Event, error) {
		if err := finitePositive("Ratio", ratio); err != nil {
			return nil, err
		}
		var step Event = Gaussian{NoiseMultiplier: z}
		if q != 1 {
			step = PoissonSampled{Rate: q, Event: step}
		}
		e := Composed{Events: []Event{
			Gaussian{NoiseMultiplier: ratio * z},
			Repeated{Event: step, Count: steps},
		}}
		if err := e.Validate(); err != nil {
			return nil, err
		}
		return e, nil
	}
}
