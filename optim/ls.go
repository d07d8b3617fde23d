package optim

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// LS is DP least squares (DP-LS): ridge regression on one-hot targets from
// noisy sufficient statistics, released once (Mehta et al., arXiv 2211.13403).
//
// Global form: it releases the Gram Ĝ = Σ x̃x̃ᵀ + E (L2
// sensitivity C², symmetric noise) and the per-class sums B̂ = X̃ᵀY + N (d×K,
// sensitivity C), projects Ĝ onto the PSD cone and solves
// θ = (Ĝ₊ + λI)⁻¹B̂, W = θᵀ. Releases, in the order of Privacy.Split:
// "gram", "class_sums".
//
// Per-class form: it releases the K per-class Grams Ĝ_l jointly
// (sensitivity C², each example is in one class) and the per-class sums, sets
// Ĝ = Σ_l Ĝ_l, and solves θ_l = (Ĝ_l₊ + α·Ĝ₊ + λI)⁻¹ b̂_l for each class: the
// positives of class l against an α-weighted global Gram. It costs K·d² memory
// and K Cholesky factorisations. Releases: "class_grams", "class_sums".
//
// PerClass or Global force a form; with neither, Solve picks the per-class
// form when every class has on average at least 4d examples (n ≥ 4·K·d),
// and the global form otherwise (see UsesPerClass).
//
// Adjacency is add/remove one example. One pass over the data: cost n·d² for
// the Gram, d³ for the projection and the factorisation, d²K for the solve.
// SolveStream makes that pass over rows read from disk one block at a time,
// in memory independent of n (see StreamData).
type LS struct {
	Privacy
	// ClipNorm is the L2 norm C each feature row is clipped to. Required.
	ClipNorm float64
	// Ridge is λ. Zero means the default, which grows with the noise actually
	// added to the Gram: λ = max(1e-3·n·C²/d, RidgeScale·√(2d)·σ_G), where σ_G is
	// the Gram noise's standard deviation and √(2d)·σ_G approximates the
	// spectral norm of the symmetric noise. The first term keeps a non-private
	// run well-posed on rank-deficient features. Negative is an error.
	Ridge float64
	// RidgeScale multiplies the noise term of the default ridge; zero means
	// 0.5 in the global form and 0.35 in the per-class form. These were
	// chosen on real data, at every ε in {0.1, 0.3, 1, 3, 8} at once (never
	// per ε), δ = 1e-5, mean of 3–5 seeds: in the global form scales 0.25–1
	// were within 1.5 points of each other on MNIST and digits, with 0.25–0.35
	// best on MNIST and 0.7–1 on digits (0.5 loses at most 0.8 points to the
	// best of either); in the per-class form 0.25–0.5 were best on MNIST.
	RidgeScale float64
	// PerClass forces the paper's per-class form, Global the global form;
	// setting both is an error. With neither, the form follows UsesPerClass.
	PerClass bool
	Global   bool
	// NegWeight is α of the per-class form; zero means 0.2. On MNIST the
	// per-class form's accuracy without noise is 89.6% at α = 0.1, 89.2% at
	// 0.2, 88.7% at 0.3 and 87.5% at 1 (the global form: 86.0%); with noise
	// α in 0.1–0.3 were within 0.5 points at every ε, α = 1 up to 2.5 points
	// lower.
	NegWeight float64
	// Quantize, if positive, is the number of bits b the clipped rows keep:
	// every entry is truncated toward zero to a multiple of the power of two
	// q = linalg.Quantum(ClipNorm, b) ≤ ClipNorm·2⁻ᵇ before use. No norm
	// grows, so the releases and the guarantee are unchanged; in return the
	// statistics are exact, and the model for a given noise seed is the same
	// to the bit for the same rows in any order, block size, Workers or
	// sharding (SolveStream, package dpbeam). A Gram diagonal entry reaching
	// 2⁵³·q² (at b = 16, at least 2¹⁹·C²) stops the pass with an error
	// wrapping linalg.ErrInexact. Zero, the default, keeps the clipped rows
	// as they are. 16 bits change no digits accuracy (see quantize.go).
	Quantize int
	// Float64, if true, computes the Gram from exact products of the
	// float32 entries, summed in float64 (linalg.Float64), instead of in
	// float32 within blocks of rows and in float64 across them
	// (linalg.Float32, the default; as numpy computes X.T @ X from float32).
	// The releases and the guarantee are the same; the default costs about
	// half the CPU time in the pure-Go build and differs by about 10⁻⁶
	// relative, far below the noise (see linalg.Precision). Quantised rows
	// (Quantize) are always summed exactly.
	Float64 bool
	// Workers is the number of goroutines; zero means GOMAXPROCS. Results do
	// not depend on it.
	Workers int
}

var _ Solver = (*LS)(nil)

// UsesPerClass reports whether Solve uses the per-class form for n examples
// of dimension d in k classes: if PerClass is set; not if Global is set;
// otherwise if n ≥ 4·k·d. Each per-class Gram estimates a class's second
// moment from about n/k rows against the same noise as the global one, so
// it needs many rows per class: on MNIST (n/(K·d) = 6.4) the per-class form
// (defaults below) beat the global one by 0.6–2.4 points at ε = 0.1–8, δ =
// 1e-5, and by 3 points without noise; on digits (n/(K·d) = 1.9) the global
// form was better by 0.9–18 points at every ε (without noise the per-class
// form was 1.2 points better). The per-class Grams then take
// at most half the memory of the float32 features. The choice depends only
// on public sizes.
func (s *LS) UsesPerClass(n, d, k int) bool {
	if s.PerClass || s.Global {
		return s.PerClass
	}
	return float64(n) >= lsPerClassRows*float64(k)*float64(d)
}

func (s *LS) kinds(perClass bool) []releaseKind {
	gram := "gram"
	if perClass {
		gram = "class_grams"
	}
	c := s.ClipNorm
	return []releaseKind{
		{label: gram, sensitivity: c * c, count: 1, rate: 1},
		{label: "class_sums", sensitivity: c, count: 1, rate: 1},
	}
}

func (s *LS) validate() error {
	if err := checkWorkers(s.Workers); err != nil {
		return err
	}
	if err := positiveParam("ClipNorm", s.ClipNorm); err != nil {
		return err
	}
	if err := checkQuantize(s.Quantize); err != nil {
		return err
	}
	if err := nonNegativeParams(param{"Ridge", s.Ridge}, param{"RidgeScale", s.RidgeScale},
		param{"NegWeight", s.NegWeight}); err != nil {
		return err
	}
	if s.PerClass && s.Global {
		return &accountant.ParamError{Param: "Global", Value: 1, Reason: "PerClass and Global both set: pick one form"}
	}
	return s.Privacy.validate(2)
}

// Plan implements Solver.
func (s *LS) Plan(n int) (accountant.Event, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s.Privacy.plan(n, s.kinds(s.PerClass))
}

// LS's defaults; see LS.RidgeScale and LS.NegWeight.
const (
	lsGlobalRidgeScale   = 0.5
	lsPerClassRidgeScale = 0.35
	lsDefaultNegWeight   = 0.2
	lsPerClassRows       = 4 // examples per class per dimension; see UsesPerClass
)

// Lambda returns the ridge λ that Solve uses for n examples of dimension d
// in k classes when the noise added to each released Gram has standard
// deviation sigmaG (0 for a non-private run): Ridge if set, else the default
// described there, in the form UsesPerClass picks. In the per-class form the
// noise of Ĝ_l + α·Ĝ, σ_G·√(1 + α²K), takes the place of σ_G. It is exported
// so that drivers that compute the statistics elsewhere (the dpbeam module)
// solve the same problem.
func (s *LS) Lambda(n, d, k int, sigmaG float64) float64 {
	perClass := s.UsesPerClass(n, d, k)
	if perClass {
		a := s.negWeight()
		sigmaG *= math.Sqrt(1 + a*a*float64(k))
	}
	return s.ridge(n, d, sigmaG, perClass)
}

// negWeight returns α of the per-class form.
func (s *LS) negWeight() float64 {
	if s.NegWeight == 0 {
		return lsDefaultNegWeight
	}
	return s.NegWeight
}

// ridge returns λ for n examples of dimension d given the standard deviation
// of the noise in the matrix it regularises, in the given form.
func (s *LS) ridge(n, d int, sigma float64, perClass bool) float64 {
	if s.Ridge > 0 {
		return s.Ridge
	}
	scale := s.RidgeScale
	if scale == 0 {
		scale = lsGlobalRidgeScale
		if perClass {
			scale = lsPerClassRidgeScale
		}
	}
	c2 := s.ClipNorm * s.ClipNorm
	return max(1e-3*float64(n)*c2/float64(d), scale*math.Sqrt(2*float64(d))*sigma)
}

// Solve implements Solver.
func (s *LS) Solve(ctx context.Context, d *Data, l *accountant.Ledger, src dp.Source) (*Result, error) {
	start := time.Now()
	if err := s.validate(); err != nil {
		return nil, err
	}
	if !validShape(d) {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		panic("optim: internal: validShape rejects data that Data.Validate accepts")
	}
	// The entries of d.X are not scanned here: the one pass over the data
	// clips every row first (dp.ClipRows), which rejects the same entries
	// before anything is released, so a separate scan would only read the
	// features once more (20–30 ms at the CIFAR shape). On any error,
	// d.Validate is consulted first, so that bad data gets the error it
	// always got, whatever else failed.
	n, dim, k := d.X.Rows, d.X.Cols, d.Classes
	perClass := s.UsesPerClass(n, dim, k)
	r, err := s.Privacy.start(s.kinds(perClass), l, src)
	if err != nil {
		return nil, validateFirst(d, err)
	}
	rep := &asyncReport{rep: &Report{Method: "ls", N: n, Dim: dim, Classes: k}, r: r, p: s.Privacy}
	defer rep.wg.Wait() // on an error, the goroutine does not outlive Solve
	var w *mat.Dense
	if perClass {
		w, err = s.solvePerClass(ctx, d, r, rep.start)
	} else {
		w, err = s.solveGlobal(ctx, d, r, rep.start)
	}
	if err != nil {
		return nil, validateFirst(d, err)
	}
	res := &Result{Model: &Model{W: w}, Report: rep.wait()}
	res.Report.Seconds = time.Since(start).Seconds()
	return res, nil
}

// validShape reports whether d passes d.Validate's checks other than the
// scan of every feature for NaN, ±Inf and magnitudes beyond linalg.MaxAbs:
// features and labels present and of matching sizes, at least 2 classes,
// every label in [0, Classes).
func validShape(d *Data) bool {
	if d == nil || d.X == nil || d.Classes < 2 {
		return false
	}
	x := d.X
	if x.Rows <= 0 || x.Cols <= 0 || len(x.Data) != x.Rows*x.Cols || len(d.Labels) != x.Rows {
		return false
	}
	for _, y := range d.Labels {
		if y < 0 || y >= d.Classes {
			return false
		}
	}
	return true
}

// validateFirst returns d.Validate's error if d is invalid, else err: bad
// data is reported as such, as when it was checked before anything else.
func validateFirst(d *Data, err error) error {
	if verr := d.Validate(); verr != nil {
		return verr
	}
	return err
}

// asyncReport fills the privacy part of a Report (run.report: the releases
// and the ε of the planned event under every accountant, 30–40 ms of PLD
// work at DP-LS's two releases) on its own goroutine, started once the
// releases are made: it then runs beside the PSD projection and the
// Cholesky solve, whose LAPACK calls leave a core mostly idle on a 2-core
// machine, instead of after them. The report depends only on the plan, not
// on the data or the noise. It reads the run's Source (its seed), so it
// must not start before the last draw from it: a Source need not be safe
// for concurrent use.
type asyncReport struct {
	rep     *Report
	r       *run
	p       Privacy
	wg      sync.WaitGroup
	started bool
}

// start starts filling the report, once; it is called on Solve's goroutine.
func (a *asyncReport) start() {
	if !a.started {
		a.started = true
		a.wg.Go(func() { a.r.report(a.rep, a.p) })
	}
}

// wait returns the filled report, filling it now if start was not called.
func (a *asyncReport) wait() *Report {
	a.start()
	a.wg.Wait()
	return a.rep
}

func (s *LS) sigmaG(r *run) float64 {
	if !r.private {
		return 0
	}
	return r.sigma(0)
}

// solveGlobal is the global form of Solve; released, if not nil, is called
// once the last noise has been drawn.
func (s *LS) solveGlobal(ctx context.Context, d *Data, r *run, released func()) (*mat.Dense, error) {
	sp := startPass(ctx, "statistics", d.X.Rows)
	st, err := quantizedStats(d, s.ClipNorm, s.Quantize, precision(s.Float64), s.Workers)
	if err != nil {
		return nil, err
	}
	sp.end(d.X.Rows)
	return s.solveStats(ctx, st, d.X.Rows, r, released)
}

// fromStats releases the statistics st of n clipped rows and solves: the
// global form after the pass over the data, shared by Solve and SolveStream.
func (s *LS) fromStats(ctx context.Context, st *linalg.Stats, n int, r *run) (*mat.Dense, error) {
	return s.solveStats(ctx, st, n, r, nil)
}

// solveStats is fromStats, calling released (if not nil) once the last
// noise has been drawn from r's Source.
func (s *LS) solveStats(ctx context.Context, st *linalg.Stats, n int, r *run, released func()) (*mat.Dense, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	prog := progressFrom(ctx)
	prog.report("solve", 0, 1)
	g := st.Gram()
	if err := r.releaseSym(0, g); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	sums := st.ClassSums() // K×d
	if err := r.releaseDense(1, sums); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	if released != nil {
		released()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	a, err := regularized(g, s.ridge(n, st.Dim(), s.sigmaG(r), false), r.private)
	if err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	theta, err := linalg.CholeskySolve(a, transpose(sums)) // d×K
	if err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	prog.report("solve", 1, 1)
	return transpose(theta), nil
}

// solvePerClass is the per-class form of Solve; released, if not nil, is
// called once the last noise has been drawn.
func (s *LS) solvePerClass(ctx context.Context, d *Data, r *run, released func()) (*mat.Dense, error) {
	sp := startPass(ctx, "statistics", d.X.Rows)
	x, err := quantizedRows(d, s.ClipNorm, s.Quantize, s.Workers)
	if err != nil {
		return nil, err
	}
	k, dim := d.Classes, d.X.Cols
	// Group the rows of each class, then release the K Grams as one Gaussian
	// mechanism (each example touches one Gram: joint sensitivity C²).
	byClass := make([][]float32, k)
	for i, y := range d.Labels {
		byClass[y] = append(byClass[y], x.Row(i)...)
	}
	q, err := quantum(s.ClipNorm, s.Quantize)
	if err != nil {
		return nil, err
	}
	sums := make([]gramSum, k)
	for l := range k {
		sums[l] = gramSum{q: q, prec: precision(s.Float64), workers: s.Workers}
		if rows := len(byClass[l]) / dim; rows > 0 {
			if err := sums[l].add(&linalg.Matrix32{Rows: rows, Cols: dim, Data: byClass[l]}); err != nil {
				return nil, fmt.Errorf("optim: DP-LS: %w", err)
			}
		}
	}
	grams := classGrams(sums, dim)
	classSums := mat.NewDense(k, dim, nil)
	addClassSums(classSums, byClass)
	sp.end(d.X.Rows)
	return s.solveClassGrams(ctx, grams, classSums, d.X.Rows, r, released)
}

// fromClassGrams releases the per-class Grams and class sums (K×d) of n
// clipped rows and solves: the per-class form after the pass over the data,
// shared by Solve and SolveStream.
func (s *LS) fromClassGrams(ctx context.Context, grams []*mat.SymDense, sums *mat.Dense, n int, r *run) (*mat.Dense, error) {
	return s.solveClassGrams(ctx, grams, sums, n, r, nil)
}

// solveClassGrams is fromClassGrams, calling released (if not nil) once the
// last noise has been drawn from r's Source.
func (s *LS) solveClassGrams(ctx context.Context, grams []*mat.SymDense, sums *mat.Dense, n int, r *run, released func()) (*mat.Dense, error) {
	k, dim := len(grams), grams[0].SymmetricDim()
	total := mat.NewSymDense(dim, nil)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	prog := progressFrom(ctx)
	prog.report("solve", 0, k)
	if err := r.spend(0); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	for l := range k {
		if r.private {
			if err := dp.AddGaussianSym(grams[l], r.sigma(0), r.src); err != nil {
				return nil, fmt.Errorf("optim: DP-LS: %w", err)
			}
		}
		total.AddSym(total, grams[l])
	}
	if err := r.releaseDense(1, sums); err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	if released != nil {
		released()
	}
	alpha := s.negWeight()
	totalP, err := psd(total, r.private)
	if err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	// The noise in Ĝ_l has σ_G; in α·Ĝ it has α·√K·σ_G.
	lambda := s.Lambda(n, dim, k, s.sigmaG(r))
	w := mat.NewDense(k, dim, nil)
	for l := range k {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("optim: DP-LS: %w", err)
		}
		gl, err := psd(grams[l], r.private)
		if err != nil {
			return nil, fmt.Errorf("optim: DP-LS: %w", err)
		}
		a := mat.NewSymDense(dim, nil)
		a.AddSym(gl, scaledSym(alpha, totalP))
		for i := range dim {
			a.SetSym(i, i, a.At(i, i)+lambda)
		}
		b := mat.NewDense(dim, 1, nil)
		b.SetCol(0, sums.RawRowView(l))
		theta, err := linalg.CholeskySolve(a, b)
		if err != nil {
			return nil, fmt.Errorf("optim: DP-LS class %d: %w", l, err)
		}
		w.SetRow(l, mat.Col(nil, 0, theta))
		prog.report("solve", l+1, k)
	}
	return w, nil
}

// psd projects a noisy Gram onto the PSD cone (post-processing); a
// noise-free Gram is PSD already and is returned as is.
func psd(g *mat.SymDense, private bool) (*mat.SymDense, error) {
	if !private {
		return g, nil
	}
	return linalg.ProjectPSD(g, 0)
}

// regularized returns psd(g) + λI.
func regularized(g *mat.SymDense, lambda float64, private bool) (*mat.SymDense, error) {
	p, err := psd(g, private)
	if err != nil {
		return nil, err
	}
	a := mat.NewSymDense(p.SymmetricDim(), nil)
	a.CopySym(p)
	for i := range a.SymmetricDim() {
		a.SetSym(i, i, a.At(i, i)+lambda)
	}
	return a, nil
}

func scaledSym(a float64, m *mat.SymDense) *mat.SymDense {
	out := mat.NewSymDense(m.SymmetricDim(), nil)
	out.ScaleSym(a, m)
	return out
}

func transpose(m *mat.Dense) *mat.Dense {
	out := new(mat.Dense)
	out.CloneFrom(m.T())
	return out
}
