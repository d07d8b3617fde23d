package benchmarks

import (
	"testing"

	"github.com/dpopt/dpopt/linalg"

	"gonum.org/v1/gonum/mat"
)

// precisions are the sub-benchmarks of the GEMMs: float64 (MulXWt, MulRtX,
// exact products) and float32 (MulXWtPrecision, MulRtXPrecision with
// linalg.Float32: float32 within chunks of 256 terms).
var precisions = []linalg.Precision{linalg.Float64, linalg.Float32}

// BenchmarkMulXWt times linalg.MulXWt (float64) and linalg.MulXWtPrecision
// with linalg.Float32, the scores X·Wᵀ (n×K) of float32 rows against float64
// weights. GFLOP/s counts 2·n·d·K.
func BenchmarkMulXWt(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		x, _ := problem(s.n, s.d, s.k)
		w := randDense(s.k, s.d, 0.01)
		dst := mat.NewDense(s.n, s.k, nil)
		for _, p := range precisions {
			b.Run(p.String(), func(b *testing.B) {
				t := startTimer()
				for b.Loop() {
					if err := linalg.MulXWtPrecision(dst, nil, x, w, 0, p); err != nil {
						b.Fatal(err)
					}
				}
				t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.k))
			})
		}
	})
}

// BenchmarkMulRtX times linalg.MulRtX (float64) and linalg.MulRtXPrecision
// with linalg.Float32, the gradient Rᵀ·X (K×d) of float64 residuals against
// float32 rows. GFLOP/s counts 2·n·d·K.
func BenchmarkMulRtX(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		x, _ := problem(s.n, s.d, s.k)
		r := randDense(s.n, s.k, 1)
		dst := mat.NewDense(s.k, s.d, nil)
		for _, p := range precisions {
			b.Run(p.String(), func(b *testing.B) {
				t := startTimer()
				for b.Loop() {
					if err := linalg.MulRtXPrecision(dst, r, x, 0, p); err != nil {
						b.Fatal(err)
					}
				}
				t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.k))
			})
		}
	})
}
