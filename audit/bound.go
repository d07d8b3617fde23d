package audit

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// ClopperPearsonUpper returns the one-sided Clopper–Pearson upper confidence
// bound on the success probability p of a binomial experiment with k
// successes in n trials: the p_U such that P(X ≤ k | n, p_U) = 1 − confidence,
// which is the confidence quantile of Beta(k + 1, n − k) (1 when k = n). For
// every p, P(p ≤ p_U) ≥ confidence: the bound is exact, not asymptotic.
//
// It returns a *ParamError unless 0 ≤ k ≤ n, n ≥ 1 and 0 < confidence < 1.
func ClopperPearsonUpper(k, n int, confidence float64) (float64, error) {
	if n < 1 {
		return 0, fmt.Errorf("audit: %w", paramError("n", float64(n), "must be at least 1"))
	}
	if k < 0 || k > n {
		return 0, fmt.Errorf("audit: %w", paramError("k", float64(k), fmt.Sprintf("must be in [0, n = %d]", n)))
	}
	if err := checkConfidence(confidence); err != nil {
		return 0, err
	}
	return cpUpper(k, n, confidence), nil
}

// cpUpper is ClopperPearsonUpper on checked arguments.
func cpUpper(k, n int, confidence float64) float64 {
	switch {
	case k == n:
		return 1
	case k == 0:
		// I_p(1, n) = 1 − (1 − p)ⁿ: closed form, accurate for tiny p.
		return -math.Expm1(math.Log1p(-confidence) / float64(n))
	}
	return mathext.InvRegIncBeta(float64(k+1), float64(n-k), confidence)
}

func checkConfidence(c float64) error {
	if !(c > 0 && c < 1) {
		return fmt.Errorf("audit: %w", paramError("Confidence", c, "must be in (0, 1)"))
	}
	return nil
}

func checkDelta(d float64) error {
	if !(d > 0 && d < 1) {
		return fmt.Errorf("audit: %w", paramError("Delta", d, "must be in (0, 1)"))
	}
	return nil
}

// Counts are the outcomes of one threshold test ("was the canary in?") run on
// Negatives trials without the canary and Positives trials with it: FP of the
// Negatives said "in", FN of the Positives said "out".
type Counts struct {
	FP, Negatives int
	FN, Positives int
}

// FPR returns the empirical false-positive rate FP/Negatives.
func (c Counts) FPR() float64 { return float64(c.FP) / float64(c.Negatives) }

// FNR returns the empirical false-negative rate FN/Positives.
func (c Counts) FNR() float64 { return float64(c.FN) / float64(c.Positives) }

func (c Counts) check() error {
	switch {
	case c.Negatives < 1:
		return fmt.Errorf("audit: %w", paramError("Negatives", float64(c.Negatives), "must be at least 1"))
	case c.Positives < 1:
		return fmt.Errorf("audit: %w", paramError("Positives", float64(c.Positives), "must be at least 1"))
	case c.FP < 0 || c.FP > c.Negatives:
		return fmt.Errorf("audit: %w", paramError("FP", float64(c.FP), "must be in [0, Negatives]"))
	case c.FN < 0 || c.FN > c.Positives:
		return fmt.Errorf("audit: %w", paramError("FN", float64(c.FN), "must be in [0, Positives]"))
	}
	return nil
}

// EpsilonLower turns the outcomes of one threshold test into a lower bound on
// the ε of any (ε, δ)-DP mechanism that produced them, holding with
// probability at least confidence over the trials.
//
// If a mechanism M is (ε, δ)-DP for neighbours D and D′, every test with
// false-positive rate α = P(say "in" | D) and false-negative rate
// β = P(say "out" | D′) satisfies
//
//	α + e^ε·β ≥ 1 − δ  and  β + e^ε·α ≥ 1 − δ,
//
// so ε ≥ max(log((1 − δ − β)/α), log((1 − δ − α)/β)). EpsilonLower puts the
// one-sided Clopper–Pearson upper bounds α_U and β_U, each at confidence
// 1 − (1 − confidence)/2, in place of α and β: both hold together with
// probability at least confidence (Bonferroni), and then so does the bound,
// which decreases in α and β. It returns 0 when neither inequality says
// anything, and the upper bounds it used.
//
// It returns a *ParamError for counts outside their ranges, δ ∉ (0, 1) or
// confidence ∉ (0, 1).
func EpsilonLower(c Counts, delta, confidence float64) (eps, fprUpper, fnrUpper float64, err error) {
	if err := c.check(); err != nil {
		return 0, 0, 0, err
	}
	if err := checkDelta(delta); err != nil {
		return 0, 0, 0, err
	}
	if err := checkConfidence(confidence); err != nil {
		return 0, 0, 0, err
	}
	eps, a, b := epsilonLower(c, delta, confidence)
	return eps, a, b, nil
}

// epsilonLower is EpsilonLower on checked arguments.
func epsilonLower(c Counts, delta, confidence float64) (eps, a, b float64) {
	each := 1 - (1-confidence)/2
	a = cpUpper(c.FP, c.Negatives, each)
	b = cpUpper(c.FN, c.Positives, each)
	return boundFrom(a, b, delta), a, b
}

// boundFrom is max(0, log((1 − δ − β)/α), log((1 − δ − α)/β)).
func boundFrom(a, b, delta float64) float64 {
	eps := 0.0
	if num := 1 - delta - b; num > 0 && a > 0 {
		eps = max(eps, math.Log(num/a))
	}
	if num := 1 - delta - a; num > 0 && b > 0 {
		eps = max(eps, math.Log(num/b))
	}
	return eps
}
