package losses

import (
	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// Squared is the squared loss on one-hot targets,
// loss_i = ½‖s_i − e_{y_i}‖², the loss that DP-LS minimises in closed form.
// Its residuals are r_i = s_i − e_{y_i} (unbounded: clip before privatising)
// and its Curvature is 1 everywhere: the Hessian of the summed loss with
// respect to every row of W is exactly Σ_i x_i x_iᵀ.
//
// The zero value is ready to use.
type Squared struct{}

var _ Loss = Squared{}

// Name returns "squared".
func (Squared) Name() string { return "squared" }

// Eval implements Loss. It returns an error wrapping linalg.ErrNonFinite if
// the summed loss overflows float64.
func (Squared) Eval(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64, workers int) error {
	return eval(dst, x, labels, w, bias, 0, 0, workers, squaredRow)
}

// rows returns the per-example function, a zero score offset and an unused
// α.
func (Squared) rows([]float64) (rowLoss, float64, float64, error) { return squaredRow, 0, 0, nil }

func squaredRow(s, curv []float64, y int, _ float64) float64 {
	s[y]--
	var loss float64
	for l, r := range s {
		loss += r * r
		curv[l] = 1
	}
	return loss / 2
}
