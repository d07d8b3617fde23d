package optim

import (
	"context"
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
)

// Newton is DP-Newton on the one-vs-all logistic loss (Mehta, Krichene,
// Thakurta, Kurakin, Cutkosky, "Differentially Private Image Classification
// from Features", arXiv 2211.13403).
//
// The loss is the α-weighted one-vs-all sigmoid loss of losses.Sigmoid with
// NegWeight α and no bias (as in the paper's DP-Newton code): its K classes
// decouple, and the Hessian with respect to row l of W is
// H_l = Σ_i c_il x̃_ix̃_iᵀ with c_il = s_il(1 − s_il) for the example's own
// class and α·s_il(1 − s_il) for the others.
//
// Adjacency is add/remove one example; n is public. Each of the Steps steps
// makes two releases, in the order of Privacy.Split:
//
//   - "gradients": the K per-class gradients G = Σ_i r_i x̃_iᵀ (K×d) jointly,
//     with |r_il| ≤ max(1, α) and rows clipped to ClipNorm C: L2 sensitivity
//     √K·C·max(1, α) (dp.OneVsAllGradientSensitivity); iid N(0, σ_g²) noise
//     on each of the K·d entries.
//   - "hessians": the K per-class Hessians {H_l} jointly: L2 sensitivity
//     √K·max(1, α)·C²/4 (dp.OneVsAllHessianSensitivity; s(1 − s) ≤ 1/4), which
//     is the √K·C²/4 of the package documentation for α ≤ 1. Symmetric noise
//     (dp.AddGaussianSym) is added to each H_l, fresh for every class and
//     every step.
//
// Each noisy Hessian is projected onto the PSD cone, and row l of W is updated
// as W_l ← W_l − η·(Ĥ_l₊ + (λ + WeightDecay)·I)⁻¹(ĝ_l + WeightDecay·W_l), solved
// by Cholesky; everything after the releases is post-processing. W starts at
// zero, where one step with η = 1 is a weighted ridge regression per class.
//
// Accounting: a run is an adaptive composition of 2·Steps Gaussian mechanisms,
// accounted exactly as one Gaussian mechanism (GDP) by default, with equal
// noise multipliers unless Privacy.Split says otherwise. Each release is spent
// in the ledger before it is made; the K Hessians of a step are one release.
//
// Cost: K·n·d² multiply-adds per step for the K weighted Grams, plus K·d³ for
// the projections and factorisations: practical on a CPU for K up to about 100
// at d ≈ 1000 and n ≈ 50 000 (about K times the cost of one DP-LS), not for
// ImageNet-1k (K = 1000). Memory: the classes are processed one after another,
// so Newton holds one d×d Hessian at a time and its working set is about
// 4·d²·8 bytes (Hessian, eigenvectors, projection, factor) plus 2·n·d·4 bytes
// (a clipped and a weighted copy of the features) plus n·K·16 bytes (residuals
// and curvatures); Solve refuses, with an error wrapping ErrTooLarge, a shape
// whose working set exceeds MaxBytes.
type Newton struct {
	Privacy
	// ClipNorm is the L2 norm C each feature row is clipped to. Required.
	ClipNorm float64
	// Steps is the number of Newton steps. Zero means 1, as in the paper: on
	// the digits data set (newton_test.go) one step was the most accurate at
	// ε ≤ 1, where more steps split the budget into too much noise; 2 steps
	// gained 1–2 points at ε ≥ 3.
	Steps int
	// LearningRate is η. Zero means 1, the Newton step.
	LearningRate float64
	// Ridge is λ, added to every noisy Hessian after projection. Zero means the
	// default, which grows with the Hessian noise as DP-LS's ridge grows with
	// the Gram noise: λ = max(1e-3·n·C²/(4d), RidgeScale·√(2d)·σ_H), where σ_H
	// is the standard deviation of the Hessian noise and √(2d)·σ_H
	// approximates its spectral norm; the first term (the 1/4 is the largest
	// curvature s(1 − s)) keeps a non-private run well posed on rank-deficient
	// features. Negative is an error.
	Ridge float64
	// RidgeScale multiplies the noise term of the default ridge; zero means 1,
	// or 0.35 when the default NegWeight is 0.2 (below).
	RidgeScale float64
	// NegWeight is α, the weight of the negative terms of the loss (see
	// losses.Sigmoid); the sensitivities grow with max(1, α). Zero means a
	// default chosen from public quantities: α = 0.2 (with RidgeScale 0.35)
	// when every class has on average at least 4d examples (n ≥ 4·K·d) and
	// the gradient noise is small, ρ = σ_g·√(K·d)/(n·C) ≤ 0.15; otherwise
	// α = 1. A small α makes each class's Hessian its own (a sharper fit:
	// without noise 88.9% instead of 86.0% on MNIST), but leaves less signal
	// in it against the same noise, which needs many examples per class and
	// little noise. Measured at δ = 1e-5 on MNIST (n/(K·d) = 6.4):
	// α = 0.2 gave 64.3/78.7/84.0/86.8/87.8% at ε = 0.1/0.3/1/3/8 against
	// 68.1/76.6/81.7/84.2/85.3% with α = 1 (ρ = 0.24 at ε = 0.1); on digits
	// (n/(K·d) = 1.9) α = 1 was better at every ε, by 2–15 points.
	NegWeight float64
	// WeightDecay adds (WeightDecay/2)·‖W‖²_F to the summed loss: WeightDecay·W
	// is added to the noisy gradients and WeightDecay·I to the Hessians
	// (post-processing, free of privacy cost). Zero, the default, is the
	// paper's unregularised loss.
	WeightDecay float64
	// MaxBytes bounds the working set described above. Zero means 4 GiB.
	MaxBytes int64
	// Float64, if true, computes the per-class Hessians and the gradient
	// GEMMs from exact products of the float32 entries, summed in float64
	// (linalg.Float64), instead of in float32 within blocks of rows and in
	// float64 across them (linalg.Float32, the default; as numpy computes
	// X.T @ X from float32).
	// The releases and the guarantee are the same; the default costs about
	// half the CPU time in the pure-Go build and differs by about 10⁻⁶
	// relative, far below the noise (see linalg.Precision).
	Float64 bool
	// Workers is the number of goroutines; zero means GOMAXPROCS. Results do
	// not depend on it.
	Workers int

	// hessHook, if set (by tests), sees each released Hessian before projection.
	hessHook func(step, class int, h *mat.SymDense)
}

var _ Solver = (*Newton)(nil)

// Newton's defaults.
const (
	newtonDefaultSteps    = 1
	newtonDefaultMaxBytes = 4 << 30

	// The regime of the default NegWeight; see Newton.NegWeight.
	newtonPerClassRows       = 4    // examples per class per dimension
	newtonMaxNoiseRatio      = 0.15 // ρ
	newtonPerClassNegWeight  = 0.2
	newtonPerClassRidgeScale = 0.35
)

// kinds returns the releases of a run on k classes. The privacy event depends
// only on the noise multipliers, not on the sensitivities, so Plan, which does
// not know k, may pass any k ≥ 1.
//
// The sensitivities grow with max(1, α); negWeight returns NegWeight or 1,
// which gives the right sensitivity for either default α of Defaults (0.2
// or 1, both ≤ 1) without knowing n and the noise.
func (s *Newton) kinds(k int) ([]releaseKind, error) {
	gs, err := dp.OneVsAllGradientSensitivity(s.ClipNorm, k, s.negWeight(), dp.AddRemove)
	if err != nil {
		return nil, err
	}
	hs, err := dp.OneVsAllHessianSensitivity(s.ClipNorm, k, s.negWeight(), dp.AddRemove)
	if err != nil {
		return nil, err
	}
	steps := s.steps()
	return []releaseKind{
		{label: "gradients", sensitivity: gs, count: steps, rate: 1},
		{label: "hessians", sensitivity: hs, count: steps, rate: 1},
	}, nil
}

func (s *Newton) steps() int {
	if s.Steps == 0 {
		return newtonDefaultSteps
	}
	return s.Steps
}

// Defaults returns the negative-class weight α and the ridge scale that
// Solve uses for n examples of dimension d in k classes when the noise on
// each gradient entry has standard deviation gradSigma (0 for a non-private
// run): NegWeight and RidgeScale if set, else the defaults described at
// NegWeight. They depend only on public sizes and the calibrated noise.
func (s *Newton) Defaults(n, d, k int, gradSigma float64) (alpha, ridgeScale float64) {
	alpha, ridgeScale = s.NegWeight, s.RidgeScale
	if alpha != 0 {
		return alpha, ridgeScale
	}
	rho := gradSigma * math.Sqrt(float64(k)*float64(d)) / (float64(n) * s.ClipNorm)
	if float64(n) >= newtonPerClassRows*float64(k)*float64(d) && rho <= newtonMaxNoiseRatio {
		if ridgeScale == 0 {
			ridgeScale = newtonPerClassRidgeScale
		}
		return newtonPerClassNegWeight, ridgeScale
	}
	return 1, ridgeScale
}

func (s *Newton) negWeight() float64 {
	if s.NegWeight == 0 {
		return 1
	}
	return s.NegWeight
}

func (s *Newton) learningRate() float64 {
	if s.LearningRate == 0 {
		return 1
	}
	return s.LearningRate
}

func (s *Newton) maxBytes() int64 {
	if s.MaxBytes == 0 {
		return newtonDefaultMaxBytes
	}
	return s.MaxBytes
}

// workingSet returns the bytes Newton holds for n examples, dimension d and
// k classes (see the type's documentation), saturating instead of overflowing.
func newtonWorkingSet(n, d, k int) float64 {
	fn, fd, fk := float64(n), float64(d), float64(k)
	return 4*fd*fd*8 + 2*fn*fd*4 + fn*fk*16 + 3*fk*fd*8
}

func (s *Newton) validate() error {
	if err := checkWorkers(s.Workers); err != nil {
		return err
	}
	if err := positiveParam("ClipNorm", s.ClipNorm); err != nil {
		return err
	}
	if s.Steps < 0 {
		return &accountant.ParamError{Param: "Steps", Value: float64(s.Steps), Reason: "must be non-negative (0 = default 1)"}
	}
	if s.MaxBytes < 0 {
		return &accountant.ParamError{Param: "MaxBytes", Value: float64(s.MaxBytes), Reason: "must be non-negative (0 = default 4 GiB)"}
	}
	if err := nonNegativeParams(param{"LearningRate", s.LearningRate}, param{"Ridge", s.Ridge},
		param{"RidgeScale", s.RidgeScale}, param{"NegWeight", s.NegWeight}, param{"WeightDecay", s.WeightDecay}); err != nil {
		return err
	}
	return s.Privacy.validate(2)
}

// Plan implements Solver. The event is the composition of Steps "gradients"
// and Steps "hessians" releases at the calibrated noise multipliers.
func (s *Newton) Plan(n int) (accountant.Event, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	kinds, err := s.kinds(1)
	if err != nil {
		return nil, err
	}
	return s.Privacy.plan(n, kinds)
}

// Solve implements Solver.
func (s *Newton) Solve(ctx context.Context, d *Data, l *accountant.Ledger, src dp.Source) (*Result, error) {
	start := time.Now()
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	n, dim, k := d.X.Rows, d.X.Cols, d.Classes
	if need := newtonWorkingSet(n, dim, k); need > float64(s.maxBytes()) {
		return nil, fmt.Errorf("optim: DP-Newton with n = %d, d = %d, K = %d needs about %.3g bytes, over MaxBytes = %d: %w",
			n, dim, k, need, s.maxBytes(), ErrTooLarge)
	}
	kinds, err := s.kinds(k)
	if err != nil {
		return nil, err
	}
	r, err := s.Privacy.start(kinds, l, src)
	if err != nil {
		return nil, err
	}
	x, err := clipped(d, s.ClipNorm, s.Workers)
	if err != nil {
		return nil, err
	}
	sigmaH := 0.0
	if r.private {
		sigmaH = r.sigma(1)
	}
	c2 := s.ClipNorm * s.ClipNorm
	sigmaG := 0.0
	if r.private {
		sigmaG = r.sigma(0)
	}
	alpha, scale := s.Defaults(n, dim, k, sigmaG)
	lambda := noiseRidge(s.Ridge, scale, c2/4, n, dim, sigmaH)

	steps, eta := s.steps(), s.learningRate()
	loss := losses.Sigmoid{NegWeight: alpha}
	w := mat.NewDense(k, dim, nil)
	grad := mat.NewDense(k, dim, nil)
	next := mat.NewDense(k, dim, nil)
	scaledX := linalg.NewMatrix32(n, dim)
	var batch losses.Batch
	batch.Precision = precision(s.Float64)
	rep := &Report{Method: "newton", N: n, Dim: dim, Classes: k, Steps: make([]Step, 0, steps)}
	prog := progressFrom(ctx)
	prog.report("hessians", 0, steps*k)
	for t := range steps {
		stepErr := func(err error) (*Result, error) {
			return nil, fmt.Errorf("optim: DP-Newton step %d: %w", t, err)
		}
		if err := ctx.Err(); err != nil {
			return stepErr(err)
		}
		if err := loss.Eval(&batch, x, d.Labels, w, nil, s.Workers); err != nil {
			return stepErr(err)
		}
		if err := batch.Grad(grad, nil, s.Workers); err != nil {
			return stepErr(err)
		}
		if err := r.releaseDense(0, grad); err != nil {
			return stepErr(err)
		}
		rep.Steps = append(rep.Steps, Step{Loss: batch.Loss / float64(n), GradNorm: mat.Norm(grad, 2), Batch: n})
		if err := r.spend(1); err != nil { // the K Hessians are one joint release
			return stepErr(err)
		}
		next.Copy(w)
		for c := range k {
			if err := ctx.Err(); err != nil {
				return stepErr(err)
			}
			h, err := s.hessian(scaledX, x, batch.Curvature, c)
			if err != nil {
				return stepErr(err)
			}
			if r.private {
				if err := dp.AddGaussianSym(h, r.sigma(1), r.src); err != nil {
					return stepErr(err)
				}
			}
			if s.hessHook != nil {
				s.hessHook(t, c, h)
			}
			a, err := regularized(h, lambda+s.WeightDecay, r.private)
			if err != nil {
				return stepErr(fmt.Errorf("class %d: %w", c, err))
			}
			b := mat.NewDense(dim, 1, nil)
			b.SetCol(0, grad.RawRowView(c))
			if s.WeightDecay > 0 {
				for j, v := range w.RawRowView(c) {
					b.Set(j, 0, b.At(j, 0)+s.WeightDecay*v)
				}
			}
			dir, err := linalg.CholeskySolve(a, b)
			if err != nil {
				return stepErr(fmt.Errorf("class %d (λ = %g): %w", c, lambda, err))
			}
			row := next.RawRowView(c)
			for j := range row {
				row[j] -= eta * dir.At(j, 0)
			}
			prog.report("hessians", t*k+c+1, steps*k)
		}
		w.Copy(next)
	}
	if err := finiteDense(w); err != nil {
		return nil, fmt.Errorf("optim: DP-Newton: weights diverged (LearningRate %g too large?): %w", eta, err)
	}
	r.report(rep, s.Privacy)
	rep.Seconds = time.Since(start).Seconds()
	return &Result{Model: &Model{W: w}, Report: rep}, nil
}

// hessian returns H_c = Σ_i curv_ic x_ix_iᵀ, computed as the Gram of the rows
// x_i·√curv_ic (curvatures are non-negative), written into buf.
func (s *Newton) hessian(buf, x *linalg.Matrix32, curv *mat.Dense, c int) (*mat.SymDense, error) {
	dim := x.Cols
	for i := range x.Rows {
		// √c_i·x_i, shrunk by 2⁻²⁰ so that, as computed, its squared norm
		// stays within the sensitivity's max(1, α)/4 · C² although c_i may
		// round to 1 ulp above its bound and f and the products are rounded
		// to float32 (at most (1 + 2⁻²⁴)³ together).
		f := float32(math.Sqrt(curv.At(i, c)) * (1 - 0x1p-20))
		src, dst := x.Row(i), buf.Row(i)
		for j := range dim {
			dst[j] = f * src[j]
		}
	}
	return linalg.GramPrecision(buf, s.Workers, precision(s.Float64))
}
