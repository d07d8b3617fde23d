package audit

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
)

// A Mechanism runs the mechanism under audit once, on the dataset D′ = D ∪
// {canary} if withCanary and on D otherwise, drawing all its randomness from
// src, and returns a scalar test statistic computed from the output (for
// example the projection of the released statistic on the canary's
// direction). The statistic must be finite. Run calls a Mechanism from
// Config.Workers goroutines at once, each with its own src: it must be safe
// for concurrent use.
type Mechanism func(withCanary bool, src dp.Source) (float64, error)

// Config configures Run.
type Config struct {
	// Trials is the number of runs of the mechanism on each of D and D′
	// (2·Trials runs in all). The first half of each world's trials chooses
	// the threshold, the second half measures it. Required, at least
	// MinTrials.
	Trials int
	// Delta is the δ at which ε is bounded, in (0, 1). Required.
	Delta float64
	// Confidence is the probability, over the mechanism's randomness, that
	// EpsilonLower is below the true ε of the mechanism at Delta. Zero means
	// 0.95; otherwise in (0, 1).
	Confidence float64
	// Seed seeds the sources the mechanism draws from (dp.NewSeededSource):
	// the same Seed and Trials give the same Result, for any Workers.
	Seed uint64
	// Workers is the number of goroutines running trials; zero means
	// GOMAXPROCS.
	Workers int
}

// MinTrials is the smallest Config.Trials Run accepts.
const MinTrials = 20

// DefaultConfidence is the Confidence of a zero Config.Confidence.
const DefaultConfidence = 0.95

// Result is what Run measured.
type Result struct {
	// EpsilonLower is the distribution-free lower bound on ε at Delta: with
	// probability at least Confidence the mechanism is not (ε, Delta)-DP for
	// any ε < EpsilonLower. It is never negative; 0 says nothing was found.
	EpsilonLower float64
	// Delta and Confidence are those of the Config (Confidence defaulted).
	Delta, Confidence float64
	// Threshold and Above are the chosen test: guess "the canary is in" when
	// the statistic is > Threshold (Above) or < Threshold (!Above).
	Threshold float64
	Above     bool
	// Counts are the outcomes of the test on the measuring half of the trials.
	Counts Counts
	// FPR and FNR are the empirical error rates of the test on the measuring
	// half; FPRUpper and FNRUpper their Clopper–Pearson upper bounds, each at
	// confidence 1 − (1 − Confidence)/2, from which EpsilonLower is computed.
	FPR, FNR, FPRUpper, FNRUpper float64
	// Trials is Config.Trials: runs per world, half of them measuring.
	Trials int

	// GDPMu is the estimated separation of the statistic, (mean with canary −
	// mean without)/(pooled standard deviation), over all trials, taken in
	// absolute value; +Inf if the statistic has no spread (beyond rounding)
	// but differs between the worlds.
	// GDPMuLower is its approximate lower confidence bound at Confidence
	// (normal approximation to the standardised mean difference). GDPEpsilon
	// is the ε at Delta of a GDPMuLower-GDP mechanism. These three are valid
	// only if the statistic is Gaussian with equal variances in both worlds,
	// as for a linear statistic of a Gaussian mechanism; they are a tighter
	// but model-based estimate, never the primary bound.
	GDPMu, GDPMuLower, GDPEpsilon float64
}

// chunkTrials is the number of trials per world given one source: trials
// [c·chunkTrials, (c+1)·chunkTrials) of both worlds draw from chunk c's
// source, so results do not depend on Workers.
const chunkTrials = 1024

// chunkSeed derives the seed of chunk c from seed (SplitMix64 finaliser).
func chunkSeed(seed uint64, c int) uint64 {
	z := seed + uint64(c+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Run audits m: it runs m Trials times without and Trials times with the
// canary, chooses on the first half of each a threshold test on the
// statistic (the one whose Clopper–Pearson bound is largest there), and
// turns the test's false-positive and false-negative counts on the second
// half into the lower bound on ε of EpsilonLower. The threshold is chosen on
// data independent of the data that measures it, so no correction for the
// choice is needed and the bound holds with probability at least Confidence.
//
// It returns a *ParamError for a bad Config, an error wrapping
// ErrNilMechanism for a nil m, one wrapping ErrStatistic for a NaN or ±Inf
// statistic, and the first error of m (in trial order), wrapped.
func Run(m Mechanism, cfg Config) (Result, error) {
	if m == nil {
		return Result{}, ErrNilMechanism
	}
	if cfg.Trials < MinTrials {
		return Result{}, fmt.Errorf("audit: %w", paramError("Trials", float64(cfg.Trials), fmt.Sprintf("must be at least %d", MinTrials)))
	}
	if err := checkDelta(cfg.Delta); err != nil {
		return Result{}, err
	}
	if cfg.Confidence == 0 {
		cfg.Confidence = DefaultConfidence
	}
	if err := checkConfidence(cfg.Confidence); err != nil {
		return Result{}, err
	}
	if cfg.Workers < 0 {
		return Result{}, fmt.Errorf("audit: %w", paramError("Workers", float64(cfg.Workers), "must be ≥ 0 (0 means GOMAXPROCS)"))
	}
	s0, s1, err := collect(m, cfg)
	if err != nil {
		return Result{}, err
	}
	half := cfg.Trials / 2
	t, above := choose(s0[:half], s1[:half], cfg.Delta, cfg.Confidence)
	c := count(s0[half:], s1[half:], t, above)
	eps, a, b := epsilonLower(c, cfg.Delta, cfg.Confidence)
	r := Result{
		EpsilonLower: eps, Delta: cfg.Delta, Confidence: cfg.Confidence,
		Threshold: t, Above: above, Counts: c,
		FPR: c.FPR(), FNR: c.FNR(), FPRUpper: a, FNRUpper: b,
		Trials: cfg.Trials,
	}
	r.GDPMu, r.GDPMuLower, r.GDPEpsilon = gdpEstimate(s0, s1, cfg.Delta, cfg.Confidence)
	return r, nil
}

// collect runs the trials and returns the statistics without (s0) and with
// (s1) the canary, in trial order.
func collect(m Mechanism, cfg Config) (s0, s1 []float64, err error) {
	n := cfg.Trials
	s0, s1 = make([]float64, n), make([]float64, n)
	chunks := (n + chunkTrials - 1) / chunkTrials
	errs := make([]error, chunks)
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, chunks))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				if errs[c] = runChunk(m, cfg.Seed, c, s0, s1); errs[c] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, nil, e
		}
	}
	return s0, s1, nil
}

// runChunk runs trials [c·chunkTrials, …) of both worlds, alternating.
func runChunk(m Mechanism, seed uint64, c int, s0, s1 []float64) error {
	src := dp.NewSeededSource(chunkSeed(seed, c))
	for j := c * chunkTrials; j < min((c+1)*chunkTrials, len(s0)); j++ {
		for w, dst := range [2][]float64{s0, s1} {
			v, err := m(w == 1, src)
			if err != nil {
				return fmt.Errorf("audit: trial %d (canary %t): %w", j, w == 1, err)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("audit: trial %d (canary %t): statistic %v: %w", j, w == 1, v, ErrStatistic)
			}
			dst[j] = v
		}
	}
	return nil
}

// count returns the outcomes of the test (t, above) on s0 and s1.
func count(s0, s1 []float64, t float64, above bool) Counts {
	c := Counts{Negatives: len(s0), Positives: len(s1)}
	for _, v := range s0 {
		if guess(v, t, above) {
			c.FP++
		}
	}
	for _, v := range s1 {
		if !guess(v, t, above) {
			c.FN++
		}
	}
	return c
}

// guess is the test: true means "the canary is in".
func guess(v, t float64, above bool) bool {
	if above {
		return v > t
	}
	return v < t
}

// choose returns the threshold test that looks best on the selection trials
// s0, s1. Candidates are the pooled statistics at every rank up to 64 from
// either end and at ranks growing by 3% beyond, each tried in both
// directions: the bound lives in the tails. A candidate's score is its
// Clopper–Pearson bound on the selection counts; when the statistic has a
// spread, it is capped by the bound the same test would get from the counts
// predicted by a normal fit (means and pooled variance of s0 and s1). The
// cap damps the winner's curse of picking, among many candidates deep in a
// tail, one whose selection counts were lucky; it only steers the choice,
// so a wrong fit costs power, never validity.
func choose(s0, s1 []float64, delta, confidence float64) (t float64, above bool) {
	a, b := slices.Clone(s0), slices.Clone(s1)
	slices.Sort(a)
	slices.Sort(b)
	pool := append(slices.Clone(a), b...)
	slices.Sort(pool)
	m0, v0 := meanVar(a)
	m1, v1 := meanVar(b)
	sd := math.Sqrt((v0 + v1) / 2)
	fit := sd > 1e-9*max(math.Abs(m0), math.Abs(m1)) && !math.IsInf(sd, 0)
	n0, n1 := float64(len(a)), float64(len(b))
	best := -1.0
	var bestT float64
	var bestAbove bool
	try := func(t float64) {
		for _, above := range []bool{true, false} {
			c := Counts{Negatives: len(a), Positives: len(b)}
			var p0, p1 float64 // fitted P(say "in") without and with the canary
			if above {         // say "in" iff v > t
				c.FP = len(a) - upper(a, t)
				c.FN = upper(b, t)
				p0, p1 = normalSF((t-m0)/sd), normalSF((t-m1)/sd)
			} else { // say "in" iff v < t
				c.FP = lower(a, t)
				c.FN = len(b) - lower(b, t)
				p0, p1 = normalSF((m0-t)/sd), normalSF((m1-t)/sd)
			}
			eps, _, _ := epsilonLower(c, delta, confidence)
			if fit {
				pred := Counts{
					FP: int(math.Round(p0 * n0)), Negatives: len(a),
					FN: int(math.Round((1 - p1) * n1)), Positives: len(b),
				}
				e, _, _ := epsilonLower(pred, delta, confidence)
				eps = min(eps, e)
			}
			if eps > best {
				best, bestT, bestAbove = eps, t, above
			}
		}
	}
	for r := 0; r < len(pool); {
		try(pool[r])
		try(pool[len(pool)-1-r])
		if r < 64 {
			r++
		} else {
			r = max(r+1, int(float64(r)*1.03))
		}
	}
	return bestT, bestAbove
}

// normalSF is the standard normal survival function P(Z > x).
func normalSF(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }

// upper returns the number of elements of sorted s that are ≤ t.
func upper(s []float64, t float64) int {
	return sort.Search(len(s), func(i int) bool { return s[i] > t })
}

// lower returns the number of elements of sorted s that are < t.
func lower(s []float64, t float64) int {
	return sort.Search(len(s), func(i int) bool { return s[i] >= t })
}

// gdpEstimate returns |μ̂|, its lower confidence bound, and the ε at delta of
// that lower bound (see Result).
func gdpEstimate(s0, s1 []float64, delta, confidence float64) (mu, muLower, eps float64) {
	m0, v0 := meanVar(s0)
	m1, v1 := meanVar(s1)
	n0, n1 := float64(len(s0)), float64(len(s1))
	pooled := math.Sqrt(((n0-1)*v0 + (n1-1)*v1) / (n0 + n1 - 2))
	diff := math.Abs(m1 - m0)
	switch {
	case diff == 0:
		return 0, 0, 0
	case pooled <= 1e-9*max(math.Abs(m0), math.Abs(m1)):
		// No spread beyond rounding: the worlds are told apart exactly.
		return math.Inf(1), math.Inf(1), math.Inf(1)
	}
	mu = diff / pooled
	// Standard error of the standardised mean difference (Hedges and Olkin).
	se := math.Sqrt((n0+n1)/(n0*n1) + mu*mu/(2*(n0+n1)))
	muLower = mu - distuv.UnitNormal.Quantile(confidence)*se
	if !(muLower > 0) {
		return mu, 0, 0
	}
	if math.IsInf(muLower, 1) {
		return mu, muLower, math.Inf(1)
	}
	eps, err := accountant.GaussianEpsilon(muLower, delta)
	if err != nil { // μ beyond the accountant's range: ε is astronomically large
		return mu, muLower, math.Inf(1)
	}
	return mu, muLower, eps
}

// meanVar returns the mean and the unbiased variance of x (two-pass).
func meanVar(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		d := v - mean
		variance += d * d
	}
	return mean, variance / float64(len(x)-1)
}
