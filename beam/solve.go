package dpbeam

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
)

// release is one kind of release of a driver, as the core solver plans it.
type release struct {
	label       string
	sensitivity float64
	count       int
}

// plan is the privacy side of a driver run, on the driver only: the
// calibrated noise multipliers (from the core solver's Plan), the ledger and
// the source. With noise off it releases without noise and spends nothing.
type plan struct {
	kinds   []release
	z       []float64
	event   accountant.Event
	acc     accountant.Accountant
	ledger  *accountant.Ledger
	src     dp.Source
	private bool
}

// newPlan calibrates through solver.Plan — the same calibration the core
// solver uses — and checks the whole plan against the ledger before any
// pipeline runs. A nil ledger is replaced by one whose budget is the target,
// as the core solvers do.
func newPlan(p optim.Privacy, solver optim.Solver, kinds []release, l *accountant.Ledger, src dp.Source) (*plan, error) {
	if src == nil {
		return nil, &accountant.ParamError{Param: "Source", Value: math.NaN(), Reason: "a dp.Source is required (see dp.NewSeededSource, dp.NewSecureSource)"}
	}
	if p.NonPrivate() {
		if l != nil && !math.IsInf(l.Budget().Epsilon, 1) {
			return nil, fmt.Errorf("dpbeam: non-private run against a ledger with budget ε = %g: %w (%w)",
				l.Budget().Epsilon, accountant.ErrBudgetExceeded, optim.ErrNonPrivate)
		}
		return &plan{kinds: kinds, ledger: l, src: src}, nil
	}
	ev, err := solver.Plan(1) // the calibration does not depend on n
	if err != nil {
		return nil, err
	}
	z, err := noiseMultipliers(ev, kinds)
	if err != nil {
		return nil, err
	}
	acc := p.Accountant
	if acc == nil {
		if acc, err = accountant.AccountantByName("exact"); err != nil {
			return nil, err
		}
	}
	if l == nil {
		if l, err = accountant.NewLedger(accountant.Budget{Epsilon: p.Epsilon, Delta: p.Delta}, acc); err != nil {
			return nil, fmt.Errorf("dpbeam: %w", err)
		}
	}
	if _, err := l.Check(ev); err != nil {
		return nil, fmt.Errorf("dpbeam: the run's releases: %w", err)
	}
	return &plan{kinds: kinds, z: z, event: ev, acc: acc, ledger: l, src: src, private: true}, nil
}

// noiseMultipliers reads the noise multiplier of each kind from a core plan
// event: a Gaussian, Repeated Gaussian, or their composition, in order.
func noiseMultipliers(ev accountant.Event, kinds []release) ([]float64, error) {
	var z []float64
	var walk func(e accountant.Event) error
	walk = func(e accountant.Event) error {
		switch e := e.(type) {
		case accountant.Gaussian:
			z = append(z, e.NoiseMultiplier)
		case accountant.Repeated:
			return walk(e.Event)
		case accountant.Composed:
			for _, c := range e.Events {
				if err := walk(c); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("dpbeam: internal: unexpected plan event %T", e)
		}
		return nil
	}
	if err := walk(ev); err != nil {
		return nil, err
	}
	if len(z) != len(kinds) {
		return nil, fmt.Errorf("dpbeam: internal: plan has %d releases, want %d", len(z), len(kinds))
	}
	return z, nil
}

func (r *plan) sigma(i int) float64 { return r.z[i] * r.kinds[i].sensitivity }

// spend records one release of kind i, before it is made.
func (r *plan) spend(i int) error {
	if !r.private {
		return nil
	}
	k := r.kinds[i]
	if err := r.ledger.Spend(k.label, accountant.Gaussian{NoiseMultiplier: r.z[i]}); err != nil {
		return fmt.Errorf("dpbeam: release %q: %w", k.label, err)
	}
	return nil
}

func (r *plan) releaseSym(i int, g *mat.SymDense) error {
	if err := r.spend(i); err != nil || !r.private {
		return err
	}
	return dp.AddGaussianSym(g, r.sigma(i), r.src)
}

func (r *plan) releaseDense(i int, m *mat.Dense) error {
	if err := r.spend(i); err != nil || !r.private {
		return err
	}
	return dp.AddGaussianDense(m, r.sigma(i), r.src)
}

// report fills the privacy part of rep as the core solvers do.
func (r *plan) report(rep *optim.Report, p optim.Privacy) {
	rep.Epsilon, rep.Delta = p.Epsilon, p.Delta
	rep.Source = "custom"
	if s, ok := r.src.(dp.Seeded); ok {
		seed := s.Seed()
		rep.Source, rep.Seed = "seeded", &seed
	} else if _, ok := r.src.(dp.GaussianAdder); ok {
		rep.Source = "hardened"
	}
	rep.Releases = make([]optim.Release, len(r.kinds))
	for i, k := range r.kinds {
		rel := optim.Release{Label: k.label, Sensitivity: k.sensitivity, SamplingRate: 1, Count: k.count}
		if r.private {
			rel.NoiseMultiplier, rel.Sigma = r.z[i], r.sigma(i)
		}
		rep.Releases[i] = rel
	}
	if !r.private {
		rep.Accountant, rep.Spent = "none", math.Inf(1)
		return
	}
	rep.Accountant = r.acc.Name()
	rep.Epsilons = map[string]float64{}
	for _, name := range accountant.Accountants() {
		if acc, err := accountant.AccountantByName(name); err == nil {
			if eps, err := acc.Epsilon(r.event, p.Delta); err == nil {
				rep.Epsilons[name] = eps
			}
		}
	}
	rep.Spent = math.NaN()
	if eps, err := r.acc.Epsilon(r.event, p.Delta); err == nil {
		rep.Spent = eps
	}
}

// regularized returns g (PSD-projected if noisy) + λI.
func regularized(g *mat.SymDense, lambda float64, private bool) (*mat.SymDense, error) {
	if private {
		var err error
		if g, err = linalg.ProjectPSD(g, 0); err != nil {
			return nil, err
		}
	}
	a := mat.NewSymDense(g.SymmetricDim(), nil)
	a.CopySym(g)
	for i := range a.SymmetricDim() {
		a.SetSym(i, i, a.At(i, i)+lambda)
	}
	return a, nil
}

func transpose(m mat.Matrix) *mat.Dense {
	out := new(mat.Dense)
	out.CloneFrom(m.T())
	return out
}

// SolveLS runs DP-LS (the global form of optim.LS, as if Global were set;
// PerClass is not supported, see beam/README.md) with its statistics computed by one Beam
// pipeline over p: the rows clipped to s.ClipNorm (and quantised to
// s.Quantize bits), Gram and class sums summed exactly across workers. The noise
// is added once, here on the driver, with the core dp functions, after each
// release is spent in l ("gram", then "class_sums", as optim.LS does); the
// noise multipliers are optim.LS's own calibration (s.Plan). classes is the
// public number of classes K. All else — the default ridge, the PSD
// projection, the solve — is optim.LS's documented post-processing. With
// s.Quantize set the statistics are exact, and the model equals s.Solve's on
// the same rows with the same source bit for bit, however the rows are
// sharded (see the package documentation, Reproducibility).
func SolveLS(ctx context.Context, s *optim.LS, p *Pipeline, classes int, l *accountant.Ledger, src dp.Source) (*optim.Result, error) {
	start := time.Now()
	if s.PerClass {
		return nil, &accountant.ParamError{Param: "PerClass", Value: 1,
			Reason: "the per-class form is not supported on Beam (K·d² statistics; see beam/README.md)"}
	}
	// The global form whatever the shape: optim.LS would pick the per-class
	// form on its own when n ≥ 4·K·d (optim.LS.UsesPerClass).
	global := *s
	global.Global = true
	s = &global
	if classes < 2 {
		return nil, &accountant.ParamError{Param: "Classes", Value: float64(classes), Reason: "need at least 2 classes"}
	}
	if _, err := s.Plan(1); err != nil && !errors.Is(err, optim.ErrNonPrivate) {
		return nil, err // validates the configuration
	}
	c := s.ClipNorm
	r, err := newPlan(s.Privacy, s, []release{{"gram", c * c, 1}, {"class_sums", c, 1}}, l, src)
	if err != nil {
		return nil, err
	}
	st, err := p.Stats(ctx, Rows{ClipNorm: c, Quantize: s.Quantize}, classes)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*optim.Result, error) { return nil, fmt.Errorf("dpbeam: DP-LS: %w", err) }
	g := st.Gram()
	if err := r.releaseSym(0, g); err != nil {
		return fail(err)
	}
	sums := st.ClassSums()
	if err := r.releaseDense(1, sums); err != nil {
		return fail(err)
	}
	n, dim := int(st.Count()), st.Dim()
	sigmaG := 0.0
	if r.private {
		sigmaG = r.sigma(0)
	}
	a, err := regularized(g, s.Lambda(n, dim, classes, sigmaG), r.private)
	if err != nil {
		return fail(err)
	}
	theta, err := linalg.CholeskySolve(a, transpose(sums))
	if err != nil {
		return fail(err)
	}
	rep := &optim.Report{Method: "ls", N: n, Dim: dim, Classes: classes}
	r.report(rep, s.Privacy)
	rep.Seconds = time.Since(start).Seconds()
	return &optim.Result{Model: &optim.Model{W: transpose(theta)}, Report: rep}, nil
}

// SolveFC runs DP-FC (optim.FC) on Beam: one pipeline for the Gram, then one
// per step for the full-batch clipped-gradient sum at the current weights
// (a side input). Noise, spending ("gram" once, "gradient" per step), the
// calibration (s.Plan) and the update are as in optim.FC, on the driver.
func SolveFC(ctx context.Context, s *optim.FC, p *Pipeline, classes int, l *accountant.Ledger, src dp.Source) (*optim.Result, error) {
	start := time.Now()
	if classes < 2 {
		return nil, &accountant.ParamError{Param: "Classes", Value: float64(classes), Reason: "need at least 2 classes"}
	}
	if _, err := s.Plan(1); err != nil && !errors.Is(err, optim.ErrNonPrivate) {
		return nil, err
	}
	steps := s.Steps
	if steps == 0 {
		steps = 10
	}
	loss := Loss{Softmax: s.Softmax, NegWeight: s.NegWeight, FixedBias: losses.PaperFixedBias}
	if s.Softmax {
		loss.FixedBias = 0
	}
	c := s.ClipNorm
	r, err := newPlan(s.Privacy, s, []release{{"gram", c * c, 1}, {"gradient", s.GradClipNorm, steps}}, l, src)
	if err != nil {
		return nil, err
	}
	st, err := p.Stats(ctx, Rows{ClipNorm: c, Quantize: s.Quantize}, classes)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*optim.Result, error) { return nil, fmt.Errorf("dpbeam: DP-FC: %w", err) }
	g := st.Gram()
	if err := r.releaseSym(0, g); err != nil {
		return fail(err)
	}
	n, dim := int(st.Count()), st.Dim()
	sigmaG := 0.0
	if r.private {
		sigmaG = r.sigma(0)
	}
	lambda := s.Lambda(n, dim, sigmaG)
	sigmaGrad := 0.0
	if r.private {
		sigmaGrad = r.sigma(1)
	}
	eta := s.StepSize(n, classes, dim, sigmaGrad)
	pre, err := regularized(g, lambda, r.private)
	if err != nil {
		return fail(err)
	}
	chol, err := linalg.NewCholesky(pre)
	if err != nil {
		return fail(fmt.Errorf("factoring the preconditioner (λ = %g): %w", lambda, err))
	}
	w := mat.NewDense(classes, dim, nil)
	rep := &optim.Report{Method: "fc", N: n, Dim: dim, Classes: classes, Steps: make([]optim.Step, 0, steps)}
	for t := range steps {
		gs, err := p.Gradient(ctx, w, Rows{ClipNorm: c, Quantize: s.Quantize}, s.GradClipNorm, loss)
		if err != nil {
			return nil, fmt.Errorf("dpbeam: DP-FC step %d: %w", t, err)
		}
		grad := gs.Sum
		if err := r.releaseDense(1, grad); err != nil {
			return nil, fmt.Errorf("dpbeam: DP-FC step %d: %w", t, err)
		}
		rep.Steps = append(rep.Steps, optim.Step{Loss: gs.Loss / float64(n), GradNorm: mat.Norm(grad, 2), Batch: n})
		if s.WeightDecay > 0 {
			var wd mat.Dense
			wd.Scale(s.WeightDecay, w)
			grad.Add(grad, &wd)
		}
		dir, err := chol.Solve(transpose(grad))
		if err != nil {
			return nil, fmt.Errorf("dpbeam: DP-FC step %d: %w", t, err)
		}
		var upd mat.Dense
		upd.Scale(eta, dir.T())
		w.Sub(w, &upd)
	}
	var bias []float64
	if !s.Softmax {
		bias = make([]float64, classes)
		for i := range bias {
			bias[i] = losses.PaperFixedBias
		}
	}
	r.report(rep, s.Privacy)
	rep.Seconds = time.Since(start).Seconds()
	return &optim.Result{Model: &optim.Model{W: w, Bias: bias}, Report: rep}, nil
}
