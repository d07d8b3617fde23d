package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// TestNewtonHessianRowsWithinSensitivity checks the rows √c_i·x_i whose Gram
// is DP-Newton's released Hessian: with x_i clipped to C (dp.ClipRows) and
// curvatures at and just below their bound max(1, α)/4 (and 1 ulp above it,
// which the sigmoid's rounding can give), each row's squared norm, as
// computed in float64 from the float32 row, is at most max(1, α)·C²/4, the
// per-example bound behind the Hessian's sensitivity √K·max(1, α)·C²/4.
// Without the 2⁻²⁰ shrink of the row scale this fails (α = 1.5, a row
// 4.8·10⁻⁸ relative above).
func TestNewtonHessianRowsWithinSensitivity(t *testing.T) {
	const n, d, clip = 4000, 37, 0.7
	rng := rand.New(rand.NewPCG(9, 10))
	x := linalg.NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	if _, err := dp.ClipRows(x, clip); err != nil {
		t.Fatal(err)
	}
	for _, alpha := range []float64{1, 1.5, 2.5, 3, 5, 7, 10} {
		bound := max(1, alpha) / 4 // the largest curvature, at s = 0
		curv := mat.NewDense(n, 1, nil)
		for i := range n {
			c := bound * (1 - float64(rng.IntN(8))*0x1p-24)
			if i%7 == 0 {
				c = math.Nextafter(bound, 1)
			}
			curv.Set(i, 0, c)
		}
		buf := linalg.NewMatrix32(n, d)
		s := &Newton{}
		if _, err := s.hessian(buf, x, curv, 0); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			var ss float64
			for _, v := range buf.Row(i) {
				ss += float64(v) * float64(v)
			}
			if ss > bound*clip*clip {
				t.Fatalf("α = %v, row %d: ‖√c·x‖² = %v > max(1, α)·C²/4 = %v (%.3g relative; c = %v)",
					alpha, i, ss, bound*clip*clip, ss/(bound*clip*clip)-1, curv.At(i, 0))
			}
		}
	}
}
