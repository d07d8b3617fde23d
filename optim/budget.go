package optim

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
)

// releaseKind is one kind of noisy release a solver makes, as planned before
// any data is read.
type releaseKind struct {
	label       string
	sensitivity float64 // L2 sensitivity under add/remove adjacency
	count       int     // releases of this kind
	rate        float64 // Poisson sampling rate; 1 for full batch
}

// event returns the accountant event of one release of kind k at noise multiplier z.
func (k releaseKind) event(z float64) accountant.Event {
	var e accountant.Event = accountant.Gaussian{NoiseMultiplier: z}
	if k.rate < 1 {
		e = accountant.PoissonSampled{Rate: k.rate, Event: e}
	}
	return e
}

// planEvent is the composition of every release of kinds at noise multipliers z.
func planEvent(kinds []releaseKind, z []float64) accountant.Event {
	evs := make([]accountant.Event, 0, len(kinds))
	for i, k := range kinds {
		e := k.event(z[i])
		if k.count > 1 {
			e = accountant.Repeated{Event: e, Count: k.count}
		}
		evs = append(evs, e)
	}
	if len(evs) == 1 {
		return evs[0]
	}
	return accountant.Composed{Events: evs}
}

// accountantFor returns p.Accountant, or the default for kinds: exact GDP when
// every release is full batch, PLD otherwise.
func (p Privacy) accountantFor(kinds []releaseKind) (accountant.Accountant, error) {
	if p.Accountant != nil {
		return p.Accountant, nil
	}
	name := "exact"
	for _, k := range kinds {
		if k.rate < 1 {
			name = "pld"
		}
	}
	return accountant.AccountantByName(name)
}

// calibrate returns the noise multiplier of each kind of release so that their
// composition meets p's target: z_i = Split_i·s with the smallest such s.
// For full-batch plans under the exact accountant s is in closed form:
// μ² = Σ count_i/z_i² is set to the μ of (ε, δ).
func (p Privacy) calibrate(kinds []releaseKind) ([]float64, accountant.Accountant, error) {
	if err := p.validate(len(kinds)); err != nil {
		return nil, nil, err
	}
	if p.NonPrivate() {
		return nil, nil, fmt.Errorf("optim: calibrate: %w", ErrNonPrivate)
	}
	ratio := p.Split
	if ratio == nil {
		ratio = make([]float64, len(kinds))
		for i := range ratio {
			ratio[i] = 1
		}
	}
	acc, err := p.accountantFor(kinds)
	if err != nil {
		return nil, nil, err
	}
	scaled := func(s float64) []float64 {
		z := make([]float64, len(kinds))
		for i := range z {
			z[i] = ratio[i] * s
		}
		return z
	}
	build := func(s float64) (accountant.Event, error) {
		e := planEvent(kinds, scaled(s))
		return e, e.Validate()
	}
	key := fmt.Sprintf("%T%+v|%+v|%v|%v|%v", acc, acc, kinds, ratio, p.Epsilon, p.Delta)
	s, ok := calibrations.get(key)
	if !ok {
		if s, err = accountant.Calibrate(acc, build, p.Epsilon, p.Delta); err != nil {
			return nil, nil, fmt.Errorf("optim: calibrating noise to (ε = %g, δ = %g): %w", p.Epsilon, p.Delta, err)
		}
		calibrations.put(key, s)
	}
	return scaled(s), acc, nil
}

// calibrationCache remembers calibrated noise scales, so that Plan followed
// by Solve, or repeated runs with the same plan, calibrate once: a PLD
// calibration costs seconds. Calibration is a deterministic function of the
// key (accountant value, releases, split, target), so a cached answer is the
// answer. Safe for concurrent use; bounded in size.
type calibrationCache struct {
	mu sync.Mutex
	m  map[string]float64
}

var calibrations calibrationCache

const maxCachedCalibrations = 1024

func (c *calibrationCache) get(key string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[key]
	return s, ok
}

func (c *calibrationCache) put(key string, s float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedCalibrations {
		c.m = make(map[string]float64)
	}
	c.m[key] = s
}

// plan is the body of every solver's Plan: the composition of the releases
// kinds at the noise multipliers calibrated to p, for n ≥ 1 examples.
func (p Privacy) plan(n int, kinds []releaseKind) (accountant.Event, error) {
	if n < 1 {
		return nil, &accountant.ParamError{Param: "n", Value: float64(n), Reason: "must be at least 1"}
	}
	z, _, err := p.calibrate(kinds)
	if err != nil {
		return nil, err
	}
	return planEvent(kinds, z), nil
}

// run holds what a Solve call needs to release noise: the ledger, the source,
// and the planned noise multipliers. With noise off (non-private) its release
// methods do nothing.
type run struct {
	ledger  *accountant.Ledger
	src     dp.Source
	kinds   []releaseKind
	z       []float64 // per kind; nil when non-private
	acc     accountant.Accountant
	private bool
}

// start validates the ledger and source and prepares a run of a solver whose
// plan is kinds. A nil ledger is replaced by a fresh one whose budget is the
// target; a non-private run refuses a ledger with a finite budget; a run whose
// whole plan does not fit the ledger's remaining budget is refused before any
// release.
func (p Privacy) start(kinds []releaseKind, l *accountant.Ledger, src dp.Source) (*run, error) {
	if src == nil {
		return nil, &accountant.ParamError{Param: "Source", Value: math.NaN(), Reason: "a dp.Source is required (see dp.NewSeededSource, dp.NewSecureSource)"}
	}
	if p.NonPrivate() {
		if l != nil && !math.IsInf(l.Budget().Epsilon, 1) {
			return nil, fmt.Errorf("optim: non-private run against a ledger with budget ε = %g: %w (%w)",
				l.Budget().Epsilon, accountant.ErrBudgetExceeded, ErrNonPrivate)
		}
		return &run{ledger: l, src: src, kinds: kinds}, nil
	}
	z, acc, err := p.calibrate(kinds)
	if err != nil {
		return nil, err
	}
	if l == nil {
		l, err = accountant.NewLedger(accountant.Budget{Epsilon: p.Epsilon, Delta: p.Delta}, acc)
		if err != nil {
			return nil, fmt.Errorf("optim: %w", err)
		}
	}
	// Check the whole plan before the first release, so that a run the
	// budget cannot afford records and releases nothing at all. Each release
	// is still checked again when it is spent (another run may share l).
	if _, err := l.Check(planEvent(kinds, z)); err != nil {
		return nil, fmt.Errorf("optim: the planned releases do not fit the ledger's budget: %w", err)
	}
	return &run{ledger: l, src: src, kinds: kinds, z: z, acc: acc, private: true}, nil
}

// sigma is the noise standard deviation of kind i.
func (r *run) sigma(i int) float64 { return r.z[i] * r.kinds[i].sensitivity }

// spend records one release of kind i in the ledger, before the release.
func (r *run) spend(i int) error {
	if !r.private {
		return nil
	}
	k := r.kinds[i]
	if err := r.ledger.Spend(k.label, k.event(r.z[i])); err != nil {
		return fmt.Errorf("optim: release %q: %w", k.label, err)
	}
	return nil
}

// releaseSym spends one release of kind i and adds its symmetric noise to g.
func (r *run) releaseSym(i int, g *mat.SymDense) error {
	if err := r.spend(i); err != nil || !r.private {
		return err
	}
	return dp.AddGaussianSym(g, r.sigma(i), r.src)
}

// releaseDense spends one release of kind i and adds iid noise to m.
func (r *run) releaseDense(i int, m *mat.Dense) error {
	if err := r.spend(i); err != nil || !r.private {
		return err
	}
	return dp.AddGaussianDense(m, r.sigma(i), r.src)
}

// releaseVec spends one release of kind i and adds iid noise to v.
func (r *run) releaseVec(i int, v []float64) error {
	if err := r.spend(i); err != nil || !r.private {
		return err
	}
	return dp.AddGaussian(v, r.sigma(i), r.src)
}

// report fills the privacy part of rep: target, releases, the accountant and
// the ε of the planned event under every applicable accountant.
func (r *run) report(rep *Report, p Privacy) {
	rep.Epsilon, rep.Delta = p.Epsilon, p.Delta
	rep.Source, rep.Seed = describeSource(r.src)
	rep.Releases = make([]Release, len(r.kinds))
	for i, k := range r.kinds {
		rel := Release{Label: k.label, Sensitivity: k.sensitivity, SamplingRate: k.rate, Count: k.count}
		if r.private {
			rel.NoiseMultiplier, rel.Sigma = r.z[i], r.sigma(i)
		}
		rep.Releases[i] = rel
	}
	if !r.private {
		rep.Accountant = "none"
		rep.Spent = math.Inf(1)
		return
	}
	rep.Accountant = r.acc.Name()
	ev := planEvent(r.kinds, r.z)
	// ε under every accountant, side by side, and under the run's own: each
	// on its own goroutine (PLD on many steps takes a good part of a second).
	names := accountant.Accountants()
	eps := make([]float64, len(names)+1)
	ok := make([]bool, len(names)+1)
	var wg sync.WaitGroup
	for i := range eps {
		wg.Go(func() {
			acc := r.acc
			if i < len(names) {
				var err error
				if acc, err = accountant.AccountantByName(names[i]); err != nil {
					return
				}
			}
			var err error
			eps[i], err = acc.Epsilon(ev, p.Delta)
			ok[i] = err == nil
		})
	}
	wg.Wait()
	rep.Epsilons = map[string]float64{}
	for i, name := range names {
		if ok[i] {
			rep.Epsilons[name] = eps[i]
		}
	}
	rep.Spent = math.NaN()
	if ok[len(names)] {
		rep.Spent = eps[len(names)]
	}
}

// describeSource says what kind of Source src is, and its seed if it has one:
// "seeded" (dp.NewSeededSource: replayable, plain floating-point noise),
// "hardened" (dp.NewSecureSource or dp.Harden: the hardened sampler) or "custom".
func describeSource(src dp.Source) (string, *uint64) {
	if s, ok := src.(dp.Seeded); ok {
		seed := s.Seed()
		return "seeded", &seed
	}
	if _, ok := src.(dp.GaussianAdder); ok {
		return "hardened", nil
	}
	return "custom", nil
}
