package losses

import (
	"math"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// Softmax is the multinomial logistic (softmax cross-entropy) loss
// loss_i = log Σ_l exp(s_il) − s_iy, evaluated as a stable log-sum-exp.
// Its residuals are r_il = p_il − 1{l = y_i} with p_i = softmax(s_i), so
// |r_il| ≤ 1 and ‖r_i‖ ≤ √2.
//
// Curvature holds p_il(1 − p_il). These are exact for the diagonal blocks of
// the Hessian — the Hessian of the summed loss with respect to row l of W is
// Σ_i p_il(1 − p_il) x_i x_iᵀ — but the classes are coupled by off-diagonal
// blocks −Σ_i p_il p_im x_i x_iᵀ (l ≠ m), which are not given: a per-class
// Newton step with these weights uses the block-diagonal approximation.
//
// A constant added to all scores of an example does not change the softmax,
// so Softmax has no fixed-bias option. The zero value is ready to use.
type Softmax struct{}

var _ Loss = Softmax{}

// Name returns "softmax".
func (Softmax) Name() string { return "softmax" }

// Eval implements Loss.
func (Softmax) Eval(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64, workers int) error {
	return eval(dst, x, labels, w, bias, 0, 0, workers, softmaxRow)
}

// rows returns the per-example function, a zero score offset and an unused
// α.
func (Softmax) rows([]float64) (rowLoss, float64, float64, error) { return softmaxRow, 0, 0, nil }

func softmaxRow(s, curv []float64, y int, _ float64) float64 {
	top := 0
	for l, v := range s {
		if v > s[top] {
			top = l
		}
	}
	m := s[top]
	sy := s[y]
	// rest = Σ_{l ≠ top} exp(s_l − m) ∈ [0, K−1]; Σ_l exp(s_l − m) = 1 + rest,
	// and log1p keeps the loss accurate when it is tiny.
	var rest float64
	for l, v := range s {
		e := math.Exp(v - m)
		s[l] = e
		if l != top {
			rest += e
		}
	}
	z := 1 + rest
	for l, e := range s {
		p := e / z
		curv[l] = p * (1 - p)
		s[l] = p
	}
	// For the top class 1 − p = rest/z exactly; computing it so avoids the
	// cancellation in 1 − p when p ≈ 1 (a confident, often correct, example).
	curv[top] = s[top] * (rest / z)
	if y == top {
		s[y] = -rest / z
	} else {
		s[y]--
	}
	return (m - sy) + math.Log1p(rest)
}
