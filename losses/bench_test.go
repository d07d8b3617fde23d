package losses

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// benchShapes: MNIST (raw pixels) and CIFAR-100 with d = 768 features.
var benchShapes = []struct {
	n, d, k int
	large   bool // skipped under -short
}{
	{60000, 784, 10, false},
	{50000, 768, 100, true},
}

// BenchmarkClippedStep times one full-batch DP-SGD gradient on the one-vs-all
// sigmoid loss with the paper's fixed bias: Eval (scores X·Wᵀ, residuals,
// norms) then ClipSum ((c∘R)ᵀ·X). GFLOP/s counts the two GEMMs, 4·n·d·K.
func BenchmarkClippedStep(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(b *testing.B) {
			if s.large && testing.Short() {
				b.Skip("large shape skipped under -short")
			}
			p := newProblem(b, 1, s.n, s.d, s.k, 0.01, false)
			loss := Sigmoid{FixedBias: PaperFixedBias}
			var batch Batch
			grad := mat.NewDense(s.k, s.d, nil)
			for b.Loop() {
				if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
					b.Fatal(err)
				}
				if err := batch.ClipSum(grad, nil, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(4*float64(s.n*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkPerExampleClip compares, on a batch of 1024, the clipped gradient
// sum by the norm identity (Eval + ClipSum) with the naive way (Eval, then
// materialise every per-example gradient r_i x_iᵀ, take its norm, scale and
// add). GFLOP/s is the same useful work for both, 4·n·d·K, so the rates
// compare directly.
func BenchmarkPerExampleClip(b *testing.B) {
	const n, d, k, clip = 1024, 768, 100, 1.0
	p := newProblem(b, 2, n, d, k, 0.01, false)
	loss := Sigmoid{FixedBias: PaperFixedBias}
	flops := 4 * float64(n*d*k)
	b.Run(fmt.Sprintf("method=identity/n=%d/d=%d/K=%d", n, d, k), func(b *testing.B) {
		var batch Batch
		grad := mat.NewDense(k, d, nil)
		for b.Loop() {
			if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
				b.Fatal(err)
			}
			if err := batch.ClipSum(grad, nil, clip, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run(fmt.Sprintf("method=naive/n=%d/d=%d/K=%d", n, d, k), func(b *testing.B) {
		var batch Batch
		sum := make([]float64, k*d)
		g := make([]float64, k*d)
		xi := make([]float64, d)
		for b.Loop() {
			if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
				b.Fatal(err)
			}
			clear(sum)
			for i := range n {
				for j, v := range p.x.Row(i) {
					xi[j] = float64(v)
				}
				r := batch.R.RawRowView(i)
				var ss float64
				for l, rl := range r {
					gl := g[l*d : (l+1)*d]
					for j, v := range xi {
						gl[j] = rl * v
						ss += gl[j] * gl[j]
					}
				}
				c := min(1, clip/math.Sqrt(ss))
				for j, v := range g {
					sum[j] += c * v
				}
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
