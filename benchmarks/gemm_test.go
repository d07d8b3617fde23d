package benchmarks

import (
	"testing"

	"github.com/dpopt/dpopt/linalg"

	"gonum.org/v1/gonum/mat"
)

// BenchmarkMulXWt times linalg.MulXWt, the scores X·Wᵀ (n×K) of float32 rows
// against float64 weights. GFLOP/s counts 2·n·d·K.
func BenchmarkMulXWt(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		x, _ := problem(s.n, s.d, s.k)
		w := randDense(s.k, s.d, 0.01)
		dst := mat.NewDense(s.n, s.k, nil)
		t := startTimer()
		for b.Loop() {
			if err := linalg.MulXWt(dst, x, w, 0); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.k))
	})
}

// BenchmarkMulRtX times linalg.MulRtX, the gradient Rᵀ·X (K×d) of float64
// residuals against float32 rows. GFLOP/s counts 2·n·d·K.
func BenchmarkMulRtX(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		x, _ := problem(s.n, s.d, s.k)
		r := randDense(s.n, s.k, 1)
		dst := mat.NewDense(s.k, s.d, nil)
		t := startTimer()
		for b.Loop() {
			if err := linalg.MulRtX(dst, r, x, 0); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.k))
	})
}
