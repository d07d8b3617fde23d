package accountant

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/dsp/fourier"
)

// PLD is the privacy loss distribution accountant (Koskela, Jälkö, Honkela,
// "Computing Tight Differential Privacy Guarantees Using FFT", AISTATS 2020;
// Doroshenko, Ghazi, Kamath, Kumar, Manurangsi, "Connect the Dots: Tighter
// Discrete Approximations of Privacy Loss Distributions", PETS 2022).
//
// Each mechanism's privacy loss L = log(P(o)/Q(o)), o ~ P, is discretised on
// the grid {k·h : k ∈ ℤ} pessimistically, compositions are convolutions of
// the discrete distributions (computed with a real FFT, a Repeated event as a
// power in the Fourier domain), and
//
//	δ(ε) = P(L = +∞) + Σ_{k·h > ε} P(L = k·h)·(1 − e^{ε−k·h}).
//
// The result is an upper bound on the true δ(ε) for every ε, and so ε(δ) is
// never understated: the discretisation dominates the true distribution, the
// tails cut off are counted in δ (mass above the grid is put at +∞, mass below
// it is moved up to the lowest grid point), and the FFT window is chosen with a
// Chernoff bound whose tail mass, too, is added to δ. Floating-point rounding in
// the FFT limits δ to an absolute accuracy of about 1e-15 (1e-13 after 10⁵
// compositions); δ is clamped at 0 and ε at 0.
//
// Supported events: Gaussian (either adjacency: the event has sensitivity 1
// under its own adjacency, so the privacy loss is the same), PoissonSampled of
// a Gaussian (or of a Repeated or Composed of full-batch Gaussians, which is
// one Gaussian on the same subsample; nested PoissonSampled multiply their
// rates), Composed and Repeated of those. For subsampled events both
// directions of add/remove adjacency are composed separately and the worse one
// is reported, as dp_accounting does. Full-batch Gaussians are composed exactly
// (μ² = Σ count/z²) before discretisation. SampledWithoutReplacement returns an
// error wrapping ErrUnsupported.
//
// The zero value chooses the grid interval h adaptively: a coarse first pass
// estimates ε (or the slope of δ) and the loss variance, and h is then chosen so
// that the modelled grid error — connect-the-dots adds a variance of at most
// h²/4, about h²/6 on average, per composed mechanism — is below 1e-5·ε (or
// changes δ by less than 1e-5 relative), subject to the grid size. The
// answer is the smaller of the two passes' (both valid upper bounds).
//
// PLD values are safe for concurrent use.
type PLD struct {
	// ValueDiscretization forces the grid interval h of the privacy loss (in
	// nats). Zero selects it adaptively, as described above.
	ValueDiscretization float64
	// Discretization selects how a continuous privacy loss is put on the grid.
	// The zero value is PLDConnectDots.
	Discretization PLDDiscretization
	// MaxGridPoints caps the number of grid points of any one distribution
	// (about 50 bytes of memory each during composition). Zero means
	// DefaultPLDMaxGridPoints. With a forced ValueDiscretization, an event that
	// needs more points is refused with an error; the adaptive mode coarsens h
	// instead, and refuses only when even h = (loss range)/MaxGridPoints fails.
	MaxGridPoints int

	// pilot makes the adaptive mode stop after its coarse pilot pass, whose
	// answer is also a valid upper bound: Calibrate searches with it first.
	pilot bool
}

// PLDDiscretization is how a PLD accountant puts a continuous privacy loss
// distribution on its grid.
type PLDDiscretization int

const (
	// PLDConnectDots places the mass of each grid cell on its two ends so that
	// δ(ε) is exact at grid points and linearly interpolated in e^ε between
	// them (Doroshenko et al. 2022): the tightest pessimistic discretisation.
	PLDConnectDots PLDDiscretization = iota
	// PLDRoundUp moves the mass of each grid cell to its upper end (the
	// "pessimistic estimate" of Meiser and Mohammadi's privacy buckets).
	PLDRoundUp
)

// DefaultPLDMaxGridPoints is the default of PLD.MaxGridPoints: 2²³ ≈ 8.4
// million points, about 400 MB at peak.
const DefaultPLDMaxGridPoints = 1 << 23

// ErrPLDGridTooLarge is returned, wrapped, when a PLD computation would need
// more grid points than PLD.MaxGridPoints allows.
var ErrPLDGridTooLarge = errors.New("accountant: pld: grid too large")

var _ Accountant = PLD{}

// The zero PLD (adaptive grid) is registered as "pld".
func init() { Register(PLD{}) }

// Name implements Accountant: "pld".
func (PLD) Name() string { return "pld" }

// Epsilon implements Accountant. It returns +Inf if delta is not above the
// mass the computation could not resolve (about 1e-15), and 0 if delta ≥ 1.
func (a PLD) Epsilon(e Event, delta float64) (float64, error) {
	if math.IsNaN(delta) || delta < 0 || delta > 1 {
		return 0, &ParamError{Param: "delta", Value: delta, Reason: "must be in [0, 1]"}
	}
	if delta == 1 {
		return 0, nil
	}
	return a.run(e, pldQuery{delta: delta, isEps: true})
}

// Delta implements Accountant. epsilon must be non-negative; Delta(e, +Inf)
// is 0, since no supported event has an infinite privacy loss.
func (a PLD) Delta(e Event, epsilon float64) (float64, error) {
	if math.IsNaN(epsilon) || epsilon < 0 {
		return 0, &ParamError{Param: "epsilon", Value: epsilon, Reason: "must be non-negative"}
	}
	if math.IsInf(epsilon, 1) {
		if err := a.check(e); err != nil {
			return 0, err
		}
		return 0, nil
	}
	return a.run(e, pldQuery{eps: epsilon})
}

type pldQuery struct {
	isEps bool
	delta float64 // for ε queries
	eps   float64 // for δ queries
}

const (
	// pldTruncZ is where each single-mechanism distribution is cut: Φc(9.5) ≈
	// 1.1e-21 of mass per mechanism, counted in δ.
	pldTruncZ = 9.5
	// pldWindowTail is the Chernoff tail mass allowed on each side of the FFT
	// window of a composition.
	pldWindowTail = 1e-16
	// pldTargetRel is the adaptive mode's target for the modelled grid error,
	// relative to ε (or to δ for δ queries).
	pldTargetRel = 1e-5
	// pldPilotPoints is the grid size of the widest part in the pilot pass.
	pldPilotPoints = 1 << 15
	// pldMinPoints is the grid size the adaptive mode uses at least (cheap).
	pldMinPoints = 1 << 17
	// pldAdaptivePoints is the grid size the adaptive mode tries not to exceed.
	pldAdaptivePoints = 1 << 19
	// pldNoiseRel: an FFT noise estimate above this fraction of δ triggers
	// a tilted composition.
	pldNoiseRel = 1e-5
	// pldMaxCount caps the total number of composed mechanisms.
	pldMaxCount = 1 << 40
	// pldMaxComponents caps the number of distinct subsampled mechanisms.
	pldMaxComponents = 256
)

func (a PLD) check(e Event) error {
	if a.ValueDiscretization != 0 && !(a.ValueDiscretization > 0 && a.ValueDiscretization < math.Inf(1)) {
		return &ParamError{Param: "ValueDiscretization", Value: a.ValueDiscretization, Reason: "must be zero (adaptive) or positive and finite"}
	}
	if a.Discretization != PLDConnectDots && a.Discretization != PLDRoundUp {
		return &ParamError{Param: "Discretization", Value: float64(a.Discretization), Reason: "unknown discretization"}
	}
	if a.MaxGridPoints < 0 {
		return &ParamError{Param: "MaxGridPoints", Value: float64(a.MaxGridPoints), Reason: "must be non-negative"}
	}
	if e == nil {
		return nilParam("Event")
	}
	return e.Validate()
}

func (a PLD) maxPoints() int {
	if a.MaxGridPoints > 0 {
		return a.MaxGridPoints
	}
	return DefaultPLDMaxGridPoints
}

// run evaluates the query on e.
func (a PLD) run(e Event, qy pldQuery) (float64, error) {
	if err := a.check(e); err != nil {
		return 0, err
	}
	plan, err := newPLDPlan(e)
	if err != nil {
		return 0, err
	}
	dirs := plan.directions()
	if a.ValueDiscretization > 0 {
		res := math.Inf(-1)
		for _, d := range dirs {
			r, err := a.evalTilted(d, a.ValueDiscretization, a.maxPoints(), qy, math.NaN(), false)
			if err != nil {
				return 0, err
			}
			res = math.Max(res, r.answer)
		}
		return res, nil
	}
	return a.adaptive(dirs, qy)
}

// evalTilted evaluates one direction at interval h. Unless tilt is set, it
// first runs an untilted composition; if its FFT rounding noise is not far
// below the δ of interest, or if tilt is set, it runs a composition tilted at
// the answer's region (see pldCompose), with guess as the ε of that region
// for ε queries (NaN: use the untilted answer).
func (a PLD) evalTilted(d pldDirection, h float64, maxPts int, qy pldQuery, guess float64, tilt bool) (pldResult, error) {
	bases, err := a.discretizeAll(d, h, maxPts)
	if err != nil {
		return pldResult{}, err
	}
	if !tilt || (qy.isEps && math.IsNaN(guess)) {
		r, err := a.evalDirection(d, bases, h, maxPts, qy, 0)
		if err != nil {
			return r, err
		}
		level := qy.delta
		if !qy.isEps {
			level = r.answer
		}
		if r.noise <= pldNoiseRel*level {
			return r, nil
		}
		if qy.isEps {
			if !(r.answer > 0) || math.IsInf(r.answer, 1) {
				return r, nil
			}
			guess = r.answer
		}
	}
	if !qy.isEps {
		guess = qy.eps
	}
	r, err := a.evalDirection(d, bases, h, maxPts, qy, guess)
	r.noisy = true
	return r, err
}

// adaptive runs a pilot pass on a coarse grid, then a second pass on a grid
// fine enough by the error model, and returns the tighter of the two.
func (a PLD) adaptive(dirs []pldDirection, qy pldQuery) (float64, error) {
	maxPts := a.maxPoints()
	pilots := make([]pldResult, len(dirs))
	hs := make([]float64, len(dirs))
	scale := 0.0 // the answer's scale: max over directions
	for i, d := range dirs {
		sRMS := math.Sqrt(d.variance / float64(d.count))
		h := math.Min(sRMS, math.Sqrt(d.variance)/2000)
		h = math.Max(h, d.span/pldPilotPoints)
		var r pldResult
		var err error
		for range 8 {
			r, err = a.evalTilted(d, h, maxPts, qy, math.NaN(), false)
			if !errors.Is(err, ErrPLDGridTooLarge) {
				break
			}
			h *= 4
		}
		if err != nil {
			return 0, err
		}
		pilots[i], hs[i] = r, h
		scale = math.Max(scale, r.answer)
	}
	if a.pilot || qy.isEps && (math.IsInf(scale, 1) || scale == 0) {
		return scale, nil // the pilot answers are valid upper bounds on their own
	}
	res := math.Inf(-1)
	for i, d := range dirs {
		p := pilots[i]
		// Tolerated error, in ε units.
		var tolEps float64
		if qy.isEps {
			tolEps = pldTargetRel * scale
		} else if p.slope > 0 {
			tolEps = pldTargetRel / p.slope // δ queries: the slope of log δ
		} else {
			tolEps = pldTargetRel * math.Max(qy.eps, math.Sqrt(d.variance))
		}
		z := 0.0
		ref := qy.eps
		if qy.isEps {
			ref = p.answer
		}
		if d.variance > 0 {
			z = math.Max(ref-d.mean, 0) / d.variance
		}
		h := math.Sqrt(12 * tolEps / (float64(d.count) * (1 + z)))
		width := math.Max(p.width, p.baseWidth)
		if width > 0 {
			h = math.Min(h, width/pldMinPoints)
			h = math.Max(h, width/pldAdaptivePoints)
			h = math.Max(h, width/float64(maxPts/2))
		}
		if h >= hs[i] || !(h > 0) {
			res = math.Max(res, p.answer)
			continue
		}
		guess := math.NaN()
		if qy.isEps && p.answer > 0 && !math.IsInf(p.answer, 1) {
			guess = p.answer
		}
		r, err := a.evalTilted(d, h, maxPts, qy, guess, p.noisy)
		if errors.Is(err, ErrPLDGridTooLarge) {
			res = math.Max(res, p.answer)
			continue
		}
		if err != nil {
			return 0, err
		}
		res = math.Max(res, math.Min(r.answer, p.answer))
	}
	return res, nil
}

// pldComponent is one mechanism, composed count times: a full-batch Gaussian
// with μ² = mu2 if q == 1, else a Poisson-subsampled one.
type pldComponent struct {
	q, mu2 float64
	count  int64
}

// pldPlan is an event reduced to components.
type pldPlan struct {
	gaussMu2 float64 // all full-batch Gaussians, composed exactly
	sub      []pldComponent
}

func newPLDPlan(e Event) (*pldPlan, error) {
	p := &pldPlan{}
	counts := map[[2]float64]int64{}
	if err := p.flatten(e, 1, counts); err != nil {
		return nil, err
	}
	if len(counts) > pldMaxComponents {
		return nil, fmt.Errorf("accountant: pld: %d distinct subsampled mechanisms, at most %d supported", len(counts), pldMaxComponents)
	}
	for k, c := range counts {
		p.sub = append(p.sub, pldComponent{q: k[0], mu2: k[1], count: c})
	}
	sort.Slice(p.sub, func(i, j int) bool {
		if p.sub[i].q != p.sub[j].q {
			return p.sub[i].q < p.sub[j].q
		}
		return p.sub[i].mu2 < p.sub[j].mu2
	})
	if !(p.gaussMu2 < math.Inf(1)) {
		return nil, fmt.Errorf("accountant: pld: composed Gaussian μ² = %v is not finite", p.gaussMu2)
	}
	return p, nil
}

func mulCount(a, b int64) (int64, error) {
	if b > 0 && a > pldMaxCount/b {
		return 0, fmt.Errorf("accountant: pld: more than 2^40 composed mechanisms")
	}
	return a * b, nil
}

func (p *pldPlan) flatten(e Event, mult int64, counts map[[2]float64]int64) error {
	switch ev := e.(type) {
	case Gaussian:
		p.gaussMu2 += float64(mult) / (ev.NoiseMultiplier * ev.NoiseMultiplier)
		return nil
	case Repeated:
		m, err := mulCount(mult, int64(ev.Count))
		if err != nil {
			return err
		}
		return p.flatten(ev.Event, m, counts)
	case Composed:
		for _, sub := range ev.Events {
			if err := p.flatten(sub, mult, counts); err != nil {
				return err
			}
		}
		return nil
	case PoissonSampled:
		q, mu2, err := pldSubsampled(ev)
		if err != nil {
			return err
		}
		if q == 1 {
			p.gaussMu2 += float64(mult) * mu2
			return nil
		}
		k := [2]float64{q, mu2}
		c, err := mulCount(1, counts[k]+mult)
		if err != nil {
			return err
		}
		counts[k] = c
		return nil
	case SampledWithoutReplacement:
		return fmt.Errorf("accountant: pld: sampling without replacement: %w", ErrUnsupported)
	}
	return fmt.Errorf("accountant: pld: event %T: %w", e, ErrUnsupported)
}

// pldSubsampled reduces a PoissonSampled event to (rate, μ²) of one Gaussian
// on the subsample.
func pldSubsampled(ev PoissonSampled) (q, mu2 float64, err error) {
	switch in := ev.Event.(type) {
	case PoissonSampled:
		q2, m, err := pldSubsampled(in)
		if err != nil {
			return 0, 0, err
		}
		return ev.Rate * q2, m, nil
	default:
		m, err := pldFullBatchMu2(in)
		if err != nil {
			return 0, 0, err
		}
		return ev.Rate, m, nil
	}
}

// pldFullBatchMu2 returns μ² of an event made of full-batch Gaussians only.
func pldFullBatchMu2(e Event) (float64, error) {
	switch ev := e.(type) {
	case Gaussian:
		return 1 / (ev.NoiseMultiplier * ev.NoiseMultiplier), nil
	case Repeated:
		m, err := pldFullBatchMu2(ev.Event)
		return float64(ev.Count) * m, err
	case Composed:
		s := 0.0
		for _, sub := range ev.Events {
			m, err := pldFullBatchMu2(sub)
			if err != nil {
				return 0, err
			}
			s += m
		}
		return s, nil
	}
	return 0, fmt.Errorf("accountant: pld: Poisson sampling of %T: %w", e, ErrUnsupported)
}

// pldDirection is the list of continuous privacy losses composed in one
// direction of the adjacency, with summary statistics for the adaptive grid.
type pldDirection struct {
	parts    []pldContinuous
	counts   []int64
	count    int64   // number of discretised mechanisms
	mean     float64 // E[L] of the composition
	variance float64 // Var[L] of the composition
	span     float64 // width of the widest single part's loss range
}

func (p *pldPlan) directions() []pldDirection {
	var dirs []pldDirection
	nd := 1
	if len(p.sub) > 0 {
		nd = 2
	}
	for dir := range nd {
		var d pldDirection
		add := func(c pldContinuous, n int64) {
			d.parts = append(d.parts, c)
			d.counts = append(d.counts, n)
			d.count += n
			m, v := c.stats()
			d.mean += float64(n) * m
			d.variance += float64(n) * v
			lo, hi := c.lossRange()
			d.span = math.Max(d.span, hi-lo)
		}
		if p.gaussMu2 > 0 {
			add(pldGaussian{mu2: p.gaussMu2}, 1)
		}
		for _, s := range p.sub {
			add(pldSampled{q: s.q, s: 1 / math.Sqrt(s.mu2), remove: dir == 0}, s.count)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// pldCDF holds P(L ≤ ℓ) and P(L > ℓ) for one distribution, each accurate in
// its small tail.
type pldCDF struct{ lo, hi float64 }

// massTo returns P(ℓ < L ≤ ℓ') from the CDFs at ℓ and ℓ' > ℓ, differencing
// the representation that does not cancel.
func (c pldCDF) massTo(d pldCDF) float64 {
	var m float64
	if d.lo <= 0.5 {
		m = d.lo - c.lo
	} else {
		m = c.hi - d.hi
	}
	return math.Max(m, 0)
}

// phiPair returns Φ(z) and 1 − Φ(z), each accurate where it is small.
func phiPair(z float64) (lo, hi float64) {
	t := 0.5 * math.Erfc(math.Abs(z)/math.Sqrt2)
	if z < 0 {
		return t, 1 - t
	}
	return 1 - t, t
}

// pldContinuous is a privacy loss distribution before discretisation: the
// pair (P, Q) of a dominating pair of distributions, seen through the loss.
type pldContinuous interface {
	// at returns the CDFs of L under P and under Q at ℓ.
	at(l float64) (p, q pldCDF)
	// lossRange returns [lo, hi]: P-mass below lo and above hi is at most
	// Φc(pldTruncZ) each (and is handled pessimistically).
	lossRange() (lo, hi float64)
	// stats returns E_P[L] and Var_P[L].
	stats() (mean, variance float64)
}

// pldGaussian: full-batch Gaussian mechanism with μ² = mu2. The loss is
// N(μ²/2, μ²) under P and N(−μ²/2, μ²) under Q.
type pldGaussian struct{ mu2 float64 }

func (g pldGaussian) at(l float64) (p, q pldCDF) {
	mu := math.Sqrt(g.mu2)
	p.lo, p.hi = phiPair((l - g.mu2/2) / mu)
	q.lo, q.hi = phiPair((l + g.mu2/2) / mu)
	return p, q
}

func (g pldGaussian) lossRange() (lo, hi float64) {
	mu := math.Sqrt(g.mu2)
	return g.mu2/2 - pldTruncZ*mu, g.mu2/2 + pldTruncZ*mu
}

func (g pldGaussian) stats() (float64, float64) { return g.mu2 / 2, g.mu2 }

// pldSampled: Poisson-subsampled Gaussian with rate q and noise multiplier s.
// remove: P = (1−q)N(0, s²) + qN(1, s²), Q = N(0, s²), loss increasing in x.
// add:    P = N(0, s²), Q = (1−q)N(0, s²) + qN(1, s²), loss decreasing in x.
type pldSampled struct {
	q, s   float64
	remove bool
}

// logRatio returns log((1−q) + q·e^a), a = (2x−1)/(2s²), without overflow
// or cancellation.
func (d pldSampled) logRatio(x float64) float64 {
	a := (2*x - 1) / (2 * d.s * d.s)
	if a < 500 {
		return math.Log1p(d.q * math.Expm1(a))
	}
	return a + math.Log(d.q) + math.Log1p((1-d.q)*math.Exp(-a)/d.q)
}

// xOf inverts logRatio: the x with logRatio(x) = v, or −Inf if v ≤ log(1−q).
func (d pldSampled) xOf(v float64) float64 {
	var a float64
	if v < 600 {
		u := math.Expm1(v) / d.q
		if u <= -1 {
			return math.Inf(-1)
		}
		a = math.Log1p(u)
	} else {
		a = v - math.Log(d.q) + math.Log1p(-(1-d.q)*math.Exp(-v))
	}
	return d.s*d.s*a + 0.5
}

func (d pldSampled) mix(x float64) (lo, hi float64) {
	l0, h0 := phiPair(x / d.s)
	l1, h1 := phiPair((x - 1) / d.s)
	return (1-d.q)*l0 + d.q*l1, (1-d.q)*h0 + d.q*h1
}

func (d pldSampled) at(l float64) (p, q pldCDF) {
	if d.remove {
		x := d.xOf(l)
		p.lo, p.hi = d.mix(x)
		q.lo, q.hi = phiPair(x / d.s)
		return p, q
	}
	// L ≤ l ⟺ x ≥ x(−l).
	x := d.xOf(-l)
	hi, lo := phiPair(x / d.s)
	p = pldCDF{lo: lo, hi: hi}
	hi, lo = d.mix(x)
	q = pldCDF{lo: lo, hi: hi}
	return p, q
}

func (d pldSampled) lossRange() (lo, hi float64) {
	if d.remove {
		return math.Log1p(-d.q), d.logRatio(1 + pldTruncZ*d.s)
	}
	return -d.logRatio(pldTruncZ * d.s), -math.Log1p(-d.q)
}

// stats integrates E_P[L] and E_P[L²] with Simpson's rule in x.
func (d pldSampled) stats() (float64, float64) {
	const n = 4000
	lo, hi := -pldTruncZ*d.s, 1+pldTruncZ*d.s
	step := (hi - lo) / n
	var m1, m2 float64
	for i := 0; i <= n; i++ {
		x := lo + float64(i)*step
		w := 2.0
		switch {
		case i == 0 || i == n:
			w = 1
		case i%2 == 1:
			w = 4
		}
		l := d.logRatio(x)
		dens := math.Exp(-x * x / (2 * d.s * d.s))
		if d.remove {
			dens = (1-d.q)*dens + d.q*math.Exp(-(x-1)*(x-1)/(2*d.s*d.s))
		} else {
			l = -l
		}
		dens /= d.s * math.Sqrt(2*math.Pi)
		m1 += w * dens * l
		m2 += w * dens * l * l
	}
	m1 *= step / 3
	m2 *= step / 3
	return m1, math.Max(m2-m1*m1, 0)
}

// pldPMF is a discrete privacy loss distribution: mass p[i] at loss
// (lo+i)·h, and inf at +∞. adj is added to δ: a bound on mass that the
// window of a composition may have misplaced.
type pldPMF struct {
	lo  int64
	p   []float64
	inf float64
	adj float64
	// tilted: masses far below the window's top half may be inaccurate.
	tilted bool
	// noise estimates the total FFT rounding error in the masses (twice the
	// mass of the negative values rounding produced, which are set to 0).
	noise float64
}

func gridTooLarge(n float64, h float64, maxPts int) error {
	return fmt.Errorf("%w: %.3g points at interval %g, limit %d", ErrPLDGridTooLarge, n, h, maxPts)
}

// discretize puts c on the grid of interval h.
func (a PLD) discretize(c pldContinuous, h float64, maxPts int) (pldPMF, error) {
	lo, hi := c.lossRange()
	flo, fhi := math.Floor(lo/h), math.Ceil(hi/h)
	if n := fhi - flo + 1; !(n <= float64(maxPts)) {
		return pldPMF{}, gridTooLarge(n, h, maxPts)
	}
	kLo, kHi := int64(flo), int64(fhi)
	n := int(kHi - kLo + 1)
	out := pldPMF{lo: kLo, p: make([]float64, n)}
	prevP, prevQ := c.at(float64(kLo) * h)
	out.p[0] += prevP.lo // below the grid: moved up to its lowest point
	emh := math.Exp(-h)
	omemh := -math.Expm1(-h)
	connect := a.Discretization == PLDConnectDots
	for i := 0; i < n-1; i++ {
		curP, curQ := c.at(float64(kLo+int64(i)+1) * h)
		pm := prevP.massTo(curP)
		if pm > 0 {
			if connect {
				// Split pm between the cell's ends so that both the P-mass
				// and the Q-mass qm of the cell are kept: then δ(ε) is exact
				// at the ends and a chord of a convex function between them.
				qm := prevQ.massTo(curQ)
				l := float64(kLo+int64(i)) * h
				var qe float64
				if qm > 0 {
					qe = math.Exp(math.Log(qm) + l)
				}
				lower := (qe - pm*emh) / omemh
				lower = math.Min(math.Max(lower, 0), pm)
				out.p[i] += lower
				out.p[i+1] += pm - lower
			} else {
				out.p[i+1] += pm
			}
		}
		prevP, prevQ = curP, curQ
	}
	out.inf = prevP.hi // above the grid: infinite loss
	return out, nil
}

// pldResult is the answer of one direction plus what the adaptive mode needs.
type pldResult struct {
	answer    float64
	slope     float64 // −d log δ/dε at the query ε (δ queries)
	width     float64 // loss width of the composed window
	baseWidth float64 // loss width of the widest discretised part
	noise     float64 // FFT noise estimate of the composition
	noisy     bool    // a tilted composition was needed
}

func (a PLD) discretizeAll(d pldDirection, h float64, maxPts int) ([]pldPMF, error) {
	bases := make([]pldPMF, len(d.parts))
	for i, c := range d.parts {
		b, err := a.discretize(c, h, maxPts)
		if err != nil {
			return nil, err
		}
		bases[i] = b
	}
	return bases, nil
}

// evalDirection composes bases (the parts of d discretised at h) and answers
// the query; tiltAt > 0 tilts the composition there.
func (a PLD) evalDirection(d pldDirection, bases []pldPMF, h float64, maxPts int, qy pldQuery, tiltAt float64) (pldResult, error) {
	var res pldResult
	for _, b := range bases {
		res.baseWidth = math.Max(res.baseWidth, float64(len(b.p))*h)
	}
	pmf, err := pldCompose(bases, d.counts, h, maxPts, tiltAt)
	if err != nil {
		return res, err
	}
	bottom := float64(pmf.lo) * h
	if pmf.tilted && !qy.isEps && qy.eps < bottom {
		// The tilted window does not reach down to ε: redo untilted.
		if pmf, err = pldCompose(bases, d.counts, h, maxPts, 0); err != nil {
			return res, err
		}
	}
	res.width = float64(len(pmf.p)) * h
	res.noise = pmf.noise
	if qy.isEps {
		res.answer = pmf.epsilon(h, qy.delta)
		return res, nil
	}
	res.answer = pmf.delta(h, qy.eps)
	if res.answer > 0 {
		eta := math.Max(4*h, 1e-3*math.Max(qy.eps, 1e-3))
		if d2 := pmf.delta(h, qy.eps+eta); d2 > 0 && d2 < res.answer {
			res.slope = (math.Log(res.answer) - math.Log(d2)) / eta
		}
	}
	return res, nil
}

// pldLogMGF evaluates log E[e^{tK}] of a normalised pmf, compressed into
// bins, each bin's mass placed at its upper end for t > 0 and its lower end
// for t < 0, so that the value is an upper bound.
type pldLogMGF struct {
	lo     int64
	idxUp  []float64 // bin upper ends, relative to lo
	idxDn  []float64 // bin lower ends, relative to lo
	logW   []float64 // logs of the normalised bin masses
	hiRel  float64
	mean   float64
	varIdx float64
}

func newPLDLogMGF(b pldPMF) (pldLogMGF, error) {
	total := 0.0
	for _, v := range b.p {
		total += v
	}
	if !(total > 0) {
		return pldLogMGF{}, errors.New("accountant: pld: internal: distribution has no finite mass")
	}
	n := len(b.p)
	g := pldLogMGF{lo: b.lo, hiRel: float64(n - 1)}
	var m1, m2 float64
	for i, v := range b.p {
		m1 += v / total * float64(i)
		m2 += v / total * float64(i) * float64(i)
	}
	g.mean = m1
	g.varIdx = math.Max(m2-m1*m1, 0)
	// Bins are single points near the mean and grow geometrically (width
	// ≤ 1/64 of the distance to the mean) in the tails: moving a tail point
	// by 1/64 of its distance changes its term like a 1.6 % larger t would,
	// whereas uniform bins would shift every composed step by a bin width.
	mid := min(max(int(math.Round(m1)), 0), n-1)
	addBin := func(s, e int) {
		w := 0.0
		for _, v := range b.p[s:e] {
			w += v
		}
		if w == 0 {
			return
		}
		g.idxDn = append(g.idxDn, float64(s))
		g.idxUp = append(g.idxUp, float64(e-1))
		g.logW = append(g.logW, math.Log(w/total))
	}
	for s := mid; s < n; {
		e := min(s+max(1, (s-mid)/64), n)
		addBin(s, e)
		s = e
	}
	for e := mid; e > 0; {
		s := max(e-max(1, (mid-e)/64), 0)
		addBin(s, e)
		e = s
	}
	return g, nil
}

// at returns log E[e^{t(K−lo)}] (an upper bound).
func (g pldLogMGF) at(t float64) float64 {
	idx := g.idxUp
	if t < 0 {
		idx = g.idxDn
	}
	shift := math.Inf(-1)
	for i, lw := range g.logW {
		shift = math.Max(shift, t*idx[i]+lw)
	}
	s := 0.0
	for i, lw := range g.logW {
		s += math.Exp(t*idx[i] + lw - shift)
	}
	return shift + math.Log(s)
}

// fftSize returns the smallest 2^a·3^b·5^c ≥ n.
func fftSize(n int) int {
	best := math.MaxInt
	for p2 := 1; p2 < 2*n && p2 > 0; p2 *= 2 {
		for p3 := p2; p3 < 2*n; p3 *= 3 {
			for p5 := p3; p5 < 2*n; p5 *= 5 {
				if p5 >= n && p5 < best {
					best = p5
				}
			}
		}
	}
	return best
}

// pldCompose convolves bases[i] counts[i] times each, on a window of the
// grid chosen with a Chernoff bound, by a real FFT of the window's size.
//
// If tiltAt > 0 the convolution is done on exponentially tilted
// distributions, p_k·e^{λk}/Z, with λ the Chernoff exponent of the tail at
// loss tiltAt; convolution commutes with tilting, so the result is untilted
// at the end. The FFT's rounding error, about 1e-16 of the largest mass,
// amplified by the Fourier-domain power, then sits far below the masses near
// tiltAt, which alone determine δ there; masses far below tiltAt are
// inaccurate but do not enter δ(ε) for ε near tiltAt.
func pldCompose(bases []pldPMF, counts []int64, h float64, maxPts int, tiltAt float64) (pldPMF, error) {
	logFinite := 0.0
	for i, b := range bases {
		logFinite += float64(counts[i]) * math.Log1p(-b.inf)
	}
	if len(bases) == 1 && counts[0] == 1 {
		return bases[0], nil
	}
	mgfs := make([]pldLogMGF, len(bases))
	for i, b := range bases {
		g, err := newPLDLogMGF(b)
		if err != nil {
			return pldPMF{}, err
		}
		mgfs[i] = g
	}
	// Tilt exponent (per grid index): the minimiser over t ≥ 0 of
	// Σ c_i Λ_i(t) − t·tiltAt/h.
	t0 := 0.0
	if tiltAt > 0 {
		y := tiltAt / h
		best := 0.0
		sd := math.Max(math.Sqrt(pldSumVar(mgfs, counts)), 1)
		for j := range 121 {
			t := math.Pow(10, -5+float64(j)*0.07) / sd
			v := -t * y
			for i, g := range mgfs {
				v += float64(counts[i]) * (g.at(t) + t*float64(g.lo))
			}
			if v < best {
				best, t0 = v, t
			}
		}
	}
	logZ := 0.0 // Σ c_i log Z_i
	if t0 > 0 {
		tilted := make([]pldPMF, len(bases))
		for i, b := range bases {
			mx := math.Inf(-1)
			for j, v := range b.p {
				if v > 0 {
					mx = math.Max(mx, math.Log(v)+t0*float64(b.lo+int64(j)))
				}
			}
			s := 0.0
			for j, v := range b.p {
				if v > 0 {
					s += math.Exp(math.Log(v) + t0*float64(b.lo+int64(j)) - mx)
				}
			}
			lz := mx + math.Log(s)
			logZ += float64(counts[i]) * lz
			tb := pldPMF{lo: b.lo, p: make([]float64, len(b.p))}
			for j, v := range b.p {
				if v > 0 {
					tb.p[j] = math.Exp(math.Log(v) + t0*float64(b.lo+int64(j)) - lz)
				}
			}
			g, err := newPLDLogMGF(tb)
			if err != nil {
				return pldPMF{}, err
			}
			tilted[i], mgfs[i] = tb, g
		}
		bases = tilted
	}
	// Chernoff window [yLo, yHi] for the sum of grid indices (of the tilted
	// distributions if tilted; their masses sum to 1 each).
	var hardLo, hardHi, meanIdx float64
	for i, b := range bases {
		c := float64(counts[i])
		hardLo += c * float64(b.lo)
		hardHi += c * (float64(b.lo) + mgfs[i].hiRel)
		meanIdx += c * (float64(b.lo) + mgfs[i].mean)
	}
	sd := math.Max(math.Sqrt(pldSumVar(mgfs, counts)), 1)
	logInvTau := -math.Log(pldWindowTail)
	yHi, yLo := hardHi, hardLo
	for j := range 121 {
		t := math.Pow(10, -5+float64(j)*0.07) / sd // 1e-5/sd … 3e3/sd
		up, dn := logInvTau, logInvTau
		for i, g := range mgfs {
			c := float64(counts[i])
			up += c * (g.at(t) + t*float64(g.lo))
			dn += c * (g.at(-t) - t*float64(g.lo))
		}
		yHi = math.Min(yHi, up/t)
		yLo = math.Max(yLo, -dn/t)
	}
	yLo = math.Floor(math.Min(yLo, meanIdx))
	yHi = math.Ceil(math.Max(yHi, meanIdx))
	need := yHi - yLo + 1
	if !(need <= float64(maxPts)) {
		return pldPMF{}, gridTooLarge(need, h, maxPts)
	}
	m := fftSize(int(need))
	if m > maxPts {
		m = int(need)
	}
	lo := int64(yLo)
	fft := fourier.NewFFT(m)
	buf := make([]float64, m)
	acc := make([]complex128, m/2+1)
	tmp := make([]complex128, m/2+1)
	for i := range acc {
		acc[i] = 1
	}
	mm := int64(m)
	for i, b := range bases {
		clear(buf)
		for j, v := range b.p {
			k := (b.lo + int64(j)) % mm
			if k < 0 {
				k += mm
			}
			buf[k] += v
		}
		fft.Coefficients(tmp, buf)
		n := float64(counts[i])
		for j, c := range tmp {
			r := math.Hypot(real(c), imag(c))
			if r == 0 {
				acc[j] = 0
				continue
			}
			if n != 1 {
				s, co := math.Sincos(n * math.Atan2(imag(c), real(c)))
				r = math.Pow(r, n)
				c = complex(r*co, r*s)
			}
			acc[j] *= c
		}
	}
	fft.Sequence(buf, acc)
	out := pldPMF{lo: lo, p: make([]float64, m), tilted: t0 > 0}
	start := lo % mm
	if start < 0 {
		start += mm
	}
	logInvM := -math.Log(float64(m))
	neg := 0.0
	for i := range out.p {
		v := buf[(start+int64(i))%mm]
		if v > 0 {
			// Untilt; a true mass is at most 1.
			out.p[i] = math.Min(math.Exp(math.Log(v)+logInvM+logZ-t0*float64(lo+int64(i))), 1)
		} else {
			neg -= v
		}
	}
	out.noise = 2 * neg / float64(m)
	out.inf = -math.Expm1(logFinite)
	// The tail above the window (at most pldWindowTail of the tilted mass)
	// wrapped around to the bottom: count it in δ. The tail below it wrapped
	// to the top, which overstates its loss: pessimistic.
	out.adj = pldWindowTail * math.Exp(logZ-t0*yHi)
	return out, nil
}

func pldSumVar(mgfs []pldLogMGF, counts []int64) float64 {
	v := 0.0
	for i, g := range mgfs {
		v += float64(counts[i]) * g.varIdx
	}
	return v
}

// delta returns δ(ε) of the discrete distribution, clamped at 0.
func (d pldPMF) delta(h, eps float64) float64 {
	s := d.inf + d.adj
	for i := len(d.p) - 1; i >= 0; i-- {
		l := float64(d.lo+int64(i)) * h
		if l <= eps {
			break
		}
		s += d.p[i] * -math.Expm1(eps-l)
	}
	return math.Max(s, 0)
}

// epsilon returns the smallest ε ≥ 0 with δ(ε) ≤ delta, or +Inf.
func (d pldPMF) epsilon(h, delta float64) float64 {
	base := d.inf + d.adj
	if base >= delta {
		return math.Inf(1)
	}
	// Scanning down: with sp = Σ_{j≥i} p_j and b = Σ_{j≥i} p_j e^{ℓ_i−ℓ_j},
	// δ(ε) = base + sp − e^{ε−ℓ_i}·b for ε ∈ [ℓ_{i−1}, ℓ_i].
	sp, b := 0.0, 0.0
	emh := math.Exp(-h)
	for i := len(d.p) - 1; i >= 0; i-- {
		li := float64(d.lo+int64(i)) * h
		if li <= 0 {
			return 0 // the previous step found δ(0) ≤ delta
		}
		b = b*emh + d.p[i]
		sp += d.p[i]
		lower := math.Max(li-h, 0)
		if base+sp-math.Exp(lower-li)*b > delta {
			e := li + math.Log((base+sp-delta)/b)
			return math.Max(e, lower)
		}
	}
	// δ(ℓ_lo) ≤ delta: masses below the grid, if any were dropped, do not
	// enter δ at ℓ_lo.
	return math.Max(float64(d.lo)*h, 0)
}
