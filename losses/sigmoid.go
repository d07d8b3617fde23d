package losses

import (
	"math"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// PaperFixedBias is the fixed, untrained bias of the one-vs-all sigmoid loss
// in Mehta et al. (arXiv 2211.13403): with zero-initialised weights every
// class starts at probability σ(−10) ≈ 4.5·10⁻⁵, so the many negative terms
// contribute small gradients from the first step.
const PaperFixedBias = -10.0

// Sigmoid is the one-vs-all sigmoid loss: K binary logistic losses, class l
// having target y_il = 1{y_i = l}, with the negative terms weighted by α:
//
//	loss_i = Σ_l [ y_il·softplus(−s_il) + α·(1 − y_il)·softplus(s_il) ],
//
// softplus(z) = log(1 + eᶻ), evaluated stably. The residuals are
// r_il = σ(s_il) − 1 for l = y_i and α·σ(s_il) otherwise, so
// |r_il| ≤ max(1, α). Curvature holds σ(s_il)(1 − σ(s_il)) for l = y_i and
// α·σ(s_il)(1 − σ(s_il)) otherwise; the classes decouple, and the Hessian of
// the summed loss with respect to row l of W is exactly Σ_i c_il x_i x_iᵀ.
//
// The zero value is the unweighted loss (α = 1) with no fixed bias.
type Sigmoid struct {
	// NegWeight is α ≥ 0, the weight of the K−1 negative terms of each
	// example. Zero means 1 (unweighted); an α of exactly zero, which would
	// drop every negative term, cannot be expressed.
	NegWeight float64
	// FixedBias is a constant added to every score when Eval is given no
	// trained bias (bias == nil); it is not trained and has no gradient.
	// Zero means none; the paper uses PaperFixedBias. Eval returns an
	// *accountant.ParamError if FixedBias is non-zero and a trained bias is
	// also given.
	FixedBias float64
}

var _ Loss = Sigmoid{}

// Name returns "sigmoid".
func (Sigmoid) Name() string { return "sigmoid" }

// Eval implements Loss.
func (l Sigmoid) Eval(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64, workers int) error {
	invalidate(dst)
	f, offset, alpha, err := l.rows(bias)
	if err != nil {
		return err
	}
	return eval(dst, x, labels, w, bias, offset, alpha, workers, f)
}

// rows validates the parameters and returns the per-example function, the
// fixed score offset and α.
func (l Sigmoid) rows(bias []float64) (rowLoss, float64, float64, error) {
	alpha := l.NegWeight
	switch {
	case math.IsNaN(alpha) || math.IsInf(alpha, 0) || alpha < 0:
		return nil, 0, 0, paramErr("NegWeight", alpha, "must be finite and ≥ 0 (0 means 1)")
	case alpha == 0:
		alpha = 1
	}
	switch {
	case math.IsNaN(l.FixedBias) || math.IsInf(l.FixedBias, 0):
		return nil, 0, 0, paramErr("FixedBias", l.FixedBias, "must be finite")
	case l.FixedBias != 0 && bias != nil:
		return nil, 0, 0, paramErr("FixedBias", l.FixedBias, "must be zero when a trained bias is given")
	}
	return sigmoidRowVec, l.FixedBias, alpha, nil
}

// sigmoidRow is the scalar rowLoss of Sigmoid with negative-class weight
// alpha, with math.Exp and log1pSmall: the definition that sigmoidRowVec
// (sigmoid_vec.go), Sigmoid's rowLoss, is tested against, and its path for
// rows with a score beyond ±sigVecMaxScore.
func sigmoidRow(s, curv []float64, y int, alpha float64) float64 {
	var loss float64
	for c, v := range s {
		// One exponential and one logarithm per entry, without
		// overflow or cancellation: with e = e^−|v| ∈ (0, 1],
		// σ(|v|) = 1/(1+e), σ(−|v|) = e/(1+e) and
		// softplus(±v) = log(1 + e^±v) = max(±v, 0) + log1p(e).
		e := math.Exp(-math.Abs(v))
		big := 1 / (1 + e)
		small := e * big
		sp, sn := big, small // σ(v), 1 − σ(v) = σ(−v), each without cancellation
		if !(v >= 0) {
			sp, sn = small, big
		}
		l1 := log1pSmall(e)
		if c == y {
			loss += max(-v, 0) + l1
			s[c] = -sn
			curv[c] = sp * sn
		} else {
			loss += alpha * (max(v, 0) + l1)
			s[c] = alpha * sp
			curv[c] = alpha * sp * sn
		}
	}
	return loss
}

// log1pSmall returns log(1 + e) for e ∈ [0, 1]. Below 2⁻¹² it sums the Taylor
// series e − e²/2 + e³/3 − e⁴/4 + e⁵/5 (Horner form), whose truncation error
// e⁶/6 is below 2⁻⁶² of the result, so it is within a few ulps of
// math.Log1p at a fraction of its cost; above, it is math.Log1p. Scores
// with |s| > 8.3 — every entry with the paper's fixed bias −10 and small
// weights — take the series.
func log1pSmall(e float64) float64 {
	if e < 0x1p-12 {
		return e * (1 - e*(1.0/2-e*(1.0/3-e*(1.0/4-e*(1.0/5)))))
	}
	return math.Log1p(e)
}
